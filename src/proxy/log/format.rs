//! The log lines of HAProxy 2.6's predefined formats. Each function writes
//! exactly what the corresponding `log-format` string produces:
//!
//! * `option httplog`:
//!   `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`
//! * `option httplog clf`:
//!   `%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl`
//! * `option tcplog`:
//!   `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`
//! * neither: one line per accepted connection,
//!   `Connect from IP:PORT to IP:PORT (frontend/HTTP|TCP)`.
//!
//! Header captures (`%hr`, `%hs`) are not supported, so they are always empty
//! and, as in HAProxy, take no room in the line.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::SystemTime;

use super::time;
use crate::conf::haproxy::model::{Mode, Proxy};

/// Which line a proxy logs per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    /// `option httplog`: [`format_httplog`] at the end of each request.
    Http,
    /// `option httplog clf`: [`format_httplog_clf`].
    HttpClf,
    /// `option tcplog`: [`format_tcplog`] at the end of the session.
    Tcp,
    /// Neither: [`format_connect`] when the connection is accepted.
    Connect,
}

impl LogStyle {
    /// The style HAProxy uses for `proxy`. `option httplog` on a `mode tcp`
    /// proxy falls back to tcplog, as HAProxy does (with a warning at load).
    pub fn for_proxy(proxy: &Proxy) -> LogStyle {
        let o = &proxy.options;
        match proxy.mode {
            Mode::Http if o.httplog_clf => LogStyle::HttpClf,
            Mode::Http if o.httplog => LogStyle::Http,
            _ if o.tcplog || o.httplog || o.httplog_clf => LogStyle::Tcp,
            _ => LogStyle::Connect,
        }
    }
}

/// What `option httplog` reports about one HTTP transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLogRecord {
    /// `%ci:%cp`.
    pub client: SocketAddr,
    /// `%tr`: when the request started (local time, milliseconds).
    pub accept_date: SystemTime,
    /// `%ft`: the frontend's name; see `frontend_tls`.
    pub frontend: String,
    /// The connection came in over TLS: HAProxy appends `~` to `%ft`.
    pub frontend_tls: bool,
    /// `%b` (`<NOSRV>` is a server name, not a backend one).
    pub backend: String,
    /// `%s`: server name, `<NOSRV>` when none was picked, `<STATS>` for the stats page.
    pub server: String,
    /// `%TR`: ms to receive the full request headers (-1 when not reached).
    pub tr: i64,
    /// `%Tw`: ms spent in queues.
    pub tw: i64,
    /// `%Tc`: ms to connect to the server.
    pub tc: i64,
    /// `%Tr`: ms for the server to send the response headers.
    pub tr_server: i64,
    /// `%Ta`: total active ms of the request (accept to last byte).
    pub ta: i64,
    /// `%ST`: status sent to the client (-1 printed when 0: no response).
    pub status: u16,
    /// `%B`: bytes sent to the client (headers included).
    pub bytes_read: u64,
    /// `%CC` / `%CS`: captured request/response cookie; `None` prints `-`.
    pub captured_request_cookie: Option<String>,
    pub captured_response_cookie: Option<String>,
    /// `%tsc`, e.g. `*b"----"`, `*b"SC--"`, `*b"CD--"`.
    pub termination_state: [u8; 4],
    /// `%ac` process-wide, `%fc` frontend, `%bc` backend, `%sc` server connections.
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srv_conn: u32,
    /// `%rc`: connection retries.
    pub retries: u32,
    /// `option redispatch` moved the request to another server: `%rc` gets a `+`.
    pub redispatched: bool,
    /// `%sq` / `%bq`: requests queued before this one on the server / backend.
    pub srv_queue: u32,
    pub backend_queue: u32,
    /// `%r`: the request line as received, e.g. `GET / HTTP/1.1`
    /// (`<BADREQ>` when it could not be parsed).
    pub request_line: String,
}

