//! The open-file limit a configuration needs, raised at start and at each
//! reload as HAProxy does: two descriptors per `maxconn` connection (client
//! and server side), one per listener and a reserve for the rest, or
//! `ulimit-n` when set. Without it a proxy left at a shell's 1 024 refuses
//! connections long before `maxconn`.
//!
//! With `strict-limits` (HAProxy 2.6's default) a limit that cannot be raised
//! to what an explicit `maxconn` or `ulimit-n` asks is an error; otherwise the
//! limit is raised as far as allowed and the shortfall is a warning.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::conf::haproxy::Global;

/// Descriptors besides connections and listeners: the event loop, logs,
/// health checks, runtime sockets, the file broker.
const RESERVE: u64 = 64;

/// The limit `global` (from `file`) asks for, and why: `FILE:LINE: …` when
/// a line asked for it.
pub fn wanted(global: &Global, listeners: usize, file: &str) -> (u64, String) {
    match global.ulimit_n {
        Some(n) => (n, format!("{file}:{}: ulimit-n {n}", global.ulimit_n_line)),
        None => {
            let n = 2 * u64::from(global.maxconn) + listeners as u64 + RESERVE;
            let source = if global.maxconn_line > 0 {
                format!("{file}:{}: maxconn {}", global.maxconn_line, global.maxconn)
            } else {
                format!("{file}: the default maxconn {}", global.maxconn)
            };
            (n, format!("{source} needs {n} open files"))
        }
    }
}

/// What to do with the current `(soft, hard)` limits.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// The soft limit already allows it.
    Keep,
    /// Raise the soft limit (and the hard one, which needs privileges).
    Raise { soft: u64, hard: u64 },
}

pub fn plan(want: u64, soft: u64, hard: u64) -> Plan {
    if soft >= want {
        Plan::Keep
    } else {
        Plan::Raise { soft: want, hard: hard.max(want) }
    }
}

/// Raises the limit for `global`; `Ok(Some(warning))` when it stays short of
/// it without `strict-limits` (or with only the default `maxconn` behind it).
pub fn raise(global: &Global, listeners: usize, file: &str) -> Result<Option<String>, String> {
    let (want, why) = wanted(global, listeners, file);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    let Plan::Raise { soft: new_soft, hard: new_hard } = plan(want, soft, hard) else {
        return Ok(None);
    };
    if setrlimit(Resource::RLIMIT_NOFILE, new_soft, new_hard).is_ok() {
        tracing::info!("open-file limit raised from {soft} to {new_soft} ({why})");
        return Ok(None);
    }
    let asked = global.ulimit_n.is_some() || global.maxconn_line > 0;
    if global.strict_limits && asked {
        return Err(format!(
            "{why}, but the open-file limit cannot be raised above {hard}: \
             raise the hard limit, lower it, or set 'no strict-limits'"
        ));
    }
    // As far as allowed: the soft limit up to the hard one needs no privilege.
    let reached = if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() { hard } else { soft };
    Ok(Some(format!(
        "{why}, but the open-file limit stays at {reached}: connections beyond it wait in the \
         kernel's queue until others close"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxconn_or_ulimit_n_decides() {
        let mut g = Global { maxconn: 1000, maxconn_line: 3, ..Global::default() };
        assert_eq!(wanted(&g, 2, "f.cfg"), (2066, "f.cfg:3: maxconn 1000 needs 2066 open files".into()));
        g.maxconn_line = 0;
        assert!(wanted(&g, 2, "f.cfg").1.starts_with("f.cfg: the default maxconn 1000"));
        g.ulimit_n = Some(500);
        g.ulimit_n_line = 4;
        assert_eq!(wanted(&g, 2, "f.cfg"), (500, "f.cfg:4: ulimit-n 500".into()));
    }

    #[test]
    fn raises_only_when_short() {
        assert_eq!(plan(2066, 4096, 4096), Plan::Keep);
        assert_eq!(plan(2066, 1024, 4096), Plan::Raise { soft: 2066, hard: 4096 });
        assert_eq!(plan(9000, 1024, 4096), Plan::Raise { soft: 9000, hard: 9000 });
    }
}
