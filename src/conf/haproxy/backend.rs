//! Backend-side keywords: `balance`, `retry-on`, `cookie`, `http-check`, `tcp-check`.

use super::model::*;
use super::time::parse_number;

pub(super) fn parse_retry_on(args: &[String]) -> Result<RetryOn, String> {
    if args.is_empty() {
        return Err("'retry-on' expects at least one keyword".into());
    }
    let mut retry = RetryOn::default();
    for word in args {
        match word.as_str() {
            "none" if args.len() == 1 => {}
            "none" => return Err("'none' must be the only 'retry-on' keyword".into()),
            "conn-failure" => retry.conn_failure = true,
            "empty-response" => retry.empty_response = true,
            "junk-response" => retry.junk_response = true,
            "response-timeout" => retry.response_timeout = true,
            "0rtt-rejected" => retry.zero_rtt_rejected = true,
            "all-retryable-errors" => {
                retry.conn_failure = true;
                retry.empty_response = true;
                retry.junk_response = true;
                retry.response_timeout = true;
                retry.zero_rtt_rejected = true;
                for code in [500, 502, 503, 504] {
                    if !retry.statuses.contains(&code) {
                        retry.statuses.push(code);
                    }
                }
            }
            code @ ("401" | "403" | "404" | "408" | "425" | "500" | "501" | "502" | "503" | "504") => {
                let code: u16 = code.parse().map_err(|_| format!("invalid status '{code}'"))?;
                if !retry.statuses.contains(&code) {
                    retry.statuses.push(code);
                }
            }
            other => return Err(format!("unknown 'retry-on' keyword '{other}'")),
        }
    }
    Ok(retry)
}

pub(super) fn parse_balance(args: &[String]) -> Result<Balance, String> {
    let (algo, rest) = args.split_first().ok_or("'balance' expects an algorithm")?;
    let no_rest = |b: Balance| {
        if rest.is_empty() {
            Ok(b)
        } else {
            Err(format!("unexpected '{}' after 'balance {algo}'", rest[0]))
        }
    };
    match algo.as_str() {
        "roundrobin" => no_rest(Balance::RoundRobin),
        "static-rr" => no_rest(Balance::StaticRr),
        "leastconn" => no_rest(Balance::LeastConn),
        "first" => no_rest(Balance::First),
        "source" => no_rest(Balance::Source),
        "random" => match rest {
            [] => Ok(Balance::Random { draws: 2 }),
            [draws] => Ok(Balance::Random { draws: parse_number("random", draws)? }),
            _ => Err("'balance random' takes at most one argument".into()),
        },
        "uri" => {
            let (mut whole, mut len, mut depth) = (false, None, None);
            let mut i = 0;
            while i < rest.len() {
                match rest[i].as_str() {
                    "whole" => whole = true,
                    option @ ("len" | "depth") => {
                        let value = rest.get(i + 1).ok_or_else(|| format!("'{option}' expects a number"))?;
                        let n = Some(parse_number(option, value)?);
                        if option == "len" {
                            len = n
                        } else {
                            depth = n
                        }
                        i += 1;
                    }
                    other => return Err(format!("unsupported 'balance uri' option '{other}'")),
                }
                i += 1;
            }
            Ok(Balance::Uri { whole, len, depth })
        }
        "url_param" => match rest {
            [name] => Ok(Balance::UrlParam(name.clone())),
            [_, option, ..] => Err(format!("'balance url_param' option '{option}' is not supported")),
            [] => Err("'balance url_param' expects a parameter name".into()),
        },
        other => {
            if let Some(draws) = other.strip_prefix("random(").and_then(|r| r.strip_suffix(')')) {
                return no_rest(Balance::Random { draws: parse_number("random", draws)? });
            }
            if let Some(header) = other.strip_prefix("hdr(").and_then(|r| r.strip_suffix(')')) {
                if header.is_empty() {
                    return Err("'balance hdr()' expects a header name".into());
                }
                return match rest {
                    [] => Ok(Balance::Hdr(header.to_ascii_lowercase())),
                    _ => Err(format!("'balance hdr' option '{}' is not supported", rest[0])),
                };
            }
            Err(format!("unsupported balance algorithm '{other}'"))
        }
    }
}

