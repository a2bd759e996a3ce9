//! `show stat` / `;csv`: HAProxy 2.6's CSV, column for column. Rows start from
//! templates taken from real HAProxy 2.6 output (so columns we do not track
//! are empty or 0 exactly as HAProxy prints them) and then get our values.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::{backend_summary, balance_name, check_status, check_status_text, StatsContext};
use crate::conf::haproxy::{Mode, Proxy, Server};
use crate::proxy::health::{describe_status, status::CheckStatus, status_with_health};
use crate::proxy::state::{Admin, Counters, Health};

/// HAProxy 2.6's header line (without `# ` and the trailing comma).
pub const COLUMNS: &str = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,\
wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,\
type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,\
hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,\
comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,\
agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,\
conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,\
src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,\
need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,\
ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,\
h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,\
h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,\
h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,\
h1_spliced_bytes_in,h1_spliced_bytes_out";

// Rows of an idle HAProxy 2.6 (from pxname's value on), used as templates.
const FRONTEND_ROW: &str = ",FRONTEND,,,0,0,0,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,0,0,,,,0,0,0,0,,,,0,0,0,0,0,0,,0,0,0,\
,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0";
const SERVER_ROW: &str =
    ",,0,0,0,0,,0,0,0,,0,,0,0,0,0,,1,1,0,,,0,,,1,0,0,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,\
0,0,,,,,,,,,,,,,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,";
const BACKEND_ROW: &str = ",BACKEND,0,0,0,0,0,0,0,0,0,0,,0,0,0,0,UP,0,0,0,,0,0,0,,1,0,0,,0,,1,0,,0,,,,0,0,0,0,0,0,,,,0,0,\
0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,0,0,0,0,,,0,0,0,0,0,,,,,0,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,\
0,0,0,0,0,0,0,0,0,0,0,0";

/// Filters of `show stat` / the page's `;up` and what the caller may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// `up` / `;up`: hide servers that are DOWN or in maintenance.
    pub up_only: bool,
    /// `no-maint`: hide servers in maintenance.
    pub no_maint: bool,
    /// Leave `addr` empty (HAProxy does so below admin level).
    pub hide_addr: bool,
    /// `show stat <proxy> <type> <sid>`: only this proxy (name or iid).
    pub proxy: Option<String>,
    /// Row types as HAProxy's bit mask: 1 frontend, 2 backend, 4 server; 0 = all.
    pub types: u8,
    /// Only this server id.
    pub sid: Option<u32>,
}

impl CsvOptions {
    fn wants(&self, bit: u8) -> bool {
        self.types == 0 || self.types & bit != 0
    }
}

/// The whole CSV, as `show stat` prints it (ends with an empty line).
pub fn csv(ctx: &StatsContext) -> String {
    csv_with(ctx, CsvOptions::default())
}

pub fn csv_with(ctx: &StatsContext, opts: CsvOptions) -> String {
    let mut out = format!("# {COLUMNS},\n");
    for proxy in &ctx.config.proxies {
        if let Some(want) = &opts.proxy {
            if *want != proxy.name && *want != ctx.proxy_id(proxy).to_string() {
                continue;
            }
        }
        for row in proxy_rows(ctx, proxy, &opts) {
            out.push_str(&row.finish());
        }
    }
    out.push('\n');
    out
}

/// One CSV row under construction.
pub struct Row {
    fields: Vec<String>,
}

fn column_index(name: &str) -> Option<usize> {
    COLUMNS.split(',').position(|c| c == name)
}

impl Row {
    fn from_template(template: &str) -> Row {
        Row { fields: template.split(',').map(str::to_string).collect() }
    }

    /// Sets a column by its header name (unknown names are a bug caught by tests).
    pub fn set(&mut self, name: &str, value: impl ToString) {
        if let Some(i) = column_index(name) {
            if let Some(f) = self.fields.get_mut(i) {
                *f = value.to_string();
            }
        } else {
            debug_assert!(false, "unknown stats column {name}");
        }
    }

    pub fn get(&self, name: &str) -> &str {
        column_index(name).and_then(|i| self.fields.get(i)).map(String::as_str).unwrap_or("")
    }

    fn finish(&self) -> String {
        let mut s = String::new();
        for f in &self.fields {
            // HAProxy never quotes; names cannot contain commas in a valid config.
            let _ = write!(s, "{},", f.replace([',', '\n'], " "));
        }
        s.pop();
        s.push_str(",\n");
        s
    }
}

