//! Prometheus text exposition, named like HAProxy's built-in exporter
//! (`http-request use-service prometheus-exporter`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{backend_summary, StatsContext};
use crate::conf::haproxy::Mode;
use crate::proxy::state::{Admin, Counters, Health};

/// Samples grouped by metric family, so each family's HELP/TYPE comes once,
/// before all of its samples, whatever order the proxies are walked in.
#[derive(Default)]
struct Families {
    order: Vec<&'static str>,
    families: BTreeMap<&'static str, Family>,
}

struct Family {
    help: &'static str,
    kind: &'static str,
    samples: Vec<String>,
}

impl Families {
    fn add(
        &mut self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let fam = self.families.entry(name).or_insert_with(|| {
            self.order.push(name);
            Family { help, kind, samples: Vec::new() }
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
        let _ = write!(line, " {value}");
        fam.samples.push(line);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.order {
            if let Some(f) = self.families.get(name) {
                let _ = writeln!(out, "# HELP {name} {}", f.help);
                let _ = writeln!(out, "# TYPE {name} {}", f.kind);
                for s in &f.samples {
                    out.push_str(s);
                    out.push('\n');
                }
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

/// Common per-proxy/server traffic families; `prefix` is `frontend`, `backend` or `server`.
fn traffic(f: &mut Families, scope: Scope, labels: &[(&str, &str)], c: &Counters, http: bool) {
    macro_rules! fam {
        ($suffix:literal, $kind:literal, $help:literal, $v:expr) => {{
            let name: &'static str = match scope {
                Scope::Frontend => concat!("haproxy_frontend_", $suffix),
                Scope::Backend => concat!("haproxy_backend_", $suffix),
                Scope::Server => concat!("haproxy_server_", $suffix),
            };
            f.add(name, $kind, $help, labels, $v);
        }};
    }
    fam!("current_sessions", "gauge", "Number of current sessions.", c.current() as f64);
    fam!("max_sessions", "gauge", "Maximum observed number of sessions.", n(&c.max_sessions));
    fam!("sessions_total", "counter", "Total number of sessions.", n(&c.total_sessions));
    fam!("bytes_in_total", "counter", "Current total of incoming bytes.", n(&c.bytes_in));
    fam!("bytes_out_total", "counter", "Current total of outgoing bytes.", n(&c.bytes_out));
    fam!("responses_denied_total", "counter", "Total number of denied responses.", n(&c.denied_resp));
    match scope {
        Scope::Frontend => {
            fam!("requests_denied_total", "counter", "Total number of denied requests.", n(&c.denied_req));
            fam!("request_errors_total", "counter", "Total number of request errors.", n(&c.errors_req));
        }
        Scope::Backend | Scope::Server => {
            fam!(
                "connection_errors_total",
                "counter",
                "Total number of connection errors.",
                n(&c.errors_conn)
            );
            fam!("response_errors_total", "counter", "Total number of response errors.", n(&c.errors_resp));
            fam!("retry_warnings_total", "counter", "Total number of retry warnings.", n(&c.retries));
            fam!(
                "redispatch_warnings_total",
                "counter",
                "Total number of redispatch warnings.",
                n(&c.redispatches)
            );
        }
    }
    if http {
        if !matches!(scope, Scope::Server) {
            fam!(
                "http_requests_total",
                "counter",
                "Total number of HTTP requests received.",
                n(&c.http_requests)
            );
        }
        for (i, code) in CODES.iter().enumerate() {
            let mut l = labels.to_vec();
            l.push(("code", code));
            let name: &'static str = match scope {
                Scope::Frontend => "haproxy_frontend_http_responses_total",
                Scope::Backend => "haproxy_backend_http_responses_total",
                Scope::Server => "haproxy_server_http_responses_total",
            };
            f.add(name, "counter", "Total number of HTTP responses.", &l, n(&c.http_responses[i]));
        }
    }
}

#[derive(Clone, Copy)]
enum Scope {
    Frontend,
    Backend,
    Server,
}

/// The whole exposition.
pub fn prometheus(ctx: &StatsContext) -> String {
    let mut f = Families::default();
    let g = &ctx.config.global;
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(ctx.uptime_secs()))
        .unwrap_or(0);
    f.add(
        "haproxy_process_nbthread",
        "gauge",
        "Number of started threads.",
        &[],
        g.nbthread.unwrap_or(1) as f64,
    );
    f.add("haproxy_process_nbproc", "gauge", "Number of started processes.", &[], 1.0);
    f.add("haproxy_process_relative_process_id", "gauge", "Relative process id, starting at 1.", &[], 1.0);
    f.add("haproxy_process_start_time_seconds", "gauge", "Start time in seconds.", &[], started_unix as f64);
    f.add(
        "haproxy_process_max_connections",
        "gauge",
        "Maximum number of concurrent connections.",
        &[],
        g.maxconn as f64,
    );
    let (mut cur, mut total, mut reqs) = (0u64, 0u64, 0u64);
    for p in ctx.config.frontends() {
        let c = ctx.frontend_counters(p);
        cur += c.current();
        total += c.total_sessions.load(Ordering::Relaxed);
        reqs += c.http_requests.load(Ordering::Relaxed);
    }
    f.add("haproxy_process_current_connections", "gauge", "Number of active sessions.", &[], cur as f64);
    f.add(
        "haproxy_process_connections_total",
        "counter",
        "Total number of created sessions.",
        &[],
        total as f64,
    );
    f.add(
        "haproxy_process_requests_total",
        "counter",
        "Total number of requests (TCP or HTTP).",
        &[],
        reqs as f64,
    );
    f.add("haproxy_process_build_info", "gauge", "Build info", &[("version", ctx.version)], 1.0);

    for p in &ctx.config.proxies {
        let http = p.mode == Mode::Http;
        let px = [("proxy", p.name.as_str())];
        if p.cap.frontend {
            let c = ctx.frontend_counters(p);
            f.add("haproxy_frontend_status", "gauge", "Current status of the service.", &px, 1.0);
            let limit = p.maxconn.unwrap_or(g.maxconn) as f64;
            f.add("haproxy_frontend_limit_sessions", "gauge", "Configured session limit.", &px, limit);
            traffic(&mut f, Scope::Frontend, &px, &c, http);
        }
        if p.cap.backend {
            let c = ctx.backend_counters(p);
            let sum = backend_summary(ctx, p);
            for state in ["DOWN", "UP"] {
                let v = if (state == "UP") == sum.up { 1.0 } else { 0.0 };
                f.add(
                    "haproxy_backend_status",
                    "gauge",
                    "Current status of the service.",
                    &[("proxy", p.name.as_str()), ("state", state)],
                    v,
                );
            }
            f.add(
                "haproxy_backend_active_servers",
                "gauge",
                "Current number of active servers.",
                &px,
                sum.active.into(),
            );
            f.add(
                "haproxy_backend_backup_servers",
                "gauge",
                "Current number of backup servers.",
                &px,
                sum.backup.into(),
            );
            f.add("haproxy_backend_weight", "gauge", "Service weight.", &px, sum.weight.into());
            f.add(
                "haproxy_backend_last_change_seconds",
                "gauge",
                "Number of seconds since the last UP<->DOWN transition.",
                &px,
                sum.lastchg as f64,
            );
            traffic(&mut f, Scope::Backend, &px, &c, http);
            for srv in &p.servers {
                let st = ctx.server_state(p, srv);
                let labels = [("proxy", p.name.as_str()), ("server", srv.name.as_str())];
                let current = match (st.admin(), st.health()) {
                    (Admin::Maint, _) => "MAINT",
                    (_, Health::Down) => "DOWN",
                    (Admin::Drain, _) => "DRAIN",
                    _ => "UP",
                };
                for state in ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"] {
                    f.add(
                        "haproxy_server_status",
                        "gauge",
                        "Current status of the service, per state label value.",
                        &[labels[0], labels[1], ("state", state)],
                        if state == current { 1.0 } else { 0.0 },
                    );
                }
                f.add("haproxy_server_weight", "gauge", "Service weight.", &labels, st.weight().into());
                f.add(
                    "haproxy_server_check_failures_total",
                    "counter",
                    "Total number of failed individual health checks.",
                    &labels,
                    n(&st.failed_checks),
                );
                f.add(
                    "haproxy_server_check_up_down_total",
                    "counter",
                    "Total number of failed checks causing UP to DOWN server transitions.",
                    &labels,
                    n(&st.down_transitions),
                );
                f.add(
                    "haproxy_server_downtime_seconds_total",
                    "counter",
                    "Total downtime (in seconds) for the service.",
                    &labels,
                    st.downtime() as f64,
                );
                let duration = st.last_check.lock().map(|r| r.duration_ms).unwrap_or(0) as f64 / 1000.0;
                f.add(
                    "haproxy_server_check_duration_seconds",
                    "gauge",
                    "Total duration of the latest server health check, in seconds.",
                    &labels,
                    duration,
                );
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
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
