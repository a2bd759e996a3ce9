//! `http-request`, `http-response`, `redirect` and `tcp-request` rules.

use std::path::PathBuf;

use super::acl::{parse_condition, parse_fmt, split_condition, AclTable, BackendRefs};
use super::model::*;
use super::time::parse_time;

/// What rules need from their proxy: its ACLs, and where to report the
/// backends and warnings they mention.
pub(super) struct RuleCtx<'a> {
    pub acls: &'a AclTable,
    pub refs: &'a mut BackendRefs,
    pub warnings: &'a mut Vec<String>,
}

impl RuleCtx<'_> {
    fn condition(&mut self, words: Option<&[String]>) -> Result<Option<Condition>, String> {
        words.map(|w| parse_condition(w, self.acls, self.refs, self.warnings)).transpose()
    }

    fn fmt(&mut self, text: &str) -> Result<FmtString, String> {
        parse_fmt(text, self.refs)
    }
}

fn regex(text: &str) -> Result<RegexPat, String> {
    regex::Regex::new(text).map(RegexPat).map_err(|e| format!("invalid regex '{text}': {e}"))
}

/// HAProxy writes `\1` for capture groups; the regex crate wants `${1}`.
fn replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                out.push_str(&format!("${{{d}}}"));
                chars.next();
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

/// Exactly `n` arguments after the action name.
fn args<'w>(action: &str, words: &'w [String], n: usize, usage: &str) -> Result<&'w [String], String> {
    if words.len() != n {
        return Err(format!("'{action}' expects {usage}"));
    }
    Ok(words)
}

fn status_code(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(code) if (200..=599).contains(&code) => Ok(code),
        _ => Err(format!("invalid status code '{text}' (200-599 expected)")),
    }
}

/// `redirect location|prefix|scheme X [code N] [drop-query] [append-slash] [set-cookie C] [clear-cookie C]`.
pub(super) fn parse_redirect(words: &[String], ctx: &mut RuleCtx<'_>) -> Result<Redirect, String> {
    let (kind, target) = match words {
        [kind, target, ..] => (kind.as_str(), target),
        _ => return Err("'redirect' expects 'location', 'prefix' or 'scheme' followed by a value".into()),
    };
    let target = ctx.fmt(target)?;
    let kind = match kind {
        "location" => RedirectKind::Location(target),
        "prefix" => RedirectKind::Prefix(target),
        "scheme" => RedirectKind::Scheme(target),
        other => return Err(format!("'redirect' expects 'location', 'prefix' or 'scheme', got '{other}'")),
    };
    let mut redirect = Redirect {
        kind,
        code: 302,
        drop_query: false,
        append_slash: false,
        set_cookie: None,
        clear_cookie: None,
    };
    let mut i = 2;
    while i < words.len() {
        let option = words[i].as_str();
        let mut value = || {
            i += 1;
            words.get(i).cloned().ok_or_else(|| format!("'{option}' expects an argument"))
        };
        match option {
            "code" => {
                let code = value()?;
                redirect.code = match code.parse() {
                    Ok(c @ (301 | 302 | 303 | 307 | 308)) => c,
                    _ => return Err(format!("invalid redirect code '{code}' (301, 302, 303, 307 or 308)")),
                }
            }
            "drop-query" => redirect.drop_query = true,
            "append-slash" => redirect.append_slash = true,
            "set-cookie" => redirect.set_cookie = Some(value()?),
            "clear-cookie" => redirect.clear_cookie = Some(value()?),
            other => return Err(format!("unknown redirect option '{other}'")),
        }
        i += 1;
    }
    Ok(redirect)
}