fn set_counters(row: &mut Row, c: &Counters, http: bool) {
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    row.set("scur", c.current());
    row.set("smax", get(&c.max_sessions));
    row.set("stot", get(&c.total_sessions));
    row.set("bin", get(&c.bytes_in));
    row.set("bout", get(&c.bytes_out));
    if http {
        for (i, name) in
            ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].iter().enumerate()
        {
            row.set(name, get(&c.http_responses[i]));
        }
    } else {
        for name in ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "req_tot"] {
            row.set(name, "");
        }
    }
}

fn mode_name(p: &Proxy) -> &'static str {
    match p.mode {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
    }
}

fn lastsess(c: &Counters) -> i64 {
    c.last_session_age().map_or(-1, |secs| i64::try_from(secs).unwrap_or(i64::MAX))
}

/// The rows of one proxy in HAProxy's order: FRONTEND, servers, BACKEND.
pub fn proxy_rows(ctx: &StatsContext, proxy: &Proxy, opts: &CsvOptions) -> Vec<Row> {
    let mut rows = Vec::new();
    let http = proxy.mode == Mode::Http;
    let iid = ctx.proxy_id(proxy);
    if proxy.cap.frontend && opts.wants(1) {
        let c = ctx.frontend_counters(proxy);
        let mut row = Row::from_template(FRONTEND_ROW);
        row.set("pxname", &proxy.name);
        set_counters(&mut row, &c, http);
        row.set("slim", proxy.maxconn.unwrap_or(ctx.config.global.maxconn));
        row.set("dreq", c.denied_req.load(Ordering::Relaxed));
        row.set("dresp", c.denied_resp.load(Ordering::Relaxed));
        row.set("ereq", c.errors_req.load(Ordering::Relaxed));
        row.set("iid", iid);
        row.set("pid", 1);
        row.set("mode", mode_name(proxy));
        row.set("conn_tot", c.total_sessions.load(Ordering::Relaxed));
        if http {
            row.set("req_tot", c.http_requests.load(Ordering::Relaxed));
        }
        rows.push(row);
    }
    if proxy.cap.backend {
        for srv in &proxy.servers {
            if !opts.wants(4) || opts.sid.is_some_and(|sid| sid != srv.id) {
                continue;
            }
            if let Some(row) = server_row(ctx, proxy, srv, iid, opts) {
                rows.push(row);
            }
        }
        if opts.wants(2) {
            rows.push(backend_row(ctx, proxy, iid));
        }
    }
    rows
}

fn server_row(ctx: &StatsContext, proxy: &Proxy, srv: &Server, iid: usize, opts: &CsvOptions) -> Option<Row> {
    let st = ctx.server_state(proxy, srv);
    let maint = st.admin() == Admin::Maint;
    if (opts.up_only && (maint || st.health() == Health::Down)) || (opts.no_maint && maint) {
        return None;
    }
    let http = proxy.mode == Mode::Http;
    let c = &st.counters;
    let mut row = Row::from_template(SERVER_ROW);
    row.set("pxname", &proxy.name);
    row.set("svname", &srv.name);
    set_counters(&mut row, c, http);
    if let Some(m) = srv.maxconn {
        row.set("slim", m);
    }
    row.set("dresp", c.denied_resp.load(Ordering::Relaxed));
    row.set("econ", c.errors_conn.load(Ordering::Relaxed));
    row.set("eresp", c.errors_resp.load(Ordering::Relaxed));
    row.set("wretr", c.retries.load(Ordering::Relaxed));
    row.set("wredis", c.redispatches.load(Ordering::Relaxed));
    row.set("status", status_with_health(&st, srv.check.as_ref()));
    // Effective weight: a draining server takes no new traffic.
    let eweight = if st.admin() == Admin::Drain { 0 } else { st.weight() };
    row.set("weight", eweight);
    row.set("uweight", st.weight());
    row.set("act", u8::from(!srv.backup));
    row.set("bck", u8::from(srv.backup));
    row.set("lastchg", st.last_change.lock().map(|t| t.elapsed().as_secs()).unwrap_or(0));
    row.set("iid", iid);
    row.set("sid", srv.id);
    row.set("lbtot", c.total_sessions.load(Ordering::Relaxed));
    row.set("lastsess", lastsess(c));
    row.set("mode", mode_name(proxy));
    row.set("addr", if opts.hide_addr { String::new() } else { srv.addr.to_string() });
    if let Some(cookie) = &srv.cookie {
        row.set("cookie", cookie);
    }
    if let Some(check) = &srv.check {
        row.set("chkfail", st.failed_checks.load(Ordering::Relaxed));
        row.set("chkdown", st.down_transitions.load(Ordering::Relaxed));
        row.set("downtime", st.downtime());
        let (status, code, info, duration) = check_status(&st);
        if !status.is_empty() {
            row.set("check_status", check_status_text(&st, &status));
            if CheckStatus::from_short(&status).is_some_and(|s| s.has_code()) {
                row.set("check_code", code.unwrap_or(0));
            }
            row.set("check_duration", duration);
            row.set("check_desc", describe_status(&status));
            row.set("last_chk", info);
        }
        row.set("check_rise", check.rise);
        row.set("check_fall", check.fall);
        row.set("check_health", st.check_health(check.rise.max(1), check.fall.max(1)));
    }
    Some(row)
}

