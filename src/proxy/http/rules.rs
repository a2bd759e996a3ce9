//! `http-request` and `http-response` actions.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};

use super::body::ProxyBody;
use super::errors::{CannedResponse, ErrorPages};
use super::samples::{render, ConnInfo, HttpSamples};
use crate::conf::haproxy::{
    FmtString, HttpRequestAction, HttpRequestRule, HttpResponseAction, HttpResponseRule, HttpReturn,
    Redirect, RedirectKind, RegexPat, ReturnBody,
};
use crate::proxy::acl::{eval, Samples};

/// What the request rules decided.
pub enum RequestVerdict {
    /// Go on to the backend.
    Continue,
    /// Answer the client with this response (redirect, deny, return).
    Respond(Response<ProxyBody>),
    /// Serve the Prometheus exporter.
    Prometheus,
}

/// Flags the rules set for the rest of the request's life.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestFlags {
    pub l7_retry_disabled: bool,
    /// Set when a `deny` happened (counted as denied request).
    pub denied: bool,
}

/// Files a `return file|errorfile` action serves, loaded with the configuration.
pub trait ReturnFiles {
    fn file(&self, path: &std::path::Path) -> Option<bytes::Bytes>;
}

/// Runs request rules in order until one ends processing.
pub fn apply_request_rules(
    rules: &[HttpRequestRule],
    req: &mut Request<ProxyBody>,
    conn: &ConnInfo,
    nbsrv: &(dyn Fn(&str) -> usize + Sync),
    errors: &ErrorPages,
    files: &dyn ReturnFiles,
    flags: &mut RequestFlags,
) -> RequestVerdict {
    for rule in rules {
        let (mut parts, body) = std::mem::replace(req, Request::new(ProxyBody::empty())).into_parts();
        let (hit, verdict) = {
            let samples = HttpSamples::of_parts(&parts, conn, nbsrv);
            if !eval(rule.cond.as_ref(), &samples) {
                (false, None)
            } else {
                (true, request_action(&rule.action, &parts, &samples, errors, files, flags))
            }
        };
        if hit {
            if let Some(mutation) = verdict.as_ref().and_then(|v| match v {
                Step::Mutate(m) => Some(m),
                _ => None,
            }) {
                mutation.apply(&mut parts);
            }
        }
        *req = Request::from_parts(parts, body);
        match verdict {
            Some(Step::Stop) => return RequestVerdict::Continue,
            Some(Step::Respond(r)) => return RequestVerdict::Respond(r),
            Some(Step::Prometheus) => return RequestVerdict::Prometheus,
            _ => {}
        }
    }
    RequestVerdict::Continue
}

enum Step {
    Mutate(Mutation),
    Next,
    Stop,
    Respond(Response<ProxyBody>),
    Prometheus,
}

/// A header/path change computed while samples borrow the request, applied after.
enum Mutation {
    SetHeader(HeaderName, HeaderValue),
    AddHeader(HeaderName, HeaderValue),
    DelHeader(HeaderName),
    Replace { name: HeaderName, regex: RegexPat, replace: String, per_value: bool },
    SetPath(String),
}

impl Mutation {
    fn apply(&self, parts: &mut http::request::Parts) {
        match self {
            Mutation::SetPath(path) => {
                let pq = match parts.uri.query() {
                    Some(q) => format!("{path}?{q}"),
                    None => path.clone(),
                };
                let mut uri = parts.uri.clone().into_parts();
                if let Ok(pq) = pq.parse() {
                    uri.path_and_query = Some(pq);
                    if let Ok(u) = http::Uri::from_parts(uri) {
                        parts.uri = u;
                    }
                }
            }
            other => other.apply_headers(&mut parts.headers),
        }
    }

    fn apply_headers(&self, headers: &mut HeaderMap) {
        match self {
            Mutation::SetHeader(n, v) => {
                headers.insert(n.clone(), v.clone());
            }
            Mutation::AddHeader(n, v) => {
                headers.append(n.clone(), v.clone());
            }
            Mutation::DelHeader(n) => {
                headers.remove(n);
            }
            Mutation::Replace { name, regex, replace, per_value } => {
                replace_header(headers, name, regex, replace, *per_value)
            }
            Mutation::SetPath(_) => {}
        }
    }
}

