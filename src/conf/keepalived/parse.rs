//! keepalived.conf parser: tokens (with `!`/`#` comments, braces, quotes and
//! `include`) -> a tree of statements -> the typed model, with `file:line`
//! diagnostics. Unsupported keywords are errors that name the keyword, so a
//! configuration never silently behaves differently than under keepalived.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use super::model::*;
use crate::conf::Diagnostic;

#[derive(Debug, Clone)]
struct Tok {
    file: Rc<str>,
    line: usize,
    text: String,
    /// `{`/`}` as structure (a quoted "{" is a word).
    brace: Option<char>,
}

/// One statement: its words, and the block that followed it if any.
#[derive(Debug)]
struct Node {
    file: Rc<str>,
    line: usize,
    words: Vec<String>,
    block: Option<Vec<Node>>,
}

/// Reads an included file: returns (name, text) for every file the pattern names.
pub type IncludeResolver<'a> = dyn Fn(&str, &str) -> Result<Vec<(String, String)>, String> + 'a;

/// Reads includes from the filesystem, relative to the including file's
/// directory. `*` and `?` in the last path component are expanded.
pub fn fs_resolver(including: &str, pattern: &str) -> Result<Vec<(String, String)>, String> {
    let base = std::path::Path::new(including).parent().unwrap_or(std::path::Path::new("."));
    let path = if pattern.starts_with('/') { std::path::PathBuf::from(pattern) } else { base.join(pattern) };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut paths = vec![];
    if name.contains(['*', '?']) {
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for e in rd.flatten() {
            if glob_match(&name, &e.file_name().to_string_lossy()) {
                paths.push(e.path());
            }
        }
        paths.sort();
    } else {
        paths.push(path);
    }
    paths
        .into_iter()
        .map(|p| {
            std::fs::read_to_string(&p)
                .map(|t| (p.display().to_string(), t))
                .map_err(|e| format!("cannot read {}: {e}", p.display()))
        })
        .collect()
}

fn glob_match(pat: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    fn m(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| m(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && m(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && m(rest, &s[1..]),
        }
    }
    m(&p, &s)
}

fn tokenize(
    file: &str,
    text: &str,
    resolve: &IncludeResolver<'_>,
    depth: usize,
    out: &mut Vec<Tok>,
    diags: &mut Vec<Diagnostic>,
) {
    let fname: Rc<str> = Rc::from(file);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut words: Vec<(String, Option<char>)> = vec![];
        let mut chars = raw.chars().peekable();
        let mut cur = String::new();
        let flush = |cur: &mut String, words: &mut Vec<(String, Option<char>)>| {
            if !cur.is_empty() {
                words.push((std::mem::take(cur), None));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '!' | '#' if cur.is_empty() => break,
                '"' if cur.is_empty() => {
                    let mut q = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '"' {
                            closed = true;
                            break;
                        }
                        q.push(c);
                    }
                    if !closed {
                        diags.push(Diagnostic::error(file, line, "unterminated quoted string"));
                    }
                    words.push((q, None));
                }
                '{' | '}' => {
                    flush(&mut cur, &mut words);
                    words.push((c.to_string(), Some(c)));
                }
                c if c.is_whitespace() => flush(&mut cur, &mut words),
                c => cur.push(c),
            }
        }
        flush(&mut cur, &mut words);
        if words.first().is_some_and(|(w, b)| b.is_none() && w == "include") {
            if words.len() != 2 {
                diags.push(Diagnostic::error(file, line, "include: expected exactly one file name"));
                continue;
            }
            if depth >= 8 {
                diags.push(Diagnostic::error(file, line, "include: nested too deeply"));
                continue;
            }
            match resolve(file, &words[1].0) {
                Ok(files) => {
                    for (n, t) in files {
                        tokenize(&n, &t, resolve, depth + 1, out, diags);
                    }
                }
                Err(e) => diags.push(Diagnostic::error(file, line, format!("include: {e}"))),
            }
            continue;
        }
        for (text, brace) in words {
            out.push(Tok { file: fname.clone(), line, text, brace });
        }
    }
}

