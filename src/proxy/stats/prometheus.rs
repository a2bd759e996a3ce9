//! Prometheus text exposition with the metric names, types, HELP texts and
//! labels of HAProxy 2.6's built-in exporter (`http-request use-service
//! prometheus-exporter`), for the values we track.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{backend_summary, check_status, StatsContext};
use crate::conf::haproxy::Mode;
use crate::proxy::state::{Admin, Counters, Health, ServerState};

/// (name, type, HELP) exactly as HAProxy 2.6's exporter prints them.
const FAMILIES: &[(&str, &str, &str)] = &[
    ("haproxy_process_nbthread", "gauge", "Number of started threads (global.nbthread)"),
    ("haproxy_process_nbproc", "gauge", "Number of started worker processes (historical, always 1)"),
    ("haproxy_process_relative_process_id", "gauge", "Relative worker process number (1)"),
    ("haproxy_process_uptime_seconds", "gauge", "How long ago this worker process was started (seconds)"),
    ("haproxy_process_start_time_seconds", "gauge", "Start time in seconds"),
    ("haproxy_process_max_connections", "gauge", "Hard limit on the number of per-process connections (configured or imposed by Ulimit-n)"),
    ("haproxy_process_current_connections", "gauge", "Current number of connections on this worker process"),
    ("haproxy_process_connections_total", "counter", "Total number of connections on this worker process since started"),
    ("haproxy_process_requests_total", "counter", "Total number of requests on this worker process since started"),
    ("haproxy_process_build_info", "gauge", "Build info"),
    ("haproxy_process_stopping", "gauge", "1 if the worker process is currently stopping, otherwise zero"),
    ("haproxy_process_listeners", "gauge", "Current number of active listeners on the current worker process"),
    ("haproxy_frontend_status", "gauge", "Current status of the service, per state label value."),
    ("haproxy_frontend_current_sessions", "gauge", "Number of current sessions on the frontend, backend or server"),
    ("haproxy_frontend_max_sessions", "gauge", "Highest value of current sessions encountered since process started"),
    ("haproxy_frontend_limit_sessions", "gauge", "Frontend/listener/server's maxconn, backend's fullconn"),
    ("haproxy_frontend_sessions_total", "counter", "Total number of sessions since process started"),
    ("haproxy_frontend_bytes_in_total", "counter", "Total number of request bytes since process started"),
    ("haproxy_frontend_bytes_out_total", "counter", "Total number of response bytes since process started"),
    ("haproxy_frontend_requests_denied_total", "counter", "Total number of denied requests since process started"),
    ("haproxy_frontend_responses_denied_total", "counter", "Total number of denied responses since process started"),
    ("haproxy_frontend_request_errors_total", "counter", "Total number of invalid requests since process started"),
    ("haproxy_frontend_http_requests_total", "counter", "Total number of HTTP requests processed by this object since the worker process started"),
    ("haproxy_frontend_http_responses_total", "counter", "Total number of HTTP responses with status 100-199 returned by this object since the worker process started"),
    ("haproxy_backend_status", "gauge", "Current status of the service, per state label value."),
    ("haproxy_backend_current_sessions", "gauge", "Number of current sessions on the frontend, backend or server"),
    ("haproxy_backend_max_sessions", "gauge", "Highest value of current sessions encountered since process started"),
    ("haproxy_backend_limit_sessions", "gauge", "Frontend/listener/server's maxconn, backend's fullconn"),
    ("haproxy_backend_sessions_total", "counter", "Total number of sessions since process started"),
    ("haproxy_backend_bytes_in_total", "counter", "Total number of request bytes since process started"),
    ("haproxy_backend_bytes_out_total", "counter", "Total number of response bytes since process started"),
    ("haproxy_backend_responses_denied_total", "counter", "Total number of denied responses since process started"),
    ("haproxy_backend_connection_errors_total", "counter", "Total number of failed connections to server since the worker process started"),
    ("haproxy_backend_response_errors_total", "counter", "Total number of invalid responses since the worker process started"),
    ("haproxy_backend_retry_warnings_total", "counter", "Total number of server connection retries since the worker process started"),
    ("haproxy_backend_redispatch_warnings_total", "counter", "Total number of server redispatches due to connection failures since the worker process started"),
    ("haproxy_backend_weight", "gauge", "Server's effective weight, or sum of active servers' effective weights for a backend"),
    ("haproxy_backend_active_servers", "gauge", "Total number of active UP servers with a non-zero weight"),
    ("haproxy_backend_backup_servers", "gauge", "Total number of backup UP servers with a non-zero weight"),
    ("haproxy_backend_check_up_down_total", "counter", "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started"),
    ("haproxy_backend_check_last_change_seconds", "gauge", "How long ago the last server state changed, in seconds"),
    ("haproxy_backend_downtime_seconds_total", "counter", "Total time spent in DOWN state, for server or backend"),
    ("haproxy_backend_http_requests_total", "counter", "Total number of HTTP requests processed by this object since the worker process started"),
    ("haproxy_backend_http_responses_total", "counter", "Total number of HTTP responses with status 100-199 returned by this object since the worker process started"),
    ("haproxy_server_status", "gauge", "Current status of the service, per state label value."),
    ("haproxy_server_current_sessions", "gauge", "Number of current sessions on the frontend, backend or server"),
    ("haproxy_server_max_sessions", "gauge", "Highest value of current sessions encountered since process started"),
    ("haproxy_server_limit_sessions", "gauge", "Frontend/listener/server's maxconn, backend's fullconn"),
    ("haproxy_server_sessions_total", "counter", "Total number of sessions since process started"),
    ("haproxy_server_bytes_in_total", "counter", "Total number of request bytes since process started"),
    ("haproxy_server_bytes_out_total", "counter", "Total number of response bytes since process started"),
    ("haproxy_server_responses_denied_total", "counter", "Total number of denied responses since process started"),
    ("haproxy_server_connection_errors_total", "counter", "Total number of failed connections to server since the worker process started"),
    ("haproxy_server_response_errors_total", "counter", "Total number of invalid responses since the worker process started"),
    ("haproxy_server_retry_warnings_total", "counter", "Total number of server connection retries since the worker process started"),
    ("haproxy_server_redispatch_warnings_total", "counter", "Total number of server redispatches due to connection failures since the worker process started"),
    ("haproxy_server_weight", "gauge", "Server's effective weight, or sum of active servers' effective weights for a backend"),
    ("haproxy_server_check_failures_total", "counter", "Total number of failed individual health checks per server/backend, since the worker process started"),
    ("haproxy_server_check_up_down_total", "counter", "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started"),
    ("haproxy_server_check_last_change_seconds", "gauge", "How long ago the last server state changed, in seconds"),
    ("haproxy_server_downtime_seconds_total", "counter", "Total time spent in DOWN state, for server or backend"),
    ("haproxy_server_check_status", "gauge", "Status of last health check, per state label value."),
    ("haproxy_server_check_code", "gauge", "layer5-7 code, if available of the last health check."),
    ("haproxy_server_check_duration_seconds", "gauge", "Total duration of the latest server health check, in seconds."),
    ("haproxy_server_http_responses_total", "counter", "Total number of HTTP responses with status 100-199 returned by this object since the worker process started"),
];

