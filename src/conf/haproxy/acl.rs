//! ACLs, conditions (`if`/`unless`), sample fetches and log-format strings.

use std::collections::HashMap;
use std::net::IpAddr;

use super::model::*;

/// Named ACLs of one proxy: every `acl NAME …` line, OR'ed, in order.
pub(super) type AclTable = HashMap<String, Vec<AclMatch>>;

/// Backends that `nbsrv(NAME)` fetches refer to, for the cross-check.
pub(super) type BackendRefs = Vec<String>;

/// Splits `name(args)` into the name and its comma-separated arguments.
fn split_call(text: &str) -> Result<(&str, Vec<&str>), String> {
    match text.find('(') {
        None => Ok((text, Vec::new())),
        Some(open) => {
            let inner = text[open + 1..]
                .strip_suffix(')')
                .ok_or_else(|| format!("missing closing ')' in '{text}'"))?;
            let args = if inner.is_empty() { Vec::new() } else { inner.split(',').collect() };
            Ok((&text[..open], args))
        }
    }
}

/// Splits `fetch(args),conv1,conv2` at the first comma outside parentheses.
fn split_converters(text: &str) -> (&str, Option<&str>) {
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => return (&text[..i], Some(&text[i + 1..])),
            _ => {}
        }
    }
    (text, None)
}

fn converter_error(converters: &str) -> String {
    let first = split_converters(converters).0;
    let name = first.split('(').next().unwrap_or(first);
    format!("converter '{name}' is not supported")
}

fn one_arg(name: &str, args: &[&str]) -> Result<String, String> {
    match args {
        [arg] if !arg.is_empty() => Ok(arg.to_string()),
        _ => Err(format!("fetch method '{name}' expects one argument, as in '{name}(name)'")),
    }
}

fn no_args(name: &str, args: &[&str]) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!("fetch method '{name}' takes no argument"))
    }
}

fn header_fetch(name: &str, args: &[&str]) -> Result<Fetch, String> {
    let header = args.first().filter(|h| !h.is_empty()).ok_or_else(|| {
        format!(
            "fetch method '{name}' needs a header name, as in '{name}(host)' (all headers is not supported)"
        )
    })?;
    let occurrence = match args.get(1) {
        None => None,
        Some(occ) => Some(
            occ.parse().map_err(|_| format!("invalid occurrence '{occ}' in '{name}': integer expected"))?,
        ),
    };
    if args.len() > 2 {
        return Err(format!("too many arguments to fetch method '{name}'"));
    }
    Ok(Fetch::Hdr { name: header.to_ascii_lowercase(), occurrence })
}

/// A sample fetch usable in `%[…]` and as the base of ACL keywords.
fn base_fetch(
    name: &str,
    args: &[&str],
    refs: &mut BackendRefs,
) -> Result<Option<(Fetch, MatchMethod)>, String> {
    use MatchMethod as M;
    let found = match name {
        "src" => (Fetch::Src, M::Ip),
        "src_port" => (Fetch::SrcPort, M::Int),
        "dst" => (Fetch::Dst, M::Ip),
        "dst_port" => (Fetch::DstPort, M::Int),
        "path" => (Fetch::Path, M::Exact),
        "url" => (Fetch::Url, M::Exact),
        "query" => (Fetch::Query, M::Exact),
        "hdr" | "req.hdr" | "req.fhdr" => (header_fetch(name, args)?, M::Exact),
        "hdr_cnt" | "req.hdr_cnt" => (Fetch::HdrCnt(one_arg(name, args)?.to_ascii_lowercase()), M::Int),
        "method" => (Fetch::Method, M::Exact),
        "req.ver" | "req_ver" => (Fetch::HttpVersion, M::Exact),
        "ssl_fc" => (Fetch::SslFc, M::Bool),
        "ssl_fc_sni" => (Fetch::SslFcSni, M::Exact),
        "req.ssl_sni" | "req_ssl_sni" => (Fetch::ReqSslSni, M::Exact),
        "req.ssl_hello_type" | "req_ssl_hello_type" => (Fetch::ReqSslHelloType, M::Int),
        "req.len" | "req_len" => (Fetch::ReqLen, M::Int),
        "nbsrv" => {
            let backend = one_arg(name, args)?;
            refs.push(backend.clone());
            return Ok(Some((Fetch::NbSrv(backend), M::Int)));
        }
        "always_true" => (Fetch::Always(true), M::Bool),
        "always_false" => (Fetch::Always(false), M::Bool),
        "url_param" | "urlp" => (Fetch::UrlParam(one_arg(name, args)?), M::Exact),
        "cook" | "req.cook" => (Fetch::Cookie(one_arg(name, args)?), M::Exact),
        _ => return Ok(None),
    };
    if !matches!(
        name,
        "hdr"
            | "req.hdr"
            | "req.fhdr"
            | "hdr_cnt"
            | "req.hdr_cnt"
            | "url_param"
            | "urlp"
            | "cook"
            | "req.cook"
    ) {
        no_args(name, args)?;
    }
    Ok(Some(found))
}