/// `return [status N] [content-type T] [string S|lf-string S|file F|errorfile F] [hdr N V]*`.
fn parse_return(words: &[String], ctx: &mut RuleCtx<'_>) -> Result<HttpReturn, String> {
    let mut ret = HttpReturn { status: 200, content_type: None, body: ReturnBody::None, headers: Vec::new() };
    let mut i = 0;
    while i < words.len() {
        let option = words[i].as_str();
        let value =
            |at: usize| words.get(at).cloned().ok_or_else(|| format!("'{option}' expects an argument"));
        match option {
            "status" => ret.status = status_code(&value(i + 1)?)?,
            "content-type" => ret.content_type = Some(value(i + 1)?),
            "string" => ret.body = ReturnBody::String(FmtString::literal(&value(i + 1)?)),
            "lf-string" => ret.body = ReturnBody::String(ctx.fmt(&value(i + 1)?)?),
            "file" | "lf-file" => ret.body = ReturnBody::File(PathBuf::from(value(i + 1)?)),
            "errorfile" => ret.body = ReturnBody::ErrorFile(PathBuf::from(value(i + 1)?)),
            "hdr" => {
                let name = value(i + 1)?;
                let header_value = value(i + 2)?;
                ret.headers.push((name, ctx.fmt(&header_value)?));
                i += 1;
            }
            "default-errorfiles" | "errorfiles" => return Err(format!("'return {option}' is not supported")),
            other => return Err(format!("unknown 'return' option '{other}'")),
        }
        i += 2;
    }
    if matches!(ret.body, ReturnBody::None) && ret.content_type.is_some() {
        ctx.warnings.push("'return' content-type ignored: neither a body nor an errorfile is given".into());
        ret.content_type = None;
    }
    let has_body = !matches!(ret.body, ReturnBody::None | ReturnBody::ErrorFile(_));
    if has_body && ret.content_type.is_none() {
        return Err("'return' with a body needs a 'content-type'".into());
    }
    if matches!(ret.body, ReturnBody::ErrorFile(_)) && (ret.content_type.is_some() || !ret.headers.is_empty())
    {
        return Err("'return errorfile' takes neither 'content-type' nor 'hdr'".into());
    }
    Ok(ret)
}

/// `deny [deny_status N | status N]`.
fn parse_deny(words: &[String]) -> Result<u16, String> {
    match words {
        [] => Ok(403),
        [kw, code] if kw == "deny_status" || kw == "status" => status_code(code),
        _ => Err(format!("unsupported 'deny' arguments '{}'", words.join(" "))),
    }
}

/// Header actions shared by both directions.
enum HeaderAction {
    Set(String, FmtString),
    Add(String, FmtString),
    Del(String),
    Replace(String, RegexPat, String),
    ReplaceValue(String, RegexPat, String),
}

fn parse_header_action(
    action: &str,
    rest: &[String],
    ctx: &mut RuleCtx<'_>,
) -> Result<Option<HeaderAction>, String> {
    Ok(Some(match action {
        "set-header" | "add-header" => {
            let [name, value] = args(action, rest, 2, "a header name and a value")? else {
                return Err(format!("'{action}' expects a header name and a value"));
            };
            let value = ctx.fmt(value)?;
            if action == "set-header" {
                HeaderAction::Set(name.clone(), value)
            } else {
                HeaderAction::Add(name.clone(), value)
            }
        }
        "del-header" => match rest {
            [name] => HeaderAction::Del(name.clone()),
            _ => return Err("'del-header' expects a header name".into()),
        },
        "replace-header" | "replace-value" => {
            let [name, pattern, replace] = args(action, rest, 3, "a header name, a regex and a replacement")?
            else {
                return Err(format!("'{action}' expects a header name, a regex and a replacement"));
            };
            let (pattern, replace) = (regex(pattern)?, replacement(replace));
            if action == "replace-header" {
                HeaderAction::Replace(name.clone(), pattern, replace)
            } else {
                HeaderAction::ReplaceValue(name.clone(), pattern, replace)
            }
        }
        _ => return Ok(None),
    }))
}

