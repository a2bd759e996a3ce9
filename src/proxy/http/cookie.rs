//! Cookie persistence (`cookie NAME insert|rewrite|prefix …`): find the server a
//! client is stuck to, and set the cookie on responses.

use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};

use crate::conf::haproxy::{CookieMode, CookiePersistence};

/// The persistence cookie a client sent: the server it names and, with
/// `maxidle`/`maxlife`, the dates HAProxy stamps after it
/// (`SRV|LAST|FIRST`, Unix seconds, 0 when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCookie {
    pub server: String,
    pub last_date: u32,
    pub first_date: u32,
}

/// HAProxy's alphabet for cookie dates (`s30tob64`): 5 characters for the
/// low 30 bits, most significant first, no padding.
const DATE_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode_date(value: u32) -> String {
    (0..5).map(|i| DATE_ALPHABET[((value >> (24 - 6 * i)) & 0x3f) as usize] as char).collect()
}

fn decode_date(text: &str) -> Option<u32> {
    let bytes = text.as_bytes();
    if bytes.len() < 5 {
        return None;
    }
    let mut out = 0u32;
    for &b in &bytes[..5] {
        let digit = DATE_ALPHABET.iter().position(|&c| c == b)? as u32;
        out = (out << 6) | digit;
    }
    Some(out)
}

/// Parses `SRV[|LAST[|FIRST]]` (dates in 4-second units, as HAProxy writes them).
fn parse_value(value: &str) -> ClientCookie {
    let mut parts = value.split('|');
    let server = parts.next().unwrap_or_default().to_string();
    let mut date = || parts.next().and_then(decode_date).filter(|d| *d > 0).map_or(0, |d| d << 2);
    let last_date = date();
    let first_date = date();
    ClientCookie { server, last_date, first_date }
}

/// A cookie older than `maxlife` since its first date or idle longer than
/// `maxidle` since its last one (or dated more than a day ahead) counts as
/// absent, as in HAProxy.
fn expired(cfg: &CookiePersistence, c: &ClientCookie, now: u32) -> bool {
    let too_far = |date: u32, limit: Option<std::time::Duration>| {
        let Some(limit) = limit else { return false };
        let age = i64::from(now) - i64::from(date);
        date != 0 && (age > limit.as_secs() as i64 || -age > 86_400)
    };
    too_far(c.first_date, cfg.maxlife) || too_far(c.last_date, cfg.maxidle)
}

/// Unix seconds, as the cookie dates count them.
pub fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// The persistence cookie in a request, if any (an expired one counts as
/// none), with the request's Cookie headers rewritten as the mode requires
/// (prefix stripped; removed in `insert indirect` mode so that the server
/// never sees it).
pub fn take_request_cookie(
    cfg: &CookiePersistence,
    headers: &mut HeaderMap,
    now: u32,
) -> Option<ClientCookie> {
    let found = find_request_cookie(cfg, headers)?;
    match cfg.mode {
        CookieMode::Insert => Some(parse_value(&found)).filter(|c| !expired(cfg, c, now)),
        CookieMode::Rewrite | CookieMode::Prefix => {
            Some(ClientCookie { server: found, ..Default::default() })
        }
    }
}

