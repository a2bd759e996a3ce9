//! Live state shared by the data plane, health checks, stats and the runtime API.
//! It outlives a configuration: on reload, state is looked up again by
//! backend/server (or frontend) name, so health and counters carry over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The time of day in whole seconds, from the kernel's clock as of its last
/// tick: `lastsess` counts seconds, and a session start should not pay for a
/// precise clock read.
fn coarse_unix_secs() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_REALTIME_COARSE).map_or(0, |t| u64::try_from(t.tv_sec()).unwrap_or(0))
}

/// Operational (health) state of a server as the checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Not checked: considered up.
    NoCheck = 0,
    Up = 1,
    Down = 2,
}

/// Administrative state set by the operator (runtime API, stats page, console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Admin {
    Ready = 0,
    /// Takes no new traffic except persistent sessions; existing ones finish.
    Drain = 1,
    /// Maintenance: takes nothing, checks stop counting.
    Maint = 2,
}

/// Traffic counters, shared by frontends, backends and servers.
#[derive(Debug, Default)]
pub struct Counters {
    pub cur_sessions: AtomicU64,
    pub max_sessions: AtomicU64,
    pub total_sessions: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub denied_req: AtomicU64,
    pub denied_resp: AtomicU64,
    pub errors_req: AtomicU64,
    pub errors_conn: AtomicU64,
    pub errors_resp: AtomicU64,
    pub retries: AtomicU64,
    pub redispatches: AtomicU64,
    pub http_requests: AtomicU64,
    /// Responses by class: index 0 = 1xx … 4 = 5xx, 5 = other.
    pub http_responses: [AtomicU64; 6],
    /// When the last session started, in seconds since the Unix epoch (0: never).
    last_session: AtomicU64,
}

impl Counters {
    /// Counts a new session; returns a guard that decrements `cur_sessions` on drop.
    pub fn open_session(self: &Arc<Self>) -> SessionGuard {
        let cur = self.cur_sessions.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_sessions.fetch_max(cur, Ordering::Relaxed);
        self.total_sessions.fetch_add(1, Ordering::Relaxed);
        self.last_session.store(coarse_unix_secs(), Ordering::Relaxed);
        SessionGuard(Arc::clone(self))
    }

    /// Seconds since the last session started (HAProxy's `lastsess`); none
    /// before the first.
    pub fn last_session_age(&self) -> Option<u64> {
        match self.last_session.load(Ordering::Relaxed) {
            0 => None,
            at => Some(coarse_unix_secs().saturating_sub(at)),
        }
    }

    pub fn count_response(&self, status: u16) {
        let class = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        self.http_responses[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn current(&self) -> u64 {
        self.cur_sessions.load(Ordering::Relaxed)
    }
}

/// Decrements the current-session count of its counters when dropped.
#[derive(Debug)]
pub struct SessionGuard(Arc<Counters>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.cur_sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The last health-check result, for `show stat` (check_status, check_code, …).
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// HAProxy's short status: `L4OK`, `L4CON`, `L4TOUT`, `L7OK`, `L7STS`, `L7RSP`, `L6OK`, …
    pub status: String,
    /// HTTP status of the check response, if any.
    pub code: Option<u16>,
    /// Human description (the `info` part of HAProxy's log line).
    pub description: String,
    pub duration_ms: u64,
}

/// Everything live about one server.
#[derive(Debug)]
pub struct ServerState {
    pub backend: String,
    pub name: String,
    health: AtomicU8,
    admin: AtomicU8,
    /// The weight set at run time (`set weight`), starting from the configured one.
    weight: AtomicU32,
    /// The weight the configuration gave when this state was last (re)loaded.
    configured_weight: AtomicU32,
    /// Consecutive successful (positive) or failed (negative) checks, for rise/fall.
    pub check_streak: Mutex<i32>,
    pub last_check: Mutex<CheckReport>,
    pub last_change: Mutex<Instant>,
    pub counters: Arc<Counters>,
    /// Times the server went down (`chkdown`).
    pub down_transitions: AtomicU64,
    pub failed_checks: AtomicU64,
    /// HAProxy's check health counter (0 ..= rise+fall-1; UP when >= rise), or
    /// `UNCHECKED` before the first check. Kept here so it survives a reload.
    pub check_health: AtomicU32,
    /// When the server last went DOWN (for `downtime`), if it is down now.
    pub down_since: Mutex<Option<Instant>>,
    /// Total time spent DOWN before `down_since` (stats `downtime`).
    pub downtime_secs: AtomicU64,
    /// A check is running right now (stats prefix `* ` to check_status).
    pub check_running: AtomicBool,
}

/// `ServerState::check_health` before any check ran.
pub const UNCHECKED: u32 = u32::MAX;

impl ServerState {
    pub fn new(backend: &str, name: &str, weight: u32, checked: bool) -> Self {
        ServerState {
            backend: backend.to_string(),
            name: name.to_string(),
            // A checked server starts UP (HAProxy starts it in "going down" and the
            // first check settles it); an unchecked one is always usable.
            health: AtomicU8::new(if checked { Health::Up as u8 } else { Health::NoCheck as u8 }),
            admin: AtomicU8::new(Admin::Ready as u8),
            weight: AtomicU32::new(weight),
            configured_weight: AtomicU32::new(weight),
            check_streak: Mutex::new(0),
            last_check: Mutex::new(CheckReport::default()),
            last_change: Mutex::new(Instant::now()),
            counters: Arc::new(Counters::default()),
            down_transitions: AtomicU64::new(0),
            failed_checks: AtomicU64::new(0),
            check_health: AtomicU32::new(UNCHECKED),
            down_since: Mutex::new(None),
            downtime_secs: AtomicU64::new(0),
            check_running: AtomicBool::new(false),
        }
    }

    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Acquire) {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::NoCheck,
        }
    }

