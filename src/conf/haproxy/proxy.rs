//! `defaults`, `frontend`, `backend` and `listen` sections: one `Draft` per
//! section while it is read, turned into a model `Proxy` by `finalize`.

use super::acl::{parse_acl_expr, parse_condition, AclTable};
use super::backend::{parse_balance, parse_cookie, parse_http_check, parse_retry_on, parse_tcp_check};
use super::bind::{parse_bind, BindEnv};
use super::global::{parse_log, LogLine};
use super::model::*;
use super::options::{no_keyword, parse_option, parse_stats};
use super::parse::{Finding, GlobalState};
use super::rules::{
    parse_http_request, parse_http_response, parse_redirect, parse_tcp_request, RuleCtx, TcpRequest,
};
use super::server::{
    build_server, is_server_keyword, parse_server_addr, parse_server_options, Bases, ServerOpts, ServerParts,
};
use super::time::{parse_number, parse_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Defaults => "defaults",
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
            Kind::Listen => "listen",
        }
    }

    pub(super) fn frontend(self) -> bool {
        self != Kind::Backend
    }

    pub(super) fn backend(self) -> bool {
        self != Kind::Frontend
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefKind {
    DefaultBackend,
    UseBackend,
    NbSrv,
}

/// A backend named by a proxy, checked once every section is read.
#[derive(Debug, Clone)]
pub(super) struct BackendRef {
    pub line: usize,
    pub name: String,
    pub kind: RefKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckKind {
    Connect,
    Http,
    Tcp,
}

#[derive(Debug, Clone)]
pub(super) enum LogEntry {
    Global,
    Target(LogTarget),
}

/// A section being read.
#[derive(Debug, Clone)]
pub(super) struct Draft {
    pub proxy: Proxy,
    pub kind: Kind,
    pub acls: AclTable,
    pub default_server: ServerOpts,
    pub check_kind: CheckKind,
    pub http_check: HttpCheck,
    /// Line of the first `http-check` rule, to warn when httpchk is off.
    pub http_check_line: Option<usize>,
    pub tcp_steps: Vec<TcpCheckStep>,
    /// This section wrote its own `http-check`/`tcp-check` rules: those of
    /// `defaults` are inherited only by proxies that write none (as in HAProxy).
    pub own_http_check: bool,
    pub own_tcp_check: bool,
    /// Headers appended to the version of `option httpchk` (old style), kept
    /// apart from `http-check send hdr` ones.
    pub httpchk_headers: Vec<(String, String)>,
    pub logs: Vec<LogEntry>,
    pub refs: Vec<BackendRef>,
    pub default_backend_line: usize,
    pub cookie_line: usize,
    pub balance_line: usize,
    /// Explicit server `id`s, to keep automatic ones clear of them.
    pub explicit_ids: Vec<(u32, usize)>,
    /// A `bind` was written (even one in error): no "no bind" warning then.
    pub bind_written: bool,
}

impl Draft {
    pub fn new(kind: Kind, name: String, line: usize) -> Self {
        let cap = Capabilities { frontend: kind.frontend(), backend: kind.backend() };
        Draft {
            proxy: Proxy::new(name, line, cap),
            kind,
            acls: AclTable::new(),
            default_server: ServerOpts::default(),
            check_kind: CheckKind::Connect,
            http_check: HttpCheck::default(),
            http_check_line: None,
            tcp_steps: Vec::new(),
            own_http_check: false,
            own_tcp_check: false,
            httpchk_headers: Vec::new(),
            logs: Vec::new(),
            refs: Vec::new(),
            default_backend_line: 0,
            cookie_line: 0,
            balance_line: 0,
            explicit_ids: Vec::new(),
            bind_written: false,
        }
    }

    /// A new proxy section: a copy of these defaults with its own identity.
    pub fn start_proxy(&self, kind: Kind, name: String, line: usize) -> Draft {
        let mut draft = self.clone();
        draft.kind = kind;
        draft.own_http_check = false;
        draft.own_tcp_check = false;
        draft.proxy.name = name;
        draft.proxy.line = line;
        draft.proxy.cap = Capabilities { frontend: kind.frontend(), backend: kind.backend() };
        draft
    }

    /// Adds the binds of a `bind` line (the words after `bind`).
    pub fn bind(
        &mut self,
        words: &[String],
        line: usize,
        state: &GlobalState,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        self.bind_written = true;
        let env = BindEnv {
            crt_base: state.crt_base.as_deref(),
            ca_base: state.ca_base.as_deref(),
            defaults: &state.global.ssl_default_bind,
        };
        let binds = parse_bind(words, line, &env, warnings)?;
        self.proxy.binds.extend(binds);
        Ok(())
    }
}

/// Keywords only a proxy with a frontend side takes.
const FRONTEND_ONLY: [&str; 5] = ["bind", "default_backend", "use_backend", "monitor-uri", "maxconn"];
/// Keywords only a proxy with a backend side takes.
const BACKEND_ONLY: [&str; 11] = [
    "server",
    "default-server",
    "balance",
    "cookie",
    "retries",
    "retry-on",
    "http-reuse",
    "http-check",
    "tcp-check",
    "fullconn",
    "dispatch",
];
/// Keywords a `defaults` section may not carry.
const NOT_IN_DEFAULTS: [&str; 10] = [
    "bind",
    "server",
    "use_backend",
    "acl",
    "http-request",
    "http-response",
    "tcp-request",
    "redirect",
    "monitor-uri",
    "dispatch",
];

fn capability_error(draft: &Draft, keyword: &str) -> Option<String> {
    let kind = draft.kind;
    if kind == Kind::Defaults {
        return NOT_IN_DEFAULTS
            .contains(&keyword)
            .then(|| format!("'{keyword}' not allowed in 'defaults' section"));
    }
    let name = &draft.proxy.name;
    if FRONTEND_ONLY.contains(&keyword) && !kind.frontend() {
        return Some(format!(
            "'{keyword}' not allowed because {} '{name}' has no frontend capability",
            kind.name()
        ));
    }
    if BACKEND_ONLY.contains(&keyword) && !kind.backend() {
        return Some(format!(
            "'{keyword}' not allowed because {} '{name}' has no backend capability",
            kind.name()
        ));
    }
    None
}

/// Parses one line of a proxy or defaults section.
pub(super) fn proxy_keyword(
    draft: &mut Draft,
    words: &[String],
    line: usize,
    state: &GlobalState,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let keyword = words[0].as_str();
    let args = &words[1..];
    if let Some(error) = capability_error(draft, keyword) {
        return Err(error);
    }
    let one = || -> Result<&str, String> {
        match args {
            [arg] => Ok(arg.as_str()),
            _ => Err(format!("'{keyword}' expects exactly one argument")),
        }
    };
    let mut nbsrv = Vec::new();
    let proxy = &mut draft.proxy;
    match keyword {
        "mode" => {
            proxy.mode = match one()? {
                "http" => Mode::Http,
                "tcp" => Mode::Tcp,
                other => return Err(format!("unsupported mode '{other}' (http or tcp)")),
            }
        }
        "bind" => return draft.bind(args, line, state, warnings),
        "default_backend" => {
            proxy.default_backend = Some(one()?.to_string());
            draft.default_backend_line = line;
        }
        "use_backend" => {
            let (name, cond) = args.split_first().ok_or("'use_backend' expects a backend name")?;
            if name.contains("%[") {
                return Err(format!("dynamic backend name '{name}' is not supported"));
            }
            let cond = match cond {
                [] => None,
                _ => Some(
                    parse_condition(cond, &draft.acls, &mut nbsrv, warnings)
                        .map_err(|e| format!("error detected while parsing switching rule : {e}"))?,
                ),
            };
            draft.proxy.use_backends.push(UseBackend { line, backend: name.clone(), cond });
            draft.refs.push(BackendRef { line, name: name.clone(), kind: RefKind::UseBackend });
        }
        "timeout" => parse_timeout(&mut proxy.timeouts, args)?,
        "contimeout" | "clitimeout" | "srvtimeout" | "timeoutsrv" => {
            let new = match keyword {
                "contimeout" => "connect",
                "clitimeout" => "client",
                _ => "server",
            };
            return Err(format!(
                "the '{keyword}' directive is not supported anymore since HAProxy 2.1. Use 'timeout {new}'."
            ));
        }
        "maxconn" => proxy.maxconn = Some(parse_number(keyword, one()?)?),
        "retries" => proxy.retries = parse_number(keyword, one()?)?,
        "retry-on" => proxy.retry_on = parse_retry_on(args)?,
        "fullconn" => proxy.fullconn = Some(parse_number(keyword, one()?)?),
        "monitor-uri" => proxy.monitor_uri = Some(one()?.to_string()),
        "http-reuse" => {
            proxy.http_reuse = match one()? {
                "never" => HttpReuse::Never,
                "safe" => HttpReuse::Safe,
                "aggressive" => HttpReuse::Aggressive,
                "always" => HttpReuse::Always,
                other => {
                    return Err(format!(
                        "'http-reuse' expects never, safe, aggressive or always, got '{other}'"
                    ))
                }
            }
        }
        "balance" => {
            proxy.balance = parse_balance(args)?;
            draft.balance_line = line;
        }
        "errorfile" => match args {
            [code, path] => {
                let code: u16 =
                    code.parse().map_err(|_| format!("'errorfile' expects a status code, got '{code}'"))?;
                const CODES: [u16; 17] =
                    [200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504];
                if !CODES.contains(&code) {
                    return Err(format!("status code '{code}' cannot be overridden by 'errorfile'"));
                }
                proxy.errorfiles.insert(code, path.into());
                proxy.errorfile_lines.insert(code, line);
            }
            _ => return Err("'errorfile' expects a status code and a file path".into()),
        },
        "log" => match parse_log(args, line)? {
            LogLine::Global => draft.logs.push(LogEntry::Global),
            LogLine::Target(target) => draft.logs.push(LogEntry::Target(target)),
        },
        "no" => return no_keyword(draft, args),
        "option" => return parse_option(draft, args, warnings),
        "description" => {}
        "cookie" => {
            proxy.cookie = Some(parse_cookie(args)?);
            draft.cookie_line = line;
        }
        "default-server" => {
            let bases = Bases { ca: state.ca_base.as_deref(), crt: state.crt_base.as_deref() };
            parse_server_options(args, &mut draft.default_server, true, &bases)?;
        }
        "server" => return parse_server(draft, args, line, state),
        "acl" => {
            let (name, expr) = args.split_first().ok_or("'acl' expects a name and an expression")?;
            if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c))) {
                return Err(format!("character '{bad}' is not permitted in ACL name '{name}'"));
            }
            let parsed = parse_acl_expr(expr, &mut nbsrv)
                .map_err(|e| format!("error detected while parsing ACL '{name}' : {e}"))?;
            warnings.extend(parsed.warning);
            draft.acls.entry(name.clone()).or_default().push(parsed.acl);
        }
        "http-request" | "http-response" | "redirect" | "tcp-request" => {
            let mut ctx = RuleCtx { acls: &draft.acls, refs: &mut nbsrv, warnings };
            match keyword {
                "http-request" => {
                    let rule = parse_http_request(args, line, &mut ctx)?;
                    warn_after_final_rule(&draft.proxy.http_request, ctx.warnings);
                    draft.proxy.http_request.push(rule);
                }
                "http-response" => {
                    let rule = parse_http_response(args, line, &mut ctx)?;
                    draft.proxy.http_response.push(rule);
                }
                "redirect" => {
                    let (action, cond) = super::acl::split_condition(args);
                    let redirect = parse_redirect(action, &mut ctx)?;
                    let cond =
                        cond.map(|c| parse_condition(c, ctx.acls, ctx.refs, ctx.warnings)).transpose()?;
                    warn_after_final_rule(&draft.proxy.http_request, ctx.warnings);
                    draft.proxy.http_request.push(HttpRequestRule {
                        line,
                        action: HttpRequestAction::Redirect(redirect),
                        cond,
                    });
                }
                _ => match parse_tcp_request(args, line, &mut ctx)? {
                    TcpRequest::InspectDelay(delay) => draft.proxy.inspect_delay = Some(delay),
                    TcpRequest::Rule(rule) => {
                        if !rule.content && !draft.kind.frontend() {
                            return Err(format!(
                                "'tcp-request connection' not allowed because {} '{}' has no frontend capability",
                                draft.kind.name(),
                                draft.proxy.name
                            ));
                        }
                        if !rule.content && draft.proxy.tcp_request.iter().any(|r| r.content) {
                            ctx.warnings.push(
                                "a 'tcp-request connection' rule placed after a 'tcp-request content' rule will still be processed before"
                                    .into(),
                            );
                        }
                        draft.proxy.tcp_request.push(rule);
                    }
                },
            }
        }
        "http-check" => {
            draft.http_check_line.get_or_insert(line);
            if !draft.own_http_check {
                // Rules from defaults are replaced, the `option httpchk` request line kept.
                let check = &mut draft.http_check;
                check.headers.clear();
                check.body = None;
                check.expect = None;
                draft.own_http_check = true;
            }
            parse_http_check(&mut draft.http_check, args)?
        }
        "tcp-check" => {
            let step = parse_tcp_check(args)?;
            if !draft.own_tcp_check {
                draft.tcp_steps.clear();
                draft.own_tcp_check = true;
            }
            draft.tcp_steps.push(step);
        }
        "stats" => parse_stats(draft, args, warnings, &mut nbsrv)?,
        "capture"
        | "compression"
        | "hash-type"
        | "stick-table"
        | "stick"
        | "unique-id-format"
        | "unique-id-header"
        | "log-format"
        | "log-format-sd"
        | "error-log-format"
        | "errorloc"
        | "errorloc302"
        | "errorloc303"
        | "errorfiles"
        | "http-error"
        | "http-after-response"
        | "tcp-response"
        | "persist"
        | "force-persist"
        | "ignore-persist"
        | "dispatch"
        | "source"
        | "external-check"
        | "filter"
        | "use-server"
        | "email-alert"
        | "declare"
        | "server-template"
        | "load-server-state-from-file"
        | "server-state-file-name"
        | "rate-limit"
        | "bind-process"
        | "max-keep-alive-queue"
        | "id"
        | "disabled"
        | "enabled"
        | "backlog"
        | "grace" => {
            return Err(format!("'{keyword}' is not supported by Lanai"));
        }
        _ => return Err(format!("unknown keyword '{keyword}' in '{}' section", draft.kind.name())),
    }
    for name in nbsrv {
        draft.refs.push(BackendRef { line, name, kind: RefKind::NbSrv });
    }
    Ok(())
}

