//! `option`, `no option`/`no log` and `stats` keywords of proxies.

use super::acl::{parse_condition, parse_net};
use super::model::*;
use super::proxy::{CheckKind, Draft};
use super::time::parse_time;

/// Options that need a backend side (ignored elsewhere, as HAProxy does).
const BACKEND_OPTIONS: [&str; 7] = [
    "httpchk",
    "tcp-check",
    "redispatch",
    "allbackups",
    "log-health-checks",
    "abortonclose",
    "ssl-hello-chk",
];

/// `option NAME …`.
pub(super) fn parse_option(
    draft: &mut Draft,
    args: &[String],
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let (name, rest) = args.split_first().ok_or("'option' expects an option name")?;
    let name = name.as_str();
    if BACKEND_OPTIONS.contains(&name) && !draft.kind.backend() {
        warnings.push(format!(
            "'option {name}' ignored because {} '{}' has no backend capability",
            draft.kind.name(),
            draft.proxy.name
        ));
        return Ok(());
    }
    let options = &mut draft.proxy.options;
    let flag: Option<&mut bool> = match name {
        "tcplog" => Some(&mut options.tcplog),
        "dontlognull" => Some(&mut options.dontlognull),
        "http-server-close" => Some(&mut options.http_server_close),
        "httpclose" => Some(&mut options.httpclose),
        "http-keep-alive" => Some(&mut options.http_keep_alive),
        "nolinger" => Some(&mut options.nolinger),
        "redispatch" => Some(&mut options.redispatch),
        "log-health-checks" => Some(&mut options.log_health_checks),
        "abortonclose" => Some(&mut options.abortonclose),
        "allbackups" => Some(&mut options.allbackups),
        "splice-auto" | "splice-request" | "splice-response" => Some(&mut options.splice),
        _ => None,
    };
    if let Some(flag) = flag {
        if let Some(extra) = rest.first() {
            return Err(format!("'option {name}' takes no argument, got '{extra}'"));
        }
        *flag = true;
        // Both set the log format: the last one wins, as in HAProxy.
        if name == "tcplog" {
            options.httplog = false;
            options.httplog_clf = false;
        }
        return Ok(());
    }
    match name {
        "httplog" => {
            options.httplog = true;
            options.tcplog = false;
            options.httplog_clf = match rest {
                [] => false,
                [clf] if clf == "clf" => true,
                _ => {
                    return Err(format!(
                        "'option httplog' expects nothing or 'clf', got '{}'",
                        rest.join(" ")
                    ))
                }
            };
        }
        "forwardfor" => options.forwardfor = Some(parse_forwardfor(rest)?),
        "httpchk" => {
            draft.check_kind = CheckKind::Http;
            let check = &mut draft.http_check;
            match rest {
                [] => {}
                [uri] => check.uri = uri.clone(),
                [method, uri] => {
                    check.method = method.clone();
                    check.uri = uri.clone();
                }
                [method, uri, version] => {
                    check.method = method.clone();
                    check.uri = uri.clone();
                    // Old configs append headers to the version: `HTTP/1.1\r\nHost:\ x`.
                    let mut lines = version.split("\r\n");
                    check.version = lines.next().unwrap_or_default().to_string();
                    draft.httpchk_headers.clear();
                    for header in lines.filter(|l| !l.is_empty()) {
                        let (n, v) = header
                            .split_once(':')
                            .ok_or_else(|| format!("invalid header '{header}' in 'option httpchk'"))?;
                        draft.httpchk_headers.push((n.trim().to_string(), v.trim().to_string()));
                    }
                }
                _ => return Err("'option httpchk' expects at most a method, a URI and a version".into()),
            }
        }
        "tcp-check" => {
            if let Some(extra) = rest.first() {
                return Err(format!("'option tcp-check' takes no argument, got '{extra}'"));
            }
            draft.check_kind = CheckKind::Tcp;
        }
        "http-buffer-request"
        | "http-ignore-probes"
        | "forceclose"
        | "http-pretend-keepalive"
        | "http-no-delay"
        | "http-use-htx"
        | "tcpka"
        | "clitcpka"
        | "srvtcpka"
        | "ssl-hello-chk"
        | "mysql-check"
        | "pgsql-check"
        | "redis-check"
        | "smtpchk"
        | "ldap-check"
        | "spop-check"
        | "external-check"
        | "originalto"
        | "persist"
        | "prefer-last-server"
        | "transparent"
        | "accept-invalid-http-request"
        | "accept-invalid-http-response"
        | "checkcache"
        | "contstats"
        | "independent-streams"
        | "log-separate-errors"
        | "logasap"
        | "socket-stats"
        | "http-use-proxy-header"
        | "httpslog"
        | "h1-case-adjust-bogus-client"
        | "h1-case-adjust-bogus-server"
        | "disable-h2-upgrade"
        | "idle-close-on-response"
        | "http-restrict-req-hdr-names" => {
            return Err(format!("'option {name}' is not supported by Lanai"));
        }
        other => return Err(format!("unknown option '{other}'")),
    }
    Ok(())
}

