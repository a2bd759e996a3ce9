//! Typed model of a haproxy.cfg. The parser (`parse.rs`) produces it; the data
//! plane (`crate::proxy`) consumes it. Everything is resolved at parse time:
//! `defaults` are folded into each proxy, `default-server` into each server,
//! named ACLs into the conditions that use them, `ca-base`/`crt-base` into paths.
//! Times are `Duration`s.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A whole configuration file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub global: Global,
    /// Every `frontend`, `backend` and `listen` section, in file order.
    pub proxies: Vec<Proxy>,
}

impl Config {
    pub fn proxy(&self, name: &str) -> Option<&Proxy> {
        self.proxies.iter().find(|p| p.name == name)
    }

    pub fn frontends(&self) -> impl Iterator<Item = &Proxy> {
        self.proxies.iter().filter(|p| p.cap.frontend)
    }

    pub fn backends(&self) -> impl Iterator<Item = &Proxy> {
        self.proxies.iter().filter(|p| p.cap.backend)
    }
}

/// The `global` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    pub maxconn: u32,
    /// Line of `maxconn` (0: the default).
    pub maxconn_line: usize,
    /// `ulimit-n`: the open-file limit to set instead of the one `maxconn` implies.
    pub ulimit_n: Option<u64>,
    pub ulimit_n_line: usize,
    /// `strict-limits` (the default, as in HAProxy 2.6): an open-file limit
    /// that cannot be raised to what `maxconn`/`ulimit-n` ask is an error.
    pub strict_limits: bool,
    pub nbthread: Option<usize>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub chroot: Option<PathBuf>,
    /// Line of `chroot` (for the check that the directory exists).
    pub chroot_line: usize,
    pub pidfile: Option<PathBuf>,
    pub logs: Vec<LogTarget>,
    pub stats_sockets: Vec<StatsSocket>,
    /// `stats timeout`: idle timeout of a runtime-API session.
    pub stats_timeout: Duration,
    pub hard_stop_after: Option<Duration>,
    pub ssl_default_bind: TlsDefaults,
    pub ssl_default_server: TlsDefaults,
    /// `node` (shown by `stats show-node`); defaults to the host name at run time.
    pub node: Option<String>,
    /// `description` (shown by `stats show-desc` without an argument).
    pub description: Option<String>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            maxconn: 4096,
            maxconn_line: 0,
            ulimit_n: None,
            ulimit_n_line: 0,
            strict_limits: true,
            nbthread: None,
            user: None,
            group: None,
            chroot: None,
            chroot_line: 0,
            pidfile: None,
            logs: Vec::new(),
            stats_sockets: Vec::new(),
            stats_timeout: Duration::from_secs(10),
            hard_stop_after: None,
            ssl_default_bind: TlsDefaults::default(),
            ssl_default_server: TlsDefaults::default(),
            node: None,
            description: None,
        }
    }
}

/// `ssl-default-bind-*` / `ssl-default-server-*`, mapped onto what rustls offers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsDefaults {
    /// Cipher suites (rustls names) allowed; empty = rustls defaults.
    pub ciphersuites: Vec<String>,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// `stats socket PATH [mode OCTAL] [level user|operator|admin]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSocket {
    pub line: usize,
    pub path: PathBuf,
    pub mode: Option<u32>,
    pub level: RuntimeLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuntimeLevel {
    User,
    Operator,
    Admin,
}

/// A `log` line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogTarget {
    pub line: usize,
    pub dest: LogDest,
    pub facility: Facility,
    /// Most verbose level sent (`info` when not given).
    pub max_level: Level,
    /// `format rfc3164|rfc5424|short|raw` (`rfc3164` when not given).
    pub format: LogFormat,
    /// `len N`: longest line sent, in bytes (HAProxy's default is 1024).
    pub max_len: Option<usize>,
}