/// `http-request ACTION … [if|unless COND]` (words after `http-request`).
pub(super) fn parse_http_request(
    words: &[String],
    line: usize,
    ctx: &mut RuleCtx<'_>,
) -> Result<HttpRequestRule, String> {
    let (action_words, cond_words) = split_condition(words);
    let (action, rest) = action_words.split_first().ok_or("'http-request' expects an action")?;
    let action = match action.as_str() {
        "redirect" => HttpRequestAction::Redirect(parse_redirect(rest, ctx)?),
        "deny" => HttpRequestAction::Deny { status: parse_deny(rest)? },
        "allow" if rest.is_empty() => HttpRequestAction::Allow,
        "disable-l7-retry" if rest.is_empty() => HttpRequestAction::DisableL7Retry,
        "set-path" => match rest {
            [path] => HttpRequestAction::SetPath(ctx.fmt(path)?),
            _ => return Err("'set-path' expects one argument".into()),
        },
        "return" => HttpRequestAction::Return(parse_return(rest, ctx)?),
        "use-service" => match rest {
            [service] if service == "prometheus-exporter" => HttpRequestAction::PrometheusExporter,
            _ => {
                return Err(format!(
                    "'use-service {}' is not supported (only prometheus-exporter)",
                    rest.join(" ")
                ))
            }
        },
        name => match parse_header_action(name, rest, ctx)? {
            Some(HeaderAction::Set(name, value)) => HttpRequestAction::SetHeader { name, value },
            Some(HeaderAction::Add(name, value)) => HttpRequestAction::AddHeader { name, value },
            Some(HeaderAction::Del(name)) => HttpRequestAction::DelHeader { name },
            Some(HeaderAction::Replace(name, regex, replace)) => {
                HttpRequestAction::ReplaceHeader { name, regex, replace }
            }
            Some(HeaderAction::ReplaceValue(name, regex, replace)) => {
                HttpRequestAction::ReplaceValue { name, regex, replace }
            }
            None if matches!(name, "allow" | "disable-l7-retry") => {
                return Err(format!("'{name}' takes no argument"));
            }
            None => return Err(format!("unsupported 'http-request' action '{name}'")),
        },
    };
    Ok(HttpRequestRule { line, action, cond: ctx.condition(cond_words)? })
}

/// `http-response ACTION … [if|unless COND]`.
pub(super) fn parse_http_response(
    words: &[String],
    line: usize,
    ctx: &mut RuleCtx<'_>,
) -> Result<HttpResponseRule, String> {
    let (action_words, cond_words) = split_condition(words);
    let (action, rest) = action_words.split_first().ok_or("'http-response' expects an action")?;
    let action = match action.as_str() {
        "deny" => HttpResponseAction::Deny { status: parse_deny(rest)? },
        "allow" if rest.is_empty() => HttpResponseAction::Allow,
        name => match parse_header_action(name, rest, ctx)? {
            Some(HeaderAction::Set(name, value)) => HttpResponseAction::SetHeader { name, value },
            Some(HeaderAction::Add(name, value)) => HttpResponseAction::AddHeader { name, value },
            Some(HeaderAction::Del(name)) => HttpResponseAction::DelHeader { name },
            Some(HeaderAction::Replace(name, regex, replace)) => {
                HttpResponseAction::ReplaceHeader { name, regex, replace }
            }
            Some(HeaderAction::ReplaceValue(name, regex, replace)) => {
                HttpResponseAction::ReplaceValue { name, regex, replace }
            }
            None => return Err(format!("unsupported 'http-response' action '{name}'")),
        },
    };
    Ok(HttpResponseRule { line, action, cond: ctx.condition(cond_words)? })
}

/// What a `tcp-request` line sets.
pub(super) enum TcpRequest {
    InspectDelay(std::time::Duration),
    Rule(TcpRequestRule),
}

