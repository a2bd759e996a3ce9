//! Operator-driven state changes (runtime API, stats page) with the log lines
//! HAProxy 2.6 emits for them, e.g. `Server app/srv1 is going DOWN for
//! maintenance. …` or `… is UP/READY (leaving forced maintenance).`

use std::sync::atomic::Ordering;

use super::LogSink;
use crate::conf::haproxy::{Level, Proxy, Server};
use crate::proxy::state::{Admin, Health, ServerState};
use crate::proxy::stats::StatsContext;

/// Usable (active, backup) servers of a backend after a change.
fn usable_counts(ctx: &StatsContext, backend: &Proxy) -> (usize, usize) {
    let mut counts = (0, 0);
    for s in &backend.servers {
        if ctx.server_state(backend, s).is_usable() {
            if s.backup {
                counts.1 += 1;
            } else {
                counts.0 += 1;
            }
        }
    }
    counts
}

struct Logger<'a> {
    ctx: &'a StatsContext,
    backend: &'a Proxy,
    server: &'a Server,
    st: &'a ServerState,
    log: Option<&'a LogSink>,
}

impl Logger<'_> {
    fn who(&self) -> String {
        let kind = if self.server.backup { "Backup Server" } else { "Server" };
        format!("{kind} {}/{}", self.backend.name, self.server.name)
    }

    fn emit(&self, level: Level, line: String) {
        if let Some(log) = self.log {
            log(level, line);
        }
    }

    /// `… is going DOWN …. N active and M backup servers left. …` + the
    /// "no server available" alert when nothing is left.
    fn went_down(&self, what: &str) {
        let (act, bck) = usable_counts(self.ctx, self.backend);
        let on_backup = if act == 0 && bck > 0 { " Running on backup." } else { "" };
        let sessions = self.st.counters.current();
        self.emit(
            Level::Alert,
            format!(
                "{} {what}. {act} active and {bck} backup servers left.{on_backup} {sessions} sessions active, \
                 0 requeued, 0 remaining in queue.",
                self.who()
            ),
        );
        if act == 0 && bck == 0 {
            self.ctx.registry.proxy(&self.backend.name).down_transitions.fetch_add(1, Ordering::Relaxed);
            self.emit(Level::Emerg, format!("backend {} has no server available!", self.backend.name));
        }
    }

    fn online(&self, what: &str) {
        let (act, bck) = usable_counts(self.ctx, self.backend);
        let on_backup = if act == 0 && bck > 0 { " Running on backup." } else { "" };
        self.emit(
            Level::Notice,
            format!(
                "{} {what}. {act} active and {bck} backup servers online.{on_backup} 0 sessions requeued, \
                 0 total in queue.",
                self.who()
            ),
        );
    }
}

/// Sets the administrative state and logs the transition like HAProxy.
pub fn set_admin(
    ctx: &StatsContext,
    backend: &Proxy,
    server: &Server,
    st: &ServerState,
    new: Admin,
    log: Option<&LogSink>,
) {
    let old = st.admin();
    if old == new {
        return;
    }
    let was_down = st.health() == Health::Down;
    st.set_admin(new);
    let l = Logger { ctx, backend, server, st, log };
    match (old, new) {
        (_, Admin::Maint) if was_down => {
            l.emit(Level::Notice, format!("{} was DOWN and now enters maintenance.", l.who()))
        }
        (_, Admin::Maint) => l.went_down("is going DOWN for maintenance"),
        (Admin::Maint, _) if was_down => {
            l.emit(Level::Notice, format!("{} is DOWN (leaving forced maintenance).", l.who()))
        }
        (Admin::Maint, Admin::Ready) => {
            l.emit(Level::Notice, format!("{} is UP/READY (leaving forced maintenance).", l.who()))
        }
        (_, Admin::Drain) => l.online("enters drain state"),
        (Admin::Drain, _) => l.emit(Level::Notice, format!("{} is UP (leaving forced drain).", l.who())),
        _ => {}
    }
}

/// Forces the operational state (`set server … health up|down`, the page's
/// "Health: force UP/DOWN"): the check counter jumps to its end, like HAProxy.
pub fn force_health(
    ctx: &StatsContext,
    backend: &Proxy,
    server: &Server,
    st: &ServerState,
    up: bool,
    log: Option<&LogSink>,
) {
    if up {
        if let Some(c) = &server.check {
            st.check_health.store(c.rise.max(1) + c.fall.max(1) - 1, Ordering::Release);
        }
    } else {
        st.check_health.store(0, Ordering::Release);
    }
    let changed = st.set_health(if up { Health::Up } else { Health::Down });
    if !changed || st.admin() == Admin::Maint {
        return;
    }
    let l = Logger { ctx, backend, server, st, log };
    if up {
        l.online("is UP, changed from CLI");
    } else {
        l.went_down("is DOWN, changed from CLI");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::stats::csv::tests_support::ctx;
    use std::sync::{Arc, Mutex};

    #[test]
    fn admin_transitions_log_like_haproxy() {
        let ctx = ctx();
        let app = ctx.config.proxy("app").cloned().expect("app");
        let lines: Arc<Mutex<Vec<(Level, String)>>> = Arc::default();
        let l = Arc::clone(&lines);
        let sink: LogSink = Arc::new(move |lvl, s| l.lock().expect("lock").push((lvl, s)));
        let (srv1, srv2, bk) = (&app.servers[0], &app.servers[1], &app.servers[2]);
        let st = |s: &Server| ctx.server_state(&app, s);
        set_admin(&ctx, &app, srv1, &st(srv1), Admin::Maint, Some(&sink));
        set_admin(&ctx, &app, srv1, &st(srv1), Admin::Ready, Some(&sink));
        set_admin(&ctx, &app, srv1, &st(srv1), Admin::Drain, Some(&sink));
        set_admin(&ctx, &app, srv1, &st(srv1), Admin::Ready, Some(&sink));
        force_health(&ctx, &app, srv1, &st(srv1), false, Some(&sink));
        set_admin(&ctx, &app, srv1, &st(srv1), Admin::Maint, Some(&sink));
        set_admin(&ctx, &app, srv2, &st(srv2), Admin::Maint, Some(&sink));
        set_admin(&ctx, &app, bk, &st(bk), Admin::Maint, Some(&sink));
        let got = lines.lock().expect("lock").clone();
        let want: Vec<(Level, String)> = vec![
            (Level::Alert, "Server app/srv1 is going DOWN for maintenance. 1 active and 1 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.".into()),
            (Level::Notice, "Server app/srv1 is UP/READY (leaving forced maintenance).".into()),
            (Level::Notice, "Server app/srv1 enters drain state. 1 active and 1 backup servers online. 0 sessions requeued, 0 total in queue.".into()),
            (Level::Notice, "Server app/srv1 is UP (leaving forced drain).".into()),
            (Level::Alert, "Server app/srv1 is DOWN, changed from CLI. 1 active and 1 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.".into()),
            (Level::Notice, "Server app/srv1 was DOWN and now enters maintenance.".into()),
            (Level::Alert, "Server app/srv2 is going DOWN for maintenance. 0 active and 1 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue.".into()),
            (Level::Alert, "Backup Server app/bk is going DOWN for maintenance. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.".into()),
            (Level::Emerg, "backend app has no server available!".into()),
        ];
        assert_eq!(got, want);
    }
}
