//! The stats page served at `stats uri`: authentication, the `;csv`, `;up`,
//! `;norefresh` and `;st=` URI options, HAProxy-like HTML tables, and the
//! admin form (`stats admin if COND`) that changes server states.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{header, Method, Response, StatusCode};

use super::{backend_summary, check_status, check_status_text, csv_with, CsvOptions, StatsContext};
use crate::conf::haproxy::{Mode, Proxy, Server, StatsPage};
use crate::proxy::health::admin::{force_health, set_admin};
use crate::proxy::health::{describe_status, LogSink};
use crate::proxy::state::{Admin, Counters, Health, ServerState};

/// A request for the stats page, as the engine hands it over.
#[derive(Debug, Clone)]
pub struct StatsRequest {
    pub method: Method,
    /// Starts with the page's `stats uri`.
    pub path_and_query: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    pub body: Bytes,
    /// The engine evaluated `stats admin if COND` for this request.
    pub admin_allowed: bool,
}

/// Options after the URI: `;csv`, `;up`, `;norefresh`, `;st=CODE`, `?scope=`.
#[derive(Debug, Default, PartialEq, Eq)]
struct PageOptions {
    csv: bool,
    up_only: bool,
    norefresh: bool,
    status: Option<String>,
    scope: Option<String>,
}

fn parse_options(page: &StatsPage, path_and_query: &str) -> PageOptions {
    let rest = path_and_query.strip_prefix(page.uri.as_str()).unwrap_or("");
    let mut o = PageOptions::default();
    for part in rest.split([';', '?', '&']) {
        match part {
            "csv" => o.csv = true,
            "up" => o.up_only = true,
            "norefresh" => o.norefresh = true,
            p => {
                if let Some(st) = p.strip_prefix("st=") {
                    o.status = Some(st.to_string());
                } else if let Some(scope) = p.strip_prefix("scope=") {
                    let scope = percent_decode(scope);
                    if !scope.is_empty() {
                        o.scope = Some(scope);
                    }
                }
            }
        }
    }
    o
}

/// Serves one request for the stats page.
pub fn serve(page: &StatsPage, req: &StatsRequest, ctx: &StatsContext) -> Response<Bytes> {
    serve_logged(page, req, ctx, None)
}

/// `serve`, logging admin actions' state changes to `log` as HAProxy does.
pub fn serve_logged(
    page: &StatsPage,
    req: &StatsRequest,
    ctx: &StatsContext,
    log: Option<&LogSink>,
) -> Response<Bytes> {
    if !page.auth.is_empty() && !authorized(page, req.authorization.as_deref()) {
        let realm = page.realm.as_deref().unwrap_or("HAProxy Statistics").replace('"', "'");
        return response(
            StatusCode::UNAUTHORIZED,
            "text/html",
            "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n\
             </body></html>\n"
                .into(),
        )
        .map(|mut r| {
            if let Ok(v) = format!("Basic realm=\"{realm}\"").parse() {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            r
        })
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR));
    }
    if req.method == Method::POST {
        let code = if req.admin_allowed { apply_admin_form(ctx, &req.body, log) } else { "DENY" };
        return Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::CONTENT_TYPE, "text/plain")
            .header(header::LOCATION, format!("{};st={code}", page.uri))
            .body(Bytes::new())
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR));
    }
    if req.method != Method::GET && req.method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED);
    }
    let opts = parse_options(page, &req.path_and_query);
    let (ctype, body) = if opts.csv {
        ("text/plain", csv_with(ctx, CsvOptions { up_only: opts.up_only, ..CsvOptions::default() }))
    } else {
        ("text/html", render_page(page, ctx, &opts, req.admin_allowed))
    };
    let mut resp = match response(StatusCode::OK, ctype, body) {
        Ok(r) => r,
        Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR),
    };
    if let (Some(refresh), false) = (page.refresh, opts.norefresh) {
        if let Ok(v) = refresh.as_secs().to_string().parse() {
            resp.headers_mut().insert("refresh", v);
        }
    }
    resp
}

fn response(status: StatusCode, ctype: &str, body: String) -> Result<Response<Bytes>, http::Error> {
    Response::builder()
        .status(status)
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::CONTENT_TYPE, ctype)
        .body(Bytes::from(body))
}

fn plain(status: StatusCode) -> Response<Bytes> {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = status;
    r
}

// ---------------------------------------------------------------- auth