fn build_tree(toks: &[Tok], i: &mut usize, open: Option<&Tok>, diags: &mut Vec<Diagnostic>) -> Vec<Node> {
    let mut nodes: Vec<Node> = vec![];
    while *i < toks.len() {
        let t = &toks[*i];
        match t.brace {
            Some('}') => {
                *i += 1;
                if open.is_some() {
                    return nodes;
                }
                diags.push(Diagnostic::error(&t.file, t.line, "unexpected '}'"));
            }
            Some(_) => {
                *i += 1;
                let block = build_tree(toks, i, Some(t), diags);
                match nodes.last_mut() {
                    Some(n) if n.block.is_none() => n.block = Some(block),
                    _ => diags.push(Diagnostic::error(&t.file, t.line, "'{' without a keyword before it")),
                }
            }
            None => {
                let (file, line) = (t.file.clone(), t.line);
                let mut words = vec![];
                while *i < toks.len()
                    && toks[*i].brace.is_none()
                    && toks[*i].line == line
                    && toks[*i].file == file
                {
                    words.push(toks[*i].text.clone());
                    *i += 1;
                }
                nodes.push(Node { file, line, words, block: None });
            }
        }
    }
    if let Some(o) = open {
        diags.push(Diagnostic::error(&o.file, o.line, "missing '}' for the block opened here"));
    }
    nodes
}

/// Parses keepalived.conf text, reading `include`d files from the filesystem
/// relative to `file` (the only I/O this does).
pub fn parse(file: &str, text: &str) -> (Option<KeepalivedConfig>, Vec<Diagnostic>) {
    parse_with(file, text, &fs_resolver)
}

/// Parses with a caller-supplied include resolver (pure when the resolver is).
pub fn parse_with(
    file: &str,
    text: &str,
    resolve: &IncludeResolver<'_>,
) -> (Option<KeepalivedConfig>, Vec<Diagnostic>) {
    let mut diags = vec![];
    let mut toks = vec![];
    tokenize(file, text, resolve, 0, &mut toks, &mut diags);
    let mut i = 0;
    let tree = build_tree(&toks, &mut i, None, &mut diags);
    let mut cfg = KeepalivedConfig::default();
    let mut p = P { diags: &mut diags };
    for n in &tree {
        match n.words[0].as_str() {
            "global_defs" => p.global_defs(n, &mut cfg.global),
            "vrrp_script" => {
                if let Some(s) = p.script(n) {
                    if cfg.scripts.iter().any(|o| o.name == s.name) {
                        p.err(n, format!("vrrp_script {} defined twice", s.name));
                    }
                    cfg.scripts.push(s);
                }
            }
            "vrrp_instance" => {
                if let Some(v) = p.instance(n, &cfg.global) {
                    cfg.instances.push(v);
                }
            }
            k => p.err(n, format!("unknown keyword '{k}'")),
        }
    }
    p.cross_check(&cfg, &tree);
    if crate::conf::has_errors(&diags) {
        (None, diags)
    } else {
        (Some(cfg), diags)
    }
}

struct P<'a> {
    diags: &'a mut Vec<Diagnostic>,
}

