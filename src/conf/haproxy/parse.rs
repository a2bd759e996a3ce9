//! haproxy.cfg parser. Pure: text in, model + diagnostics out. Sections are
//! read line by line into drafts (`proxy.rs`); `defaults` are copied into each
//! proxy when its section starts; cross-checks run once every section is read.

use std::collections::HashMap;
use std::path::PathBuf;

use super::acl::parse_net;
use super::lexer::split_line;
use super::model::*;
use super::proxy::{finalize, proxy_keyword, BackendRef, Draft, Kind, RefKind};
use super::time::{parse_number, parse_time};
use super::tls::{apply_version_flag, map_cipher_list, map_tls13_suites, merge_suites, parse_version};
use crate::conf::Diagnostic;

/// Parses `text` (named `file` in diagnostics). Returns the model when there is
/// no error, and every diagnostic (errors and warnings) in line order.
pub fn parse(file: &str, text: &str) -> (Option<Config>, Vec<Diagnostic>) {
    let mut parser = Parser::new(file);
    for (index, raw) in text.lines().enumerate() {
        parser.line(index + 1, raw);
    }
    parser.finish()
}

/// Global settings other sections need while they are parsed.
pub(super) struct GlobalState {
    pub global: Global,
    pub crt_base: Option<PathBuf>,
    pub ca_base: Option<PathBuf>,
    /// `ssl-server-verify`: what a `server … ssl` line verifies by default.
    pub server_verify: Verify,
    bind_tls12: Option<Vec<String>>,
    bind_tls13: Option<Vec<String>>,
    server_tls12: Option<Vec<String>>,
    server_tls13: Option<Vec<String>>,
}

enum Section {
    /// Before any section header.
    None,
    Global,
    Defaults,
    Proxy,
    /// A section kind Lanai does not support; its lines are skipped.
    Unsupported,
}

struct Parser<'f> {
    file: &'f str,
    diags: Vec<Diagnostic>,
    state: GlobalState,
    section: Section,
    defaults: Draft,
    current: Option<Draft>,
    done: Vec<Draft>,
}

