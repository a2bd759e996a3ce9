//! Active health checks, HAProxy 2.6 semantics: one task per checked server,
//! `rise`/`fall` counted with HAProxy's health counter, `inter`/`fastinter`/
//! `downinter` pacing, and HAProxy's exact log lines on every transition.
//!
//! The counter lives in `ServerState`, so a reload (drop the old
//! `HealthTasks`, spawn new ones on the same states) carries health over.

pub mod admin;
pub mod probe;
pub mod status;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::task::JoinHandle;

use crate::conf::haproxy::{Level, Proxy, Server, ServerCheck};
use crate::proxy::state::{Admin, CheckReport, Health, ProxyState, ServerState};
use probe::{ProbeSpec, Timeouts};
use status::{reason_text, CheckStatus, Outcome};

/// Where health log lines go (the engine forwards them to the proxy's `log` targets).
pub type LogSink = Arc<dyn Fn(Level, String) + Send + Sync>;

/// A server of the backend, with its live state. Pass every server of the
/// backend (checked or not): the others count in "N active and M backup
/// servers left".
#[derive(Clone)]
pub struct CheckTarget {
    pub server: Server,
    pub state: Arc<ServerState>,
    /// Client TLS setup for `check-ssl` (or `ssl` servers); `None` = plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The running check tasks of one backend; dropping it stops them.
#[derive(Debug, Default)]
pub struct HealthTasks {
    tasks: Vec<JoinHandle<()>>,
}

impl HealthTasks {
    /// Number of servers being checked.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Drop for HealthTasks {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What every check task of a backend shares.
struct BackendCtx {
    name: String,
    log_health_checks: bool,
    /// (backup, state) of every server of the backend.
    members: Vec<(bool, Arc<ServerState>)>,
    log: LogSink,
    /// Where "the backend went down" is counted, when the engine gives it.
    proxy_state: Option<Arc<ProxyState>>,
}

impl BackendCtx {
    /// Usable (active, backup) servers, as HAProxy's srv_act / srv_bck.
    fn usable_counts(&self) -> (usize, usize) {
        let mut counts = (0, 0);
        for (backup, s) in &self.members {
            if s.is_usable() {
                if *backup {
                    counts.1 += 1;
                } else {
                    counts.0 += 1;
                }
            }
        }
        counts
    }
}

/// Starts one check task per server that has `check`. Must be called inside a
/// tokio runtime.
pub fn spawn_checks(backend: &Proxy, servers: Vec<CheckTarget>, log: LogSink) -> HealthTasks {
    spawn_checks_tracked(backend, servers, log, None)
}

/// `spawn_checks`, also counting in `proxy_state.down_transitions` each time
/// the backend loses its last server (the backend row's `chkdown`).
pub fn spawn_checks_tracked(
    backend: &Proxy,
    servers: Vec<CheckTarget>,
    log: LogSink,
    proxy_state: Option<Arc<ProxyState>>,
) -> HealthTasks {
    let ctx = Arc::new(BackendCtx {
        name: backend.name.clone(),
        log_health_checks: backend.options.log_health_checks,
        members: servers.iter().map(|t| (t.server.backup, Arc::clone(&t.state))).collect(),
        log,
        proxy_state,
    });
    // A reload may have removed `check` from a server: it is no longer
    // judged by checks, so a DOWN left over from before must not stick.
    for t in servers.iter().filter(|t| t.server.check.is_none()) {
        t.state.set_health(Health::NoCheck);
        t.state.check_health.store(crate::proxy::state::UNCHECKED, Ordering::Release);
    }
    let checked: Vec<CheckTarget> = servers.into_iter().filter(|t| t.server.check.is_some()).collect();
    let n = checked.len().max(1) as u32;
    let mut tasks = Vec::with_capacity(checked.len());
    for (i, target) in checked.into_iter().enumerate() {
        let Some(check) = target.server.check.clone() else { continue };
        let spec = probe_spec(backend, &target, &check);
        // Spread first checks over one interval like HAProxy does, with a
        // little jitter so that several processes do not synchronise.
        let slot = check.inter * i as u32 / n;
        let jitter_ms = (check.inter.as_millis() as u64 / u64::from(n) / 4).max(1);
        let first = slot + Duration::from_millis(rand::random_range(0..jitter_ms));
        let ctx = Arc::clone(&ctx);
        tasks.push(tokio::spawn(async move {
            run_server(ctx, target, check, spec, first).await;
        }));
    }
    HealthTasks { tasks }
}

fn probe_spec(backend: &Proxy, target: &CheckTarget, check: &ServerCheck) -> ProbeSpec {
    let mut addr = target.server.addr;
    if let Some(ip) = check.addr {
        addr = SocketAddr::new(ip, addr.port());
    }
    if let Some(port) = check.port {
        addr.set_port(port);
    }
    let tls = match (&target.tls, check.ssl || target.server.tls.is_some()) {
        (Some(cfg), true) => Some((Arc::clone(cfg), server_name(&target.server))),
        _ => None,
    };
    ProbeSpec {
        addr,
        kind: backend.health.clone(),
        tls,
        timeouts: Timeouts::haproxy(check.inter, backend.timeouts.connect, backend.timeouts.check),
    }
}

/// SNI for the check: the configured literal, else the host name, else the IP.
fn server_name(server: &Server) -> ServerName<'static> {
    let literal = server.tls.as_ref().and_then(|t| match &t.sni {
        Some(crate::conf::haproxy::ServerSni::Literal(s)) => Some(s.clone()),
        _ => None,
    });
    literal
        .or_else(|| server.host.clone())
        .and_then(|h| ServerName::try_from(h).ok())
        .unwrap_or_else(|| ServerName::IpAddress(server.addr.ip().into()))
}

async fn run_server(
    ctx: Arc<BackendCtx>,
    target: CheckTarget,
    check: ServerCheck,
    spec: ProbeSpec,
    first: Duration,
) {
    tokio::time::sleep(first).await;
    loop {
        // A server in maintenance is not checked (HAProxy suspends its checks).
        if target.state.admin() != Admin::Maint {
            let started = std::time::Instant::now();
            let running = Running::start(&target.state);
            let outcome = probe::run(&spec).await;
            drop(running);
            let duration_ms = started.elapsed().as_millis() as u64;
            apply(&ctx, &target, &check, &outcome, duration_ms);
        }
        tokio::time::sleep(next_interval(&target.state, &check)).await;
    }
}

/// Marks a check as running for stats (`* L4OK`); the mark goes away even
/// when the task is aborted mid-check (reload).
struct Running<'a>(&'a ServerState);