fn family(name: &str) -> (&'static str, &'static str) {
    FAMILIES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, h)| (*t, *h))
        .unwrap_or(("untyped", "Lanai metric"))
}

/// Samples grouped by family, so each family's HELP/TYPE comes once before
/// all of its samples (HAProxy's layout), whatever order objects are walked in.
#[derive(Default)]
struct Families {
    order: Vec<&'static str>,
    samples: BTreeMap<&'static str, Vec<String>>,
}

impl Families {
    fn add(&mut self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        let samples = self.samples.entry(name).or_insert_with(|| {
            self.order.push(name);
            Vec::new()
        });
        let mut line = String::from(name);
        if !labels.is_empty() {
            line.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{k}=\"{}\"", escape_label(v));
            }
            line.push('}');
        }
        if value.is_nan() {
            line.push_str(" NaN");
        } else {
            let _ = write!(line, " {value}");
        }
        samples.push(line);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.order {
            let (kind, help) = family(name);
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in self.samples.get(name).map(Vec::as_slice).unwrap_or_default() {
                out.push_str(s);
                out.push('\n');
            }
        }
        out
    }
}

/// Label values escape backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn n(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

const CODES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Frontend,
    Backend,
    Server,
}

/// `haproxy_<scope>_<suffix>` as a static name (all names are listed in FAMILIES).
fn name(scope: Scope, suffix: &str) -> &'static str {
    let prefix = match scope {
        Scope::Frontend => "haproxy_frontend_",
        Scope::Backend => "haproxy_backend_",
        Scope::Server => "haproxy_server_",
    };
    FAMILIES
        .iter()
        .map(|(n, _, _)| *n)
        .find(|n| n.strip_prefix(prefix) == Some(suffix))
        .unwrap_or("haproxy_unknown")
}