impl<'f> Parser<'f> {
    fn new(file: &'f str) -> Self {
        Parser {
            file,
            diags: Vec::new(),
            state: GlobalState {
                global: Global::default(),
                crt_base: None,
                ca_base: None,
                server_verify: Verify::Required,
                bind_tls12: None,
                bind_tls13: None,
                server_tls12: None,
                server_tls13: None,
            },
            section: Section::None,
            defaults: Draft::new(Kind::Defaults, String::new(), 0),
            current: None,
            done: Vec::new(),
        }
    }

    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(self.file, line, message));
    }

    fn warning(&mut self, line: usize, message: impl Into<String>) {
        self.diags.push(Diagnostic::warning(self.file, line, message));
    }

    fn line(&mut self, line: usize, raw: &str) {
        let words = match split_line(raw) {
            Ok(words) => words,
            Err(e) => return self.error(line, e),
        };
        let Some(keyword) = words.first() else { return };
        match keyword.as_str() {
            "global" => {
                self.close_proxy();
                self.section = Section::Global;
                if words.len() > 1 {
                    self.error(line, "'global' takes no argument");
                }
            }
            "defaults" => {
                self.close_proxy();
                self.section = Section::Defaults;
                // Each defaults section starts afresh (a name, if any, is not used).
                self.defaults = Draft::new(Kind::Defaults, String::new(), line);
                if let Some(extra) = words.get(2) {
                    self.error(line, format!("unexpected '{extra}' after 'defaults' name"));
                }
            }
            "frontend" | "backend" | "listen" => self.open_proxy(&words, line),
            "userlist" | "peers" | "resolvers" | "mailers" | "cache" | "program" | "http-errors" | "ring"
            | "fcgi-app" | "namespace_list" | "dynamic-update" => {
                self.close_proxy();
                self.section = Section::Unsupported;
                self.error(line, format!("'{keyword}' sections are not supported by Lanai"));
            }
            _ => self.keyword(&words, line),
        }
    }

    fn close_proxy(&mut self) {
        if let Some(draft) = self.current.take() {
            self.done.push(draft);
        }
    }

    fn open_proxy(&mut self, words: &[String], line: usize) {
        self.close_proxy();
        let kind = match words[0].as_str() {
            "frontend" => Kind::Frontend,
            "backend" => Kind::Backend,
            _ => Kind::Listen,
        };
        let name = match words.get(1) {
            Some(name) => name.clone(),
            None => {
                self.error(line, format!("'{}' expects a name", words[0]));
                String::new()
            }
        };
        if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c))) {
            self.error(line, format!("character '{bad}' is not permitted in {} name '{name}'", words[0]));
        }
        let mut draft = self.defaults.start_proxy(kind, name, line);
        // Legacy `listen NAME ADDR:PORT` form: the address is a bind.
        if let Some(addr) = words.get(2) {
            if kind == Kind::Backend {
                self.error(
                    line,
                    format!("backend '{}' cannot have an address (use a 'server' line)", draft.proxy.name),
                );
            } else {
                let bind_words = words[2..].to_vec();
                // HAProxy 2.6 refuses this 1.x form; Lanai still reads old configs.
                let mut warnings = vec![format!(
                    "address on the '{}' line is a legacy form (HAProxy 2.6 refuses it): prefer 'bind {addr}'",
                    words[0]
                )];
                match draft.bind(&bind_words, line, &self.state, &mut warnings) {
                    Ok(()) => {}
                    Err(e) => self.error(line, format!("'{} {}' : {e}", words[0], addr)),
                }
                for w in warnings {
                    self.warning(line, w);
                }
            }
        }
        self.current = Some(draft);
        self.section = Section::Proxy;
    }

    fn keyword(&mut self, words: &[String], line: usize) {
        let mut warnings = Vec::new();
        let result = match self.section {
            Section::None => Err(format!("unknown keyword '{}' out of section", words[0])),
            Section::Unsupported => Ok(()),
            Section::Global => global_keyword(&mut self.state, words, line, &mut warnings),
            Section::Defaults => proxy_keyword(&mut self.defaults, words, line, &self.state, &mut warnings),
            Section::Proxy => match self.current.as_mut() {
                Some(draft) => proxy_keyword(draft, words, line, &self.state, &mut warnings),
                None => Ok(()),
            },
        };
        if let Err(message) = result {
            self.error(line, message);
        }
        for w in warnings {
            self.warning(line, w);
        }
    }

    fn finish(mut self) -> (Option<Config>, Vec<Diagnostic>) {
        self.close_proxy();
        let state = &mut self.state;
        if state.bind_tls12.is_some() || state.bind_tls13.is_some() {
            // Bind lines read the defaults when parsed; this keeps the model's copy.
            state.global.ssl_default_bind.ciphersuites =
                merge_suites(state.bind_tls12.as_deref(), state.bind_tls13.as_deref());
        }
        if state.server_tls12.is_some() || state.server_tls13.is_some() {
            state.global.ssl_default_server.ciphersuites =
                merge_suites(state.server_tls12.as_deref(), state.server_tls13.as_deref());
        }
        let mut proxies = Vec::new();
        let mut refs = Vec::new();
        let mut findings = Vec::new();
        for draft in std::mem::take(&mut self.done) {
            let (proxy, proxy_refs) = finalize(draft, &self.state.global, &mut findings);
            proxies.push(proxy);
            refs.push(proxy_refs);
        }
        cross_check(&proxies, &refs, self.file, &mut findings);
        for (line, error, message) in findings {
            if error {
                self.error(line, message);
            } else {
                self.warning(line, message);
            }
        }
        self.diags.sort_by_key(|d| d.line);
        let config = Config { global: self.state.global, proxies };
        let valid = !crate::conf::has_errors(&self.diags);
        (valid.then_some(config), self.diags)
    }
}