impl HttpLogRecord {
    /// A record with nothing reached yet: timers -1, no status, no server
    /// (`<NOSRV>`), state `----`, request `<BADREQ>`; the engine fills it in
    /// as the transaction progresses.
    pub fn new(client: SocketAddr, accept_date: SystemTime, frontend: &str) -> Self {
        HttpLogRecord {
            client,
            accept_date,
            frontend: frontend.to_string(),
            frontend_tls: false,
            backend: frontend.to_string(),
            server: "<NOSRV>".into(),
            tr: -1,
            tw: -1,
            tc: -1,
            tr_server: -1,
            ta: -1,
            status: 0,
            bytes_read: 0,
            captured_request_cookie: None,
            captured_response_cookie: None,
            termination_state: *b"----",
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srv_conn: 0,
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
            request_line: "<BADREQ>".into(),
        }
    }
}

/// What `option tcplog` reports about one TCP session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpLogRecord {
    pub client: SocketAddr,
    /// `%t`: accept date.
    pub accept_date: SystemTime,
    pub frontend: String,
    pub frontend_tls: bool,
    pub backend: String,
    pub server: String,
    /// `%Tw`, `%Tc`, `%Tt` (total session duration) in ms, -1 when not reached.
    pub tw: i64,
    pub tc: i64,
    pub tt: i64,
    /// `%B`: bytes sent to the client.
    pub bytes_read: u64,
    /// `%ts`, e.g. `*b"--"`, `*b"cD"`, `*b"SC"`.
    pub termination_state: [u8; 2],
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srv_conn: u32,
    pub retries: u32,
    pub redispatched: bool,
    pub srv_queue: u32,
    pub backend_queue: u32,
}

impl TcpLogRecord {
    /// A record with nothing reached yet (timers -1, `<NOSRV>`, state `--`).
    pub fn new(client: SocketAddr, accept_date: SystemTime, frontend: &str) -> Self {
        TcpLogRecord {
            client,
            accept_date,
            frontend: frontend.to_string(),
            frontend_tls: false,
            backend: frontend.to_string(),
            server: "<NOSRV>".into(),
            tw: -1,
            tc: -1,
            tt: -1,
            bytes_read: 0,
            termination_state: *b"--",
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srv_conn: 0,
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
        }
    }
}

/// `IP:PORT` as HAProxy prints addresses: IPv6 without brackets.
fn addr(out: &mut String, a: SocketAddr) {
    let _ = write!(out, "{}:{}", a.ip(), a.port());
}

/// `[21/Nov/2026:10:12:13.123]`'s inside, in local time (`%t`, `%tr`).
fn date_ms(out: &mut String, t: SystemTime) {
    let tm = time::local(t);
    let _ = write!(
        out,
        "{:02}/{}/{:04}:{:02}:{:02}:{:02}.{:03}",
        tm.day,
        tm.month_name(),
        tm.year,
        tm.hour,
        tm.min,
        tm.sec,
        tm.millis
    );
}

/// `21/Nov/2026:10:12:13 +0000` in GMT (`%trg`, used by the CLF format).
fn date_gmt(out: &mut String, t: SystemTime) {
    let tm = time::gmt(t);
    let _ = write!(
        out,
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        tm.day,
        tm.month_name(),
        tm.year,
        tm.hour,
        tm.min,
        tm.sec
    );
}

fn frontend(out: &mut String, name: &str, tls: bool) {
    out.push_str(name);
    if tls {
        out.push('~');
    }
}

fn retries(out: &mut String, n: u32, redispatched: bool) {
    if redispatched {
        out.push('+');
    }
    let _ = write!(out, "{n}");
}

/// `%ST`: HAProxy prints -1 when no status was sent.
fn status(out: &mut String, s: u16) {
    if s == 0 {
        out.push_str("-1");
    } else {
        let _ = write!(out, "{s}");
    }
}

/// The request line with HAProxy's URL log escaping: `"`, `#`, control bytes
/// and bytes >= 127 become `#XX` (upper-case hex), so a line cannot break the
/// quoting or span several log lines.
fn escaped_request(out: &mut String, line: &str) {
    for b in line.bytes() {
        if !(32..127).contains(&b) || b == b'"' || b == b'#' {
            let _ = write!(out, "#{b:02X}");
        } else {
            out.push(char::from(b));
        }
    }
}

fn state(out: &mut String, s: &[u8]) {
    out.extend(s.iter().map(|&b| if b.is_ascii_graphic() { char::from(b) } else { '?' }));
}