/// `tcp-request inspect-delay T` / `tcp-request connection|content accept|reject [if COND]`.
pub(super) fn parse_tcp_request(
    words: &[String],
    line: usize,
    ctx: &mut RuleCtx<'_>,
) -> Result<TcpRequest, String> {
    match words {
        [kw, delay] if kw == "inspect-delay" => Ok(TcpRequest::InspectDelay(
            parse_time(delay).map_err(|e| format!("'tcp-request inspect-delay': {e}"))?,
        )),
        [kind, action, rest @ ..] if kind == "connection" || kind == "content" => {
            let accept = match action.as_str() {
                "accept" => true,
                "reject" => false,
                other => {
                    return Err(format!(
                        "unsupported 'tcp-request {kind}' action '{other}' (accept or reject)"
                    ))
                }
            };
            if rest.first().is_some_and(|w| w != "if" && w != "unless") {
                return Err(format!("unexpected '{}' after 'tcp-request {kind} {action}'", rest[0]));
            }
            let cond = ctx.condition((!rest.is_empty()).then_some(rest))?;
            Ok(TcpRequest::Rule(TcpRequestRule { line, content: kind == "content", accept, cond }))
        }
        [kind, ..] if kind == "session" => Err("'tcp-request session' rules are not supported".into()),
        _ => Err("'tcp-request' expects 'inspect-delay', 'connection' or 'content'".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Vec<String> {
        super::super::lexer::split_line(text).expect("splits")
    }

    fn request(text: &str) -> Result<HttpRequestRule, String> {
        let acls = AclTable::new();
        let mut ctx = RuleCtx { acls: &acls, refs: &mut Vec::new(), warnings: &mut Vec::new() };
        parse_http_request(&w(text), 4, &mut ctx)
    }

    #[test]
    fn redirect_rules() {
        let rule = request("redirect scheme https code 301 drop-query if !{ ssl_fc }").expect("valid");
        let HttpRequestAction::Redirect(redirect) = rule.action else { panic!("not a redirect") };
        assert_eq!(redirect.kind, RedirectKind::Scheme(FmtString::literal("https")));
        assert_eq!(redirect.code, 301);
        assert!(redirect.drop_query);
        assert!(rule.cond.expect("has condition").any_of[0][0].negated);
        assert!(request("redirect scheme https code 404").unwrap_err().contains("invalid redirect code"));
    }

    #[test]
    fn header_rules() {
        let rule = request(r"replace-value Host (.*):8080 \1:8443").expect("valid");
        match rule.action {
            HttpRequestAction::ReplaceValue { name, regex, replace } => {
                assert_eq!(name, "Host");
                assert_eq!(regex.0.replace("example.com:8080", replace.as_str()), "example.com:8443");
            }
            other => panic!("unexpected {other:?}"),
        }
        let rule = request("set-header X-Client %[src]").expect("valid");
        assert_eq!(
            rule.action,
            HttpRequestAction::SetHeader {
                name: "X-Client".into(),
                value: FmtString { parts: vec![FmtPart::Sample(Fetch::Src)] }
            }
        );
        assert!(request("set-header X-A %[src,ipmask(24)]").unwrap_err().contains("converter 'ipmask'"));
        assert!(request("set-header X-A").is_err());
        assert!(request("del-header X-A").is_ok());
    }

    #[test]
    fn deny_return_and_others() {
        assert_eq!(
            request("deny deny_status 429").expect("valid").action,
            HttpRequestAction::Deny { status: 429 }
        );
        assert_eq!(request("deny").expect("valid").action, HttpRequestAction::Deny { status: 403 });
        let rule = request("return status 200 content-type text/plain string ok hdr X-A b").expect("valid");
        let HttpRequestAction::Return(ret) = rule.action else { panic!("not a return") };
        assert_eq!(ret.body, ReturnBody::String(FmtString::literal("ok")));
        assert_eq!(ret.headers.len(), 1);
        assert!(request("return string ok").unwrap_err().contains("content-type"));
        assert_eq!(
            request("disable-l7-retry if METH_POST").expect("valid").action,
            HttpRequestAction::DisableL7Retry
        );
        assert_eq!(
            request("use-service prometheus-exporter if { path /metrics }").expect("valid").action,
            HttpRequestAction::PrometheusExporter
        );
        assert!(request("set-var(txn.x) str(a)").unwrap_err().contains("unsupported 'http-request' action"));
        assert!(request("deny if nope").unwrap_err().contains("no such ACL : 'nope'"));
    }

    #[test]
    fn tcp_request_rules() {
        let acls = AclTable::new();
        let mut ctx = RuleCtx { acls: &acls, refs: &mut Vec::new(), warnings: &mut Vec::new() };
        match parse_tcp_request(&w("content accept if { req_ssl_hello_type 1 }"), 3, &mut ctx) {
            Ok(TcpRequest::Rule(rule)) => assert!(rule.content && rule.accept && rule.cond.is_some()),
            _ => panic!("expected a rule"),
        }
        assert!(matches!(
            parse_tcp_request(&w("inspect-delay 5s"), 3, &mut ctx),
            Ok(TcpRequest::InspectDelay(_))
        ));
        assert!(parse_tcp_request(&w("connection track-sc0 src"), 3, &mut ctx).is_err());
    }
}
