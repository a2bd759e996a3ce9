//! Cookie persistence (`cookie NAME insert|rewrite|prefix …`): find the server a
//! client is stuck to, and set the cookie on responses.

use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};

use crate::conf::haproxy::{CookieMode, CookiePersistence};

/// The persistence cookie's value in a request, if any, with the request's
/// Cookie headers rewritten as the mode requires (prefix stripped; removed in
/// `insert indirect` mode so that the server never sees it).
pub fn take_request_cookie(cfg: &CookiePersistence, headers: &mut HeaderMap) -> Option<String> {
    let mut found = None;
    let mut rewritten: Vec<String> = Vec::new();
    let mut changed = false;
    for value in headers.get_all(COOKIE).iter() {
        let Ok(text) = value.to_str() else {
            rewritten.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
            continue;
        };
        let mut kept: Vec<String> = Vec::new();
        for pair in text.split(';') {
            let pair = pair.trim();
            match pair.split_once('=') {
                Some((name, value)) if name == cfg.name && found.is_none() => {
                    match cfg.mode {
                        CookieMode::Prefix => {
                            // "SRV~original": the server sees "NAME=original".
                            match value.split_once('~') {
                                Some((srv, rest)) => {
                                    found = Some(srv.to_string());
                                    kept.push(format!("{name}={rest}"));
                                    changed = true;
                                }
                                None => kept.push(pair.to_string()),
                            }
                        }
                        CookieMode::Insert | CookieMode::Rewrite => {
                            // maxidle/maxlife append "|dates" to the value.
                            found = Some(value.split('|').next().unwrap_or(value).to_string());
                            if cfg.mode == CookieMode::Insert && cfg.indirect {
                                changed = true;
                            } else {
                                kept.push(pair.to_string());
                            }
                        }
                    }
                }
                _ if !pair.is_empty() => kept.push(pair.to_string()),
                _ => {}
            }
        }
        if !kept.is_empty() {
            rewritten.push(kept.join("; "));
        }
    }
    if changed {
        headers.remove(COOKIE);
        for v in rewritten {
            if let Ok(hv) = HeaderValue::from_str(&v) {
                headers.append(COOKIE, hv);
            }
        }
    }
    found
}

/// The `Set-Cookie` value HAProxy emits in insert mode.
pub fn insert_value(cfg: &CookiePersistence, server_cookie: &str) -> String {
    let mut s = format!("{}={}; path=/", cfg.name, server_cookie);
    for d in &cfg.domains {
        s.push_str("; domain=");
        s.push_str(d);
    }
    if cfg.httponly {
        s.push_str("; HttpOnly");
    }
    if cfg.secure {
        s.push_str("; Secure");
    }
    for a in &cfg.attrs {
        s.push_str("; ");
        s.push_str(a);
    }
    s
}

/// Adjusts a server response: inserts the cookie (insert mode, unless the
/// client already holds the right one with `indirect`), or rewrites/prefixes
/// the server's own cookie.
pub fn apply_to_response(
    cfg: &CookiePersistence,
    headers: &mut HeaderMap,
    server_cookie: Option<&str>,
    client_had_right_cookie: bool,
) {
    let Some(server_cookie) = server_cookie else { return };
    match cfg.mode {
        CookieMode::Insert => {
            let server_set_it = set_cookie_names(headers).any(|n| n == cfg.name);
            if server_set_it && cfg.preserve {
                return;
            }
            if server_set_it {
                remove_set_cookie(headers, &cfg.name);
            }
            if cfg.indirect && client_had_right_cookie {
                return;
            }
            if let Ok(v) = HeaderValue::from_str(&insert_value(cfg, server_cookie)) {
                headers.append(SET_COOKIE, v);
            }
            mark_private(cfg, headers);
        }
        CookieMode::Rewrite | CookieMode::Prefix => {
            let old: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
            if !old.iter().any(|v| cookie_name(v) == Some(cfg.name.as_str())) {
                return;
            }
            headers.remove(SET_COOKIE);
            for v in old {
                let new = match (cookie_name(&v), v.to_str()) {
                    (Some(n), Ok(text)) if n == cfg.name => {
                        let (pair, attrs) = text.split_once(';').map_or((text, ""), |(p, a)| (p, a));
                        let value = pair.split_once('=').map_or("", |(_, v)| v);
                        let new_value = if cfg.mode == CookieMode::Prefix {
                            format!("{server_cookie}~{value}")
                        } else {
                            server_cookie.to_string()
                        };
                        let rebuilt = if attrs.is_empty() {
                            format!("{}={new_value}", cfg.name)
                        } else {
                            format!("{}={new_value};{attrs}", cfg.name)
                        };
                        HeaderValue::from_str(&rebuilt).unwrap_or(v)
                    }
                    _ => v,
                };
                headers.append(SET_COOKIE, new);
            }
            mark_private(cfg, headers);
        }
    }
}