/// An ACL keyword such as `path_beg` or `hdr_dom(host)`: a base fetch plus the
/// match method its suffix implies.
fn acl_keyword(text: &str, refs: &mut BackendRefs) -> Result<(Fetch, MatchMethod), String> {
    let (fetch_text, converters) = split_converters(text);
    if let Some(conv) = converters {
        return Err(converter_error(conv));
    }
    let (name, args) = split_call(fetch_text)?;
    if let Some(found) = base_fetch(name, &args, refs)? {
        return Ok(found);
    }
    let suffixes = [
        ("_beg", MatchMethod::Beg),
        ("_end", MatchMethod::End),
        ("_sub", MatchMethod::Sub),
        ("_reg", MatchMethod::Reg),
        ("_dom", MatchMethod::Dom),
        ("_dir", MatchMethod::Dir),
        ("_len", MatchMethod::Len),
    ];
    for (suffix, method) in suffixes {
        if let Some(base) = name.strip_suffix(suffix) {
            let string_bases =
                ["path", "url", "hdr", "req.hdr", "ssl_fc_sni", "req.ssl_sni", "req_ssl_sni", "cook", "urlp"];
            if string_bases.contains(&base) {
                if let Some((fetch, _)) = base_fetch(base, &args, refs)? {
                    return Ok((fetch, method));
                }
            }
        }
    }
    Err(format!("unknown fetch method '{name}' in ACL expression '{text}'"))
}

/// A fetch inside `%[…]` in a log-format string.
pub(super) fn sample_fetch(text: &str, refs: &mut BackendRefs) -> Result<Fetch, String> {
    let (fetch_text, converters) = split_converters(text);
    if let Some(conv) = converters {
        return Err(converter_error(conv));
    }
    let (name, args) = split_call(fetch_text)?;
    match base_fetch(name, &args, refs)? {
        Some((fetch, _)) => Ok(fetch),
        None => Err(format!("unknown fetch method '{name}' in '%[{text}]'")),
    }
}

fn parse_method(text: &str) -> Result<MatchMethod, String> {
    use MatchMethod as M;
    Ok(match text {
        "str" => M::Exact,
        "beg" => M::Beg,
        "end" => M::End,
        "sub" => M::Sub,
        "reg" => M::Reg,
        "dom" => M::Dom,
        "dir" => M::Dir,
        "len" => M::Len,
        "found" => M::Found,
        "int" => M::Int,
        "ip" => M::Ip,
        "bool" => M::Bool,
        other => return Err(format!("unknown matching method '{other}' after '-m'")),
    })
}

/// `10.0.0.0/8`, `192.168.1.1`, `::1`, `2001:db8::/32`, `10.0.0.0/255.0.0.0`.
pub(super) fn parse_net(text: &str) -> Result<IpNet, String> {
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr =
        addr_text.parse().map_err(|_| format!("'{text}' is not a valid IPv4 or IPv6 address or network"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            Ok(_) => return Err(format!("invalid prefix length in '{text}'")),
            Err(_) => match p.parse::<std::net::Ipv4Addr>() {
                // A dotted mask, as `10.0.0.0/255.0.0.0`; only contiguous masks.
                Ok(mask)
                    if addr.is_ipv4() && (u32::from(mask).leading_ones() == u32::from(mask).count_ones()) =>
                {
                    u32::from(mask).count_ones() as u8
                }
                _ => return Err(format!("invalid network mask in '{text}'")),
            },
        },
    };
    Ok(IpNet { addr, prefix })
}