/// How a `log` target frames each line. HAProxy's default, `rfc3164`, applies
/// to every destination, stdout included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `<PRI>Mmm dd hh:mm:ss tag[pid]: message`.
    #[default]
    Rfc3164,
    /// `<LEVEL>message`: severity only, no facility (sd-daemon style).
    Short,
    /// `<PRI>1 2026-11-21T10:12:13.123456+00:00 - tag pid - - message`.
    Rfc5424,
    /// The message alone.
    Raw,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogDest {
    Stdout,
    Stderr,
    /// A Unix datagram socket, usually `/dev/log`.
    Unix(PathBuf),
    /// Syslog over UDP.
    Udp(SocketAddr),
}

/// Syslog facilities, numbered as RFC 5424 numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    Kern = 0,
    User = 1,
    Mail = 2,
    Daemon = 3,
    Auth = 4,
    Syslog = 5,
    Lpr = 6,
    News = 7,
    Uucp = 8,
    Cron = 9,
    Auth2 = 10,
    Ftp = 11,
    Ntp = 12,
    Audit = 13,
    Alert = 14,
    Cron2 = 15,
    Local0 = 16,
    Local1 = 17,
    Local2 = 18,
    Local3 = 19,
    Local4 = 20,
    Local5 = 21,
    Local6 = 22,
    Local7 = 23,
}

/// Syslog severities (lower is more severe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

/// Whether a section can accept connections, forward them, or both (`listen`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub frontend: bool,
    pub backend: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Tcp,
    Http,
}

/// One `frontend`, `backend` or `listen` section with `defaults` folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct Proxy {
    pub name: String,
    /// Line of the section header.
    pub line: usize,
    pub cap: Capabilities,
    pub mode: Mode,
    /// Empty when logging is off for this proxy (`log global` copies the global targets).
    pub logs: Vec<LogTarget>,
    pub options: ProxyOptions,
    pub timeouts: Timeouts,
    pub errorfiles: BTreeMap<u16, PathBuf>,
    /// Line of each `errorfile`, for diagnostics about the file.
    pub errorfile_lines: BTreeMap<u16, usize>,

    // ---- frontend side ----
    pub binds: Vec<Bind>,
    pub maxconn: Option<u32>,
    pub default_backend: Option<String>,
    pub use_backends: Vec<UseBackend>,
    /// `http-request` rules in order (includes the old `redirect` keyword).
    pub http_request: Vec<HttpRequestRule>,
    pub http_response: Vec<HttpResponseRule>,
    pub tcp_request: Vec<TcpRequestRule>,
    /// `tcp-request inspect-delay`.
    pub inspect_delay: Option<Duration>,
    pub monitor_uri: Option<String>,

    // ---- backend side ----
    pub balance: Balance,
    pub servers: Vec<Server>,
    pub retries: u32,
    pub retry_on: RetryOn,
    pub health: HealthCheck,
    pub cookie: Option<CookiePersistence>,
    pub http_reuse: HttpReuse,
    pub stats: Option<StatsPage>,
    /// `fullconn`, kept for `show stat`.
    pub fullconn: Option<u32>,
}