/// The traffic families common to frontends, backends and servers.
fn traffic(f: &mut Families, scope: Scope, labels: &[(&str, &str)], c: &Counters, http: bool) {
    f.add(name(scope, "current_sessions"), labels, c.current() as f64);
    f.add(name(scope, "max_sessions"), labels, n(&c.max_sessions));
    f.add(name(scope, "sessions_total"), labels, n(&c.total_sessions));
    f.add(name(scope, "bytes_in_total"), labels, n(&c.bytes_in));
    f.add(name(scope, "bytes_out_total"), labels, n(&c.bytes_out));
    f.add(name(scope, "responses_denied_total"), labels, n(&c.denied_resp));
    if scope == Scope::Frontend {
        f.add(name(scope, "requests_denied_total"), labels, n(&c.denied_req));
        f.add(name(scope, "request_errors_total"), labels, n(&c.errors_req));
    } else {
        f.add(name(scope, "connection_errors_total"), labels, n(&c.errors_conn));
        f.add(name(scope, "response_errors_total"), labels, n(&c.errors_resp));
        f.add(name(scope, "retry_warnings_total"), labels, n(&c.retries));
        f.add(name(scope, "redispatch_warnings_total"), labels, n(&c.redispatches));
    }
    if http {
        if scope != Scope::Server {
            f.add(name(scope, "http_requests_total"), labels, n(&c.http_requests));
        }
        for (i, code) in CODES.iter().enumerate() {
            let mut l = labels.to_vec();
            l.push(("code", code));
            f.add(name(scope, "http_responses_total"), &l, n(&c.http_responses[i]));
        }
    }
}

/// HAProxy's `check_status` label values.
const CHECK_STATES: [&str; 16] = [
    "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP", "L7OK",
    "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK",
];

fn server_families(f: &mut Families, labels: &[(&str, &str); 2], st: &ServerState, checked: bool) {
    let current = match (st.admin(), st.health()) {
        (Admin::Maint, _) => "MAINT",
        (_, Health::Down) => "DOWN",
        (Admin::Drain, _) => "DRAIN",
        _ => "UP",
    };
    for state in ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"] {
        let v = if state == current { 1.0 } else { 0.0 };
        f.add("haproxy_server_status", &[labels[0], labels[1], ("state", state)], v);
    }
    let eweight = if st.admin() == Admin::Drain { 0 } else { st.weight() };
    f.add("haproxy_server_weight", labels, eweight.into());
    let last_change = st.last_change.lock().map(|t| t.elapsed().as_secs()).unwrap_or(0) as f64;
    f.add("haproxy_server_check_last_change_seconds", labels, last_change);
    if checked {
        f.add("haproxy_server_check_failures_total", labels, n(&st.failed_checks));
        f.add("haproxy_server_check_up_down_total", labels, n(&st.down_transitions));
        f.add("haproxy_server_downtime_seconds_total", labels, st.downtime() as f64);
        let (status, code, _, duration_ms) = check_status(st);
        for state in CHECK_STATES {
            let v = if state == status { 1.0 } else { 0.0 };
            f.add("haproxy_server_check_status", &[labels[0], labels[1], ("state", state)], v);
        }
        f.add("haproxy_server_check_code", labels, code.map_or(0.0, f64::from));
        f.add("haproxy_server_check_duration_seconds", labels, duration_ms as f64 / 1000.0);
    }
}