    /// Sets the health; returns true when it changed.
    pub fn set_health(&self, health: Health) -> bool {
        let old = self.health.swap(health as u8, Ordering::AcqRel);
        if old != health as u8 {
            if health == Health::Down {
                self.down_transitions.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut since) = self.down_since.lock() {
                match (health, since.take()) {
                    (Health::Down, prev) => *since = Some(prev.unwrap_or_else(Instant::now)),
                    (_, Some(t)) => {
                        self.downtime_secs.fetch_add(t.elapsed().as_secs(), Ordering::Relaxed);
                    }
                    (_, None) => {}
                }
            }
            if let Ok(mut t) = self.last_change.lock() {
                *t = Instant::now();
            }
            true
        } else {
            false
        }
    }

    pub fn admin(&self) -> Admin {
        match self.admin.load(Ordering::Acquire) {
            1 => Admin::Drain,
            2 => Admin::Maint,
            _ => Admin::Ready,
        }
    }

    pub fn set_admin(&self, admin: Admin) {
        let old = self.admin.swap(admin as u8, Ordering::AcqRel);
        if old != admin as u8 {
            if let Ok(mut t) = self.last_change.lock() {
                *t = Instant::now();
            }
        }
    }

    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Acquire)
    }

    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Ordering::Release);
    }

    /// HAProxy's check health counter for a server checked with `rise`/`fall`:
    /// before the first check a server is UP with health = rise (one failure
    /// takes it down), unless it is already known DOWN.
    pub fn check_health(&self, rise: u32, fall: u32) -> u32 {
        let max = (rise + fall).saturating_sub(1).max(1);
        match self.check_health.load(Ordering::Acquire) {
            UNCHECKED if self.health() == Health::Down => 0,
            UNCHECKED => rise.min(max),
            h => h.min(max),
        }
    }

    /// Seconds spent DOWN so far (stats `downtime`).
    pub fn downtime(&self) -> u64 {
        let past = self.downtime_secs.load(Ordering::Relaxed);
        let now = self.down_since.lock().ok().and_then(|s| s.map(|t| t.elapsed().as_secs())).unwrap_or(0);
        past + now
    }

    /// A reload brings `weight` from the configuration. A runtime weight
    /// survives while the configured one is unchanged; a new configured weight
    /// wins, since the operator just wrote it.
    pub fn reconfigure_weight(&self, weight: u32) {
        if self.configured_weight.swap(weight, Ordering::AcqRel) != weight {
            self.set_weight(weight);
        }
    }

    /// May take new, non-persistent traffic: healthy, ready, weight > 0.
    pub fn is_usable(&self) -> bool {
        self.health() != Health::Down && self.admin() == Admin::Ready && self.weight() > 0
    }

    /// May take traffic for a persistent session (cookie): draining servers still do.
    pub fn accepts_persistent(&self) -> bool {
        self.health() != Health::Down && self.admin() != Admin::Maint
    }

    /// HAProxy's `status` column: UP, DOWN, MAINT, DRAIN, no check.
    pub fn status_text(&self) -> &'static str {
        match (self.admin(), self.health()) {
            (Admin::Maint, _) => "MAINT",
            (_, Health::Down) => "DOWN",
            (Admin::Drain, _) => "DRAIN",
            (_, Health::NoCheck) => "no check",
            (_, Health::Up) => "UP",
        }
    }
}