pub(super) fn parse_cookie(args: &[String]) -> Result<CookiePersistence, String> {
    let (name, rest) = args.split_first().ok_or("'cookie' expects a cookie name")?;
    let mut mode = None;
    let mut cookie = CookiePersistence {
        name: name.clone(),
        mode: CookieMode::Insert,
        indirect: false,
        nocache: false,
        httponly: false,
        secure: false,
        domains: Vec::new(),
        maxidle: None,
        maxlife: None,
        preserve: false,
        postonly: false,
        attrs: Vec::new(),
    };
    let mut i = 0;
    while i < rest.len() {
        let option = rest[i].as_str();
        let value = || rest.get(i + 1).ok_or_else(|| format!("'cookie' option '{option}' expects a value"));
        match option {
            "insert" | "rewrite" | "prefix" => {
                if mode.is_some() {
                    return Err("'cookie' accepts only one of insert, rewrite and prefix".into());
                }
                mode = Some(match option {
                    "insert" => CookieMode::Insert,
                    "rewrite" => CookieMode::Rewrite,
                    _ => CookieMode::Prefix,
                });
            }
            "indirect" => cookie.indirect = true,
            "nocache" => cookie.nocache = true,
            "httponly" => cookie.httponly = true,
            "secure" => cookie.secure = true,
            "preserve" => cookie.preserve = true,
            "postonly" => cookie.postonly = true,
            "domain" => {
                cookie.domains.push(value()?.clone());
                i += 1;
            }
            "attr" => {
                cookie.attrs.push(value()?.clone());
                i += 1;
            }
            // Seconds unless a unit is given (HAProxy's TIME_UNIT_S). Only
            // insert mode stamps dates into the cookie, as in HAProxy.
            "maxidle" | "maxlife" => {
                let text = value()?;
                let limit = if text.chars().all(|c| c.is_ascii_digit()) {
                    text.parse::<u64>()
                        .map(std::time::Duration::from_secs)
                        .map_err(|_| format!("'{text}' is too large"))?
                } else {
                    super::time::parse_time(text).map_err(|e| format!("'cookie … {option}': {e}"))?
                };
                if limit.is_zero() {
                    // 0 means "no limit" in HAProxy.
                } else if option == "maxidle" {
                    cookie.maxidle = Some(limit);
                } else {
                    cookie.maxlife = Some(limit);
                }
                i += 1;
            }
            "dynamic" => return Err("'cookie … dynamic' is not supported".into()),
            other => return Err(format!("unknown 'cookie' option '{other}'")),
        }
        i += 1;
    }
    cookie.mode =
        mode.ok_or("'cookie' needs a mode: insert, rewrite or prefix (passive cookies are not supported)")?;
    Ok(cookie)
}

/// `http-check send …` / `http-check expect …`, applied to `check`.
pub(super) fn parse_http_check(check: &mut HttpCheck, args: &[String]) -> Result<(), String> {
    let (verb, rest) = args.split_first().ok_or("'http-check' expects 'send' or 'expect'")?;
    match verb.as_str() {
        "send" => {
            let mut i = 0;
            while i < rest.len() {
                let option = rest[i].as_str();
                let value = |at: usize| {
                    rest.get(at).cloned().ok_or_else(|| format!("'http-check send {option}' expects a value"))
                };
                match option {
                    "meth" => check.method = value(i + 1)?,
                    "uri" => check.uri = value(i + 1)?,
                    "ver" => check.version = value(i + 1)?,
                    "body" => check.body = Some(value(i + 1)?),
                    "hdr" => {
                        check.headers.push((value(i + 1)?, value(i + 2)?));
                        i += 1;
                    }
                    other => return Err(format!("unsupported 'http-check send' option '{other}'")),
                }
                i += 2;
            }
        }
        "expect" => {
            if check.expect.is_some() {
                return Err("only one 'http-check expect' rule is supported".into());
            }
            let (negated, rest) = match rest.split_first() {
                Some((bang, tail)) if bang == "!" => (true, tail),
                _ => (false, rest),
            };
            let kind = match rest {
                [kind, value] => match kind.as_str() {
                    "status" => HttpExpectKind::Status(parse_status_ranges(value)?),
                    "rstatus" => HttpExpectKind::Rstatus(RegexPat(
                        regex::Regex::new(value).map_err(|e| format!("invalid regex '{value}': {e}"))?,
                    )),
                    "string" => HttpExpectKind::String(value.clone()),
                    "rstring" => HttpExpectKind::Rstring(RegexPat(
                        regex::Regex::new(value).map_err(|e| format!("invalid regex '{value}': {e}"))?,
                    )),
                    other => return Err(format!("unsupported 'http-check expect' match '{other}'")),
                },
                _ => return Err("'http-check expect' expects [!] status|rstatus|string|rstring VALUE".into()),
            };
            check.expect = Some(HttpExpect { negated, kind });
        }
        other => return Err(format!("unsupported 'http-check' rule '{other}'")),
    }
    Ok(())
}