/// `nocache`: a response that a shared cache could store gets
/// `Cache-Control: private`, so the cookie is not served to others. As in
/// HAProxy, only responses with a validator or freshness information count as
/// cacheable, and those already marked private/no-cache/no-store are left alone.
fn mark_private(cfg: &CookiePersistence, headers: &mut HeaderMap) {
    if !cfg.nocache {
        return;
    }
    let cache_control: Vec<String> = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    if cache_control.iter().any(|t| t == "private" || t == "no-cache" || t == "no-store") {
        return;
    }
    let has_freshness = headers.contains_key(http::header::EXPIRES)
        || cache_control.iter().any(|t| t.starts_with("max-age") || t.starts_with("s-maxage"));
    let has_validator =
        headers.contains_key(http::header::LAST_MODIFIED) || headers.contains_key(http::header::ETAG);
    if has_freshness || has_validator {
        headers.append(http::header::CACHE_CONTROL, HeaderValue::from_static("private"));
    }
}

fn cookie_name(v: &HeaderValue) -> Option<&str> {
    v.to_str().ok()?.split(';').next()?.split_once('=').map(|(n, _)| n.trim())
}

fn set_cookie_names(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers.get_all(SET_COOKIE).iter().filter_map(cookie_name)
}

fn remove_set_cookie(headers: &mut HeaderMap, name: &str) {
    let keep: Vec<HeaderValue> =
        headers.get_all(SET_COOKIE).iter().filter(|v| cookie_name(v) != Some(name)).cloned().collect();
    headers.remove(SET_COOKIE);
    for v in keep {
        headers.append(SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: CookieMode) -> CookiePersistence {
        CookiePersistence {
            name: "SERVERID".into(),
            mode,
            indirect: true,
            nocache: true,
            httponly: false,
            secure: false,
            domains: vec![],
            maxidle: None,
            maxlife: None,
            preserve: false,
            postonly: false,
            attrs: vec![],
        }
    }

    #[test]
    fn insert_indirect_finds_and_hides_cookie() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; SERVERID=web02; b=2"));
        assert_eq!(take_request_cookie(&cfg(CookieMode::Insert), &mut h).as_deref(), Some("web02"));
        assert_eq!(h.get(COOKIE).unwrap(), "a=1; b=2");
    }

    #[test]
    fn prefix_mode_strips_prefix() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("SERVERID=web01~abc"));
        assert_eq!(take_request_cookie(&cfg(CookieMode::Prefix), &mut h).as_deref(), Some("web01"));
        assert_eq!(h.get(COOKIE).unwrap(), "SERVERID=abc");
        let mut r = HeaderMap::new();
        r.insert(SET_COOKIE, HeaderValue::from_static("SERVERID=xyz; path=/"));
        apply_to_response(&cfg(CookieMode::Prefix), &mut r, Some("web01"), false);
        assert_eq!(r.get(SET_COOKIE).unwrap(), "SERVERID=web01~xyz; path=/");
    }

    #[test]
    fn insert_sets_cookie_unless_client_has_it() {
        let c = cfg(CookieMode::Insert);
        let mut r = HeaderMap::new();
        apply_to_response(&c, &mut r, Some("web01"), false);
        assert_eq!(r.get(SET_COOKIE).unwrap(), "SERVERID=web01; path=/");
        assert!(r.get(http::header::CACHE_CONTROL).is_none(), "not cacheable: left alone");
        let mut r = HeaderMap::new();
        r.insert(http::header::LAST_MODIFIED, HeaderValue::from_static("Sat, 21 Nov 2026 10:02:21 GMT"));
        apply_to_response(&c, &mut r, Some("web01"), false);
        assert_eq!(r.get(http::header::CACHE_CONTROL).unwrap(), "private");
        let mut r = HeaderMap::new();
        apply_to_response(&c, &mut r, Some("web01"), true);
        assert!(r.get(SET_COOKIE).is_none());
    }
}