fn replace_header(
    headers: &mut HeaderMap,
    name: &HeaderName,
    regex: &RegexPat,
    replace: &str,
    per_value: bool,
) {
    // The parser already turned HAProxy's `\1` into the regex crate's `${1}`.
    let repl = replace;
    let old: Vec<String> =
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
    if old.is_empty() {
        return;
    }
    headers.remove(name);
    for value in old {
        // The whole value must match (HAProxy anchors the regex on the value).
        let one = |v: &str| -> String {
            match regex.0.captures(v) {
                Some(c) if c.get(0).is_some_and(|m| m.start() == 0 && m.end() == v.len()) => {
                    let mut dst = String::new();
                    c.expand(repl, &mut dst);
                    dst
                }
                _ => v.to_string(),
            }
        };
        let new = if per_value {
            value.split(',').map(|v| one(v.trim())).collect::<Vec<_>>().join(", ")
        } else {
            one(&value)
        };
        if let Ok(v) = HeaderValue::from_str(&new) {
            headers.append(name.clone(), v);
        }
    }
}

fn header_pair(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((HeaderName::try_from(name).ok()?, HeaderValue::from_str(value).ok()?))
}

fn request_action(
    action: &HttpRequestAction,
    parts: &http::request::Parts,
    samples: &dyn Samples,
    errors: &ErrorPages,
    files: &dyn ReturnFiles,
    flags: &mut RequestFlags,
) -> Option<Step> {
    Some(match action {
        HttpRequestAction::SetHeader { name, value } => match header_pair(name, &render(value, samples)) {
            Some((n, v)) => Step::Mutate(Mutation::SetHeader(n, v)),
            None => Step::Next,
        },
        HttpRequestAction::AddHeader { name, value } => match header_pair(name, &render(value, samples)) {
            Some((n, v)) => Step::Mutate(Mutation::AddHeader(n, v)),
            None => Step::Next,
        },
        HttpRequestAction::DelHeader { name } => match HeaderName::try_from(name.as_str()) {
            Ok(n) => Step::Mutate(Mutation::DelHeader(n)),
            Err(_) => Step::Next,
        },
        HttpRequestAction::ReplaceHeader { name, regex, replace }
        | HttpRequestAction::ReplaceValue { name, regex, replace } => {
            match HeaderName::try_from(name.as_str()) {
                Ok(n) => Step::Mutate(Mutation::Replace {
                    name: n,
                    regex: regex.clone(),
                    replace: replace.clone(),
                    per_value: matches!(action, HttpRequestAction::ReplaceValue { .. }),
                }),
                Err(_) => Step::Next,
            }
        }
        HttpRequestAction::SetPath(fmt) => Step::Mutate(Mutation::SetPath(render(fmt, samples))),
        HttpRequestAction::Redirect(r) => Step::Respond(redirect(r, parts, samples)),
        HttpRequestAction::Deny { status } => {
            flags.denied = true;
            Step::Respond(errors.response(*status))
        }
        HttpRequestAction::Return(ret) => Step::Respond(http_return(ret, samples, errors, files)),
        HttpRequestAction::DisableL7Retry => {
            flags.l7_retry_disabled = true;
            Step::Next
        }
        HttpRequestAction::PrometheusExporter => Step::Prometheus,
        HttpRequestAction::Allow => Step::Stop,
    })
}

/// Builds a redirect response as HAProxy does (`Location`, empty body).
pub fn redirect(r: &Redirect, parts: &http::request::Parts, samples: &dyn Samples) -> Response<ProxyBody> {
    let path_and_query = || {
        let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut s =
            if r.drop_query { pq.split('?').next().unwrap_or("/").to_string() } else { pq.to_string() };
        if r.append_slash && !s.ends_with('/') && !s.contains('?') {
            s.push('/');
        }
        s
    };
    let location = match &r.kind {
        RedirectKind::Location(fmt) => render(fmt, samples),
        RedirectKind::Prefix(fmt) => {
            let prefix = render(fmt, samples);
            // HAProxy: prefix "/" means "same URI, only the other rules' effects".
            if prefix == "/" {
                path_and_query()
            } else {
                format!("{prefix}{}", path_and_query())
            }
        }
        RedirectKind::Scheme(fmt) => {
            let scheme = render(fmt, samples);
            let host = parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
                .or_else(|| parts.uri.authority().map(|a| a.to_string()))
                .unwrap_or_default();
            // Going to https drops the explicit :80 port, and the other way round.
            let host = match (scheme.as_str(), host.rsplit_once(':')) {
                ("https", Some((h, "80"))) | ("http", Some((h, "443"))) => h.to_string(),
                _ => host,
            };
            format!("{scheme}://{host}{}", path_and_query())
        }
    };
    let mut resp = Response::new(ProxyBody::empty());
    *resp.status_mut() = StatusCode::from_u16(r.code).unwrap_or(StatusCode::FOUND);
    let headers = resp.headers_mut();
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(http::header::LOCATION, v);
    }
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(c) = &r.set_cookie {
        let value = if c.contains('=') { c.clone() } else { format!("{c}=") };
        if let Ok(v) = HeaderValue::from_str(&format!("{value}; path=/;")) {
            headers.append(http::header::SET_COOKIE, v);
        }
    }
    if let Some(c) = &r.clear_cookie {
        let name = c.trim_end_matches('=');
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{name}=; path=/; Max-Age=0; Expires=Thu, 01-Jan-1970 00:00:01 GMT"
        )) {
            headers.append(http::header::SET_COOKIE, v);
        }
    }
    resp
}

