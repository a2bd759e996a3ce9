//! Tracking: vrrp_script results and interface states folded into the
//! `(priority delta, fault)` pair the state machine consumes.
//!
//! keepalived's rules: a weighted script adds its weight while it succeeds when
//! the weight is positive, and subtracts it while it fails when negative; an
//! unweighted one puts the instance in FAULT while failing. Interfaces follow the
//! same rule with "up" as success. `fall`/`rise` debounce script results.

use std::time::{Duration, Instant};

use tracing::info;

/// The pure part: one tracked object's debounced status.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub name: String,
    pub weight: i32,
    pub fall: u32,
    pub rise: u32,
    /// None until the first result.
    pub ok: Option<bool>,
    good: u32,
    bad: u32,
}

impl Tracked {
    pub fn new(name: &str, weight: i32, fall: u32, rise: u32) -> Tracked {
        Tracked {
            name: name.to_string(),
            weight,
            fall: fall.max(1),
            rise: rise.max(1),
            ok: None,
            good: 0,
            bad: 0,
        }
    }

    /// Feeds one result; returns true when the debounced status changed.
    pub fn result(&mut self, success: bool) -> bool {
        let before = self.ok;
        if success {
            self.bad = 0;
            self.good = self.good.saturating_add(1);
            if before.is_none() || (before == Some(false) && self.good >= self.rise) {
                self.ok = Some(true);
            }
        } else {
            self.good = 0;
            self.bad = self.bad.saturating_add(1);
            if before.is_none() || (before == Some(true) && self.bad >= self.fall) {
                self.ok = Some(false);
            }
        }
        before != self.ok
    }

    /// Contribution to (delta, fault). An object without a result yet counts as
    /// neither up nor down.
    fn contribution(&self) -> (i32, bool) {
        match (self.ok, self.weight) {
            (None, _) => (0, false),
            (Some(false), 0) => (0, true),
            (Some(true), w) if w > 0 => (w, false),
            (Some(false), w) if w < 0 => (w, false),
            _ => (0, false),
        }
    }
}

/// Sums every tracked object's contribution.
pub fn combine<'a>(items: impl IntoIterator<Item = &'a Tracked>) -> (i32, bool) {
    items.into_iter().map(Tracked::contribution).fold((0, false), |(d, f), (d2, f2)| (d + d2, f || f2))
}

/// A script run periodically.
pub struct Script {
    pub t: Tracked,
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub uid_gid: Option<(u32, u32)>,
    pub next: Instant,
}

/// Runs the script once; a timeout or a spawn failure is a failure.
pub async fn run_script(s: &Script) -> bool {
    let Some((prog, args)) = s.argv.split_first() else { return false };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).kill_on_drop(true);
    if let Some((u, g)) = s.uid_gid {
        cmd.uid(u).gid(g);
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            info!("Script `{}` cannot be run: {e}", s.t.name);
            return false;
        }
    };
    match tokio::time::timeout(s.timeout, child.wait_with_output()).await {
        Ok(Ok(o)) => o.status.success(),
        Ok(Err(_)) => false,
        Err(_) => {
            info!("Script `{}` timed out", s.t.name);
            false
        }
    }
}

/// `enable_script_security`, as keepalived applies it: a script is refused when
/// it, or any directory above it, can be written by someone other than its
/// owner's group-less self (group/other write bits), since root would then run
/// code anyone could change. Returns the reason when insecure.
pub fn insecure_reason(argv0: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = if argv0.contains('/') {
        std::path::PathBuf::from(argv0)
    } else {
        let found = std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join(argv0)).find(|c| c.is_file()));
        match found {
            Some(p) => p,
            None => return Some(format!("{argv0} not found in PATH")),
        }
    };
    let mut cur = Some(path.as_path());
    while let Some(p) = cur {
        match std::fs::metadata(p) {
            Ok(m) if m.permissions().mode() & 0o022 != 0 => {
                return Some(format!("{} is writable by group or others", p.display()));
            }
            Ok(_) => {}
            Err(e) => return Some(format!("{}: {e}", p.display())),
        }
        cur = p.parent().filter(|q| !q.as_os_str().is_empty());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_rise_debounce() {
        let mut t = Tracked::new("chk", -20, 2, 3);
        assert!(t.result(true));
        assert_eq!(combine([&t]), (0, false));
        assert!(!t.result(false));
        assert!(t.result(false));
        assert_eq!(combine([&t]), (-20, false));
        assert!(!t.result(true));
        assert!(!t.result(true));
        assert!(t.result(true));
        assert_eq!(combine([&t]), (0, false));
    }

    #[test]
    fn script_security() {
        assert_eq!(insecure_reason("/bin/true"), None);
        assert!(insecure_reason("/tmp").is_some_and(|r| r.contains("writable")));
        assert!(insecure_reason("no-such-program-here").is_some());
    }

    #[test]
    fn weights() {
        let mut up = Tracked::new("a", 10, 1, 1);
        up.result(true);
        let mut f = Tracked::new("b", 0, 1, 1);
        f.result(false);
        assert_eq!(combine([&up, &f]), (10, true));
    }
}