impl P<'_> {
    fn err(&mut self, n: &Node, m: impl Into<String>) {
        self.diags.push(Diagnostic::error(&n.file, n.line, m));
    }
    fn warn(&mut self, n: &Node, m: impl Into<String>) {
        self.diags.push(Diagnostic::warning(&n.file, n.line, m));
    }

    /// The single argument of `KEYWORD VALUE`.
    fn one<'n>(&mut self, n: &'n Node) -> Option<&'n str> {
        if n.block.is_some() {
            self.err(n, format!("{}: unexpected block", n.words[0]));
            return None;
        }
        match n.words.len() {
            2 => Some(&n.words[1]),
            1 => {
                self.err(n, format!("{}: missing value", n.words[0]));
                None
            }
            _ => {
                self.err(n, format!("{}: unexpected argument '{}'", n.words[0], n.words[2]));
                None
            }
        }
    }

    /// A command line: every word after the keyword (keepalived re-joins them).
    fn command(&mut self, n: &Node) -> Option<String> {
        if n.words.len() < 2 {
            self.err(n, format!("{}: missing value", n.words[0]));
            return None;
        }
        Some(n.words[1..].join(" "))
    }

    fn flag(&mut self, n: &Node) {
        if n.words.len() > 1 {
            self.err(n, format!("{}: unexpected argument '{}'", n.words[0], n.words[1]));
        }
    }

    fn num<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
        &mut self,
        n: &Node,
        lo: T,
        hi: T,
    ) -> Option<T> {
        let v = self.one(n)?;
        match v.parse::<T>() {
            Ok(x) if x >= lo && x <= hi => Some(x),
            _ => {
                self.err(n, format!("{}: invalid value '{v}' (expected {lo}..{hi})", n.words[0]));
                None
            }
        }
    }

    fn secs(&mut self, n: &Node, max: f64) -> Option<Duration> {
        let v = self.one(n)?;
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() && (0.0..=max).contains(&x) => Some(Duration::from_secs_f64(x)),
            _ => {
                self.err(n, format!("{}: invalid time '{v}' (seconds, 0..{max})", n.words[0]));
                None
            }
        }
    }

    fn block<'n>(&mut self, n: &'n Node) -> &'n [Node] {
        match &n.block {
            Some(b) => b,
            None => {
                self.err(n, format!("{}: expected a '{{' block", n.words[0]));
                &[]
            }
        }
    }

    fn global_defs(&mut self, n: &Node, g: &mut GlobalDefs) {
        if n.words.len() > 1 {
            self.err(n, format!("global_defs: unexpected argument '{}'", n.words[1]));
        }
        for c in self.block(n) {
            match c.words[0].as_str() {
                "router_id" => g.router_id = self.one(c).map(str::to_string),
                "vrrp_version" => g.vrrp_version = self.num(c, 2u8, 3),
                "vrrp_garp_master_delay" => g.vrrp_garp_master_delay = self.secs(c, 3600.0),
                "vrrp_garp_master_repeat" => g.vrrp_garp_master_repeat = self.num(c, 0u32, 1000),
                "enable_script_security" => {
                    self.flag(c);
                    g.enable_script_security = true
                }
                "script_user" => {
                    if c.words.len() < 2 || c.words.len() > 3 {
                        self.err(c, "script_user: expected USER [GROUP]");
                    } else {
                        g.script_user = Some(c.words[1].clone());
                    }
                }
                "notification_email"
                | "notification_email_from"
                | "smtp_server"
                | "smtp_connect_timeout"
                | "smtp_helo_name"
                | "smtp_alert"
                | "smtp_alert_vrrp" => {
                    self.warn(c, format!("{}: e-mail alerts are not supported, ignored", c.words[0]))
                }
                k => self.err(c, format!("global_defs: unknown keyword '{k}'")),
            }
        }
    }

    fn script(&mut self, n: &Node) -> Option<VrrpScript> {
        let Some(name) = n.words.get(1).cloned() else {
            self.err(n, "vrrp_script: missing name");
            return None;
        };
        if n.words.len() > 2 {
            self.err(n, format!("vrrp_script: unexpected argument '{}'", n.words[2]));
        }
        let mut s = VrrpScript {
            name,
            line: n.line,
            script: String::new(),
            interval: Duration::from_secs(1),
            timeout: None,
            weight: 0,
            fall: 1,
            rise: 1,
        };
        for c in self.block(n) {
            match c.words[0].as_str() {
                "script" => s.script = self.command(c).unwrap_or_default(),
                "interval" => s.interval = self.secs(c, 86400.0).unwrap_or(s.interval),
                "timeout" => s.timeout = self.secs(c, 86400.0),
                "weight" => {
                    // keepalived allows a trailing `reverse`; we do not.
                    s.weight = self.num(c, -253i32, 253).unwrap_or(0)
                }
                "fall" => s.fall = self.num(c, 1u32, 1000).unwrap_or(1),
                "rise" => s.rise = self.num(c, 1u32, 1000).unwrap_or(1),
                k => self.err(c, format!("vrrp_script: unknown keyword '{k}'")),
            }
        }
        if s.script.is_empty() {
            self.err(n, format!("vrrp_script {}: missing script", s.name));
            return None;
        }
        if s.interval.is_zero() {
            s.interval = Duration::from_secs(1);
        }
        Some(s)
    }

    fn instance(&mut self, n: &Node, g: &GlobalDefs) -> Option<VrrpInstance> {
        let Some(name) = n.words.get(1).cloned() else {
            self.err(n, "vrrp_instance: missing name");
            return None;
        };
        if n.words.len() > 2 {
            self.err(n, format!("vrrp_instance: unexpected argument '{}'", n.words[2]));
        }
        let before = self.diags.iter().filter(|d| d.is_error()).count();
        let mut v = VrrpInstance {
            name: name.clone(),
            line: n.line,
            state: InitialState::Backup,
            interface: String::new(),
            virtual_router_id: 0,
            priority: 100,
            advert_int_cs: 100,
            version: g.vrrp_version.unwrap_or(2),
            auth_pass: None,
            virtual_ipaddress: vec![],
            unicast_src_ip: None,
            unicast_peer: vec![],
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            track_script: vec![],
            track_interface: vec![],
            garp_master_delay: g.vrrp_garp_master_delay.unwrap_or(Duration::from_secs(5)),
            garp_master_repeat: g.vrrp_garp_master_repeat.unwrap_or(5),
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
        };
        let mut advert: Option<(f64, &Node)> = None;
        let mut auth_type: Option<&Node> = None;
        let mut state_line: Option<&Node> = None;
        let mut vrid_seen = false;
        for c in self.block(n) {
            match c.words[0].as_str() {
                "state" => {
                    state_line = Some(c);
                    match self.one(c) {
                        Some("MASTER") => v.state = InitialState::Master,
                        Some("BACKUP") => v.state = InitialState::Backup,
                        Some(x) => self.err(c, format!("state: invalid value '{x}' (MASTER or BACKUP)")),
                        None => {}
                    }
                }
                "interface" => v.interface = self.one(c).unwrap_or_default().to_string(),
                "virtual_router_id" => {
                    vrid_seen = true;
                    v.virtual_router_id = self.num(c, 1u8, 255).unwrap_or(0)
                }
                "priority" => v.priority = self.num(c, 1u8, 255).unwrap_or(100),
                "advert_int" => {
                    if let Some(d) = self.secs(c, 40.95) {
                        advert = Some((d.as_secs_f64(), c));
                    }
                }
                "version" => v.version = self.num(c, 2u8, 3).unwrap_or(v.version),
                "authentication" => {
                    for a in self.block(c) {
                        match a.words[0].as_str() {
                            "auth_type" => match self.one(a) {
                                Some("PASS") => auth_type = Some(a),
                                Some("AH") => self.err(a, "auth_type AH is not supported (use PASS)"),
                                Some(x) => self.err(a, format!("auth_type: invalid value '{x}'")),
                                None => {}
                            },
                            "auth_pass" => {
                                if let Some(p) = self.one(a) {
                                    if p.len() > 8 {
                                        self.warn(
                                            a,
                                            "auth_pass: truncated to 8 characters as keepalived does",
                                        );
                                    }
                                    v.auth_pass = Some(p.to_string());
                                }
                            }
                            k => self.err(a, format!("authentication: unknown keyword '{k}'")),
                        }
                    }
                }
                "virtual_ipaddress" => {
                    for a in self.block(c) {
                        if let Some(vip) = self.vip(a) {
                            v.virtual_ipaddress.push(vip);
                        }
                    }
                }
                "unicast_src_ip" => v.unicast_src_ip = self.one(c).and_then(|s| self.ip(c, s)),
                "unicast_peer" => {
                    for a in self.block(c) {
                        if a.words.len() > 1 {
                            self.err(a, format!("unicast_peer: unsupported option '{}'", a.words[1]));
                        }
                        if let Some(ip) = self.ip(a, &a.words[0]) {
                            v.unicast_peer.push(ip);
                        }
                    }
                }
                "nopreempt" => {
                    self.flag(c);
                    v.nopreempt = true
                }
                "preempt_delay" => v.preempt_delay = self.secs(c, 1000.0).unwrap_or_default(),
                "track_script" => {
                    for a in self.block(c) {
                        let weight = self.weight(a);
                        v.track_script.push(TrackScript { name: a.words[0].clone(), weight });
                    }
                }
                "track_interface" => {
                    for a in self.block(c) {
                        let weight = self.weight(a).unwrap_or(0);
                        v.track_interface.push(TrackInterface { name: a.words[0].clone(), weight });
                    }
                }
                "garp_master_delay" => v.garp_master_delay = self.secs(c, 3600.0).unwrap_or_default(),
                "garp_master_repeat" => v.garp_master_repeat = self.num(c, 0u32, 1000).unwrap_or(5),
                "notify_master" => v.notify_master = self.command(c),
                "notify_backup" => v.notify_backup = self.command(c),
                "notify_fault" => v.notify_fault = self.command(c),
                "notify_stop" => v.notify_stop = self.command(c),
                "notify" => v.notify = self.command(c),
                k => self.err(c, format!("vrrp_instance: unknown keyword '{k}'")),
            }
        }
        if v.interface.is_empty() {
            self.err(n, format!("vrrp_instance {name}: missing interface"));
        }
        if !vrid_seen {
            self.err(n, format!("vrrp_instance {name}: missing virtual_router_id"));
        }
        if let Some((secs, c)) = advert {
            if v.version == 2 {
                // keepalived rounds fractional v2 intervals to whole seconds.
                let r = secs.round().max(1.0);
                if (r - secs).abs() > f64::EPSILON {
                    self.warn(c, format!("advert_int: VRRPv2 needs whole seconds, using {r}"));
                }
                v.advert_int_cs = (r * 100.0) as u16;
            } else {
                let cs = (secs * 100.0).round();
                if cs < 1.0 {
                    self.err(c, "advert_int: must be at least 0.01 s");
                }
                v.advert_int_cs = cs.max(1.0) as u16;
            }
        }
        if let Some(a) = auth_type {
            if v.auth_pass.is_none() {
                self.err(a, "auth_type PASS needs auth_pass");
            }
            if v.version == 3 {
                self.warn(a, "authentication is not supported with VRRPv3, ignored");
                v.auth_pass = None;
            }
        } else if v.auth_pass.is_some() {
            self.warn(n, "auth_pass without auth_type: no authentication used");
            v.auth_pass = None;
        }
        if v.nopreempt && v.state == InitialState::Master {
            if let Some(s) = state_line {
                self.warn(s, "nopreempt will not work with initial state MASTER - using BACKUP");
            }
            v.state = InitialState::Backup;
        }
        if v.unicast_src_ip.is_some() && v.unicast_peer.is_empty() {
            self.warn(n, "unicast_src_ip without unicast_peer: multicast is used");
        }
        if let Some(first) = v.virtual_ipaddress.first() {
            let v6 = first.addr.is_ipv6();
            let mixed = v.virtual_ipaddress.iter().any(|x| x.addr.is_ipv6() != v6)
                || v.unicast_peer.iter().any(|x| x.is_ipv6() != v6)
                || v.unicast_src_ip.is_some_and(|x| x.is_ipv6() != v6);
            if mixed {
                self.err(n, format!("vrrp_instance {name}: IPv4 and IPv6 addresses mixed in one instance"));
            }
            if v6 && v.version != 3 {
                self.err(n, format!("vrrp_instance {name}: IPv6 needs VRRP version 3"));
            }
        } else {
            self.warn(n, format!("vrrp_instance {name}: no virtual_ipaddress"));
        }
        let after = self.diags.iter().filter(|d| d.is_error()).count();
        (after == before).then_some(v)
    }

    fn weight(&mut self, a: &Node) -> Option<i32> {
        match a.words.len() {
            1 => None,
            3 if a.words[1] == "weight" => match a.words[2].parse::<i32>() {
                Ok(w) if (-253..=253).contains(&w) => Some(w),
                _ => {
                    self.err(a, format!("weight: invalid value '{}' (-253..253)", a.words[2]));
                    None
                }
            },
            _ => {
                self.err(a, format!("{}: expected NAME [weight N]", a.words[0]));
                None
            }
        }
    }

    fn ip(&mut self, n: &Node, s: &str) -> Option<IpAddr> {
        match s.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(n, format!("invalid IP address '{s}'"));
                None
            }
        }
    }

    fn vip(&mut self, a: &Node) -> Option<Vip> {
        let (addr, prefix) = match a.words[0].split_once('/') {
            Some((ad, p)) => (ad, Some(p)),
            None => (a.words[0].as_str(), None),
        };
        let addr = self.ip(a, addr)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix.map(str::parse::<u8>) {
            None => max,
            Some(Ok(p)) if p <= max => p,
            Some(_) => {
                self.err(a, format!("invalid prefix length in '{}'", a.words[0]));
                return None;
            }
        };
        let mut vip = Vip { addr, prefix, dev: None, label: None };
        let mut it = a.words[1..].iter();
        while let Some(k) = it.next() {
            let val = it.next();
            match (k.as_str(), val) {
                ("dev", Some(d)) => vip.dev = Some(d.clone()),
                ("label", Some(l)) => vip.label = Some(l.clone()),
                ("dev" | "label", None) => {
                    self.err(a, format!("virtual_ipaddress: '{k}' needs a value"));
                    return None;
                }
                _ => {
                    self.err(a, format!("virtual_ipaddress: unsupported option '{k}'"));
                    return None;
                }
            }
        }
        Some(vip)
    }

    fn cross_check(&mut self, cfg: &KeepalivedConfig, tree: &[Node]) {
        let node_of = |name: &str| {
            tree.iter()
                .find(|n| n.words[0] == "vrrp_instance" && n.words.get(1).map(String::as_str) == Some(name))
        };
        for (i, v) in cfg.instances.iter().enumerate() {
            let Some(n) = node_of(&v.name) else { continue };
            for t in &v.track_script {
                if !cfg.scripts.iter().any(|s| s.name == t.name) {
                    self.err(
                        n,
                        format!("vrrp_instance {}: track_script '{}' is not defined", v.name, t.name),
                    );
                }
            }
            for o in &cfg.instances[..i] {
                if o.name == v.name {
                    self.err(n, format!("vrrp_instance {} defined twice", v.name));
                }
                if o.virtual_router_id == v.virtual_router_id && o.interface == v.interface {
                    self.err(
                        n,
                        format!(
                            "vrrp_instance {}: virtual_router_id {} already used by {} on {}",
                            v.name, v.virtual_router_id, o.name, v.interface
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn no_inc(_: &str, p: &str) -> Result<Vec<(String, String)>, String> {
        Err(format!("cannot read {p}"))
    }

    fn ok(text: &str) -> KeepalivedConfig {
        let (c, d) = parse_with("k.conf", text, &no_inc);
        assert!(!crate::conf::has_errors(&d), "{d:?}");
        c.expect("config")
    }

    fn errs(text: &str) -> Vec<String> {
        let (c, d) = parse_with("k.conf", text, &no_inc);
        assert!(c.is_none());
        d.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect()
    }

    /// Seed 001 (HAProxy 2 with keepalived), verbatim.
    const SEED_001: &str = "! Barebones conf File for keepalived

  global_defs {
     notification_email {
       administrator@example.com
     }
     notification_email_from HAProxy1@example.com
     smtp_server mymailserver.example.com
     smtp_connect_timeout 60
  }

  vrrp_instance VI_1 {
      state MASTER
      interface eth0
      virtual_router_id 101
      priority 101
      advert_int 1
      authentication {
          auth_type PASS
          auth_pass 12345678
      }
      virtual_ipaddress {
          192.168.3.135
      }
  }
";

    #[test]
    fn seed_001() {
        let (c, d) = parse_with("k.conf", SEED_001, &no_inc);
        let c = c.expect("parses");
        assert_eq!(d.iter().filter(|d| !d.is_error()).count(), 4, "{d:?}");
        assert_eq!(d[0].line, 4);
        let v = &c.instances[0];
        assert_eq!(v.name, "VI_1");
        assert_eq!(v.state, InitialState::Master);
        assert_eq!(v.virtual_router_id, 101);
        assert_eq!(v.priority, 101);
        assert_eq!(v.advert_int_cs, 100);
        assert_eq!(v.version, 2);
        assert_eq!(v.auth_pass.as_deref(), Some("12345678"));
        assert_eq!(v.virtual_ipaddress[0].addr, Ipv4Addr::new(192, 168, 3, 135));
        assert_eq!(v.virtual_ipaddress[0].prefix, 32);
        assert_eq!(v.garp_master_repeat, 5);
    }

    /// Seed 003's master and backup blocks (as printed, without the article's
    /// `<-- higher wins` annotations), then its unicast excerpt.
    #[test]
    fn seed_003() {
        let master = "vrrp_instance VI_1 {\nstate MASTER\ninterface eth0\nvirtual_router_id 51\npriority 100\nadvert_int 1\nauthentication {\nauth_type PASS\nauth_pass s3cret\n}\nvirtual_ipaddress {\n192.168.1.10/24\n}\n}\n";
        let c = ok(master);
        assert_eq!(c.instances[0].virtual_ipaddress[0].prefix, 24);
        let backup = master.replace("MASTER", "BACKUP").replace("priority 100", "priority 90");
        let c = ok(&backup);
        assert_eq!(c.instances[0].state, InitialState::Backup);
        let uni = master.replace(
            "advert_int 1\n",
            "advert_int 1\nunicast_src_ip 192.168.1.11\nunicast_peer {\n192.168.1.12\n}\n",
        );
        let c = ok(&uni);
        assert_eq!(c.instances[0].unicast_peer, vec![IpAddr::V4(Ipv4Addr::new(192, 168, 1, 12))]);
        // The annotation as printed in the article is not keepalived syntax.
        let e = errs(&master.replace("priority 100", "priority 100 <-- higher wins"));
        assert_eq!(e, vec!["k.conf:5: priority: unexpected argument '<--'"]);
    }

    /// Seed 004's block is broken (keyword glued to the name, unclosed braces).
    #[test]
    fn seed_004_is_reported() {
        let text = "vrrp_instance_VI_1 {\n\tstate MASTER\n\tinterface seth0\n\tvirtual_router_id 51\n\t! this priority (below) should be higher on the master server, than on the slave.\n\tpriority 200\n\tadvert_int 1\n\tauthentication {\n\t\tauth_type PASS\n\t\tauth_pass some_secure_password_goes_here\n\tvirtual_ipaddress {\n";
        let e = errs(text);
        assert!(e.contains(&"k.conf:1: unknown keyword 'vrrp_instance_VI_1'".to_string()), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("k.conf:1: missing '}'")), "{e:?}");
    }

    #[test]
    fn full_subset() {
        let text = r#"
global_defs {
  router_id lb01
  vrrp_version 3
  vrrp_garp_master_delay 1
  vrrp_garp_master_repeat 2
  enable_script_security
  script_user root
}
vrrp_script chk_haproxy {
  script "/usr/bin/pgrep haproxy"   # comment
  interval 2
  timeout 1
  weight -20
  fall 2
  rise 3
}
vrrp_instance VI_2 {
  state BACKUP
  interface veth0
  virtual_router_id 52
  priority 90
  advert_int 0.1
  virtual_ipaddress {
    10.0.0.100/24 dev veth0 label veth0:1
    10.0.0.101
  }
  unicast_src_ip 10.0.0.1
  unicast_peer {
    10.0.0.2
  }
  nopreempt
  preempt_delay 5
  track_script {
    chk_haproxy weight -30
  }
  track_interface {
    eth1 weight 10
    eth2
  }
  garp_master_delay 2
  garp_master_repeat 3
  notify_master "/bin/echo master"
  notify_backup /bin/true
  notify_fault /bin/true
  notify_stop /bin/true
  notify /usr/local/bin/notify.sh
}
"#;
        let c = ok(text);
        assert_eq!(c.global.router_id.as_deref(), Some("lb01"));
        assert!(c.global.enable_script_security);
        let s = &c.scripts[0];
        assert_eq!(s.script, "/usr/bin/pgrep haproxy");
        assert_eq!((s.weight, s.fall, s.rise), (-20, 2, 3));
        let v = &c.instances[0];
        assert_eq!(v.version, 3);
        assert_eq!(v.advert_int_cs, 10);
        assert_eq!(v.virtual_ipaddress[0].label.as_deref(), Some("veth0:1"));
        assert_eq!(v.track_script[0].weight, Some(-30));
        assert_eq!(v.track_interface[1], TrackInterface { name: "eth2".into(), weight: 0 });
        assert_eq!(v.garp_master_repeat, 3);
        assert_eq!(v.garp_master_delay, Duration::from_secs(2));
        assert_eq!(v.notify_master.as_deref(), Some("/bin/echo master"));
        assert!(v.nopreempt);
    }

    #[test]
    fn unsupported_keywords_are_errors_with_lines() {
        let e = errs("vrrp_instance V {\n interface e\n virtual_router_id 1\n use_vmac\n}\nvirtual_server 1.2.3.4 80 {\n}\n");
        assert_eq!(
            e,
            vec![
                "k.conf:4: vrrp_instance: unknown keyword 'use_vmac'",
                "k.conf:6: unknown keyword 'virtual_server'"
            ]
        );
        let e =
            errs("vrrp_instance V {\n interface e\n virtual_router_id 1\n track_script {\n nope\n }\n}\n");
        assert_eq!(e, vec!["k.conf:1: vrrp_instance V: track_script 'nope' is not defined"]);
        let e = errs("vrrp_instance V {\n interface e\n virtual_router_id 300\n}\n");
        assert_eq!(e, vec!["k.conf:3: virtual_router_id: invalid value '300' (expected 1..255)"]);
    }

    #[test]
    fn include_and_braces_on_next_line() {
        let inc = |_: &str, p: &str| -> Result<Vec<(String, String)>, String> {
            assert_eq!(p, "inst.conf");
            Ok(vec![(
                "inst.conf".into(),
                "vrrp_instance V\n{\n interface e\n virtual_router_id 7\n bogus\n}\n".into(),
            )])
        };
        let (c, d) = parse_with("k.conf", "! top\ninclude inst.conf\n", &inc);
        assert!(c.is_none());
        assert_eq!(d[0].to_string(), "inst.conf:5: vrrp_instance: unknown keyword 'bogus'");
        let (c, _) = parse_with("k.conf", "include missing.conf\n", &no_inc);
        assert!(c.is_none());
    }

    #[test]
    fn ipv6_instances() {
        let t = "vrrp_instance V6 {\n interface e\n virtual_router_id 9\n version 3\n virtual_ipaddress {\n  fd00::100/64\n  fd00::101\n }\n}\n";
        let c = ok(t);
        let v = &c.instances[0];
        assert_eq!((v.virtual_ipaddress[0].prefix, v.virtual_ipaddress[1].prefix), (64, 128));
        let e = errs(&t.replace(" version 3\n", ""));
        assert_eq!(e, vec!["k.conf:1: vrrp_instance V6: IPv6 needs VRRP version 3"]);
        let e = errs(&t.replace("fd00::101", "10.0.0.1"));
        assert_eq!(e, vec!["k.conf:1: vrrp_instance V6: IPv4 and IPv6 addresses mixed in one instance"]);
    }

    #[test]
    fn glob() {
        assert!(glob_match("*.conf", "a.conf"));
        assert!(!glob_match("*.conf", "a.cfg"));
        assert!(glob_match("v?.conf", "v1.conf"));
    }
}