impl<'a> Running<'a> {
    fn start(state: &'a ServerState) -> Self {
        state.check_running.store(true, Ordering::Relaxed);
        Running(state)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.check_running.store(false, Ordering::Relaxed);
    }
}

/// `inter` when fully UP, `downinter` when fully DOWN, `fastinter` in between.
fn next_interval(state: &ServerState, check: &ServerCheck) -> Duration {
    let max = (check.rise + check.fall).saturating_sub(1).max(1);
    match state.check_health(check.rise, check.fall) {
        0 => check.downinter,
        h if h >= max => check.inter,
        _ => check.fastinter,
    }
}

/// Records one result: HAProxy's counter arithmetic, state change, logs.
fn apply(ctx: &BackendCtx, target: &CheckTarget, check: &ServerCheck, outcome: &Outcome, duration_ms: u64) {
    let state = &target.state;
    let (rise, fall) = (check.rise.max(1), check.fall.max(1));
    let max = rise + fall - 1;
    let mut health = state.check_health(rise, fall);
    let mut report = false;
    if outcome.status.is_success() {
        if health < max {
            health += 1;
            report = true;
            // Reaching `rise` means fully up at once (HAProxy sets health to max).
            if health >= rise {
                health = max;
            }
        }
        if let Ok(mut streak) = state.check_streak.lock() {
            *streak = (*streak).max(0).saturating_add(1);
        }
    } else {
        if health > 0 {
            state.failed_checks.fetch_add(1, Ordering::Relaxed);
            health -= 1;
            report = true;
            // Falling below `rise` means down at once.
            if health < rise {
                health = 0;
            }
        }
        if let Ok(mut streak) = state.check_streak.lock() {
            *streak = (*streak).min(0).saturating_sub(1);
        }
    }
    state.check_health.store(health, Ordering::Release);
    tracing::debug!(
        backend = %ctx.name,
        server = %state.name,
        status = outcome.status.short(),
        code = ?outcome.code,
        info = %outcome.info,
        duration_ms,
        health,
        "health check"
    );
    if let Ok(mut last) = state.last_check.lock() {
        *last = CheckReport {
            status: outcome.status.short().to_string(),
            code: outcome.code,
            description: outcome.info.clone(),
            duration_ms,
        };
    }

    let reason = reason_text(outcome.status, outcome.code, &outcome.info, duration_ms);
    let who = format!("{}/{}", ctx.name, state.name);
    if report && ctx.log_health_checks {
        let (cur, of, word) = if health >= rise {
            (health - rise + 1, fall, if state.weight() == 0 { "DRAIN" } else { "UP" })
        } else {
            (health, rise, "DOWN")
        };
        let verb = if outcome.status.is_success() { "succeeded" } else { "failed" };
        (ctx.log)(
            Level::Notice,
            format!("Health check for server {who} {verb}{reason}, status: {cur}/{of} {word}."),
        );
    }

    let new_health = if health >= rise { Health::Up } else { Health::Down };
    let was = state.health();
    // A server without checks never reaches here; NoCheck only appears when a
    // reload added `check` to a server: treat it as UP.
    let was_down = was == Health::Down;
    if !state.set_health(new_health) || was_down == (new_health == Health::Down) {
        return;
    }
    // With log-health-checks the reason was just logged; HAProxy omits it here.
    let why = if ctx.log_health_checks { String::new() } else { reason };
    let kind = if target.server.backup { "Backup Server" } else { "Server" };
    let (act, bck) = ctx.usable_counts();
    let on_backup = if act == 0 && bck > 0 { " Running on backup." } else { "" };
    let sessions = state.counters.current();
    if new_health == Health::Down {
        (ctx.log)(
            Level::Alert,
            format!(
                "{kind} {who} is DOWN{why}. {act} active and {bck} backup servers left.{on_backup} \
                 {sessions} sessions active, 0 requeued, 0 remaining in queue."
            ),
        );
        if act == 0 && bck == 0 {
            if let Some(p) = &ctx.proxy_state {
                p.down_transitions.fetch_add(1, Ordering::Relaxed);
            }
            (ctx.log)(Level::Emerg, format!("backend {} has no server available!", ctx.name));
        }
    } else {
        (ctx.log)(
            Level::Notice,
            format!(
                "{kind} {who} is UP{why}. {act} active and {bck} backup servers online.{on_backup} \
                 0 sessions requeued, 0 total in queue."
            ),
        );
    }
}

/// HAProxy's `show stat` status for a checked server: `UP`, `UP 1/3` (going
/// down), `DOWN 1/2` (going up), `DOWN`, plus the admin states.
pub fn status_with_health(state: &ServerState, check: Option<&ServerCheck>) -> String {
    let base = state.status_text();
    let Some(check) = check else { return base.to_string() };
    if matches!(base, "MAINT" | "no check") {
        return base.to_string();
    }
    let (rise, fall) = (check.rise.max(1), check.fall.max(1));
    let max = rise + fall - 1;
    let h = state.check_health(rise, fall);
    match state.health() {
        Health::Down if h > 0 && h < rise => format!("{base} {h}/{rise}"),
        Health::Up if h >= rise && h < max => format!("{base} {}/{fall}", h - rise + 1),
        _ => base.to_string(),
    }
}

/// The description HAProxy shows for a status short name (`check_desc`).
pub fn describe_status(short: &str) -> &'static str {
    CheckStatus::from_short(short).map(CheckStatus::description).unwrap_or("")
}