/// `no option NAME` / `no log`.
pub(super) fn no_keyword(draft: &mut Draft, args: &[String]) -> Result<(), String> {
    match args {
        [log] if log == "log" => {
            draft.logs.clear();
            Ok(())
        }
        [option, name] if option == "option" => {
            let options = &mut draft.proxy.options;
            match name.as_str() {
                "tcplog" => options.tcplog = false,
                "dontlognull" => options.dontlognull = false,
                "http-server-close" => options.http_server_close = false,
                "httpclose" => options.httpclose = false,
                "http-keep-alive" => options.http_keep_alive = false,
                "nolinger" => options.nolinger = false,
                "redispatch" => options.redispatch = false,
                "log-health-checks" => options.log_health_checks = false,
                "abortonclose" => options.abortonclose = false,
                "allbackups" => options.allbackups = false,
                "splice-auto" | "splice-request" | "splice-response" => options.splice = false,
                "httplog" => {
                    options.httplog = false;
                    options.httplog_clf = false;
                }
                "forwardfor" => options.forwardfor = None,
                "httpchk" | "tcp-check" => draft.check_kind = CheckKind::Connect,
                other => return Err(format!("unknown option '{other}' after 'no option'")),
            }
            Ok(())
        }
        _ => Err(format!("'no' expects 'option NAME' or 'log', got '{}'", args.join(" "))),
    }
}

/// `stats enable|uri|refresh|realm|auth|show-node|show-legends|show-desc|hide-version|admin|scope`.
pub(super) fn parse_stats(
    draft: &mut Draft,
    args: &[String],
    warnings: &mut Vec<String>,
    nbsrv: &mut Vec<String>,
) -> Result<(), String> {
    let (verb, rest) = args.split_first().ok_or("'stats' expects a keyword")?;
    let page = draft.proxy.stats.get_or_insert_with(StatsPage::default);
    let one = || match rest {
        [value] => Ok(value.clone()),
        [] => Err(format!("'stats {verb}' expects one argument")),
        _ => Err(format!(
            "'stats {verb}' expects one argument: quote or escape spaces, as in \"{}\"",
            rest.join(" ")
        )),
    };
    match verb.as_str() {
        "enable" => {}
        "uri" => page.uri = one()?,
        "refresh" => page.refresh = Some(parse_time(&one()?)?),
        "realm" => page.realm = Some(one()?),
        "auth" => {
            let credentials = one()?;
            let (user, password) =
                credentials.split_once(':').ok_or("'stats auth' expects 'user:password'")?;
            page.auth.push((user.to_string(), password.to_string()));
        }
        "show-node" => page.show_node = Some(rest.first().cloned().unwrap_or_default()),
        "show-legends" => page.show_legends = true,
        "show-desc" => page.show_desc = Some(rest.join(" ")),
        "hide-version" => page.hide_version = true,
        "admin" => {
            if rest.is_empty() {
                return Err("'stats admin' expects 'if' or 'unless' followed by a condition".into());
            }
            page.admin = Some(parse_condition(rest, &draft.acls, nbsrv, warnings)?);
        }
        "scope" => warnings.push("'stats scope' ignored: the page shows every proxy".into()),
        "socket" | "timeout" | "maxconn" => {
            return Err(format!("'stats {verb}' is only allowed in the 'global' section"))
        }
        other => return Err(format!("unknown 'stats' keyword '{other}'")),
    }
    Ok(())
}

/// `option forwardfor [except NET] [header NAME] [if-none]`.
fn parse_forwardfor(args: &[String]) -> Result<ForwardFor, String> {
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