/// Counters for one frontend or backend, and its servers' states.
#[derive(Debug, Default)]
pub struct ProxyState {
    pub frontend: Arc<Counters>,
    pub backend: Arc<Counters>,
    /// Times the backend lost its last usable server (`chkdown` of its row).
    pub down_transitions: AtomicU64,
}

/// Every live state, keyed by name. Lives for the whole process; a reload looks
/// entries up again (creating missing ones) so that state carries over.
#[derive(Debug, Default)]
pub struct StateRegistry {
    servers: Mutex<HashMap<(String, String), Arc<ServerState>>>,
    proxies: Mutex<HashMap<String, Arc<ProxyState>>>,
    pub started: Option<Instant>,
}

impl StateRegistry {
    pub fn new() -> Self {
        StateRegistry { started: Some(Instant::now()), ..Default::default() }
    }

    /// The state of `backend/server`, created with the given configured weight if new.
    pub fn server(&self, backend: &str, name: &str, weight: u32, checked: bool) -> Arc<ServerState> {
        let mut map = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((backend.to_string(), name.to_string()))
            .or_insert_with(|| Arc::new(ServerState::new(backend, name, weight, checked)))
            .clone()
    }

    /// Looks up an existing server state (runtime API).
    pub fn find_server(&self, backend: &str, name: &str) -> Option<Arc<ServerState>> {
        let map = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(backend.to_string(), name.to_string())).cloned()
    }

    pub fn proxy(&self, name: &str) -> Arc<ProxyState> {
        let mut map = self.proxies.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    /// Drops states whose server is no longer in the configuration.
    pub fn retain_servers(&self, keep: &dyn Fn(&str, &str) -> bool) {
        let mut map = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(b, s), _| keep(b, s));
    }

    pub fn retain_proxies(&self, keep: &dyn Fn(&str) -> bool) {
        let mut map = self.proxies.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|p, _| keep(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_lookup_by_name() {
        let reg = StateRegistry::new();
        let s = reg.server("be", "s1", 10, true);
        s.set_health(Health::Down);
        let again = reg.server("be", "s1", 10, true);
        assert_eq!(again.health(), Health::Down);
        assert_eq!(again.down_transitions.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn usable_depends_on_admin_health_and_weight() {
        let s = ServerState::new("be", "s", 1, true);
        assert!(s.is_usable());
        s.set_admin(Admin::Drain);
        assert!(!s.is_usable());
        assert!(s.accepts_persistent());
        s.set_admin(Admin::Ready);
        s.set_weight(0);
        assert!(!s.is_usable());
        s.set_weight(1);
        s.set_health(Health::Down);
        assert!(!s.is_usable());
        assert_eq!(s.status_text(), "DOWN");
    }

    #[test]
    fn runtime_weight_survives_reload_unless_config_changes_it() {
        let s = ServerState::new("be", "s", 10, false);
        s.set_weight(0);
        s.reconfigure_weight(10);
        assert_eq!(s.weight(), 0);
        s.reconfigure_weight(20);
        assert_eq!(s.weight(), 20);
    }

    #[test]
    fn session_guard_counts() {
        let c = Arc::new(Counters::default());
        {
            let _g = c.open_session();
            let _h = c.open_session();
            assert_eq!(c.current(), 2);
        }
        assert_eq!(c.current(), 0);
        assert_eq!(c.max_sessions.load(Ordering::Relaxed), 2);
        assert_eq!(c.total_sessions.load(Ordering::Relaxed), 2);
    }
}