fn authorized(page: &StatsPage, header: Option<&str>) -> bool {
    let Some(h) = header else { return false };
    let Some((scheme, creds)) = h.trim().split_once(' ') else { return false };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Some(decoded) = base64_decode(creds.trim()) else { return false };
    let Ok(text) = String::from_utf8(decoded) else { return false };
    let Some((user, pass)) = text.split_once(':') else { return false };
    page.auth.iter().any(|(u, p)| {
        constant_time_eq(u.as_bytes(), user.as_bytes()) & constant_time_eq(p.as_bytes(), pass.as_bytes())
    })
}

/// Compares without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    diff == 0
}

/// Standard base64 (with optional padding); `None` on any invalid input.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = s.trim_end_matches('=').as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = chunk.len() - 1;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- admin form

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Applies the form HAProxy's page posts (`s=SRV&…&action=ACT&b=#IID`) and
/// returns the `st=` code for the redirect.
fn apply_admin_form(ctx: &StatsContext, body: &[u8], log: Option<&LogSink>) -> &'static str {
    let body = String::from_utf8_lossy(body);
    let (mut servers, mut action, mut backend) = (Vec::new(), None, None);
    for pair in body.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "s" => servers.push(v),
            "action" => action = Some(v),
            "b" => backend = Some(v),
            _ => {}
        }
    }
    let Some(proxy) = backend
        .as_deref()
        .and_then(|b| b.strip_prefix('#'))
        .and_then(|id| id.parse::<usize>().ok())
        .and_then(|id| ctx.config.proxies.iter().find(|p| p.cap.backend && ctx.proxy_id(p) == id))
    else {
        return "ERRP";
    };
    enum Act {
        Admin(Admin),
        Health(bool),
    }
    let act = match action.as_deref() {
        Some("ready") | Some("enable") => Act::Admin(Admin::Ready),
        Some("drain") => Act::Admin(Admin::Drain),
        Some("maint") | Some("disable") => Act::Admin(Admin::Maint),
        Some("hrunn") => Act::Health(true),
        Some("hdown") => Act::Health(false),
        // Agent checks, NOLB, check toggling and session kills are not
        // supported: report invalid parameters rather than pretend.
        _ => return "ERRP",
    };
    if servers.is_empty() {
        return "NONE";
    }
    let mut done = 0;
    for name in &servers {
        if let Some(srv) = proxy.servers.iter().find(|s| &s.name == name) {
            let st = ctx.server_state(proxy, srv);
            match act {
                Act::Admin(a) => set_admin(ctx, proxy, srv, &st, a, log),
                Act::Health(up) => force_health(ctx, proxy, srv, &st, up, log),
            }
            done += 1;
        }
    }
    match done {
        0 => "ERRP",
        n if n == servers.len() => "DONE",
        _ => "PART",
    }
}