impl Proxy {
    /// A proxy with HAProxy's built-in defaults (what an empty section means):
    /// mode tcp, `retries 3`, `retry-on conn-failure`, round robin, TCP connect checks.
    pub fn new(name: impl Into<String>, line: usize, cap: Capabilities) -> Self {
        Proxy {
            name: name.into(),
            line,
            cap,
            mode: Mode::default(),
            logs: Vec::new(),
            options: ProxyOptions::default(),
            timeouts: Timeouts::default(),
            errorfiles: BTreeMap::new(),
            errorfile_lines: BTreeMap::new(),
            binds: Vec::new(),
            maxconn: None,
            default_backend: None,
            use_backends: Vec::new(),
            http_request: Vec::new(),
            http_response: Vec::new(),
            tcp_request: Vec::new(),
            inspect_delay: None,
            monitor_uri: None,
            balance: Balance::default(),
            servers: Vec::new(),
            retries: 3,
            retry_on: RetryOn::haproxy_default(),
            health: HealthCheck::default(),
            cookie: None,
            http_reuse: HttpReuse::default(),
            stats: None,
            fullconn: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyOptions {
    pub forwardfor: Option<ForwardFor>,
    pub httplog: bool,
    /// `option httplog clf`.
    pub httplog_clf: bool,
    pub tcplog: bool,
    pub dontlognull: bool,
    pub http_server_close: bool,
    pub httpclose: bool,
    pub http_keep_alive: bool,
    pub nolinger: bool,
    pub redispatch: bool,
    pub log_health_checks: bool,
    pub abortonclose: bool,
    /// `option allbackups`: use every backup server at once, not only the first.
    pub allbackups: bool,
    /// `option splice-auto` / `splice-request` / `splice-response` (tcp relay).
    pub splice: bool,
}

/// `option forwardfor [except NET] [header NAME] [if-none]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardFor {
    pub header: String,
    pub except: Option<IpNet>,
    pub if_none: bool,
}

/// An IPv4 or IPv6 network (`10.0.0.0/8`, or a single address as /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(ip6)) => match ip6.to_ipv4_mapped() {
                Some(ip4) => self.contains(IpAddr::V4(ip4)),
                None => false,
            },
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

/// Timeouts; `None` means not set (HAProxy warns when client/server/connect are
/// missing; the data plane then uses no timeout for that step).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub http_request: Option<Duration>,
    pub http_keep_alive: Option<Duration>,
    pub queue: Option<Duration>,
    pub tunnel: Option<Duration>,
    pub check: Option<Duration>,
    pub client_fin: Option<Duration>,
    pub server_fin: Option<Duration>,
}

/// `bind ADDR:PORT[,ADDR:PORT…] [options]`: one `Bind` per address.
#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    pub line: usize,
    pub addr: SocketAddr,
    /// `ssl crt …` given: terminate TLS on this socket.
    pub tls: Option<BindTls>,
    pub accept_proxy: bool,
    /// `name`, shown in stats and logs.
    pub name: Option<String>,
    pub v4v6: bool,
    pub v6only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BindTls {
    /// `crt` arguments, resolved against `crt-base`: PEM files, or directories
    /// whose every file is loaded. Several certificates are selected by SNI.
    pub certs: Vec<PathBuf>,
    /// `alpn h2,http/1.1`; empty = no ALPN.
    pub alpn: Vec<String>,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
    pub ciphersuites: Vec<String>,
    /// `ca-file` + `verify optional|required` for client certificates.
    pub ca_file: Option<PathBuf>,
    pub verify: Verify,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verify {
    #[default]
    None,
    Optional,
    Required,
}

/// `use_backend NAME if|unless COND` (the name may be a `%[...]` expression in
/// HAProxy; only literal names are supported).
#[derive(Debug, Clone, PartialEq)]
pub struct UseBackend {
    pub line: usize,
    pub backend: String,
    pub cond: Option<Condition>,
}

// ---------------------------------------------------------------- conditions

/// `if COND` / `unless COND`. `COND` is a disjunction (`||` / `or`) of
/// conjunctions (terms side by side) of possibly negated ACLs.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub unless: bool,
    pub any_of: Vec<Vec<CondTerm>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CondTerm {
    pub negated: bool,
    /// A named ACL is the OR of all its `acl` lines; an anonymous `{ … }` ACL
    /// and a predefined one are single-element lists.
    pub acl: Vec<AclMatch>,
    /// For diagnostics and display: the ACL's name, or the `{ … }` text.
    pub label: String,
}

/// A fetch, a match method and patterns: `path_beg /api /static` is
/// `Fetch::Path`, `MatchMethod::Beg`, `["/api", "/static"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AclMatch {
    pub fetch: Fetch,
    pub method: MatchMethod,
    pub patterns: Vec<Pattern>,
    /// `-i`: case-insensitive string matches.
    pub ignore_case: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fetch {
    Src,
    SrcPort,
    Dst,
    DstPort,
    Path,
    /// The whole request target as received.
    Url,
    /// Query string (after `?`), `query`.
    Query,
    /// `hdr(name[,occ])`: all values of the header (occurrence -1 = last).
    Hdr {
        name: String,
        occurrence: Option<i32>,
    },
    /// `req.hdr_cnt(name)`.
    HdrCnt(String),
    Method,
    /// `req.ver` / predefined `HTTP_1.1`.
    HttpVersion,
    SslFc,
    /// `ssl_fc_sni`: the SNI of a TLS connection we terminated.
    SslFcSni,
    /// `req.ssl_sni` (tcp mode): SNI read from the buffered ClientHello.
    ReqSslSni,
    /// `req.ssl_hello_type`.
    ReqSslHelloType,
    /// `req.len` / `req_len`: bytes buffered in tcp mode.
    ReqLen,
    /// `nbsrv(backend)`: usable servers of a backend.
    NbSrv(String),
    /// `always_true` / `always_false` as fetches.
    Always(bool),
    /// `url_param(name)`.
    UrlParam(String),
    /// `req.cook(name)` / `cook(name)`.
    Cookie(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMethod {
    /// Exact string (or the fetch's natural type: ip, int, bool).
    Exact,
    Beg,
    End,
    Sub,
    Reg,
    /// Domain match: pattern between dots/slashes.
    Dom,
    /// Directory match: pattern between slashes.
    Dir,
    /// Length compare on strings.
    Len,
    /// Sample present at all.
    Found,
    /// Integer comparisons (`eq`, `gt`, ranges) in the patterns.
    Int,
    /// IP/network match.
    Ip,
    /// Boolean: the fetch is true / non-zero.
    Bool,
}

#[derive(Debug, Clone)]
pub enum Pattern {
    Str(String),
    /// Compiled regex (case-insensitivity already baked in).
    Regex(regex::Regex),
    Net(IpNet),
    /// Inclusive integer range (`eq 5` is 5..=5, `ge 5` is 5..=MAX, `1024:65535`).
    IntRange(i64, i64),
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Pattern::Str(a), Pattern::Str(b)) => a == b,
            (Pattern::Regex(a), Pattern::Regex(b)) => a.as_str() == b.as_str(),
            (Pattern::Net(a), Pattern::Net(b)) => a == b,
            (Pattern::IntRange(a1, a2), Pattern::IntRange(b1, b2)) => a1 == b1 && a2 == b2,
            _ => false,
        }
    }
}