/// Integer patterns: `80`, `1024:65535`, `:100`, `eq|ne|lt|le|gt|ge N`.
fn parse_int_patterns(words: &[String]) -> Result<Vec<Pattern>, String> {
    let mut patterns = Vec::new();
    let mut operator: Option<&str> = None;
    for word in words {
        if matches!(word.as_str(), "eq" | "ne" | "lt" | "le" | "gt" | "ge") {
            operator = Some(word);
            continue;
        }
        let number =
            |t: &str| t.parse::<i64>().map_err(|_| format!("'{word}' is not a valid integer pattern"));
        let range = match operator.take() {
            Some("eq") => {
                let n = number(word)?;
                (n, n)
            }
            Some("lt") => (i64::MIN, number(word)? - 1),
            Some("le") => (i64::MIN, number(word)?),
            Some("gt") => (number(word)? + 1, i64::MAX),
            Some("ge") => (number(word)?, i64::MAX),
            Some(_) => {
                // `ne N` is the two ranges around N.
                let n = number(word)?;
                patterns.push(Pattern::IntRange(i64::MIN, n - 1));
                (n + 1, i64::MAX)
            }
            None => match word.split_once(':') {
                Some((low, high)) => {
                    let low = if low.is_empty() { i64::MIN } else { number(low)? };
                    let high = if high.is_empty() { i64::MAX } else { number(high)? };
                    (low, high)
                }
                None => {
                    let n = number(word)?;
                    (n, n)
                }
            },
        };
        patterns.push(Pattern::IntRange(range.0, range.1));
    }
    if let Some(op) = operator {
        return Err(format!("missing number after operator '{op}'"));
    }
    Ok(patterns)
}

fn compile_regex(text: &str, ignore_case: bool) -> Result<regex::Regex, String> {
    let source = if ignore_case { format!("(?i){text}") } else { text.to_string() };
    regex::Regex::new(&source).map_err(|e| format!("invalid regex '{text}': {e}"))
}

/// What one ACL expression produced, with any warning to report.
pub(super) struct ParsedAcl {
    pub acl: AclMatch,
    pub warning: Option<String>,
}

/// `FETCH [flags] PATTERNS…` (the part after `acl NAME`, or inside `{ }`).
pub(super) fn parse_acl_expr(words: &[String], refs: &mut BackendRefs) -> Result<ParsedAcl, String> {
    let keyword = words.first().ok_or("missing fetch method in ACL expression")?;
    let (fetch, default_method) = acl_keyword(keyword, refs)?;
    let mut method = default_method;
    let mut ignore_case = false;
    let mut explicit_end = false;
    let mut rest = &words[1..];
    while let Some(flag) = rest.first() {
        match flag.as_str() {
            "-i" => ignore_case = true,
            "-n" | "-u" => {}
            "-m" => {
                let name = rest.get(1).ok_or("missing matching method after '-m'")?;
                method = parse_method(name)?;
                rest = &rest[1..];
            }
            "-f" => {
                return Err("pattern files ('-f') are not supported: list the patterns on the line".into())
            }
            "-M" => return Err("map files ('-M') are not supported".into()),
            "--" => {
                explicit_end = true;
                rest = &rest[1..];
                break;
            }
            other
                if other.starts_with('-')
                    && other.len() > 1
                    && !other[1..].starts_with(|c: char| c.is_ascii_digit()) =>
            {
                return Err(format!("unknown ACL flag '{other}'"))
            }
            _ => break,
        }
        rest = &rest[1..];
    }
    let patterns = match method {
        MatchMethod::Found => {
            if !rest.is_empty() {
                return Err(format!("'-m found' takes no pattern, got '{}'", rest[0]));
            }
            Vec::new()
        }
        MatchMethod::Bool if rest.is_empty() => Vec::new(),
        MatchMethod::Bool => {
            method = MatchMethod::Int;
            parse_int_patterns(rest)?
        }
        MatchMethod::Int | MatchMethod::Len => parse_int_patterns(rest)?,
        MatchMethod::Ip => rest.iter().map(|w| parse_net(w).map(Pattern::Net)).collect::<Result<_, _>>()?,
        MatchMethod::Reg => rest
            .iter()
            .map(|w| compile_regex(w, ignore_case).map(Pattern::Regex))
            .collect::<Result<_, _>>()?,
        _ => rest.iter().map(|w| Pattern::Str(w.clone())).collect(),
    };
    let needs_patterns = !matches!(method, MatchMethod::Found | MatchMethod::Bool);
    let warning = (needs_patterns && patterns.is_empty() && !explicit_end).then(|| {
        format!("ACL keyword '{keyword}' has no pattern to match against, so it will never match (use '-m found' to test for presence)")
    });
    Ok(ParsedAcl { acl: AclMatch { fetch, method, patterns, ignore_case }, warning })
}