fn http_return(
    ret: &HttpReturn,
    samples: &dyn Samples,
    errors: &ErrorPages,
    files: &dyn ReturnFiles,
) -> Response<ProxyBody> {
    let mut resp = match &ret.body {
        ReturnBody::None => Response::new(ProxyBody::empty()),
        ReturnBody::String(fmt) => Response::new(ProxyBody::full(render(fmt, samples))),
        ReturnBody::File(path) => Response::new(ProxyBody::full(files.file(path).unwrap_or_default())),
        ReturnBody::ErrorFile(path) => {
            return match files.file(path).and_then(|raw| CannedResponse::parse(&raw).ok()) {
                Some(c) => c.to_response(),
                None => errors.response(500),
            }
        }
    };
    *resp.status_mut() = StatusCode::from_u16(ret.status).unwrap_or(StatusCode::OK);
    if let Some(ct) = &ret.content_type {
        if let Ok(v) = HeaderValue::from_str(ct) {
            resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
    }
    for (name, value) in &ret.headers {
        if let Some((n, v)) = header_pair(name, &render(value, samples)) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

/// Runs response rules; `Some(response)` replaces the server's (deny).
pub fn apply_response_rules(
    rules: &[HttpResponseRule],
    resp: &mut Response<ProxyBody>,
    samples: &dyn Samples,
    errors: &ErrorPages,
) -> Option<Response<ProxyBody>> {
    for rule in rules {
        if !eval(rule.cond.as_ref(), samples) {
            continue;
        }
        let set = |name: &str, value: &FmtString| header_pair(name, &render(value, samples));
        match &rule.action {
            HttpResponseAction::SetHeader { name, value } => {
                if let Some((n, v)) = set(name, value) {
                    resp.headers_mut().insert(n, v);
                }
            }
            HttpResponseAction::AddHeader { name, value } => {
                if let Some((n, v)) = set(name, value) {
                    resp.headers_mut().append(n, v);
                }
            }
            HttpResponseAction::DelHeader { name } => {
                if let Ok(n) = HeaderName::try_from(name.as_str()) {
                    resp.headers_mut().remove(n);
                }
            }
            HttpResponseAction::ReplaceHeader { name, regex, replace }
            | HttpResponseAction::ReplaceValue { name, regex, replace } => {
                if let Ok(n) = HeaderName::try_from(name.as_str()) {
                    let per_value = matches!(rule.action, HttpResponseAction::ReplaceValue { .. });
                    replace_header(resp.headers_mut(), &n, regex, replace, per_value);
                }
            }
            HttpResponseAction::Deny { status } => return Some(errors.response(*status)),
            HttpResponseAction::Allow => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_value_rewrites_host_port_like_seed_002() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.com:8080"));
        let re = RegexPat(regex::Regex::new("(.*):8080").unwrap());
        replace_header(&mut h, &HeaderName::from_static("host"), &re, "${1}:8443", true);
        assert_eq!(h.get("host").unwrap(), "example.com:8443");
    }

    #[test]
    fn replace_needs_whole_value_match() {
        let mut h = HeaderMap::new();
        h.insert("x", HeaderValue::from_static("abc"));
        let re = RegexPat(regex::Regex::new("b").unwrap());
        replace_header(&mut h, &HeaderName::from_static("x"), &re, "z", false);
        assert_eq!(h.get("x").unwrap(), "abc");
    }
}