/// The whole exposition.
pub fn prometheus(ctx: &StatsContext) -> String {
    let mut f = Families::default();
    let g = &ctx.config.global;
    let uptime = ctx.uptime_secs();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(uptime))
        .unwrap_or(0);
    let nbthread =
        g.nbthread.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    f.add("haproxy_process_nbthread", &[], nbthread as f64);
    f.add("haproxy_process_nbproc", &[], 1.0);
    f.add("haproxy_process_relative_process_id", &[], 1.0);
    f.add("haproxy_process_uptime_seconds", &[], uptime as f64);
    f.add("haproxy_process_max_connections", &[], g.maxconn as f64);
    let (mut cur, mut total, mut reqs, mut listeners) = (0u64, 0u64, 0u64, 0usize);
    for p in ctx.config.frontends() {
        let c = ctx.frontend_counters(p);
        cur += c.current();
        total += c.total_sessions.load(Ordering::Relaxed);
        reqs += c.http_requests.load(Ordering::Relaxed);
        listeners += p.binds.len();
    }
    f.add("haproxy_process_current_connections", &[], cur as f64);
    f.add("haproxy_process_connections_total", &[], total as f64);
    f.add("haproxy_process_requests_total", &[], reqs as f64);
    f.add("haproxy_process_stopping", &[], 0.0);
    f.add("haproxy_process_listeners", &[], listeners as f64);
    f.add("haproxy_process_build_info", &[("version", ctx.version)], 1.0);
    f.add("haproxy_process_start_time_seconds", &[], started_unix as f64);

    for p in &ctx.config.proxies {
        let http = p.mode == Mode::Http;
        let px = [("proxy", p.name.as_str())];
        if p.cap.frontend {
            let c = ctx.frontend_counters(p);
            for (state, v) in [("DOWN", 0.0), ("UP", 1.0)] {
                f.add("haproxy_frontend_status", &[px[0], ("state", state)], v);
            }
            f.add("haproxy_frontend_limit_sessions", &px, p.maxconn.unwrap_or(g.maxconn) as f64);
            traffic(&mut f, Scope::Frontend, &px, &c, http);
        }
        if p.cap.backend {
            let c = ctx.backend_counters(p);
            let sum = backend_summary(ctx, p);
            for state in ["DOWN", "UP"] {
                let v = if (state == "UP") == sum.up { 1.0 } else { 0.0 };
                f.add("haproxy_backend_status", &[px[0], ("state", state)], v);
            }
            f.add("haproxy_backend_limit_sessions", &px, p.fullconn.unwrap_or(g.maxconn / 10) as f64);
            f.add("haproxy_backend_active_servers", &px, sum.active.into());
            f.add("haproxy_backend_backup_servers", &px, sum.backup.into());
            f.add("haproxy_backend_weight", &px, sum.weight.into());
            f.add("haproxy_backend_check_last_change_seconds", &px, sum.lastchg as f64);
            let downs = ctx.registry.proxy(&p.name).down_transitions.load(Ordering::Relaxed);
            f.add("haproxy_backend_check_up_down_total", &px, downs as f64);
            traffic(&mut f, Scope::Backend, &px, &c, http);
            for srv in &p.servers {
                let st = ctx.server_state(p, srv);
                let labels = [("proxy", p.name.as_str()), ("server", srv.name.as_str())];
                server_families(&mut f, &labels, &st, srv.check.is_some());
                f.add("haproxy_server_limit_sessions", &labels, srv.maxconn.map_or(f64::NAN, f64::from));
                traffic(&mut f, Scope::Server, &labels, &st.counters, http);
            }
        }
    }
    f.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::stats::csv::tests_support::ctx;
    use std::collections::HashSet;

    /// A small checker of the text exposition format: HELP/TYPE before a
    /// family's samples, `name{labels} value` lines, no duplicate series.
    fn check_exposition(text: &str) -> Result<usize, String> {
        let name_re = regex::Regex::new(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").map_err(|e| e.to_string())?;
        let sample_re = regex::Regex::new(
            r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$"#,
        )
        .map_err(|e| e.to_string())?;
        let mut typed = HashSet::new();
        let mut helped = HashSet::new();
        let mut finished: HashSet<String> = HashSet::new();
        let mut current = String::new();
        let mut series = HashSet::new();
        let mut count = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or_default();
                if !name_re.is_match(name) || !helped.insert(name.to_string()) {
                    return Err(format!("bad or repeated HELP: {line}"));
                }
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap_or_default();
                let kind = parts.next().unwrap_or_default();
                if !["counter", "gauge", "untyped", "histogram", "summary"].contains(&kind) {
                    return Err(format!("bad TYPE: {line}"));
                }
                if !typed.insert(name.to_string()) {
                    return Err(format!("repeated TYPE: {line}"));
                }
                if !current.is_empty() {
                    finished.insert(std::mem::take(&mut current));
                }
                current = name.to_string();
            } else if line.starts_with('#') || line.is_empty() {
                continue;
            } else {
                let caps = sample_re.captures(line).ok_or_else(|| format!("bad sample: {line}"))?;
                let name = caps.get(1).map(|m| m.as_str()).unwrap_or_default();
                if name != current
                    || !typed.contains(name)
                    || !helped.contains(name)
                    || finished.contains(name)
                {
                    return Err(format!("sample outside its family: {line}"));
                }
                let series_key = line.rsplit_once(' ').map(|(k, _)| k.to_string()).unwrap_or_default();
                if !series.insert(series_key) {
                    return Err(format!("duplicate series: {line}"));
                }
                count += 1;
            }
        }
        Ok(count)
    }

    #[test]
    fn exposition_is_valid_and_has_haproxy_names() {
        let ctx = ctx();
        let app = ctx.config.proxy("app").cloned().expect("app");
        let s = ctx.server_state(&app, &app.servers[0]);
        s.set_health(Health::Down);
        s.failed_checks.store(2, Ordering::Relaxed);
        ctx.frontend_counters(ctx.config.proxy("www").expect("www")).count_response(200);
        let text = prometheus(&ctx);
        let n = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(n > 50);
        for want in [
            "haproxy_frontend_current_sessions{proxy=\"www\"} 0",
            "haproxy_frontend_http_responses_total{proxy=\"www\",code=\"2xx\"} 1",
            "haproxy_backend_status{proxy=\"app\",state=\"UP\"} 1",
            "haproxy_server_status{proxy=\"app\",server=\"srv1\",state=\"DOWN\"} 1",
            "haproxy_server_status{proxy=\"app\",server=\"srv1\",state=\"UP\"} 0",
            "haproxy_server_weight{proxy=\"app\",server=\"srv2\"} 1",
            "haproxy_server_check_failures_total{proxy=\"app\",server=\"srv1\"} 2",
            "haproxy_process_build_info{version=\"0.1.0\"} 1",
            "haproxy_frontend_status{proxy=\"www\",state=\"UP\"} 1",
            "haproxy_server_check_status{proxy=\"app\",server=\"srv1\",state=\"L4OK\"} 0",
            "haproxy_server_limit_sessions{proxy=\"app\",server=\"srv2\"} NaN",
        ] {
            assert!(text.lines().any(|l| l == want), "missing {want}");
        }
    }

    #[test]
    fn checker_rejects_bad_exposition() {
        assert!(check_exposition("x 1\n").is_err());
        assert!(check_exposition("# HELP x h\n# TYPE x gauge\nx 1\nx 2\n").is_err());
        assert!(check_exposition(
            "# HELP x h\n# TYPE x gauge\nx{a=\"1\"} 1\n# HELP y h\n# TYPE y gauge\ny 1\nx 2\n"
        )
        .is_err());
        assert_eq!(check_exposition("# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"\"} 1\n"), Ok(1));
    }

    #[test]
    fn every_family_has_haproxy_help() {
        let text = prometheus(&ctx());
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap_or_default();
            assert!(FAMILIES.iter().any(|(n, _, _)| *n == name), "{name} is not a HAProxy family");
        }
        assert!(!text.contains("haproxy_unknown"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