fn backend_row(ctx: &StatsContext, proxy: &Proxy, iid: usize) -> Row {
    let c = ctx.backend_counters(proxy);
    let sum = backend_summary(ctx, proxy);
    let http = proxy.mode == Mode::Http;
    let mut row = Row::from_template(BACKEND_ROW);
    row.set("pxname", &proxy.name);
    set_counters(&mut row, &c, http);
    row.set("slim", proxy.fullconn.unwrap_or(ctx.config.global.maxconn / 10));
    row.set("dreq", c.denied_req.load(Ordering::Relaxed));
    row.set("dresp", c.denied_resp.load(Ordering::Relaxed));
    row.set("econ", c.errors_conn.load(Ordering::Relaxed));
    row.set("eresp", c.errors_resp.load(Ordering::Relaxed));
    row.set("wretr", c.retries.load(Ordering::Relaxed));
    row.set("wredis", c.redispatches.load(Ordering::Relaxed));
    row.set("status", if sum.up { "UP" } else { "DOWN" });
    row.set("weight", sum.weight);
    row.set("uweight", sum.uweight);
    row.set("act", sum.active);
    row.set("bck", sum.backup);
    row.set("chkdown", ctx.registry.proxy(&proxy.name).down_transitions.load(Ordering::Relaxed));
    row.set("lastchg", sum.lastchg);
    row.set("iid", iid);
    row.set("lbtot", c.total_sessions.load(Ordering::Relaxed));
    row.set("lastsess", lastsess(&c));
    row.set("mode", mode_name(proxy));
    row.set("algo", balance_name(&proxy.balance));
    row.set("conn_tot", c.total_sessions.load(Ordering::Relaxed));
    if http {
        row.set("req_tot", c.http_requests.load(Ordering::Relaxed));
    }
    row
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::StatsContext;
    use crate::proxy::testutil::sample_config;
    use std::sync::Arc;

    /// A stats context over `testutil::sample_config()`.
    pub fn ctx() -> StatsContext {
        StatsContext {
            config: Arc::new(sample_config()),
            registry: Arc::new(crate::proxy::state::StateRegistry::new()),
            started: std::time::Instant::now(),
            pid: 4242,
            node: "lb1".into(),
            version: "0.1.0",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::ctx;
    use super::*;

    fn field_count(template: &str) -> usize {
        template.split(',').count()
    }

    #[test]
    fn templates_have_every_column() {
        let n = COLUMNS.split(',').count();
        assert_eq!(n, 128);
        assert_eq!(field_count(FRONTEND_ROW), n);
        assert_eq!(field_count(SERVER_ROW), n);
        assert_eq!(field_count(BACKEND_ROW), n);
    }

    #[test]
    fn rows_in_haproxy_order_with_states() {
        let ctx = ctx();
        let app = ctx.config.proxy("app").cloned().expect("app");
        let srv1 = ctx.server_state(&app, &app.servers[0]);
        srv1.set_health(Health::Down);
        srv1.check_health.store(0, Ordering::Relaxed);
        srv1.failed_checks.store(3, Ordering::Relaxed);
        if let Ok(mut r) = srv1.last_check.lock() {
            r.status = "L7STS".into();
            r.code = Some(503);
            r.description = "Service Unavailable".into();
            r.duration_ms = 2;
        }
        let text = csv(&ctx);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,"));
        assert!(lines[0].ends_with("h1_spliced_bytes_out,"));
        let names: Vec<String> = lines[1..]
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join("/"))
            .collect();
        assert_eq!(
            names,
            [
                "www/FRONTEND",
                "app/srv1",
                "app/srv2",
                "app/bk",
                "app/BACKEND",
                "stats/FRONTEND",
                "stats/BACKEND"
            ]
        );
        assert!(text.ends_with(",\n\n"));
        let cols: Vec<&str> = COLUMNS.split(',').collect();
        let row = |name: &str| -> std::collections::HashMap<&str, String> {
            let line = lines.iter().find(|l| l.starts_with(name)).copied().unwrap_or_default();
            cols.iter().copied().zip(line.split(',').map(str::to_string)).collect()
        };
        let s1 = row("app,srv1,");
        assert_eq!(s1["status"], "DOWN");
        assert_eq!(s1["check_status"], "L7STS");
        assert_eq!(s1["check_code"], "503");
        assert_eq!(s1["check_desc"], "Layer7 wrong status");
        assert_eq!(s1["last_chk"], "Service Unavailable");
        assert_eq!(s1["chkfail"], "3");
        assert_eq!(s1["chkdown"], "1");
        assert_eq!(s1["type"], "2");
        assert_eq!(s1["addr"], "127.0.0.1:18081");
        let s2 = row("app,srv2,");
        assert_eq!((s2["status"].as_str(), s2["chkfail"].as_str()), ("no check", ""));
        let bk = row("app,bk,");
        assert_eq!((bk["act"].as_str(), bk["bck"].as_str()), ("0", "1"));
        let be = row("app,BACKEND,");
        assert_eq!((be["status"].as_str(), be["act"].as_str(), be["bck"].as_str()), ("UP", "1", "1"));
        assert_eq!((be["type"].as_str(), be["algo"].as_str()), ("1", "roundrobin"));
        let fe = row("www,FRONTEND,");
        assert_eq!((fe["status"].as_str(), fe["type"].as_str(), fe["iid"].as_str()), ("OPEN", "0", "2"));

        let up = csv_with(&ctx, CsvOptions { up_only: true, ..CsvOptions::default() });
        assert!(!up.contains("app,srv1,"));
        assert!(up.contains("app,srv2,"));
    }

    #[test]
    fn maint_and_drain_show_in_status_and_weight() {
        let ctx = ctx();
        let app = ctx.config.proxy("app").cloned().expect("app");
        ctx.server_state(&app, &app.servers[1]).set_admin(Admin::Drain);
        ctx.server_state(&app, &app.servers[0]).set_admin(Admin::Maint);
        let text = csv(&ctx);
        let srv2 = text.lines().find(|l| l.starts_with("app,srv2,")).unwrap_or_default();
        assert!(srv2.contains(",DRAIN,0,1,0,"), "{srv2}");
        let srv1 = text.lines().find(|l| l.starts_with("app,srv1,")).unwrap_or_default();
        assert!(srv1.contains(",MAINT,1,1,0,"), "{srv1}");
        let no_maint = csv_with(&ctx, CsvOptions { no_maint: true, ..CsvOptions::default() });
        assert!(!no_maint.contains("app,srv1,"));
    }

    #[test]
    fn proxy_type_and_sid_filters() {
        let ctx = ctx();
        let names = |o: CsvOptions| -> Vec<String> {
            csv_with(&ctx, o)
                .lines()
                .skip(1)
                .filter(|l| !l.is_empty())
                .map(|l| l.split(',').take(2).collect::<Vec<_>>().join("/"))
                .collect()
        };
        let app = CsvOptions { proxy: Some("app".into()), ..CsvOptions::default() };
        assert_eq!(names(app.clone()), ["app/srv1", "app/srv2", "app/bk", "app/BACKEND"]);
        assert_eq!(
            names(CsvOptions { proxy: Some("3".into()), types: 4, sid: Some(2), ..app.clone() }),
            ["app/srv2"]
        );
        assert_eq!(
            names(CsvOptions { types: 1, ..CsvOptions::default() }),
            ["www/FRONTEND", "stats/FRONTEND"]
        );
    }
}