/// A finding of the final passes: (line, is_error, message).
pub(super) type Finding = (usize, bool, String);

fn kind_name(proxy: &Proxy) -> &'static str {
    match (proxy.cap.frontend, proxy.cap.backend) {
        (true, true) => "listen",
        (true, false) => "frontend",
        _ => "backend",
    }
}

/// Checks that need every proxy: names, backend references, modes.
fn cross_check(proxies: &[Proxy], refs: &[Vec<BackendRef>], file: &str, findings: &mut Vec<Finding>) {
    let mut seen_frontends: HashMap<&str, &Proxy> = HashMap::new();
    let mut seen_backends: HashMap<&str, &Proxy> = HashMap::new();
    for proxy in proxies {
        let clash = (if proxy.cap.frontend { seen_frontends.get(proxy.name.as_str()) } else { None })
            .or(if proxy.cap.backend { seen_backends.get(proxy.name.as_str()) } else { None });
        if let Some(first) = clash {
            findings.push((
                proxy.line,
                true,
                format!(
                    "{} '{}' has the same name as {} '{}' declared at {file}:{}",
                    kind_name(proxy),
                    proxy.name,
                    kind_name(first),
                    first.name,
                    first.line
                ),
            ));
            continue;
        }
        if proxy.cap.frontend {
            seen_frontends.insert(&proxy.name, proxy);
        }
        if proxy.cap.backend {
            seen_backends.insert(&proxy.name, proxy);
        }
    }
    for (proxy, proxy_refs) in proxies.iter().zip(refs) {
        for reference in proxy_refs {
            let name = reference.name.as_str();
            let keyword = match reference.kind {
                RefKind::DefaultBackend => "default_backend",
                RefKind::UseBackend => "use_backend",
                RefKind::NbSrv => "nbsrv",
            };
            match seen_backends.get(name) {
                None if reference.kind == RefKind::NbSrv => findings.push((
                    reference.line,
                    true,
                    format!("unable to find backend '{name}' referenced in 'nbsrv' in proxy '{}'", proxy.name),
                )),
                None => findings.push((
                    reference.line,
                    true,
                    format!("Proxy '{}': unable to find required {keyword}: '{name}'", proxy.name),
                )),
                Some(backend)
                    if reference.kind != RefKind::NbSrv && proxy.mode == Mode::Http && backend.mode == Mode::Tcp =>
                {
                    findings.push((
                        reference.line,
                        true,
                        format!(
                            "http {} '{}' ({file}:{}) tries to use incompatible tcp backend '{}' ({file}:{}) as its {} (see 'mode')",
                            kind_name(proxy),
                            proxy.name,
                            proxy.line,
                            backend.name,
                            backend.line,
                            if reference.kind == RefKind::UseBackend { "use_backend" } else { "default backend" }
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
    }
}

// ---------------------------------------------------------------- global

/// Process directives that do not apply to Lanai: accepted, with a warning.
fn ignored_global(keyword: &str) -> Option<String> {
    let why = match keyword {
        "daemon" => "lanai proxy always runs in the foreground (the appliance supervises it)",
        "master-worker" => "the appliance supervisor is the master process",
        "nbproc" => "Lanai runs one process (use 'nbthread')",
        "cpu-map" => "threads are not pinned to CPUs",
        "ulimit-n" | "maxsslconn" | "maxconnrate" | "maxsessrate" | "maxpipes" => "no such limit in Lanai",
        "ssl-dh-param-file" => "rustls has no DHE cipher suites",
        "spread-checks"
        | "quiet"
        | "log-send-hostname"
        | "log-tag"
        | "server-state-file"
        | "server-state-base"
        | "localpeer"
        | "insecure-fork-wanted"
        | "unix-bind"
        | "uid"
        | "gid"
        | "stats maxconn"
        | "busy-polling"
        | "noepoll"
        | "nosplice"
        | "h1-case-adjust"
        | "ssl-engine"
        | "ssl-mode-async" => "not used by Lanai",
        k if k.starts_with("tune.") => "Lanai has its own tuning",
        _ => return None,
    };
    Some(format!("'{keyword}' ignored: {why}"))
}

fn global_keyword(
    state: &mut GlobalState,
    words: &[String],
    line: usize,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let keyword = words[0].as_str();
    let args = &words[1..];
    let one = || -> Result<&str, String> {
        match args {
            [arg] => Ok(arg.as_str()),
            _ => Err(format!("'{keyword}' expects exactly one argument")),
        }
    };
    let global = &mut state.global;
    match keyword {
        "maxconn" => global.maxconn = parse_number(keyword, one()?)?,
        "nbthread" => {
            let n: usize = parse_number(keyword, one()?)?;
            if n == 0 {
                return Err("'nbthread' must be at least 1".into());
            }
            global.nbthread = Some(n);
        }
        "user" => global.user = Some(one()?.to_string()),
        "group" => global.group = Some(one()?.to_string()),
        "chroot" => global.chroot = Some(PathBuf::from(one()?)),
        "pidfile" => global.pidfile = Some(PathBuf::from(one()?)),
        "node" => global.node = Some(one()?.to_string()),
        "description" => global.description = Some(args.join(" ")),
        "hard-stop-after" => global.hard_stop_after = Some(parse_time(one()?)?),
        "ca-base" => state.ca_base = Some(PathBuf::from(one()?)),
        "crt-base" => state.crt_base = Some(PathBuf::from(one()?)),
        "log" => match parse_log(args, line)? {
            LogLine::Target(target) => global.logs.push(target),
            LogLine::Global => return Err("'log global' is only valid in a proxy or defaults section".into()),
        },
        "stats" => global_stats(global, args, line, warnings)?,
        "ssl-default-bind-ciphers" | "ssl-default-server-ciphers" => {
            let mapped = map_cipher_list(one()?)?;
            warnings.extend(mapped.warning);
            if keyword.contains("bind") {
                state.bind_tls12 = Some(mapped.suites);
            } else {
                state.server_tls12 = Some(mapped.suites);
            }
            refresh_suites(state);
        }
        "ssl-default-bind-ciphersuites" | "ssl-default-server-ciphersuites" => {
            let mapped = map_tls13_suites(one()?)?;
            warnings.extend(mapped.warning);
            if keyword.contains("bind") {
                state.bind_tls13 = Some(mapped.suites);
            } else {
                state.server_tls13 = Some(mapped.suites);
            }
            refresh_suites(state);
        }
        "ssl-default-bind-options" | "ssl-default-server-options" => {
            let defaults = if keyword.contains("bind") {
                &mut global.ssl_default_bind
            } else {
                &mut global.ssl_default_server
            };
            let mut i = 0;
            while i < args.len() {
                let option = args[i].as_str();
                match option {
                    "ssl-min-ver" | "ssl-max-ver" => {
                        let value = args.get(i + 1).ok_or_else(|| format!("'{option}' expects a version"))?;
                        let version = Some(parse_version(option, value)?);
                        if option == "ssl-min-ver" {
                            defaults.min_version = version;
                        } else {
                            defaults.max_version = version;
                        }
                        i += 1;
                    }
                    // rustls issues no session tickets unless told to: already the case.
                    "no-tls-tickets" | "prefer-client-ciphers" => {}
                    _ if apply_version_flag(option, &mut defaults.min_version, &mut defaults.max_version) => {
                    }
                    other => return Err(format!("unknown option '{other}' in '{keyword}'")),
                }
                i += 1;
            }
        }
        "ssl-server-verify" => {
            state.server_verify = match one()? {
                "none" => Verify::None,
                "required" => Verify::Required,
                other => {
                    return Err(format!("'ssl-server-verify' expects 'none' or 'required', got '{other}'"))
                }
            }
        }
        "lua-load"
        | "lua-prepend-path"
        | "external-check"
        | "set-var"
        | "presetenv"
        | "setenv"
        | "resetenv"
        | "unsetenv"
        | "ssl-load-extra-files"
        | "crt-list" => {
            return Err(format!("'{keyword}' is not supported by Lanai"));
        }
        _ => match ignored_global(keyword) {
            Some(w) => warnings.push(w),
            None => return Err(format!("unknown keyword '{keyword}' in 'global' section")),
        },
    }
    Ok(())
}

fn refresh_suites(state: &mut GlobalState) {
    state.global.ssl_default_bind.ciphersuites = if state.bind_tls12.is_some() || state.bind_tls13.is_some() {
        merge_suites(state.bind_tls12.as_deref(), state.bind_tls13.as_deref())
    } else {
        Vec::new()
    };
    state.global.ssl_default_server.ciphersuites =
        if state.server_tls12.is_some() || state.server_tls13.is_some() {
            merge_suites(state.server_tls12.as_deref(), state.server_tls13.as_deref())
        } else {
            Vec::new()
        };
}

/// `stats socket PATH [mode OCTAL] [level L] [expose-fd listeners]`, `stats timeout T`.
fn global_stats(
    global: &mut Global,
    args: &[String],
    line: usize,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("socket") => {
            let path = args.get(1).ok_or("'stats socket' expects a path")?;
            if path.contains(':') && !path.starts_with('/') {
                return Err(format!("'stats socket {path}': only Unix socket paths are supported"));
            }
            let mut socket =
                StatsSocket { line, path: PathBuf::from(path), mode: None, level: RuntimeLevel::Operator };
            let mut i = 2;
            while i < args.len() {
                let option = args[i].as_str();
                let value = args
                    .get(i + 1)
                    .ok_or_else(|| format!("'stats socket' option '{option}' expects a value"))?;
                match option {
                    "mode" => {
                        socket.mode = Some(
                            u32::from_str_radix(value, 8)
                                .map_err(|_| format!("'mode' expects an octal number, got '{value}'"))?,
                        )
                    }
                    "level" => {
                        socket.level = match value.as_str() {
                            "user" => RuntimeLevel::User,
                            "operator" => RuntimeLevel::Operator,
                            "admin" => RuntimeLevel::Admin,
                            other => {
                                return Err(format!("'level' expects user, operator or admin, got '{other}'"))
                            }
                        }
                    }
                    // Only meaningful for HAProxy's own seamless reloads.
                    "expose-fd" if value == "listeners" => {}
                    "user" | "group" | "uid" | "gid" => {
                        warnings.push(format!("'stats socket' option '{option}' ignored by Lanai"))
                    }
                    other => return Err(format!("unsupported 'stats socket' option '{other}'")),
                }
                i += 2;
            }
            global.stats_sockets.push(socket);
        }
        Some("timeout") => match args {
            [_, value] => global.stats_timeout = parse_time(value)?,
            _ => return Err("'stats timeout' expects a time".into()),
        },
        Some("maxconn") => warnings.push("'stats maxconn' ignored by Lanai".into()),
        Some(other) => return Err(format!("unknown keyword 'stats {other}' in 'global' section")),
        None => return Err("'stats' expects 'socket' or 'timeout'".into()),
    }
    Ok(())
}

/// A `log` line: `global`, or a target.
pub(super) enum LogLine {
    Global,
    Target(LogTarget),
}

fn facility(name: &str) -> Option<Facility> {
    use Facility::*;
    Some(match name {
        "kern" => Kern,
        "user" => User,
        "mail" => Mail,
        "daemon" => Daemon,
        "auth" => Auth,
        "syslog" => Syslog,
        "lpr" => Lpr,
        "news" => News,
        "uucp" => Uucp,
        "cron" => Cron,
        "auth2" => Auth2,
        "ftp" => Ftp,
        "ntp" => Ntp,
        "audit" => Audit,
        "alert" => Alert,
        "cron2" => Cron2,
        "local0" => Local0,
        "local1" => Local1,
        "local2" => Local2,
        "local3" => Local3,
        "local4" => Local4,
        "local5" => Local5,
        "local6" => Local6,
        "local7" => Local7,
        _ => return None,
    })
}

fn level(name: &str) -> Result<Level, String> {
    use Level::*;
    Ok(match name {
        "emerg" => Emerg,
        "alert" => Alert,
        "crit" => Crit,
        "err" => Err,
        "warning" => Warning,
        "notice" => Notice,
        "info" => Info,
        "debug" => Debug,
        other => return std::result::Result::Err(format!("unknown log level '{other}'")),
    })
}

fn log_dest(text: &str) -> Result<LogDest, String> {
    let text = ["udp@", "udp4@", "ipv4@"].iter().find_map(|p| text.strip_prefix(p)).unwrap_or(text);
    match text {
        "stdout" | "fd@1" => return Ok(LogDest::Stdout),
        "stderr" | "fd@2" => return Ok(LogDest::Stderr),
        _ => {}
    }
    if text.starts_with('/') {
        return Ok(LogDest::Unix(PathBuf::from(text)));
    }
    if let Some(prefix) = text.split_once('@').map(|(p, _)| p) {
        return Err(format!("log target '{prefix}@…' is not supported"));
    }
    if let Ok(addr) = text.parse() {
        return Ok(LogDest::Udp(addr));
    }
    let ip_only = text.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = ip_only.parse::<std::net::IpAddr>() {
        return Ok(LogDest::Udp(std::net::SocketAddr::new(ip, 514)));
    }
    Err(format!("log target '{text}' must be stdout, stderr, a Unix socket path or IP[:PORT] (host names are not resolved)"))
}

/// `log global` / `log TARGET [len N] [format F] [sample R:S] FACILITY [LEVEL [MINLEVEL]]`.
pub(super) fn parse_log(args: &[String], line: usize) -> Result<LogLine, String> {
    let (target, mut rest) = match args.split_first() {
        Some((t, _)) if t == "global" => return Ok(LogLine::Global),
        Some((t, rest)) => (t, rest),
        None => return Err("'log' expects 'global' or a target".into()),
    };
    let dest = log_dest(target)?;
    while let [option, value, tail @ ..] = rest {
        match option.as_str() {
            "len" => {
                parse_number::<u32>("len", value)?;
            }
            "format" => {
                if !matches!(
                    value.as_str(),
                    "raw" | "rfc3164" | "rfc5424" | "short" | "iso" | "local" | "timed" | "priority"
                ) {
                    return Err(format!("unknown log format '{value}'"));
                }
            }
            "sample" => return Err("'log … sample' is not supported".into()),
            _ => break,
        }
        rest = tail;
    }
    let (facility_name, levels) =
        rest.split_first().ok_or("'log' expects a facility, as in 'log /dev/log local0'")?;
    let facility =
        facility(facility_name).ok_or_else(|| format!("unknown log facility '{facility_name}'"))?;
    let max_level = match levels {
        [] => Level::Info,
        [max] | [max, _] => {
            if let [_, min] = levels {
                level(min)?;
            }
            level(max)?
        }
        _ => return Err(format!("unexpected '{}' after log levels", levels[2])),
    };
    Ok(LogLine::Target(LogTarget { line, dest, facility, max_level }))
}

/// `option forwardfor [except NET] [header NAME] [if-none]`.
pub(super) fn parse_forwardfor(args: &[String]) -> Result<ForwardFor, String> {
    let mut forward = ForwardFor { header: "X-Forwarded-For".into(), except: None, if_none: false };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "except" => {
                let net = args.get(i + 1).ok_or("'except' expects a network")?;
                forward.except = Some(parse_net(net)?);
                i += 1;
            }
            "header" => {
                forward.header = args.get(i + 1).ok_or("'header' expects a header name")?.clone();
                i += 1;
            }
            "if-none" => forward.if_none = true,
            other => return Err(format!("unknown 'option forwardfor' argument '{other}'")),
        }
        i += 1;
    }
    Ok(forward)
}