/// HAProxy's warning when a rule follows one that always ends processing.
fn warn_after_final_rule(rules: &[HttpRequestRule], warnings: &mut Vec<String>) {
    let Some(last) = rules.last() else { return };
    let is_final = matches!(
        last.action,
        HttpRequestAction::Redirect(_)
            | HttpRequestAction::Deny { .. }
            | HttpRequestAction::Return(_)
            | HttpRequestAction::Allow
            | HttpRequestAction::PrometheusExporter
    );
    if is_final && last.cond.is_none() {
        warnings.push(format!(
            "previous 'http-request' action (line {}) is final and has no condition attached, further entries are NOOP",
            last.line
        ));
    }
}

fn parse_timeout(timeouts: &mut Timeouts, args: &[String]) -> Result<(), String> {
    let (name, value) = match args {
        [name, value] => (name.as_str(), value),
        [name] => return Err(format!("'timeout {name}' expects an integer value (in milliseconds)")),
        _ => return Err("'timeout' expects a name and a value, as in 'timeout client 30s'".into()),
    };
    let slot = match name {
        "connect" => &mut timeouts.connect,
        "client" => &mut timeouts.client,
        "server" => &mut timeouts.server,
        "http-request" => &mut timeouts.http_request,
        "http-keep-alive" => &mut timeouts.http_keep_alive,
        "queue" => &mut timeouts.queue,
        "tunnel" => &mut timeouts.tunnel,
        "check" => &mut timeouts.check,
        "client-fin" => &mut timeouts.client_fin,
        "server-fin" => &mut timeouts.server_fin,
        "tarpit" => return Err("'timeout tarpit' is not supported by Lanai".into()),
        other => return Err(format!("'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', 'http-request', 'tunnel', 'client-fin' and 'server-fin' (got '{other}')")),
    };
    let duration = parse_time(value).map_err(|e| format!("'timeout {name}': {e}"))?;
    *slot = (!duration.is_zero()).then_some(duration);
    Ok(())
}