fn strings(items: &[&str]) -> Vec<Pattern> {
    items.iter().map(|s| Pattern::Str(s.to_string())).collect()
}

fn simple(fetch: Fetch, method: MatchMethod, patterns: Vec<Pattern>) -> AclMatch {
    AclMatch { fetch, method, patterns, ignore_case: false }
}

/// HAProxy's predefined ACLs, as matches; `None` when the name is not one.
pub(super) fn predefined_acl(name: &str) -> Option<Result<AclMatch, String>> {
    use MatchMethod as M;
    let method_is = |m: &str| simple(Fetch::Method, M::Exact, strings(&[m]));
    let acl = match name {
        "TRUE" => simple(Fetch::Always(true), M::Bool, Vec::new()),
        "FALSE" => simple(Fetch::Always(false), M::Bool, Vec::new()),
        "LOCALHOST" => simple(
            Fetch::Src,
            M::Ip,
            vec![
                Pattern::Net(IpNet { addr: IpAddr::from([127, 0, 0, 0]), prefix: 8 }),
                Pattern::Net(IpNet { addr: IpAddr::from(std::net::Ipv6Addr::LOCALHOST), prefix: 128 }),
            ],
        ),
        // Every request an HTTP proxy sees has a method: "is HTTP".
        "HTTP" => simple(Fetch::Method, M::Found, Vec::new()),
        "HTTP_1.0" => simple(Fetch::HttpVersion, M::Exact, strings(&["1.0"])),
        "HTTP_1.1" => simple(Fetch::HttpVersion, M::Exact, strings(&["1.1"])),
        "HTTP_2.0" => simple(Fetch::HttpVersion, M::Exact, strings(&["2.0"])),
        "HTTP_CONTENT" => simple(
            Fetch::Hdr { name: "content-length".into(), occurrence: None },
            M::Int,
            vec![Pattern::IntRange(1, i64::MAX)],
        ),
        "HTTP_URL_ABS" => {
            simple(Fetch::Url, M::Reg, vec![Pattern::Regex(regex::Regex::new("^[^/:]*://").ok()?)])
        }
        "HTTP_URL_SLASH" => simple(Fetch::Url, M::Beg, strings(&["/"])),
        "HTTP_URL_STAR" => simple(Fetch::Url, M::Exact, strings(&["*"])),
        "METH_CONNECT" => method_is("CONNECT"),
        "METH_DELETE" => method_is("DELETE"),
        "METH_GET" => simple(Fetch::Method, M::Exact, strings(&["GET", "HEAD"])),
        "METH_HEAD" => method_is("HEAD"),
        "METH_OPTIONS" => method_is("OPTIONS"),
        "METH_POST" => method_is("POST"),
        "METH_PUT" => method_is("PUT"),
        "METH_TRACE" => method_is("TRACE"),
        "REQ_CONTENT" => simple(Fetch::ReqLen, M::Int, vec![Pattern::IntRange(1, i64::MAX)]),
        "WAIT_END" | "RDP_COOKIE" => {
            return Some(Err(format!("predefined ACL '{name}' is not supported")));
        }
        _ => return None,
    };
    Some(Ok(acl))
}

/// Parses `if|unless COND…` (the words from `if`/`unless` on). Named ACLs must
/// be declared before (as in HAProxy); predefined ones are always known.
pub(super) fn parse_condition(
    words: &[String],
    acls: &AclTable,
    refs: &mut BackendRefs,
    warnings: &mut Vec<String>,
) -> Result<Condition, String> {
    let unless = match words.first().map(String::as_str) {
        Some("if") => false,
        Some("unless") => true,
        _ => return Err("condition must start with 'if' or 'unless'".into()),
    };
    let mut any_of: Vec<Vec<CondTerm>> = vec![Vec::new()];
    let mut i = 1;
    let mut negate_next = false;
    while i < words.len() {
        let mut word = words[i].as_str();
        i += 1;
        if word == "||" || word == "or" {
            if negate_next || any_of.last().is_some_and(Vec::is_empty) {
                return Err(format!("missing ACL before '{word}'"));
            }
            any_of.push(Vec::new());
            continue;
        }
        let mut negated = negate_next;
        negate_next = false;
        while let Some(rest) = word.strip_prefix('!') {
            negated = !negated;
            word = rest;
        }
        if word.is_empty() {
            negate_next = negated;
            continue;
        }
        let term = if word == "{" {
            let close =
                words[i..].iter().position(|w| w == "}").ok_or("missing closing '}' in anonymous ACL")?;
            let inner = &words[i..i + close];
            i += close + 1;
            let parsed = parse_acl_expr(inner, refs)?;
            if let Some(w) = parsed.warning {
                warnings.push(w);
            }
            CondTerm { negated, acl: vec![parsed.acl], label: format!("{{ {} }}", inner.join(" ")) }
        } else if let Some(declared) = acls.get(word) {
            CondTerm { negated, acl: declared.clone(), label: word.to_string() }
        } else if let Some(predefined) = predefined_acl(word) {
            CondTerm { negated, acl: vec![predefined?], label: word.to_string() }
        } else {
            return Err(format!("no such ACL : '{word}'"));
        };
        if let Some(last) = any_of.last_mut() {
            last.push(term);
        }
    }
    if negate_next {
        return Err("missing ACL after '!'".into());
    }
    if any_of.iter().any(Vec::is_empty) {
        return Err("missing ACL in condition".into());
    }
    Ok(Condition { unless, any_of })
}

