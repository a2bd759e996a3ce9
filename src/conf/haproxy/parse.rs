//! haproxy.cfg parser. Pure: text in, model + diagnostics out. Sections are
//! read line by line into drafts (`proxy.rs`); `defaults` are copied into each
//! proxy when its section starts; cross-checks run once every section is read.

use std::collections::HashMap;
use std::path::PathBuf;

use super::global::global_keyword;
use super::lexer::split_line;
use super::model::*;
use super::proxy::{finalize, proxy_keyword, BackendRef, Draft, Kind, RefKind};
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
    pub bind_tls12: Option<Vec<String>>,
    pub bind_tls13: Option<Vec<String>>,
    pub server_tls12: Option<Vec<String>>,
    pub server_tls13: Option<Vec<String>>,
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
    /// Name of the `defaults` section being used, and earlier named ones (for `from`).
    defaults_name: Option<String>,
    named_defaults: HashMap<String, Draft>,
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
            defaults_name: None,
            named_defaults: HashMap::new(),
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
                if let Some(previous) = self.defaults_name.take() {
                    self.named_defaults.insert(previous, self.defaults.clone());
                }
                // Each defaults section starts afresh; a named one can be used with `from`.
                self.defaults = Draft::new(Kind::Defaults, String::new(), line);
                self.defaults_name = words.get(1).cloned();
                if let Some(extra) = words.get(2) {
                    self.error(
                        line,
                        format!("unexpected '{extra}' after 'defaults' name (inheritance is not supported)"),
                    );
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
        // `frontend NAME from DEFAULTS`: that named defaults section, not the last one.
        let base = match (words.get(2).map(String::as_str), words.get(3)) {
            (Some("from"), Some(from)) if self.defaults_name.as_ref() == Some(from) => Some(&self.defaults),
            (Some("from"), Some(from)) => match self.named_defaults.get(from) {
                Some(named) => Some(named),
                None => {
                    let message = format!("{} '{name}': unable to find defaults section '{from}'", words[0]);
                    self.error(line, message);
                    None
                }
            },
            (Some("from"), None) => {
                self.error(
                    line,
                    format!("'from' expects the name of a defaults section after '{} {name}'", words[0]),
                );
                None
            }
            _ => None,
        };
        let from_used = base.is_some() || words.get(2).is_some_and(|w| w == "from");
        let mut draft = base.unwrap_or(&self.defaults).start_proxy(kind, name, line);
        if let Some(extra) = words.get(4).filter(|_| from_used) {
            self.error(line, format!("unexpected '{extra}' after 'from {}'", words[3]));
        }
        // Legacy `listen NAME ADDR:PORT` form: the address is a bind.
        if let Some(addr) = words.get(2).filter(|_| !from_used) {
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
    // HAProxy binds with SO_REUSEPORT: two binds on one address share its
    // connections at random, which is rarely what was meant.
    let mut bound: HashMap<std::net::SocketAddr, (&str, usize)> = HashMap::new();
    for proxy in proxies {
        for bind in &proxy.binds {
            match bound.get(&bind.addr) {
                Some((other, line)) => findings.push((
                    bind.line,
                    false,
                    format!(
                        "address {} is also bound by '{other}' at line {line}: connections will be shared between them",
                        bind.addr
                    ),
                )),
                None => {
                    bound.insert(bind.addr, (&proxy.name, bind.line));
                }
            }
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