fn parse_server(draft: &mut Draft, args: &[String], line: usize, state: &GlobalState) -> Result<(), String> {
    let backend = draft.proxy.name.clone();
    let (name, rest) = args.split_first().ok_or("'server' expects a name and an address")?;
    let (addr_text, options) =
        rest.split_first().ok_or_else(|| format!("'server {backend}/{name}' : missing address"))?;
    if is_server_keyword(addr_text) {
        return Err(format!(
            "'server {backend}/{name}' : missing address (found option '{addr_text}' instead)"
        ));
    }
    let (addr, host) =
        parse_server_addr(addr_text).map_err(|e| format!("'server {backend}/{name}' : {e}"))?;
    if let Some(first) = draft.proxy.servers.iter().find(|s| &s.name == name) {
        return Err(format!(
            "backend '{backend}', another server named '{name}' was already defined at line {}, please use distinct names",
            first.line
        ));
    }
    let mut opts = draft.default_server.clone();
    let bases = Bases { ca: state.ca_base.as_deref(), crt: state.crt_base.as_deref() };
    parse_server_options(options, &mut opts, false, &bases)
        .map_err(|e| format!("'server {backend}/{name}' : {e}"))?;
    if let Some(id) = opts.id {
        if let Some((_, other_line)) = draft.explicit_ids.iter().find(|(used, _)| *used == id) {
            return Err(format!(
                "'server {backend}/{name}' : id {id} is already used by the server at line {other_line}"
            ));
        }
        draft.explicit_ids.push((id, line));
    }
    let parts = ServerParts {
        name: name.clone(),
        addr,
        host,
        position: 0,
        line,
        default_verify: state.server_verify,
    };
    let server = build_server(parts, opts, &backend)?;
    draft.proxy.servers.push(server);
    Ok(())
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Listen => "proxy",
        other => other.name(),
    }
}