fn find_request_cookie(cfg: &CookiePersistence, headers: &mut HeaderMap) -> Option<String> {
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
                            // Insert mode's value may carry "|dates" (maxidle/maxlife).
                            found = Some(if cfg.mode == CookieMode::Insert {
                                value.to_string()
                            } else {
                                value.split('|').next().unwrap_or(value).to_string()
                            });
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

/// The `Set-Cookie` value HAProxy emits in insert mode: with `maxidle` or
/// `maxlife` the value carries the last-seen date, and with `maxlife` the
/// first one too (kept from the client's cookie).
pub fn insert_value(
    cfg: &CookiePersistence,
    server_cookie: &str,
    client: Option<&ClientCookie>,
    now: u32,
) -> String {
    let mut s = format!("{}={}", cfg.name, server_cookie);
    if cfg.maxidle.is_some() || cfg.maxlife.is_some() {
        // HAProxy stamps (now + 3) / 4: dates have a 4-second grain.
        let stamp = now.saturating_add(3) >> 2;
        s.push('|');
        s.push_str(&encode_date(stamp));
        if cfg.maxlife.is_some() {
            let first = client.map_or(0, |c| c.first_date);
            s.push('|');
            s.push_str(&encode_date(if first != 0 { first >> 2 } else { stamp }));
        }
    }
    s.push_str("; path=/");
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
    client: Option<&ClientCookie>,
    now: u32,
) {
    let client_had_right_cookie = client.is_some_and(|c| Some(c.server.as_str()) == server_cookie);
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
            if cfg.indirect && client_had_right_cookie && !dates_need_refresh(cfg, client, now) {
                return;
            }
            let client = client.filter(|_| client_had_right_cookie);
            if let Ok(v) = HeaderValue::from_str(&insert_value(cfg, server_cookie, client, now)) {
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

/// HAProxy re-sends a valid cookie when its last-seen date has passed (so
/// idle time counts from the last request), or its dates do not match the
/// configuration (first date missing under `maxlife`, present without it).
fn dates_need_refresh(cfg: &CookiePersistence, client: Option<&ClientCookie>, now: u32) -> bool {
    let (last, first) = client.map_or((0, 0), |c| (c.last_date, c.first_date));
    ((cfg.maxidle.is_some() || last != 0) && (last == 0 || last < now))
        || (cfg.maxlife.is_some() && first == 0)
        || (cfg.maxlife.is_none() && first != 0)
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
        assert_eq!(take_request_cookie(&cfg(CookieMode::Insert), &mut h, 0).unwrap().server, "web02");
        assert_eq!(h.get(COOKIE).unwrap(), "a=1; b=2");
    }

    #[test]
    fn prefix_mode_strips_prefix() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("SERVERID=web01~abc"));
        assert_eq!(take_request_cookie(&cfg(CookieMode::Prefix), &mut h, 0).unwrap().server, "web01");
        assert_eq!(h.get(COOKIE).unwrap(), "SERVERID=abc");
        let mut r = HeaderMap::new();
        r.insert(SET_COOKIE, HeaderValue::from_static("SERVERID=xyz; path=/"));
        apply_to_response(&cfg(CookieMode::Prefix), &mut r, Some("web01"), None, 0);
        assert_eq!(r.get(SET_COOKIE).unwrap(), "SERVERID=web01~xyz; path=/");
    }

    #[test]
    fn insert_sets_cookie_unless_client_has_it() {
        let c = cfg(CookieMode::Insert);
        let mut r = HeaderMap::new();
        apply_to_response(&c, &mut r, Some("web01"), None, 0);
        assert_eq!(r.get(SET_COOKIE).unwrap(), "SERVERID=web01; path=/");
        assert!(r.get(http::header::CACHE_CONTROL).is_none(), "not cacheable: left alone");
        let mut r = HeaderMap::new();
        r.insert(http::header::LAST_MODIFIED, HeaderValue::from_static("Sat, 21 Nov 2026 10:02:21 GMT"));
        apply_to_response(&c, &mut r, Some("web01"), None, 0);
        assert_eq!(r.get(http::header::CACHE_CONTROL).unwrap(), "private");
        let mut r = HeaderMap::new();
        let has = ClientCookie { server: "web01".into(), ..Default::default() };
        apply_to_response(&c, &mut r, Some("web01"), Some(&has), 0);
        assert!(r.get(SET_COOKIE).is_none());
    }

    #[test]
    fn date_codec_matches_haproxy() {
        // s30tob64 of 0 and of 0x3fffffff; round trip of a real date.
        assert_eq!(encode_date(0), "AAAAA");
        assert_eq!(encode_date(0x3fff_ffff), "/////");
        let stamp = 1_795_000_000u32 >> 2;
        assert_eq!(decode_date(&encode_date(stamp)), Some(stamp));
        assert_eq!(decode_date("AA*AA"), None);
        assert_eq!(decode_date("AAA"), None);
    }

    #[test]
    fn maxidle_and_maxlife() {
        let mut c = cfg(CookieMode::Insert);
        c.maxidle = Some(std::time::Duration::from_secs(60));
        c.maxlife = Some(std::time::Duration::from_secs(3600));
        let now = 1_795_000_000u32;
        // Inserted: SRV|LAST|FIRST, both the current stamp.
        let mut r = HeaderMap::new();
        apply_to_response(&c, &mut r, Some("web01"), None, now);
        let set = r.get(SET_COOKIE).unwrap().to_str().unwrap().to_string();
        let stamp = encode_date((now + 3) >> 2);
        assert_eq!(set, format!("SERVERID=web01|{stamp}|{stamp}; path=/"));
        // Sent back 30 s later: valid, the first date is kept, the last refreshed.
        let value = set.split(';').next().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(&value).unwrap());
        let got = take_request_cookie(&c, &mut h, now + 30).expect("fresh cookie");
        assert_eq!(got.server, "web01");
        assert_eq!(got.first_date, ((now + 3) >> 2) << 2);
        let mut r = HeaderMap::new();
        apply_to_response(&c, &mut r, Some("web01"), Some(&got), now + 30);
        let refreshed = r.get(SET_COOKIE).unwrap().to_str().unwrap().to_string();
        assert_eq!(refreshed, format!("SERVERID=web01|{}|{stamp}; path=/", encode_date((now + 33) >> 2)));
        // Idle past maxidle, or alive past maxlife, or from the future: absent.
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(&value).unwrap());
        assert_eq!(take_request_cookie(&c, &mut h, now + 120), None);
        let old_first =
            format!("SERVERID=web01|{}|{}", encode_date((now + 3) >> 2), encode_date((now - 7200) >> 2));
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(&old_first).unwrap());
        assert_eq!(take_request_cookie(&c, &mut h, now), None);
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(&value).unwrap());
        assert_eq!(take_request_cookie(&c, &mut h, now - 100_000), None);
        // A cookie without dates is accepted (and re-sent with dates).
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("SERVERID=web01"));
        let plain = take_request_cookie(&c, &mut h, now).expect("dateless cookie");
        assert!(dates_need_refresh(&c, Some(&plain), now));
    }
}