/// `option httplog`.
pub fn format_httplog(r: &HttpLogRecord) -> String {
    let mut o = String::with_capacity(160 + r.request_line.len());
    addr(&mut o, r.client);
    o.push_str(" [");
    date_ms(&mut o, r.accept_date);
    o.push_str("] ");
    frontend(&mut o, &r.frontend, r.frontend_tls);
    let _ = write!(o, " {}/{} {}/{}/{}/{}/{} ", r.backend, r.server, r.tr, r.tw, r.tc, r.tr_server, r.ta);
    status(&mut o, r.status);
    let _ = write!(
        o,
        " {} {} {} ",
        r.bytes_read,
        r.captured_request_cookie.as_deref().unwrap_or("-"),
        r.captured_response_cookie.as_deref().unwrap_or("-")
    );
    state(&mut o, &r.termination_state);
    let _ = write!(o, " {}/{}/{}/{}/", r.actconn, r.feconn, r.beconn, r.srv_conn);
    retries(&mut o, r.retries, r.redispatched);
    let _ = write!(o, " {}/{} \"", r.srv_queue, r.backend_queue);
    escaped_request(&mut o, &r.request_line);
    o.push('"');
    o
}

/// `option httplog clf`: Common Log Format first, HAProxy's fields after.
pub fn format_httplog_clf(r: &HttpLogRecord) -> String {
    let mut o = String::with_capacity(200 + r.request_line.len());
    let _ = write!(o, "{} - - [", r.client.ip());
    date_gmt(&mut o, r.accept_date);
    o.push_str("] \"");
    escaped_request(&mut o, &r.request_line);
    o.push_str("\" ");
    status(&mut o, r.status);
    let tm = time::local(r.accept_date);
    let _ = write!(o, " {} \"\" \"\" {} {:03} \"", r.bytes_read, r.client.port(), tm.millis);
    frontend(&mut o, &r.frontend, r.frontend_tls);
    let _ = write!(
        o,
        "\" \"{}\" \"{}\" {} {} {} {} {} ",
        r.backend, r.server, r.tr, r.tw, r.tc, r.tr_server, r.ta
    );
    state(&mut o, &r.termination_state);
    let _ = write!(o, " {} {} {} {} ", r.actconn, r.feconn, r.beconn, r.srv_conn);
    retries(&mut o, r.retries, r.redispatched);
    // Quoted cookie captures are empty strings, not `-`, in this format; the
    // empty header captures at the end leave one trailing space.
    let _ = write!(
        o,
        " {} {} \"{}\" \"{}\" ",
        r.srv_queue,
        r.backend_queue,
        r.captured_request_cookie.as_deref().unwrap_or(""),
        r.captured_response_cookie.as_deref().unwrap_or("")
    );
    o
}

/// `option tcplog`.
pub fn format_tcplog(r: &TcpLogRecord) -> String {
    let mut o = String::with_capacity(128);
    addr(&mut o, r.client);
    o.push_str(" [");
    date_ms(&mut o, r.accept_date);
    o.push_str("] ");
    frontend(&mut o, &r.frontend, r.frontend_tls);
    let _ = write!(o, " {}/{} {}/{}/{} {} ", r.backend, r.server, r.tw, r.tc, r.tt, r.bytes_read);
    state(&mut o, &r.termination_state);
    let _ = write!(o, " {}/{}/{}/{}/", r.actconn, r.feconn, r.beconn, r.srv_conn);
    retries(&mut o, r.retries, r.redispatched);
    let _ = write!(o, " {}/{}", r.srv_queue, r.backend_queue);
    o
}

/// The line HAProxy logs at accept time for a proxy without `option httplog`
/// or `option tcplog`: `Connect from 127.0.0.1:40946 to 127.0.0.1:8080 (www/HTTP)`.
pub fn format_connect(client: SocketAddr, local: SocketAddr, frontend: &str, http: bool) -> String {
    let mut o = String::with_capacity(64 + frontend.len());
    o.push_str("Connect from ");
    addr(&mut o, client);
    o.push_str(" to ");
    addr(&mut o, local);
    let _ = write!(o, " ({frontend}/{})", if http { "HTTP" } else { "TCP" });
    o
}