/// `200`, `200-399`, `200,201,300-399`.
fn parse_status_ranges(text: &str) -> Result<Vec<(u16, u16)>, String> {
    text.split(',')
        .map(|part| {
            let bad = || format!("invalid status '{part}' in 'http-check expect status'");
            match part.split_once('-') {
                Some((low, high)) => Ok((low.parse().map_err(|_| bad())?, high.parse().map_err(|_| bad())?)),
                None => {
                    let code = part.parse().map_err(|_| bad())?;
                    Ok((code, code))
                }
            }
        })
        .collect()
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{text}' is not an even-length hexadecimal string"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

pub(super) fn parse_tcp_check(args: &[String]) -> Result<TcpCheckStep, String> {
    let (verb, rest) = args.split_first().ok_or("'tcp-check' expects an action")?;
    match verb.as_str() {
        "connect" => {
            let (mut port, mut ssl, mut send_proxy) = (None, false, false);
            let mut i = 0;
            while i < rest.len() {
                match rest[i].as_str() {
                    "port" => {
                        let value = rest.get(i + 1).ok_or("'port' expects a number")?;
                        port = Some(parse_number("port", value)?);
                        i += 1;
                    }
                    "ssl" => ssl = true,
                    "send-proxy" => send_proxy = true,
                    other => return Err(format!("unsupported 'tcp-check connect' option '{other}'")),
                }
                i += 1;
            }
            Ok(TcpCheckStep::Connect { port, ssl, send_proxy })
        }
        "send" => match rest {
            [data] => Ok(TcpCheckStep::Send(data.as_bytes().to_vec())),
            _ => Err("'tcp-check send' expects one string".into()),
        },
        "send-binary" => match rest {
            [hex] => Ok(TcpCheckStep::SendBinary(parse_hex(hex)?)),
            _ => Err("'tcp-check send-binary' expects one hexadecimal string".into()),
        },
        "comment" => Ok(TcpCheckStep::Comment(rest.join(" "))),
        "expect" => {
            let (negated, rest) = match rest.split_first() {
                Some((bang, tail)) if bang == "!" => (true, tail),
                _ => (false, rest),
            };
            let kind = match rest {
                [kind, value] => match kind.as_str() {
                    "string" => TcpExpect::String(value.clone()),
                    "rstring" => TcpExpect::Rstring(RegexPat(
                        regex::Regex::new(value).map_err(|e| format!("invalid regex '{value}': {e}"))?,
                    )),
                    "binary" => TcpExpect::Binary(parse_hex(value)?),
                    other => return Err(format!("unsupported 'tcp-check expect' match '{other}'")),
                },
                _ => return Err("'tcp-check expect' expects [!] string|rstring|binary VALUE".into()),
            };
            Ok(TcpCheckStep::Expect { negated, kind })
        }
        other => Err(format!("unsupported 'tcp-check' action '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Vec<String> {
        super::super::lexer::split_line(text).expect("splits")
    }

    #[test]
    fn balance_algorithms() {
        assert_eq!(parse_balance(&w("roundrobin")), Ok(Balance::RoundRobin));
        assert_eq!(parse_balance(&w("static-rr")), Ok(Balance::StaticRr));
        assert_eq!(parse_balance(&w("first")), Ok(Balance::First));
        assert_eq!(parse_balance(&w("source")), Ok(Balance::Source));
        assert_eq!(
            parse_balance(&w("uri whole len 10 depth 3")),
            Ok(Balance::Uri { whole: true, len: Some(10), depth: Some(3) })
        );
        assert_eq!(parse_balance(&w("url_param uid")), Ok(Balance::UrlParam("uid".into())));
        assert_eq!(parse_balance(&w("hdr(Host)")), Ok(Balance::Hdr("host".into())));
        assert_eq!(parse_balance(&w("random")), Ok(Balance::Random { draws: 2 }));
        assert_eq!(parse_balance(&w("random(5)")), Ok(Balance::Random { draws: 5 }));
        assert_eq!(parse_balance(&w("rdp-cookie")), Err("unsupported balance algorithm 'rdp-cookie'".into()));
        assert!(parse_balance(&w("leastconn extra")).is_err());
    }

    #[test]
    fn retry_on_keywords() {
        let all = parse_retry_on(&w("all-retryable-errors")).expect("valid");
        assert!(all.conn_failure && all.empty_response && all.junk_response && all.response_timeout);
        assert!(all.zero_rtt_rejected);
        assert_eq!(all.statuses, [500, 502, 503, 504]);
        let some = parse_retry_on(&w("conn-failure 404 425")).expect("valid");
        assert_eq!(some.statuses, [404, 425]);
        assert!(!some.needs_l7_buffer() || !some.statuses.is_empty());
        assert_eq!(parse_retry_on(&w("none")), Ok(RetryOn::default()));
        assert!(parse_retry_on(&w("none 404")).is_err());
        assert_eq!(parse_retry_on(&w("418")), Err("unknown 'retry-on' keyword '418'".into()));
    }

    #[test]
    fn cookie_options() {
        let cookie = parse_cookie(&w(
            "SERVERID insert indirect nocache httponly secure domain .a.com domain .b.com preserve postonly attr SameSite=Strict",
        ))
        .expect("valid");
        assert_eq!(cookie.mode, CookieMode::Insert);
        assert!(
            cookie.indirect
                && cookie.nocache
                && cookie.httponly
                && cookie.secure
                && cookie.preserve
                && cookie.postonly
        );
        assert_eq!(cookie.domains, [".a.com", ".b.com"]);
        let c = parse_cookie(&w("S insert maxidle 30m maxlife 8h")).unwrap();
        assert_eq!(
            (c.maxidle, c.maxlife),
            (Some(std::time::Duration::from_secs(1800)), Some(std::time::Duration::from_secs(28800)))
        );
        assert_eq!(
            parse_cookie(&w("S insert maxidle 45")).unwrap().maxidle,
            Some(std::time::Duration::from_secs(45))
        );
        assert!(parse_cookie(&w("S insert maxidle 30x")).is_err());
        assert!(parse_cookie(&w("S insert maxlife")).is_err());
        assert_eq!(cookie.attrs, ["SameSite=Strict"]);
        assert_eq!(parse_cookie(&w("JSESSIONID prefix")).expect("valid").mode, CookieMode::Prefix);
        assert_eq!(parse_cookie(&w("S rewrite")).expect("valid").mode, CookieMode::Rewrite);
        assert!(parse_cookie(&w("S")).unwrap_err().contains("needs a mode"));
        assert!(parse_cookie(&w("S insert rewrite")).is_err());
        assert!(parse_cookie(&w("S insert bogus")).unwrap_err().contains("'bogus'"));
    }

    #[test]
    fn http_check_rules() {
        let mut check = HttpCheck::default();
        parse_http_check(
            &mut check,
            &w("send meth GET uri /health ver HTTP/1.1 hdr Host example.com body ping"),
        )
        .expect("valid");
        assert_eq!(
            (check.method.as_str(), check.uri.as_str(), check.version.as_str()),
            ("GET", "/health", "HTTP/1.1")
        );
        assert_eq!(check.headers, [("Host".to_string(), "example.com".to_string())]);
        assert_eq!(check.body.as_deref(), Some("ping"));
        parse_http_check(&mut check, &w("expect ! status 200-299,304")).expect("valid");
        assert_eq!(
            check.expect,
            Some(HttpExpect { negated: true, kind: HttpExpectKind::Status(vec![(200, 299), (304, 304)]) })
        );
        assert!(parse_http_check(&mut check, &w("expect string ok")).unwrap_err().contains("only one"));
        let mut fresh = HttpCheck::default();
        assert!(parse_http_check(&mut fresh, &w("expect status abc")).is_err());
        assert!(parse_http_check(&mut fresh, &w("disable-on-404")).unwrap_err().contains("'disable-on-404'"));
    }

    #[test]
    fn tcp_check_steps() {
        assert_eq!(
            parse_tcp_check(&w("connect port 443 ssl send-proxy")),
            Ok(TcpCheckStep::Connect { port: Some(443), ssl: true, send_proxy: true })
        );
        assert_eq!(parse_tcp_check(&w("send-binary 0d0A")), Ok(TcpCheckStep::SendBinary(vec![0x0d, 0x0a])));
        assert_eq!(
            parse_tcp_check(&w("expect binary 2b4f4b")),
            Ok(TcpCheckStep::Expect { negated: false, kind: TcpExpect::Binary(b"+OK".to_vec()) })
        );
        assert!(matches!(
            parse_tcp_check(&w("expect ! rstring ^-ERR")),
            Ok(TcpCheckStep::Expect { negated: true, kind: TcpExpect::Rstring(_) })
        ));
        assert_eq!(
            parse_tcp_check(&w("comment redis check")),
            Ok(TcpCheckStep::Comment("redis check".into()))
        );
        assert!(parse_tcp_check(&w("send-binary abc")).is_err());
        assert!(parse_tcp_check(&w("connect addr 1.2.3.4")).is_err());
    }
}