// ---------------------------------------------------------------- rules

/// A string that may contain `%[fetch]` samples and `%ci`-style log variables,
/// as in `set-header X-Client %[src]`. Parsed into parts once: `%%` is already
/// a literal `%`; `%ci`-style variables are kept as literal text.
#[derive(Debug, Clone, PartialEq)]
pub struct FmtString {
    pub parts: Vec<FmtPart>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FmtPart {
    Lit(String),
    Sample(Fetch),
}

impl FmtString {
    pub fn literal(s: &str) -> Self {
        FmtString { parts: vec![FmtPart::Lit(s.to_string())] }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequestRule {
    pub line: usize,
    pub action: HttpRequestAction,
    pub cond: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HttpRequestAction {
    Redirect(Redirect),
    SetHeader {
        name: String,
        value: FmtString,
    },
    AddHeader {
        name: String,
        value: FmtString,
    },
    DelHeader {
        name: String,
    },
    /// Regex applied to each whole header line value. `replace` is in the regex
    /// crate's syntax (`${1}`): the parser converts HAProxy's `\1`.
    ReplaceHeader {
        name: String,
        regex: RegexPat,
        /// In regex-crate syntax: HAProxy's `\1` is given as `${1}`, a literal `$` as `$$`.
        replace: String,
    },
    /// Regex applied to each comma-separated value.
    ReplaceValue {
        name: String,
        regex: RegexPat,
        /// In regex-crate syntax: HAProxy's `\1` is given as `${1}`, a literal `$` as `$$`.
        replace: String,
    },
    SetPath(FmtString),
    Deny {
        status: u16,
    },
    Return(HttpReturn),
    /// `http-request disable-l7-retry`.
    DisableL7Retry,
    /// `http-request use-service prometheus-exporter`.
    PrometheusExporter,
    Allow,
}

/// A regex kept with its source text (regex::Regex is not PartialEq).
#[derive(Debug, Clone)]
pub struct RegexPat(pub regex::Regex);

impl PartialEq for RegexPat {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    pub kind: RedirectKind,
    /// 301, 302 (default), 303, 307, 308.
    pub code: u16,
    pub drop_query: bool,
    pub append_slash: bool,
    /// `set-cookie NAME[=VALUE]` / `clear-cookie NAME`.
    pub set_cookie: Option<String>,
    pub clear_cookie: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RedirectKind {
    /// `location <fmt>`: Location is exactly this.
    Location(FmtString),
    /// `prefix <fmt>`: Location is prefix + original URI.
    Prefix(FmtString),
    /// `scheme <fmt>`: Location is scheme://host + original URI.
    Scheme(FmtString),
}

/// `http-request return [status N] [content-type T] [string S | file F | errorfile F] [hdr N V]*`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReturn {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: ReturnBody,
    pub headers: Vec<(String, FmtString)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReturnBody {
    None,
    String(FmtString),
    /// `file PATH`: the file's bytes are the body (read when the config is loaded).
    File(PathBuf),
    /// `errorfile PATH`: the file is a whole raw HTTP response.
    ErrorFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponseRule {
    pub line: usize,
    pub action: HttpResponseAction,
    pub cond: Option<Condition>,
}

/// `replace` fields use regex-crate syntax, as in `HttpRequestAction::ReplaceHeader`.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpResponseAction {
    SetHeader { name: String, value: FmtString },
    AddHeader { name: String, value: FmtString },
    DelHeader { name: String },
    ReplaceHeader { name: String, regex: RegexPat, replace: String },
    ReplaceValue { name: String, regex: RegexPat, replace: String },
    Deny { status: u16 },
    Allow,
}

/// `tcp-request connection|content accept|reject [if COND]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpRequestRule {
    pub line: usize,
    /// `content` rules wait for data (up to `inspect-delay`); `connection` rules do not.
    pub content: bool,
    pub accept: bool,
    pub cond: Option<Condition>,
}

// ---------------------------------------------------------------- backend side

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Balance {
    #[default]
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    Source,
    /// `uri [whole] [len N] [depth N]`.
    Uri {
        whole: bool,
        len: Option<usize>,
        depth: Option<usize>,
    },
    UrlParam(String),
    /// `hdr(name)`.
    Hdr(String),
    /// `random [draws]`.
    Random {
        draws: u32,
    },
}

/// The conditions `retry-on` retries on; `all-retryable-errors` sets them all
/// except the HTTP status ones HAProxy leaves out (it includes 5xx-class codes
/// for idempotent requests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryOn {
    pub conn_failure: bool,
    pub empty_response: bool,
    pub junk_response: bool,
    pub response_timeout: bool,
    pub zero_rtt_rejected: bool,
    /// HTTP status codes to retry on (`404`, `500`, … or expanded from `5xx`? no: HAProxy lists codes).
    pub statuses: Vec<u16>,
}

impl RetryOn {
    /// HAProxy's default is `retry-on conn-failure`.
    pub fn haproxy_default() -> Self {
        RetryOn { conn_failure: true, ..RetryOn::default() }
    }

    /// True when any L7 condition (more than connection failures) is set, which
    /// means the request must be kept to be re-sent.
    pub fn needs_l7_buffer(&self) -> bool {
        self.empty_response || self.junk_response || self.response_timeout || !self.statuses.is_empty()
    }
}

/// A `server` line with `default-server` folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub line: usize,
    pub name: String,
    /// Host name as written, when the address was not a literal IP (resolved at load).
    pub host: Option<String>,
    pub addr: SocketAddr,
    /// `id`, or the position (1-based) in the backend.
    pub id: u32,
    pub weight: u32,
    pub backup: bool,
    pub disabled: bool,
    pub maxconn: Option<u32>,
    pub cookie: Option<String>,
    pub check: Option<ServerCheck>,
    pub tls: Option<ServerTls>,
    pub send_proxy: Option<ProxyProtocolVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocolVersion {
    V1,
    V2,
}

/// `check` and its timing options on a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerCheck {
    pub inter: Duration,
    pub fastinter: Duration,
    pub downinter: Duration,
    pub rise: u32,
    pub fall: u32,
    /// `port`/`addr`: where checks go if not the server's own address.
    pub port: Option<u16>,
    pub addr: Option<IpAddr>,
    /// `check-ssl` (or `ssl` on the server): checks are done over TLS.
    pub ssl: bool,
}

impl Default for ServerCheck {
    fn default() -> Self {
        ServerCheck {
            inter: Duration::from_secs(2),
            fastinter: Duration::from_secs(2),
            downinter: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            port: None,
            addr: None,
            ssl: false,
        }
    }
}

/// `ssl [verify none|required] [ca-file F] [crt F] [sni EXPR] [alpn …]` on a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTls {
    pub verify: Verify,
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM with key) presented to the server.
    pub crt: Option<PathBuf>,
    /// SNI to send: a literal, or `req.hdr(host)`.
    pub sni: Option<ServerSni>,
    pub alpn: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerSni {
    Literal(String),
    /// `sni req.hdr(host)`: the request's Host header.
    RequestHost,
}

/// How servers are checked. Applies to servers with `check`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum HealthCheck {
    /// Plain TCP connect.
    #[default]
    Connect,
    /// `option httpchk` (+ `http-check send`/`expect`).
    Http(HttpCheck),
    /// `option tcp-check` with its `tcp-check` steps (empty = connect only).
    TcpCheck(Vec<TcpCheckStep>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    pub method: String,
    pub uri: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// `None`: any 2xx or 3xx is success (HAProxy's default).
    pub expect: Option<HttpExpect>,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            method: "OPTIONS".into(),
            uri: "/".into(),
            version: "HTTP/1.0".into(),
            headers: Vec::new(),
            body: None,
            expect: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpExpect {
    pub negated: bool,
    pub kind: HttpExpectKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HttpExpectKind {
    /// `status 200` or `status 200-399` or `status 200,201`.
    Status(Vec<(u16, u16)>),
    Rstatus(RegexPat),
    String(String),
    Rstring(RegexPat),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TcpCheckStep {
    Connect {
        port: Option<u16>,
        ssl: bool,
        send_proxy: bool,
    },
    Send(Vec<u8>),
    /// `send-binary HEX`.
    SendBinary(Vec<u8>),
    Expect {
        negated: bool,
        kind: TcpExpect,
    },
    Comment(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TcpExpect {
    String(String),
    Rstring(RegexPat),
    Binary(Vec<u8>),
}

/// `cookie NAME insert|rewrite|prefix [indirect] [nocache] [httponly] [secure]
/// [domain D]* [maxidle T] [maxlife T] [preserve] [postonly] [attr A]*`.
#[derive(Debug, Clone, PartialEq)]
pub struct CookiePersistence {
    pub name: String,
    pub mode: CookieMode,
    pub indirect: bool,
    pub nocache: bool,
    pub httponly: bool,
    pub secure: bool,
    pub domains: Vec<String>,
    pub maxidle: Option<Duration>,
    pub maxlife: Option<Duration>,
    pub preserve: bool,
    pub postonly: bool,
    pub attrs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    Insert,
    Rewrite,
    Prefix,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpReuse {
    Never,
    #[default]
    Safe,
    Aggressive,
    Always,
}

/// `stats …` keywords of a proxy that serves the stats page.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsPage {
    /// `stats uri` (default `/haproxy?stats`).
    pub uri: String,
    pub refresh: Option<Duration>,
    pub realm: Option<String>,
    /// `stats auth user:password` lines (cleartext, as HAProxy takes them).
    pub auth: Vec<(String, String)>,
    /// `stats show-node [NAME]`; an empty name means the global `node` (or host name).
    pub show_node: Option<String>,
    pub show_legends: bool,
    pub show_desc: Option<String>,
    pub hide_version: bool,
    /// `stats admin if COND`: who may enable/disable servers from the page.
    pub admin: Option<Condition>,
}

impl Default for StatsPage {
    fn default() -> Self {
        StatsPage {
            uri: "/haproxy?stats".into(),
            refresh: None,
            realm: None,
            auth: Vec::new(),
            show_node: None,
            show_legends: false,
            show_desc: None,
            hide_version: false,
            admin: None,
        }
    }
}