/// Splits rule words at the first `if`/`unless`: (action words, condition words).
pub(super) fn split_condition(words: &[String]) -> (&[String], Option<&[String]>) {
    match words.iter().position(|w| w == "if" || w == "unless") {
        Some(at) => (&words[..at], Some(&words[at..])),
        None => (words, None),
    }
}

/// A log-format string: `%[fetch]` samples, `%%` for a percent, other text literal.
pub(super) fn parse_fmt(text: &str, refs: &mut BackendRefs) -> Result<FmtString, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            literal.push('%');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('[') {
            let close = tail.find(']').ok_or_else(|| format!("missing ']' after '%[' in '{text}'"))?;
            if !literal.is_empty() {
                parts.push(FmtPart::Lit(std::mem::take(&mut literal)));
            }
            parts.push(FmtPart::Sample(sample_fetch(&tail[..close], refs)?));
            rest = &tail[close + 1..];
        } else {
            // `%ci`-style log variables are kept as text.
            literal.push('%');
            rest = after;
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() || parts.is_empty() {
        parts.push(FmtPart::Lit(literal));
    }
    Ok(FmtString { parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    fn expr(text: &str) -> Result<AclMatch, String> {
        parse_acl_expr(&w(text), &mut Vec::new()).map(|p| p.acl)
    }

    #[test]
    fn acl_keywords_map_to_fetch_and_method() {
        let acl = expr("path_beg /api /static").expect("valid");
        assert_eq!(acl.fetch, Fetch::Path);
        assert_eq!(acl.method, MatchMethod::Beg);
        assert_eq!(acl.patterns, strings(&["/api", "/static"]));
        let acl = expr("hdr_dom(Host) -i example.com").expect("valid");
        assert_eq!(acl.fetch, Fetch::Hdr { name: "host".into(), occurrence: None });
        assert_eq!(acl.method, MatchMethod::Dom);
        assert!(acl.ignore_case);
        assert_eq!(expr("req.ssl_sni -m end .example.com").expect("valid").method, MatchMethod::End);
        assert_eq!(expr("req_ssl_hello_type 1").expect("valid").patterns, vec![Pattern::IntRange(1, 1)]);
        assert_eq!(expr("ssl_fc").expect("valid").method, MatchMethod::Bool);
        assert_eq!(expr("cook(SRV) -m found").expect("valid").fetch, Fetch::Cookie("SRV".into()));
        let mut refs = Vec::new();
        parse_acl_expr(&w("nbsrv(app) lt 1"), &mut refs).expect("valid");
        assert_eq!(refs, ["app"]);
    }

    #[test]
    fn ip_and_int_patterns() {
        let acl = expr("src 10.0.0.0/8 192.168.1.1 ::1").expect("valid");
        assert_eq!(acl.patterns.len(), 3);
        assert_eq!(acl.patterns[0], Pattern::Net(IpNet { addr: IpAddr::from([10, 0, 0, 0]), prefix: 8 }));
        assert!(expr("src example.com").unwrap_err().contains("not a valid IPv4"));
        let acl = expr("dst_port 80 1024:65535 gt 9000 ne 5").expect("valid");
        assert_eq!(
            acl.patterns,
            vec![
                Pattern::IntRange(80, 80),
                Pattern::IntRange(1024, 65535),
                Pattern::IntRange(9001, i64::MAX),
                Pattern::IntRange(i64::MIN, 4),
                Pattern::IntRange(6, i64::MAX),
            ]
        );
    }

    #[test]
    fn unsupported_acl_forms() {
        assert!(expr("src -f /etc/list").unwrap_err().contains("'-f'"));
        assert!(expr("path,lower /x").unwrap_err().contains("converter 'lower'"));
        assert!(expr("sc0_get_gpc0 1").unwrap_err().contains("unknown fetch method 'sc0_get_gpc0'"));
        assert!(expr("path_reg ([").unwrap_err().contains("invalid regex"));
    }

    #[test]
    fn regex_ignore_case_is_compiled_in() {
        let acl = expr("path_reg -i ^/API").expect("valid");
        match &acl.patterns[0] {
            Pattern::Regex(re) => assert!(re.is_match("/api/v1")),
            other => panic!("expected a regex, got {other:?}"),
        }
    }

    #[test]
    fn conditions_and_or_not() {
        let mut acls = AclTable::new();
        acls.insert("a".into(), vec![expr("path /a").expect("valid"), expr("path /b").expect("valid")]);
        acls.insert("b".into(), vec![expr("src 10.0.0.0/8").expect("valid")]);
        let cond = parse_condition(
            &w("unless a !b || { ssl_fc } or METH_POST"),
            &acls,
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .expect("valid");
        assert!(cond.unless);
        assert_eq!(cond.any_of.len(), 3);
        assert_eq!(cond.any_of[0].len(), 2);
        assert_eq!(cond.any_of[0][0].acl.len(), 2, "named ACL lines are OR'ed");
        assert!(cond.any_of[0][1].negated);
        assert_eq!(cond.any_of[1][0].label, "{ ssl_fc }");
        assert_eq!(cond.any_of[2][0].acl[0].patterns, strings(&["POST"]));
        let negated =
            parse_condition(&w("if !{ ssl_fc }"), &acls, &mut Vec::new(), &mut Vec::new()).expect("valid");
        assert!(negated.any_of[0][0].negated);
        let err = parse_condition(&w("if nope"), &acls, &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert_eq!(err, "no such ACL : 'nope'");
        assert!(parse_condition(&w("if WAIT_END"), &acls, &mut Vec::new(), &mut Vec::new()).is_err());
        assert!(parse_condition(&w("if a ||"), &acls, &mut Vec::new(), &mut Vec::new()).is_err());
        assert!(parse_condition(&w("if { src 1.2.3.4"), &acls, &mut Vec::new(), &mut Vec::new()).is_err());
    }

    #[test]
    fn every_predefined_acl_resolves() {
        for name in [
            "TRUE",
            "FALSE",
            "LOCALHOST",
            "HTTP",
            "HTTP_1.0",
            "HTTP_1.1",
            "HTTP_CONTENT",
            "HTTP_URL_ABS",
            "HTTP_URL_SLASH",
            "HTTP_2.0",
            "HTTP_URL_STAR",
            "METH_CONNECT",
            "METH_DELETE",
            "METH_GET",
            "METH_HEAD",
            "METH_OPTIONS",
            "METH_POST",
            "METH_PUT",
            "METH_TRACE",
            "REQ_CONTENT",
        ] {
            assert!(matches!(predefined_acl(name), Some(Ok(_))), "{name}");
        }
        assert!(matches!(predefined_acl("WAIT_END"), Some(Err(_))));
        assert!(predefined_acl("nope").is_none());
    }

    #[test]
    fn log_format_strings() {
        let fmt = parse_fmt("ip=%[src] 100%% %ci", &mut Vec::new()).expect("valid");
        assert_eq!(
            fmt.parts,
            vec![FmtPart::Lit("ip=".into()), FmtPart::Sample(Fetch::Src), FmtPart::Lit(" 100% %ci".into())]
        );
        let fmt = parse_fmt("%[req.hdr(Host)]", &mut Vec::new()).expect("valid");
        assert_eq!(fmt.parts, vec![FmtPart::Sample(Fetch::Hdr { name: "host".into(), occurrence: None })]);
        assert_eq!(
            parse_fmt("%[src,lower]", &mut Vec::new()).unwrap_err(),
            "converter 'lower' is not supported"
        );
        assert!(parse_fmt("%[src", &mut Vec::new()).is_err());
        assert_eq!(parse_fmt("", &mut Vec::new()).expect("valid"), FmtString::literal(""));
    }
}