// ---------------------------------------------------------------- HTML

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// HAProxy's short human durations: `5s`, `3m12s`, `2h5m`, `1d3h`.
fn human(secs: u64) -> String {
    match secs {
        s if s >= 86400 => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

const CSS: &str = "body { font-family: arial, helvetica, sans-serif; font-size: 12px; font-weight: normal; color: black; background: white;}
th,td { font-size: 10px;}
h1 { font-size: x-large; margin-bottom: 0.5em;}
h2 { font-family: helvetica, arial; font-size: x-large; font-weight: bold; font-style: italic; color: #6020a0; margin-top: 0em; margin-bottom: 0em;}
h3 { font-family: helvetica, arial; font-size: 16px; font-weight: bold; color: #b00040; background: #e8e8d0; margin-top: 0em; margin-bottom: 0em;}
.hr {margin-top: 0.25em; border-color: black; border-bottom-style: solid;}
.titre {background: #20D0D0; color: #000000; font-weight: bold; text-align: center;}
.frontend {background: #e8e8d0;}
.backend {background: #e8e8d0;}
.active_down {background: #ff9090;}
.active_going_up {background: #ffd020;}
.active_going_down {background: #ffffa0;}
.active_up {background: #c0ffc0;}
.active_draining {background: #20a0FF;}
.active_no_check {background: #e0e0e0;}
.backup_down {background: #ff9090;}
.backup_going_up {background: #ff80ff;}
.backup_going_down {background: #c060ff;}
.backup_up {background: #b0d0ff;}
.backup_draining {background: #cc9900;}
.backup_no_check {background: #e0e0e0;}
.maintain {background: #c07820;}
a.px:link, a.px:visited {color: #ffff40; text-decoration: none;}
a.lfsb:link, a.lfsb:visited {color: #000000; text-decoration: none;}
table.tbl { border-collapse: collapse; border-style: none;}
table.tbl td { text-align: right; border: 1px solid gray; padding: 2px 3px; white-space: nowrap;}
table.tbl td.ac { text-align: center;}
table.tbl th { border: 1px solid gray;}
table.tbl th.pxname { background: #b00040; color: #ffff40; font-weight: bold; padding: 2px 3px; white-space: nowrap;}
table.tbl th.empty { border-style: none; background: white;}
table.lgd { border-collapse: collapse; border-width: 1px; border-style: none none none solid; border-color: black;}
table.lgd td { border: 1px solid gray; padding: 2px;}
table.lgd td.noborder { border-style: none; padding: 2px; white-space: nowrap;}
u {text-decoration: none; border-bottom: 1px dotted black;}
div.tips { display: block; visibility: hidden; z-index: 2147483647; position: absolute; padding: 2px 4px 3px; background: #f0f060; border: 1px solid #7040c0; white-space: nowrap; font-size: 11px;}
u:hover div.tips {visibility: visible;}
";

const LEGEND: &str = "<table class=\"lgd\"><tr>
<td class=\"active_up\">&nbsp;</td><td class=\"noborder\">active UP </td><td class=\"backup_up\">&nbsp;</td><td class=\"noborder\">backup UP </td></tr><tr>
<td class=\"active_going_down\"></td><td class=\"noborder\">active UP, going down </td><td class=\"backup_going_down\"></td><td class=\"noborder\">backup UP, going down </td></tr><tr>
<td class=\"active_going_up\"></td><td class=\"noborder\">active DOWN, going up </td><td class=\"backup_going_up\"></td><td class=\"noborder\">backup DOWN, going up </td></tr><tr>
<td class=\"active_down\"></td><td class=\"noborder\">active or backup DOWN &nbsp;</td><td class=\"active_no_check\"></td><td class=\"noborder\">not checked </td></tr><tr>
<td class=\"maintain\"></td><td class=\"noborder\" colspan=\"3\">active or backup DOWN for maintenance (MAINT) &nbsp;</td></tr><tr>
<td class=\"active_draining\"></td><td class=\"noborder\" colspan=\"3\">active or backup SOFT STOPPED for maintenance &nbsp;</td></tr></table>
Note: \"NOLB\"/\"DRAIN\" = UP with load-balancing disabled.";

/// The `st=` banner after an admin action: (css class, message).
fn status_banner(code: &str) -> (&'static str, &'static str) {
    match code {
        "DONE" => ("active_up", "Action processed successfully."),
        "NONE" => ("active_going_down", "Nothing has changed."),
        "PART" => (
            "active_going_down",
            "Action partially processed.<br>Some server names are probably unknown or ambiguous \
             (duplicated names in the backend).",
        ),
        "ERRP" => (
            "active_down",
            "Action not processed because of invalid parameters.<ul><li>The action is maybe unknown.</li>\
             <li>The backend name is probably unknown or ambiguous (duplicated names).</li>\
             <li>Some server names are probably unknown or ambiguous (duplicated names in the backend).</li></ul>",
        ),
        "DENY" => ("active_down", "<b>Action denied.</b>"),
        _ => ("active_no_check", "Unexpected result."),
    }
}

fn render_page(page: &StatsPage, ctx: &StatsContext, opts: &PageOptions, admin: bool) -> String {
    let uri = escape(&page.uri);
    let node = page.show_node.as_ref().map(|n| if n.is_empty() { ctx.node.clone() } else { n.clone() });
    let mut h = String::new();
    let title = match &node {
        Some(n) => format!("Statistics Report for Lanai on {}", escape(n)),
        None => "Statistics Report for Lanai".to_string(),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html><head><title>{title}</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\">\n\
         <style type=\"text/css\">\n{CSS}</style></head>\n<body>"
    );
    if page.hide_version {
        h.push_str("<h1>Lanai</h1>\n");
    } else {
        let _ = writeln!(h, "<h1>Lanai version {}</h1>", escape(ctx.version));
    }
    let _ = write!(h, "<h2>Statistics Report for pid {}", ctx.pid);
    if let Some(n) = &node {
        let _ = write!(h, " on {}", escape(n));
    }
    h.push_str("</h2>\n");
    if let Some(desc) = &page.show_desc {
        let _ = writeln!(h, "<h2>{}</h2>", escape(desc));
    }
    h.push_str("<hr width=\"100%\" class=\"hr\">\n<h3>&gt; General process information</h3>\n");
    let up = ctx.uptime_secs();
    let _ = write!(
        h,
        "<table border=0><tr><td align=\"left\" nowrap width=\"1%\">\n<p><b>pid = </b> {} (process #1, nbproc = 1)<br>\n\
         <b>uptime = </b> {}d {}h{:02}m{:02}s<br>\n<b>maxconn = </b> {}<br>\n</td><td align=\"center\" nowrap>\n{LEGEND}</td>",
        ctx.pid,
        up / 86400,
        (up / 3600) % 24,
        (up / 60) % 60,
        up % 60,
        ctx.config.global.maxconn,
    );
    let scope = opts.scope.as_deref().map(escape).unwrap_or_default();
    let _ = writeln!(
        h,
        "<td align=\"left\" valign=\"top\" nowrap width=\"1%\"><b>Display option:</b><ul style=\"margin-top: 0.25em;\">\
         <li><form method=\"GET\">Scope : <input value=\"{scope}\" name=\"scope\" size=\"8\" maxlength=\"20\" tabindex=\"1\"/></form>"
    );
    if opts.up_only {
        let _ = writeln!(h, "<li><a href=\"{uri}\">Show all servers</a><br>");
    } else {
        let _ = writeln!(h, "<li><a href=\"{uri};up\">Hide 'DOWN' servers</a><br>");
    }
    if page.refresh.is_some() {
        if opts.norefresh {
            let _ = writeln!(h, "<li><a href=\"{uri}\">Enable refresh</a><br>");
        } else {
            let _ = writeln!(h, "<li><a href=\"{uri};norefresh\">Disable refresh</a><br>");
        }
    }
    let _ = write!(
        h,
        "<li><a href=\"{uri}\">Refresh now</a><br>\n<li><a href=\"{uri};csv;norefresh\">CSV export</a><br>\n</ul></td></tr></table>\n"
    );
    if let Some(code) = &opts.status {
        let (class, msg) = status_banner(code);
        let _ = write!(
            h,
            "<p><div class={class}><a class=lfsb href=\"{uri}\" title=\"Remove this message\">[X]</a> {msg}</div>\n<p>\n"
        );
    }
    for proxy in &ctx.config.proxies {
        if let Some(scope) = &opts.scope {
            if !proxy.name.contains(scope.as_str()) {
                continue;
            }
        }
        proxy_table(&mut h, page, ctx, proxy, opts, admin);
    }
    h.push_str("</body></html>\n");
    h
}

const HEADER_GROUPS: &str =
    "<th colspan=3>Queue</th><th colspan=3>Session rate</th><th colspan=6>Sessions</th>\
<th colspan=2>Bytes</th><th colspan=2>Denied</th><th colspan=3>Errors</th><th colspan=2>Warnings</th>\
<th colspan=9>Server</th></tr>\n";
const HEADER_COLUMNS: &str = "<tr class=\"titre\"><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th>\
<th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>LbTot</th><th>Last</th><th>In</th><th>Out</th>\
<th>Req</th><th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th><th>Status</th>\
<th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th><th>Thrtle</th></tr>\n";

fn proxy_table(
    h: &mut String,
    page: &StatsPage,
    ctx: &StatsContext,
    proxy: &Proxy,
    opts: &PageOptions,
    admin: bool,
) {
    let name = escape(&proxy.name);
    let iid = ctx.proxy_id(proxy);
    let with_form = admin && proxy.cap.backend && !proxy.servers.is_empty();
    let mode = if proxy.mode == Mode::Http { "http" } else { "tcp" };
    let cap = match (proxy.cap.frontend, proxy.cap.backend) {
        (true, true) => "frontend/backend",
        (true, false) => "frontend",
        _ => "backend",
    };
    let tip = if page.show_legends {
        format!("<div class=tips>cap: {cap}, mode: {mode}, id: {iid}</div>")
    } else {
        String::new()
    };
    let _ = write!(
        h,
        "<table class=\"tbl\" width=\"100%\">\n<tr class=\"titre\"><th class=\"pxname\" width=\"10%\"><a name=\"{name}\"></a>\
         <u><a class=px href=\"#{name}\">{name}</a>{tip}</u></th><th class=\"empty\" width=\"90%\"></th></tr>\n</table>\n"
    );
    if with_form {
        h.push_str("<form method=\"post\">");
    }
    h.push_str("<table class=\"tbl\" width=\"100%\">\n<tr class=\"titre\">");
    if with_form {
        h.push_str("<th rowspan=2 width=1></th>");
    }
    h.push_str("<th rowspan=2></th>");
    h.push_str(HEADER_GROUPS);
    h.push_str(HEADER_COLUMNS);
    let lead = |h: &mut String, checkbox: Option<&str>| {
        if with_form {
            match checkbox {
                Some(srv) => {
                    let _ =
                        write!(h, "<td><input type=\"checkbox\" name=\"s\" value=\"{}\"></td>", escape(srv));
                }
                None => h.push_str("<td></td>"),
            }
        }
    };
    if proxy.cap.frontend {
        let c = ctx.frontend_counters(proxy);
        h.push_str("<tr class=\"frontend\">");
        lead(h, None);
        let limit = proxy.maxconn.unwrap_or(ctx.config.global.maxconn).to_string();
        let _ = write!(h, "<td class=ac><a name=\"{name}/Frontend\"></a>Frontend</td><td colspan=3></td>");
        traffic_cells(h, &c, &limit, "", true);
        h.push_str(
            "<td class=ac>OPEN</td><td></td><td></td><td></td><td></td><td colspan=3></td><td></td></tr>\n",
        );
    }
    if proxy.cap.backend {
        for srv in &proxy.servers {
            let st = ctx.server_state(proxy, srv);
            if opts.up_only && (st.health() == Health::Down || st.admin() == Admin::Maint) {
                continue;
            }
            let _ = write!(h, "<tr class=\"{}\">", row_class(&st, srv));
            lead(h, Some(&srv.name));
            let sname = escape(&srv.name);
            let stip = if page.show_legends {
                format!("<div class=tips>{}, id: {}</div>", escape(&srv.addr.to_string()), srv.id)
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<td class=ac><a name=\"{name}/{sname}\"></a><u><a class=lfsb href=\"#{name}/{sname}\">{sname}</a>{stip}</u></td>"
            );
            let _ = write!(h, "<td>0</td><td>0</td><td>-</td>");
            let limit = srv.maxconn.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
            traffic_cells(h, &st.counters, &limit, &last_session(&st.counters), false);
            server_cells(h, &st, srv);
            h.push_str("</tr>\n");
        }
        let c = ctx.backend_counters(proxy);
        let sum = backend_summary(ctx, proxy);
        h.push_str("<tr class=\"backend\">");
        lead(h, None);
        let _ = write!(
            h,
            "<td class=ac><a name=\"{name}/Backend\"></a>Backend</td><td>0</td><td>0</td><td></td>"
        );
        let limit = proxy.fullconn.unwrap_or(ctx.config.global.maxconn / 10).to_string();
        traffic_cells(h, &c, &limit, &last_session(&c), false);
        let _ = writeln!(
            h,
            "<td class=ac>{} {}</td><td class=ac>&nbsp;</td><td class=ac>{}/{}</td><td class=ac>{}</td><td class=ac>{}</td>\
             <td class=ac>&nbsp;</td><td>0</td><td>0s</td><td></td></tr>",
            human(sum.lastchg),
            if sum.up { "UP" } else { "DOWN" },
            sum.weight,
            sum.uweight,
            sum.active,
            sum.backup,
        );
    }
    h.push_str("</table>");
    if with_form {
        let _ = write!(
            h,
            "Choose the action to perform on the checked servers : <select name=action><option value=\"\"></option>\
             <option value=\"ready\">Set state to READY</option><option value=\"drain\">Set state to DRAIN</option>\
             <option value=\"maint\">Set state to MAINT</option><option value=\"hrunn\">Health: force UP</option>\
             <option value=\"hdown\">Health: force DOWN</option></select><input type=\"hidden\" name=\"b\" value=\"#{iid}\">\
             &nbsp;<input type=\"submit\" value=\"Apply\"></form>"
        );
    }
    h.push_str("<p>\n");
}

fn last_session(c: &Counters) -> String {
    c.last_session_age().map(human).unwrap_or_else(|| "?".into())
}

/// Session rate (3), Sessions (6), Bytes (2), Denied (2), Errors (3), Warnings (2).
fn traffic_cells(h: &mut String, c: &Counters, limit: &str, last: &str, frontend: bool) {
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let total = g(&c.total_sessions);
    let _ = write!(
        h,
        "<td>0</td><td>0</td><td>-</td><td>{}</td><td>{}</td><td>{limit}</td><td>{total}</td><td>{}</td><td>{last}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        c.current(),
        g(&c.max_sessions),
        if frontend { String::new() } else { total.to_string() },
        g(&c.bytes_in),
        g(&c.bytes_out),
        g(&c.denied_req),
        g(&c.denied_resp),
    );
    if frontend {
        let _ = write!(h, "<td>{}</td><td></td><td></td><td></td><td></td>", g(&c.errors_req));
    } else {
        let _ = write!(
            h,
            "<td></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            g(&c.errors_conn),
            g(&c.errors_resp),
            g(&c.retries),
            g(&c.redispatches)
        );
    }
}

/// HAProxy's row colour for a server.
fn row_class(st: &ServerState, srv: &Server) -> String {
    let side = if srv.backup { "backup" } else { "active" };
    if st.admin() == Admin::Maint {
        return "maintain".into();
    }
    let Some(check) = &srv.check else {
        return if st.admin() == Admin::Drain {
            format!("{side}_draining")
        } else {
            format!("{side}_no_check")
        };
    };
    let (rise, fall) = (check.rise.max(1), check.fall.max(1));
    let health = st.check_health(rise, fall);
    let state = match st.health() {
        Health::Down if health > 0 => "going_up",
        Health::Down => "down",
        _ if st.admin() == Admin::Drain => "draining",
        _ if health < rise + fall - 1 => "going_down",
        _ => "up",
    };
    format!("{side}_{state}")
}

/// Status, LastChk, Wght, Act, Bck, Chk, Dwn, Dwntme, Thrtle.
fn server_cells(h: &mut String, st: &ServerState, srv: &Server) {
    let lastchg = st.last_change.lock().map(|t| t.elapsed().as_secs()).unwrap_or(0);
    let status = crate::proxy::health::status_with_health(st, srv.check.as_ref());
    if srv.check.is_none() && st.admin() == Admin::Ready {
        h.push_str("<td class=ac><i>no check</i></td><td></td>");
    } else {
        let _ = write!(h, "<td class=ac>{} {}</td>", human(lastchg), escape(&status));
        let (short, code, info, duration) = check_status(st);
        if short.is_empty() || srv.check.is_none() {
            h.push_str("<td></td>");
        } else {
            let code = code.map(|c| format!("/{c}")).unwrap_or_default();
            let mut tip = describe_status(&short).to_string();
            if !info.is_empty() {
                tip.push_str(": ");
                tip.push_str(&info);
            }
            let _ = write!(
                h,
                "<td class=ac><u> {}{code} in {duration}ms<div class=tips>{}</div></u></td>",
                escape(&check_status_text(st, &short)),
                escape(&tip)
            );
        }
    }
    let eweight = if st.admin() == Admin::Drain { 0 } else { st.weight() };
    let (act, bck) = if srv.backup { ("-", "Y") } else { ("Y", "-") };
    let _ = write!(
        h,
        "<td class=ac>{eweight}/{}</td><td class=ac>{act}</td><td class=ac>{bck}</td>",
        st.weight()
    );
    if srv.check.is_some() {
        let _ = write!(
            h,
            "<td><u>{}<div class=tips>Failed Health Checks</div></u></td><td>{}</td><td>{}</td>",
            st.failed_checks.load(Ordering::Relaxed),
            st.down_transitions.load(Ordering::Relaxed),
            human(st.downtime()),
        );
    } else {
        h.push_str("<td colspan=3></td>");
    }
    h.push_str("<td class=ac>-</td>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::stats::csv::tests_support::ctx;
    use std::sync::Arc;
    use std::time::Duration;

    fn get(path: &str) -> StatsRequest {
        StatsRequest {
            method: Method::GET,
            path_and_query: path.into(),
            authorization: None,
            body: Bytes::new(),
            admin_allowed: false,
        }
    }

    fn post(body: &str, admin_allowed: bool) -> StatsRequest {
        StatsRequest {
            method: Method::POST,
            body: Bytes::from(body.to_string()),
            admin_allowed,
            ..get("/stats")
        }
    }

    fn page() -> StatsPage {
        StatsPage { uri: "/stats".into(), ..StatsPage::default() }
    }

    fn body(r: &Response<Bytes>) -> String {
        String::from_utf8_lossy(r.body()).into_owned()
    }

    fn hdr<'a>(r: &'a Response<Bytes>, name: &str) -> Option<&'a str> {
        r.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn basic_auth() {
        let ctx = ctx();
        let mut p = page();
        p.auth.push(("admin".into(), "s3cret".into()));
        let r = serve(&p, &get("/stats"), &ctx);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(hdr(&r, "www-authenticate"), Some("Basic realm=\"HAProxy Statistics\""));
        assert!(body(&r).contains("401 Unauthorized"));
        p.realm = Some("My Realm".into());
        let mut req = get("/stats");
        // admin:wrong
        req.authorization = Some("Basic YWRtaW46d3Jvbmc=".into());
        let r = serve(&p, &req, &ctx);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(hdr(&r, "www-authenticate"), Some("Basic realm=\"My Realm\""));
        // admin:s3cret
        req.authorization = Some("Basic YWRtaW46czNjcmV0".into());
        assert_eq!(serve(&p, &req, &ctx).status(), StatusCode::OK);
        req.authorization = Some("Basic !!!".into());
        assert_eq!(serve(&p, &req, &ctx).status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn base64_decoder() {
        assert_eq!(base64_decode("YWRtaW46czNjcmV0").as_deref(), Some(&b"admin:s3cret"[..]));
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("Y"), None);
        assert_eq!(base64_decode("a*bc"), None);
    }

    #[test]
    fn csv_export_and_refresh() {
        let ctx = ctx();
        let mut p = page();
        p.refresh = Some(Duration::from_secs(10));
        let r = serve(&p, &get("/stats;csv"), &ctx);
        assert_eq!((r.status(), hdr(&r, "content-type")), (StatusCode::OK, Some("text/plain")));
        assert!(body(&r).starts_with("# pxname,svname,"));
        assert_eq!(hdr(&r, "refresh"), Some("10"));
        let r = serve(&p, &get("/stats;csv;norefresh"), &ctx);
        assert_eq!(hdr(&r, "refresh"), None);
        let r = serve(&p, &get("/stats"), &ctx);
        assert_eq!((hdr(&r, "content-type"), hdr(&r, "refresh")), (Some("text/html"), Some("10")));
        assert_eq!(hdr(&r, "cache-control"), Some("no-cache"));
        let r = serve(&page(), &get("/stats"), &ctx);
        assert_eq!(hdr(&r, "refresh"), None);
    }

    #[test]
    fn up_filter_hides_down_servers() {
        let ctx = ctx();
        let app = ctx.config.proxy("app").cloned().expect("app");
        ctx.server_state(&app, &app.servers[0]).set_health(Health::Down);
        let all = body(&serve(&page(), &get("/stats"), &ctx));
        assert!(all.contains("href=\"#app/srv1\""));
        assert!(all.contains("<tr class=\"active_down\">"));
        let up = body(&serve(&page(), &get("/stats;up"), &ctx));
        assert!(!up.contains("href=\"#app/srv1\""));
        assert!(up.contains("href=\"#app/srv2\""));
        let csv = body(&serve(&page(), &get("/stats;csv;up"), &ctx));
        assert!(!csv.contains("app,srv1,"));
    }

    #[test]
    fn page_structure_and_escaping() {
        let mut cfg = (*ctx().config).clone();
        cfg.proxies[1].servers[1].name = "<b>x&y</b>".into();
        cfg.proxies[1].servers[2].backup = true;
        let ctx = StatsContext { config: Arc::new(cfg), ..ctx() };
        let mut p = page();
        p.show_node = Some(String::new());
        p.show_legends = true;
        p.hide_version = true;
        p.show_desc = Some("edge <1>".into());
        let html = body(&serve(&p, &get("/stats"), &ctx));
        assert!(!html.contains("<b>x&y</b>"));
        assert!(html.contains("&lt;b&gt;x&amp;y&lt;/b&gt;"));
        assert!(html.contains("edge &lt;1&gt;"));
        assert!(html.contains("Statistics Report for pid 4242 on lb1"));
        assert!(!html.contains("version 0.1.0"));
        assert!(html.contains("cap: frontend, mode: http, id: 2"));
        assert!(html.contains("<tr class=\"frontend\">"));
        assert!(html.contains("<tr class=\"backend\">"));
        assert!(html.contains("<tr class=\"active_going_down\">"), "srv1 starts UP with health = rise");
        assert!(html.contains("<tr class=\"backup_no_check\">"));
        assert!(!html.contains("<form method=\"post\">"), "no admin form without admin rights");
        let with_version = body(&serve(&page(), &get("/stats"), &ctx));
        assert!(with_version.contains("Lanai version 0.1.0"));
        assert!(!with_version.contains("cap: frontend"));
        let mut admin_req = get("/stats");
        admin_req.admin_allowed = true;
        let html = body(&serve(&page(), &admin_req, &ctx));
        assert!(html.contains("<form method=\"post\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"b\" value=\"#3\">"));
        assert!(html.contains("name=\"s\" value=\"&lt;b&gt;x&amp;y&lt;/b&gt;\""));
    }

    #[test]
    fn admin_actions_redirect_like_haproxy() {
        let ctx = ctx();
        let app = ctx.config.proxy("app").cloned().expect("app");
        let srv1 = ctx.server_state(&app, &app.servers[0]);
        let srv2 = ctx.server_state(&app, &app.servers[1]);
        let r = serve(&page(), &post("s=srv1&s=srv2&action=drain&b=%233", true), &ctx);
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(hdr(&r, "location"), Some("/stats;st=DONE"));
        assert_eq!((srv1.admin(), srv2.admin()), (Admin::Drain, Admin::Drain));
        let r = serve(&page(), &post("s=srv1&action=maint&b=%233", false), &ctx);
        assert_eq!(hdr(&r, "location"), Some("/stats;st=DENY"));
        assert_eq!(srv1.admin(), Admin::Drain);
        let r = serve(&page(), &post("s=srv1&s=nope&action=ready&b=%233", true), &ctx);
        assert_eq!(hdr(&r, "location"), Some("/stats;st=PART"));
        assert_eq!(srv1.admin(), Admin::Ready);
        let r = serve(&page(), &post("s=srv1&action=maint&b=%2399", true), &ctx);
        assert_eq!(hdr(&r, "location"), Some("/stats;st=ERRP"));
        let r = serve(&page(), &post("s=srv1&action=bogus&b=%233", true), &ctx);
        assert_eq!(hdr(&r, "location"), Some("/stats;st=ERRP"));
        let r = serve(&page(), &post("action=maint&b=%233", true), &ctx);
        assert_eq!(hdr(&r, "location"), Some("/stats;st=NONE"));
        let r = serve(&page(), &post("s=srv1&action=hdown&b=%233", true), &ctx);
        assert_eq!(hdr(&r, "location"), Some("/stats;st=DONE"));
        assert_eq!(srv1.health(), Health::Down);
        let html = body(&serve(&page(), &get("/stats;st=DONE"), &ctx));
        assert!(html.contains("<div class=active_up><a class=lfsb href=\"/stats\" title=\"Remove this message\">[X]</a> Action processed successfully.</div>"));
    }

    #[test]
    fn options_and_decoding() {
        let o = parse_options(&page(), "/stats;up;norefresh;st=DONE");
        assert_eq!(
            o,
            PageOptions {
                up_only: true,
                norefresh: true,
                status: Some("DONE".into()),
                ..PageOptions::default()
            }
        );
        let p = StatsPage::default();
        assert!(parse_options(&p, "/haproxy?stats;csv").csv);
        assert_eq!(parse_options(&page(), "/stats?scope=ap%70").scope.as_deref(), Some("app"));
        assert_eq!(percent_decode("a%2Fb+c%zz%"), "a/b c%zz%");
        assert_eq!(human(59), "59s");
        assert_eq!(human(61), "1m1s");
        assert_eq!(human(3700), "1h1m");
        assert_eq!(human(90000), "1d1h");
    }

    /// Every data row has as many cells (counting colspans) as the header.
    #[test]
    fn rows_line_up_with_the_header() {
        let ctx = ctx();
        let app = ctx.config.proxy("app").cloned().expect("app");
        ctx.server_state(&app, &app.servers[0]).set_admin(Admin::Maint);
        ctx.server_state(&app, &app.servers[1]).set_admin(Admin::Drain);
        let cell = regex::Regex::new(r"<td(?: colspan=(\d+))?[ >]").expect("regex");
        let row = regex::Regex::new(
            r#"<tr class="(frontend|backend|active_[a-z_]+|backup_[a-z_]+|maintain)">(.*)"#,
        )
        .expect("regex");
        let tips = regex::Regex::new(r"<div class=tips>.*?</div>").expect("regex");
        for admin in [false, true] {
            let mut req = get("/stats");
            req.admin_allowed = admin;
            let html = body(&serve(&page(), &req, &ctx));
            let mut rows = 0;
            let mut in_form = false;
            for line in html.lines() {
                if line.contains("<form method=\"post\">") {
                    in_form = true;
                }
                // Strip tooltips: their inner tables are not columns.
                let line = tips.replace_all(line, "");
                if let Some(caps) = row.captures(&line) {
                    let cols: usize = cell
                        .captures_iter(&caps[2])
                        .map(|c| c.get(1).and_then(|m| m.as_str().parse().ok()).unwrap_or(1))
                        .sum();
                    // Name column + 30 data columns (+ the checkbox column of the admin form).
                    assert_eq!(cols, 31 + usize::from(in_form), "{}: {line}", &caps[1]);
                    rows += 1;
                }
                if line.contains("</form>") {
                    in_form = false;
                }
            }
            assert!(rows >= 7, "rows found: {rows}");
        }
    }

    #[test]
    fn scope_filters_proxies() {
        let html = body(&serve(&page(), &get("/stats?scope=ap"), &ctx()));
        assert!(html.contains("href=\"#app\""));
        assert!(!html.contains("href=\"#www\""));
    }
}