/// Turns a draft into the model proxy, with the checks HAProxy makes once a
/// section is complete. Returns the backends it refers to.
pub(super) fn finalize(
    mut draft: Draft,
    global: &Global,
    findings: &mut Vec<Finding>,
) -> (Proxy, Vec<BackendRef>) {
    let line = draft.proxy.line;
    let name = draft.proxy.name.clone();
    let label = kind_label(draft.kind);
    let proxy = &mut draft.proxy;
    for entry in &draft.logs {
        match entry {
            LogEntry::Global => proxy.logs.extend(global.logs.iter().cloned()),
            LogEntry::Target(target) => proxy.logs.push(target.clone()),
        }
    }
    if draft.kind.backend() {
        proxy.health = match draft.check_kind {
            CheckKind::Connect => HealthCheck::Connect,
            CheckKind::Http => {
                let mut check = draft.http_check.clone();
                check.headers.splice(0..0, draft.httpchk_headers.iter().cloned());
                HealthCheck::Http(check)
            }
            CheckKind::Tcp => HealthCheck::TcpCheck(draft.tcp_steps.clone()),
        };
        if let Some(check_line) = draft.http_check_line.filter(|_| draft.check_kind != CheckKind::Http) {
            findings.push((
                check_line,
                false,
                format!("'http-check' rules ignored for backend '{name}': 'option httpchk' is not set"),
            ));
        }
        // Automatic ids: the lowest id no explicit `id` took, in order.
        let explicit: Vec<u32> = draft.explicit_ids.iter().map(|(id, _)| *id).collect();
        let mut next = 1;
        for server in proxy.servers.iter_mut().filter(|s| s.id == 0) {
            while explicit.contains(&next) {
                next += 1;
            }
            server.id = next;
            next += 1;
        }
        if proxy.mode == Mode::Tcp {
            if proxy.cookie.take().is_some() {
                findings.push((
                    draft.cookie_line,
                    false,
                    format!("cookie will be ignored for backend '{name}' (needs 'mode http')"),
                ));
            }
            if matches!(proxy.balance, Balance::Uri { .. } | Balance::UrlParam(_) | Balance::Hdr(_)) {
                proxy.balance = Balance::RoundRobin;
                findings.push((
                    draft.balance_line,
                    false,
                    format!("Layer 7 hash not possible for backend '{name}' (needs 'mode http'). Falling back to round robin."),
                ));
            }
        }
    }
    if proxy.mode == Mode::Tcp {
        let http_rules: Vec<usize> = proxy
            .http_request
            .iter()
            .map(|r| r.line)
            .chain(proxy.http_response.iter().map(|r| r.line))
            .collect();
        // HTTP-only settings in a TCP proxy: dropped with HAProxy's warnings.
        if proxy.monitor_uri.take().is_some() {
            findings.push((
                line,
                false,
                format!("monitor-uri will be ignored for {label} '{name}' (needs 'mode http')"),
            ));
        }
        // Log formats are a frontend matter: backends keep theirs silently.
        if proxy.options.httplog && draft.kind.frontend() {
            proxy.options.httplog = false;
            proxy.options.httplog_clf = false;
            proxy.options.tcplog = true;
            findings.push((
                line,
                false,
                format!("'option httplog' not usable with {label} '{name}' (needs 'mode http'). Falling back to 'option tcplog'."),
            ));
        }
        if proxy.stats.take().is_some() {
            findings.push((
                line,
                false,
                format!("'stats' statement ignored for {label} '{name}' as it requires HTTP mode"),
            ));
        }
        if proxy.options.forwardfor.take().is_some() {
            findings.push((
                line,
                false,
                format!("'option forwardfor' ignored for {label} '{name}' as it requires HTTP mode"),
            ));
        }
        if let Some(first) = http_rules.first() {
            findings.push((*first, false, format!("'http-request'/'http-response'/'redirect' rules ignored for {label} '{name}' as they require 'mode http'")));
            proxy.http_request.clear();
            proxy.http_response.clear();
        }
    }
    if draft.kind.frontend() {
        if let Some(backend) = &proxy.default_backend {
            let ref_line = if draft.default_backend_line == 0 { line } else { draft.default_backend_line };
            draft.refs.push(BackendRef {
                line: ref_line,
                name: backend.clone(),
                kind: RefKind::DefaultBackend,
            });
        }
        if proxy.binds.is_empty() && !draft.bind_written {
            findings.push((line, false, format!("{label} '{name}' has no 'bind' directive. Please declare it as a backend if this was intended.")));
        }
    } else {
        proxy.default_backend = None;
    }
    if draft.kind.frontend() && (proxy.options.httplog || proxy.options.tcplog) && proxy.logs.is_empty() {
        findings.push((
            line,
            false,
            format!("log format ignored for {label} '{name}' since it has no log address"),
        ));
    }
    let t = &proxy.timeouts;
    let frontend_missing = draft.kind.frontend() && t.client.is_none();
    let backend_missing = draft.kind.backend() && (t.connect.is_none() || t.server.is_none());
    if frontend_missing || backend_missing {
        findings.push((
            line,
            false,
            format!("missing timeouts for {label} '{name}': set 'timeout client', 'timeout connect' and 'timeout server'"),
        ));
    }
    (draft.proxy, draft.refs)
}
