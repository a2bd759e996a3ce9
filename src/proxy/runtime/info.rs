//! The read-only reports of the runtime API: `show info`, `show servers state`,
//! `show backend`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::conf::haproxy::RuntimeLevel;
use crate::proxy::health::status::CheckStatus;
use crate::proxy::state::{Admin, Health};
use crate::proxy::stats::StatsContext;

/// What `show info` prints as `Name:`.
pub const PRODUCT_NAME: &str = "Lanai";

/// `0d 0h00m15s`, HAProxy's uptime format.
pub fn uptime_text(secs: u64) -> String {
    format!("{}d {}h{:02}m{:02}s", secs / 86400, (secs / 3600) % 24, (secs / 60) % 60, secs % 60)
}

fn open_files_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft)
}

/// `show info`: the fields HAProxy 2.6 prints that we can fill, in its order.
pub fn show_info(ctx: &StatsContext) -> String {
    let g = &ctx.config.global;
    let nbthread =
        g.nbthread.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let (mut cur, mut cum, mut req) = (0u64, 0u64, 0u64);
    for p in ctx.config.frontends() {
        let c = ctx.frontend_counters(p);
        cur += c.current();
        cum += c.total_sessions.load(Ordering::Relaxed);
        req += c.http_requests.load(Ordering::Relaxed);
    }
    let up = ctx.uptime_secs();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(up))
        .unwrap_or(0);
    let ulimit = open_files_limit();
    let fields: Vec<(&str, String)> = vec![
        ("Name", PRODUCT_NAME.into()),
        ("Version", ctx.version.into()),
        ("Nbthread", nbthread.to_string()),
        ("Nbproc", "1".into()),
        ("Process_num", "1".into()),
        ("Pid", ctx.pid.to_string()),
        ("Uptime", uptime_text(up)),
        ("Uptime_sec", up.to_string()),
        ("Ulimit-n", ulimit.to_string()),
        ("Maxsock", ulimit.to_string()),
        ("Maxconn", g.maxconn.to_string()),
        ("Hard_maxconn", g.maxconn.to_string()),
        ("CurrConns", cur.to_string()),
        ("CumConns", cum.to_string()),
        ("CumReq", req.to_string()),
        ("node", ctx.node.clone()),
        ("Stopping", "0".into()),
        ("Listeners", ctx.config.frontends().map(|p| p.binds.len()).sum::<usize>().to_string()),
        ("Build info", ctx.version.into()),
        ("Start_time_sec", start.to_string()),
    ];
    let mut out = String::new();
    for (k, v) in fields {
        let _ = writeln!(out, "{k}: {v}");
    }
    out
}

/// `show backend`.
pub fn show_backend(ctx: &StatsContext) -> String {
    let mut out = String::from("# name\n");
    for p in ctx.config.backends() {
        let _ = writeln!(out, "{}", p.name);
    }
    out
}

/// The column line of `show servers state` format version 1.
pub const STATE_HEADER: &str =
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight \
srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state \
srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port \
srv_check_addr srv_agent_addr srv_agent_port";

/// `show servers state [backend]` in format version 1; `None` when the named
/// backend does not exist.
pub fn show_servers_state(ctx: &StatsContext, backend: Option<&str>) -> Option<String> {
    let backends: Vec<_> = match backend {
        Some(name) => vec![ctx.config.backends().find(|p| p.name == name)?],
        None => ctx.config.backends().collect(),
    };
    let mut out = format!("1\n{STATE_HEADER}\n");
    for p in backends {
        let be_id = ctx.proxy_id(p);
        for srv in &p.servers {
            let st = ctx.server_state(p, srv);
            let admin = st.admin();
            // HAProxy's SRV_ST_*: 0 stopped, 2 running.
            let op_state = if admin == Admin::Maint || st.health() == Health::Down { 0 } else { 2 };
            // SRV_ADMF_*: 0x01 forced maint, 0x04 maint from config, 0x08 forced drain.
            let admin_bits = match admin {
                Admin::Maint if srv.disabled => 0x05,
                Admin::Maint => 0x01,
                Admin::Drain => 0x08,
                Admin::Ready => 0,
            };
            let last = st.last_change.lock().map(|t| t.elapsed().as_secs()).unwrap_or(0);
            let report = st.last_check.lock().map(|r| r.status.clone()).unwrap_or_default();
            let status = CheckStatus::from_short(&report);
            let (check_status, check_result, check_health, check_state) = match &srv.check {
                Some(c) => {
                    let result = match status {
                        Some(s) if s.is_success() => 3,
                        Some(_) => 2,
                        None => 0,
                    };
                    // CHK_ST_CONFIGURED|ENABLED, plus PAUSED in maintenance.
                    let flags = if admin == Admin::Maint { 14 } else { 6 };
                    (
                        status.map_or(1, CheckStatus::number),
                        result,
                        st.check_health(c.rise.max(1), c.fall.max(1)),
                        flags,
                    )
                }
                None => (1, 0, 2, 0),
            };
            let check_port = srv.check.as_ref().and_then(|c| c.port).unwrap_or(0);
            let check_addr =
                srv.check.as_ref().and_then(|c| c.addr).map(|a| a.to_string()).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{be_id} {} {} {} {} {op_state} {admin_bits} {} {} {last} {check_status} {check_result} \
                 {check_health} {check_state} 0 0 0 {} {} - {} {check_port} {check_addr} - 0",
                p.name,
                srv.id,
                srv.name,
                srv.addr.ip(),
                st.weight(),
                srv.weight,
                srv.host.as_deref().unwrap_or("-"),
                srv.addr.port(),
                u8::from(srv.tls.is_some()),
            );
        }
    }
    Some(out)
}

/// `show cli level`.
pub fn level_name(level: RuntimeLevel) -> &'static str {
    match level {
        RuntimeLevel::User => "user",
        RuntimeLevel::Operator => "operator",
        RuntimeLevel::Admin => "admin",
    }
}
