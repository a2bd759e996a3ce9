//! Statistics: HAProxy's CSV (`show stat`, `;csv`), the Prometheus exporter,
//! and the HTML stats page with its admin form.

pub mod csv;
pub mod html;
pub mod prometheus;

use std::sync::Arc;
use std::time::Instant;

use crate::conf::haproxy::{Balance, Config, Proxy, Server};
use crate::proxy::state::{Counters, ServerState, StateRegistry};

pub use csv::{csv, csv_with, CsvOptions};
pub use html::{serve, serve_logged, StatsRequest};

pub use prometheus::prometheus;

/// Everything the stats renderers read.
#[derive(Clone)]
pub struct StatsContext {
    pub config: Arc<Config>,
    pub registry: Arc<StateRegistry>,
    pub started: Instant,
    pub pid: u32,
    /// Host name or `node` from the global section.
    pub node: String,
    /// Our version string, shown where HAProxy shows its own.
    pub version: &'static str,
}

impl StatsContext {
    /// The live state of a configured server (created on first use, like the
    /// engine does, so that stats never miss a server; a `disabled` server
    /// starts in maintenance).
    pub fn server_state(&self, backend: &Proxy, server: &Server) -> Arc<ServerState> {
        if let Some(st) = self.registry.find_server(&backend.name, &server.name) {
            return st;
        }
        let st = self.registry.server(&backend.name, &server.name, server.weight, server.check.is_some());
        if server.disabled {
            st.set_admin(crate::proxy::state::Admin::Maint);
        }
        st
    }

    pub fn frontend_counters(&self, proxy: &Proxy) -> Arc<Counters> {
        Arc::clone(&self.registry.proxy(&proxy.name).frontend)
    }

    pub fn backend_counters(&self, proxy: &Proxy) -> Arc<Counters> {
        Arc::clone(&self.registry.proxy(&proxy.name).backend)
    }

    /// HAProxy's internal proxy id (`iid`): HAProxy numbers its own internal
    /// proxy first, so configured ones start at 2.
    pub fn proxy_id(&self, proxy: &Proxy) -> usize {
        self.config.proxies.iter().position(|p| p.name == proxy.name).map(|i| i + 2).unwrap_or(0)
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// Usable servers and weights of a backend, as HAProxy's backend row shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendSummary {
    pub active: u32,
    pub backup: u32,
    /// Effective weight: active servers' if any is usable, else backups'.
    pub weight: u32,
    /// User weights of the servers counted in `weight`.
    pub uweight: u32,
    pub up: bool,
    /// Seconds since the last server state change.
    pub lastchg: u64,
}

pub fn backend_summary(ctx: &StatsContext, proxy: &Proxy) -> BackendSummary {
    let mut s = BackendSummary::default();
    let (mut act_w, mut bck_w) = (0u32, 0u32);
    let (mut act_uw, mut bck_uw) = (0u32, 0u32);
    let mut last: Option<Instant> = None;
    for srv in &proxy.servers {
        let st = ctx.server_state(proxy, srv);
        if let Ok(t) = st.last_change.lock() {
            last = Some(last.map_or(*t, |l| l.max(*t)));
        }
        if st.is_usable() {
            if srv.backup {
                s.backup += 1;
                bck_w += st.weight();
                bck_uw += st.weight();
            } else {
                s.active += 1;
                act_w += st.weight();
                act_uw += st.weight();
            }
        }
    }
    (s.weight, s.uweight) = if s.active > 0 { (act_w, act_uw) } else { (bck_w, bck_uw) };
    s.up = proxy.servers.is_empty() || s.weight > 0;
    s.lastchg = last.unwrap_or(ctx.started).elapsed().as_secs();
    s
}

/// The `algo` column / tooltip: HAProxy's balance keyword.
pub fn balance_name(b: &Balance) -> String {
    match b {
        Balance::RoundRobin => "roundrobin".into(),
        Balance::StaticRr => "static-rr".into(),
        Balance::LeastConn => "leastconn".into(),
        Balance::First => "first".into(),
        Balance::Source => "source".into(),
        Balance::Uri { .. } => "uri".into(),
        Balance::UrlParam(_) => "url_param".into(),
        Balance::Hdr(h) => format!("hdr({h})"),
        Balance::Random { .. } => "random".into(),
    }
}

/// `check_status` as HAProxy prints it: `* ` before the last result while
/// the next check is running.
pub fn check_status_text(st: &ServerState, short: &str) -> String {
    if st.check_running.load(std::sync::atomic::Ordering::Relaxed) {
        format!("* {short}")
    } else {
        short.to_string()
    }
}

/// The server's last check: (status, code, info, duration ms); empty status
/// until a check ran.
pub fn check_status(st: &ServerState) -> (String, Option<u16>, String, u64) {
    match st.last_check.lock() {
        Ok(r) => (r.status.clone(), r.code, r.description.clone(), r.duration_ms),
        Err(_) => (String::new(), None, String::new(), 0),
    }
}
