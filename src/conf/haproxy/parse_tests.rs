//! Whole-file tests of the parser: sections, defaults folding, cross-checks,
//! and the exact line and wording of diagnostics.

use std::path::PathBuf;
use std::time::Duration;

use super::model::*;
use super::parse;
use crate::conf::{Diagnostic, Severity};

const TIMEOUTS: &str = "defaults\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n";

fn parse_ok(text: &str) -> (Config, Vec<Diagnostic>) {
    let (config, diags) = parse("t.cfg", text);
    match config {
        Some(config) => (config, diags),
        None => panic!("unexpected errors: {diags:#?}"),
    }
}

/// Errors only, as (line, message).
fn errors(text: &str) -> Vec<(usize, String)> {
    let (config, diags) = parse("t.cfg", text);
    let errors: Vec<(usize, String)> =
        diags.iter().filter(|d| d.is_error()).map(|d| (d.line, d.message.clone())).collect();
    assert_eq!(config.is_none(), !errors.is_empty(), "a model is returned exactly when there is no error");
    errors
}

fn warnings(diags: &[Diagnostic]) -> Vec<(usize, String)> {
    diags.iter().filter(|d| d.severity == Severity::Warning).map(|d| (d.line, d.message.clone())).collect()
}

#[test]
fn defaults_fold_into_following_proxies() {
    let text = "\
global
  log 127.0.0.1 local2
defaults
  mode http
  log global
  option httplog
  option forwardfor
  timeout connect 5s
  timeout client 30s
  timeout server 1m
  retries 5
  balance leastconn
  option httpchk GET /health
  default-server inter 3s fall 4
  errorfile 503 /etc/haproxy/errors/503.http
frontend web
  bind :80
  no option httplog
  default_backend app
backend app
  server a 10.0.0.1:80 check
defaults
  timeout connect 1s
  timeout client 1s
  timeout server 1s
backend raw
  server b 10.0.0.2:80
";
    let (config, diags) = parse_ok(text);
    assert!(diags.is_empty(), "{diags:#?}");
    let web = config.proxy("web").expect("web");
    assert_eq!(web.mode, Mode::Http);
    assert!(!web.options.httplog, "'no option httplog' clears the default");
    assert!(web.options.forwardfor.is_some());
    assert_eq!(web.logs.len(), 1, "log global copies the global targets");
    let app = config.proxy("app").expect("app");
    assert!(app.options.httplog);
    assert_eq!(app.timeouts.server, Some(Duration::from_secs(60)));
    assert_eq!(app.retries, 5);
    assert_eq!(app.balance, Balance::LeastConn);
    assert_eq!(app.errorfiles.get(&503), Some(&PathBuf::from("/etc/haproxy/errors/503.http")));
    assert_eq!(app.errorfile_lines.get(&503), Some(&15));
    match &app.health {
        HealthCheck::Http(check) => {
            assert_eq!((check.method.as_str(), check.uri.as_str()), ("GET", "/health"))
        }
        other => panic!("expected an HTTP check, got {other:?}"),
    }
    let check = app.servers[0].check.as_ref().expect("check");
    assert_eq!((check.inter, check.fall, check.rise), (Duration::from_secs(3), 4, 2));
    // A new `defaults` section starts from scratch.
    let raw = config.proxy("raw").expect("raw");
    assert_eq!(raw.mode, Mode::Tcp);
    assert_eq!(raw.retries, 3);
    assert_eq!(raw.health, HealthCheck::Connect);
    assert!(raw.logs.is_empty());
    assert_eq!(raw.retry_on, RetryOn::haproxy_default());
}

#[test]
fn keywords_out_of_place_are_errors_at_their_line() {
    let text = format!(
        "{TIMEOUTS}frontend f\n  bind :80\n  server s 10.0.0.1:80\n  frobnicate 1\nbackend b\n  bind :81\n  server s 10.0.0.1:80\n"
    );
    assert_eq!(
        errors(&text),
        [
            (7, "'server' not allowed because frontend 'f' has no backend capability".to_string()),
            (8, "unknown keyword 'frobnicate' in 'frontend' section".to_string()),
            (10, "'bind' not allowed because backend 'b' has no frontend capability".to_string()),
        ]
    );
    assert_eq!(errors("maxconn 100\n"), [(1, "unknown keyword 'maxconn' out of section".to_string())]);
    assert_eq!(
        errors("defaults\n  http-request deny\n"),
        [(2, "'http-request' not allowed in 'defaults' section".to_string())]
    );
    assert_eq!(
        errors("userlist admins\n  user a password x\n"),
        [(1, "'userlist' sections are not supported by Lanai".to_string())]
    );
}

#[test]
fn process_directives_warn() {
    let (_, diags) =
        parse_ok("global\n  daemon\n  nbproc 2\n  tune.ssl.default-dh-param 2048\n  master-worker\n");
    let warnings = warnings(&diags);
    assert_eq!(
        warnings[0],
        (
            2,
            "'daemon' ignored: lanai proxy always runs in the foreground (the appliance supervises it)"
                .to_string()
        )
    );
    assert!(warnings[1].1.starts_with("'nbproc' ignored"));
    assert!(warnings[2].1.starts_with("'tune.ssl.default-dh-param' ignored"));
    assert!(warnings[3].1.starts_with("'master-worker' ignored"));
}

#[test]
fn global_section() {
    let text = "\
global
  maxconn 8192
  nbthread 4
  user haproxy
  group haproxy
  chroot /var/lib/haproxy
  pidfile /run/haproxy.pid
  log /dev/log local0
  log /dev/log local1 notice
  log stdout format raw local0 info
  log 127.0.0.1 local2
  log 10.0.0.1:1514 local3 err
  stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners
  stats timeout 30s
  hard-stop-after 1m
  node lb1
  description edge balancer
  ssl-default-bind-options no-sslv3 no-tlsv10 no-tls-tickets ssl-min-ver TLSv1.2
  ssl-default-bind-ciphersuites TLS_AES_256_GCM_SHA384
";
    let (config, warnings) = parse_ok(text);
    let g = &config.global;
    assert_eq!((g.maxconn, g.nbthread), (8192, Some(4)));
    assert_eq!(g.user.as_deref(), Some("haproxy"));
    assert_eq!(g.chroot.as_deref(), Some(std::path::Path::new("/var/lib/haproxy")));
    assert!(!warnings.iter().any(|w| w.message.contains("chroot")), "{warnings:?}");
    assert_eq!(g.logs.len(), 5);
    assert_eq!(g.logs[0].dest, LogDest::Unix(PathBuf::from("/dev/log")));
    assert_eq!(g.logs[0].max_level, Level::Info);
    assert_eq!((g.logs[1].facility, g.logs[1].max_level), (Facility::Local1, Level::Notice));
    assert_eq!((&g.logs[2].dest, g.logs[2].format), (&LogDest::Stdout, LogFormat::Raw));
    assert_eq!(g.logs[0].format, LogFormat::Rfc3164);
    assert_eq!(g.logs[3].dest, LogDest::Udp("127.0.0.1:514".parse().expect("addr")));
    assert_eq!(g.logs[4].dest, LogDest::Udp("10.0.0.1:1514".parse().expect("addr")));
    assert_eq!(g.logs[4].line, 12);
    let socket = &g.stats_sockets[0];
    assert_eq!((socket.mode, socket.level, socket.line), (Some(0o660), RuntimeLevel::Admin, 13));
    assert_eq!(g.stats_timeout, Duration::from_secs(30));
    assert_eq!(g.hard_stop_after, Some(Duration::from_secs(60)));
    assert_eq!(g.description.as_deref(), Some("edge balancer"));
    assert_eq!(g.ssl_default_bind.min_version, Some(TlsVersion::Tls12));
    assert_eq!(g.ssl_default_bind.ciphersuites[0], "TLS13_AES_256_GCM_SHA384");
    assert_eq!(errors("global\n  log nowhere.example local0\n").len(), 1);
    assert_eq!(errors("global\n  log /dev/log local9\n"), [(2, "unknown log facility 'local9'".to_string())]);
    assert_eq!(
        errors("global\n  ssl-default-bind-options ssl-min-ver TLSv1.1\n"),
        [(2, "'ssl-min-ver TLSv1.1' is not supported: rustls speaks TLS 1.2 and TLS 1.3 only".to_string())]
    );
}

#[test]
fn open_file_limits() {
    let (config, warnings) = parse_ok("global\n  maxconn 100\n  ulimit-n 5000\n  no strict-limits\n");
    let g = &config.global;
    assert_eq!((g.maxconn_line, g.ulimit_n, g.ulimit_n_line, g.strict_limits), (2, Some(5000), 3, false));
    assert!(warnings.is_empty(), "{warnings:?}");
    let (config, _) = parse_ok("global\n  no strict-limits\n  strict-limits\n");
    assert!(config.global.strict_limits);
    assert_eq!((Global::default().strict_limits, Global::default().maxconn_line), (true, 0));
    assert_eq!(
        errors("global\n  ulimit-n many\n"),
        [(2, "'ulimit-n' expects an integer argument, got 'many'".to_string())]
    );
    assert_eq!(errors("global\n  no nbthread\n").len(), 1);
}

#[test]
fn base_directories_resolve_relative_paths() {
    let text = format!(
        "global\n  crt-base /etc/ssl/private\n  ca-base /etc/ssl/certs\n{TIMEOUTS}frontend f\n  bind :443 ssl crt site.pem crt /abs.pem\nbackend b\n  server s 10.0.0.1:443 ssl ca-file ca.pem crt client.pem sni req.hdr(host)\n"
    );
    let (config, _) = parse_ok(&text);
    let tls = config.proxy("f").expect("f").binds[0].tls.clone().expect("tls");
    assert_eq!(tls.certs, [PathBuf::from("/etc/ssl/private/site.pem"), PathBuf::from("/abs.pem")]);
    let server = &config.proxy("b").expect("b").servers[0];
    let tls = server.tls.as_ref().expect("tls");
    assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/ssl/certs/ca.pem")));
    assert_eq!(tls.crt, Some(PathBuf::from("/etc/ssl/private/client.pem")));
    assert_eq!(tls.verify, Verify::Required);
    assert_eq!(tls.sni, Some(ServerSni::RequestHost));
}

#[test]
fn server_tls_verification_follows_haproxy() {
    let text = format!("{TIMEOUTS}backend b\n  server s 10.0.0.1:443 ssl\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, 6);
    assert!(errs[0].1.starts_with("'server b/s' : verify is enabled by default but no CA file specified"));
    let (config, _) = parse_ok(&format!(
        "global\n  ssl-server-verify none\n{TIMEOUTS}backend b\n  server s 10.0.0.1:443 ssl\n"
    ));
    assert_eq!(config.proxies[0].servers[0].tls.as_ref().expect("tls").verify, Verify::None);
    let (config, _) = parse_ok(&format!(
        "{TIMEOUTS}backend b\n  default-server ssl verify none\n  server s 10.0.0.1:443 check\n"
    ));
    let server = &config.proxies[0].servers[0];
    assert!(server.check.as_ref().expect("check").ssl, "checks of an ssl server use TLS");
}

#[test]
fn acls_resolve_into_conditions() {
    let text = format!(
        "{TIMEOUTS}frontend f\n  mode http\n  bind :80\n  acl api path_beg /api\n  acl api hdr(host) -i api.example.com\n  use_backend b if api !LOCALHOST || {{ src 10.0.0.0/8 }}\n  default_backend b\nbackend b\n  mode http\n  server s 10.0.0.1:80\n"
    );
    let (config, _) = parse_ok(&text);
    let rule = &config.proxy("f").expect("f").use_backends[0];
    assert_eq!(rule.line, 10);
    let cond = rule.cond.as_ref().expect("condition");
    assert_eq!(cond.any_of.len(), 2);
    assert_eq!(cond.any_of[0][0].label, "api");
    assert_eq!(cond.any_of[0][0].acl.len(), 2, "both 'acl api' lines, OR'ed");
    assert!(cond.any_of[0][1].negated);
    assert_eq!(cond.any_of[0][1].acl[0].fetch, Fetch::Src);
    assert_eq!(cond.any_of[1][0].label, "{ src 10.0.0.0/8 }");
    assert_eq!(
        errors(&format!("{TIMEOUTS}frontend f\n  bind :80\n  http-request deny if blocked\n")),
        [(7, "no such ACL : 'blocked'".to_string())]
    );
    assert_eq!(
        errors(&format!("{TIMEOUTS}frontend f\n  bind :80\n  acl x src -f /etc/x.lst\n")),
        [(7, "error detected while parsing ACL 'x' : pattern files ('-f') are not supported: list the patterns on the line".to_string())]
    );
}

#[test]
fn cross_checks_name_the_problem() {
    let text = format!(
        "{TIMEOUTS}frontend f\n  mode http\n  bind :80\n  use_backend tcpb if TRUE\n  use_backend ghost if FALSE\n  http-request deny if {{ nbsrv(nope) lt 1 }}\n  default_backend b\nbackend b\n  mode http\n  server s 10.0.0.1:80\nbackend tcpb\n  server s 10.0.0.1:80\nfrontend f\n  bind :81\n"
    );
    assert_eq!(
        errors(&text),
        [
            (8, "http frontend 'f' (t.cfg:5) tries to use incompatible tcp backend 'tcpb' (t.cfg:15) as its use_backend (see 'mode')".to_string()),
            (9, "Proxy 'f': unable to find required use_backend: 'ghost'".to_string()),
            (10, "unable to find backend 'nope' referenced in 'nbsrv' in proxy 'f'".to_string()),
            (17, "frontend 'f' has the same name as frontend 'f' declared at t.cfg:5".to_string()),
        ]
    );
    // A frontend and a backend may share a name.
    parse_ok(&format!(
        "{TIMEOUTS}frontend x\n  bind :80\n  default_backend x\nbackend x\n  server s 10.0.0.1:80\n"
    ));
}

#[test]
fn haproxy_style_warnings() {
    let text = "\
frontend f
  bind :80
  default_backend b
frontend lonely
  timeout client 1s
backend b
  balance uri
  cookie SRV insert
  option httpchk
  server s 10.0.0.1:80 cookie s
listen l 127.0.0.1:8080
  timeout client 1s
  timeout connect 1s
  timeout server 1s
  http-check expect status 200
  server s 10.0.0.1:80
";
    let (config, diags) = parse_ok(text);
    let warnings = warnings(&diags);
    let expected = [
        (1, "missing timeouts for frontend 'f': set 'timeout client', 'timeout connect' and 'timeout server'"),
        (4, "frontend 'lonely' has no 'bind' directive. Please declare it as a backend if this was intended."),
        (6, "missing timeouts for backend 'b': set 'timeout client', 'timeout connect' and 'timeout server'"),
        (7, "Layer 7 hash not possible for backend 'b' (needs 'mode http'). Falling back to round robin."),
        (8, "cookie will be ignored for backend 'b' (needs 'mode http')"),
        (11, "address on the 'listen' line is a legacy form (HAProxy 2.6 refuses it): prefer 'bind 127.0.0.1:8080'"),
        (15, "'http-check' rules ignored for backend 'l': 'option httpchk' is not set"),
    ];
    let expected: Vec<(usize, String)> = expected.iter().map(|(l, m)| (*l, m.to_string())).collect();
    assert_eq!(warnings, expected);
    let b = config.proxy("b").expect("b");
    assert_eq!(b.balance, Balance::RoundRobin);
    assert_eq!(b.cookie, None);
    assert_eq!(config.proxy("l").expect("l").binds[0].addr, "127.0.0.1:8080".parse().expect("addr"));
}

#[test]
fn server_ids_follow_position_and_explicit_ids() {
    let text = format!(
        "{TIMEOUTS}backend b\n  server a 10.0.0.1:80 id 2\n  server b 10.0.0.2:80\n  server c 10.0.0.3:80\n  server d db.internal:5432\n"
    );
    let (config, _) = parse_ok(&text);
    let servers = &config.proxies[0].servers;
    let ids: Vec<u32> = servers.iter().map(|s| s.id).collect();
    assert_eq!(ids, [2, 1, 3, 4], "automatic ids skip explicit ones");
    assert_eq!(servers[3].host.as_deref(), Some("db.internal"));
    assert_eq!(servers[3].addr.port(), 5432);
    assert_eq!(
        errors(&format!("{TIMEOUTS}backend b\n  server a 10.0.0.1:80 id 2\n  server b 10.0.0.2:80 id 2\n")),
        [(7, "'server b/b' : id 2 is already used by the server at line 6".to_string())]
    );
}

#[test]
fn http_and_tcp_rules_keep_their_order() {
    let text = format!(
        "{TIMEOUTS}frontend f\n  mode http\n  bind :80\n  http-request set-header X-A 1\n  redirect scheme https if !{{ ssl_fc }}\n  http-request deny\n  http-response del-header Server\n  tcp-request inspect-delay 5s\n  tcp-request content reject if {{ req.len 0 }}\n"
    );
    let (config, _) = parse_ok(&text);
    let f = config.proxy("f").expect("f");
    let lines: Vec<usize> = f.http_request.iter().map(|r| r.line).collect();
    assert_eq!(lines, [8, 9, 10]);
    assert!(matches!(f.http_request[1].action, HttpRequestAction::Redirect(_)));
    assert_eq!(f.http_response.len(), 1);
    assert_eq!(f.inspect_delay, Some(Duration::from_secs(5)));
    assert!(!f.tcp_request[0].accept && f.tcp_request[0].content);
    // HTTP rules in a TCP proxy are dropped with a warning, as in HAProxy.
    let (config, diags) = parse_ok(&format!("{TIMEOUTS}frontend f\n  bind :80\n  http-request deny\n"));
    assert!(config.proxies[0].http_request.is_empty());
    assert_eq!(warnings(&diags)[0].0, 7);
}

#[test]
fn health_checks() {
    let text = format!(
        "{TIMEOUTS}backend h\n  mode http\n  option httpchk HEAD /ping HTTP/1.1\\r\\nHost:\\ example.com\n  http-check expect rstatus ^2\nbackend t\n  option tcp-check\n  tcp-check connect port 6379 ssl\n  tcp-check send PING\\r\\n\n  tcp-check expect string +PONG\n  server s 10.0.0.1:6379 check\n"
    );
    let (config, _) = parse_ok(&text);
    match &config.proxy("h").expect("h").health {
        HealthCheck::Http(check) => {
            assert_eq!(
                (check.method.as_str(), check.uri.as_str(), check.version.as_str()),
                ("HEAD", "/ping", "HTTP/1.1")
            );
            assert_eq!(check.headers, [("Host".to_string(), "example.com".to_string())]);
            assert!(matches!(
                check.expect,
                Some(HttpExpect { negated: false, kind: HttpExpectKind::Rstatus(_) })
            ));
        }
        other => panic!("expected an HTTP check, got {other:?}"),
    }
    match &config.proxy("t").expect("t").health {
        HealthCheck::TcpCheck(steps) => {
            assert_eq!(steps[0], TcpCheckStep::Connect { port: Some(6379), ssl: true, send_proxy: false });
            assert_eq!(steps[1], TcpCheckStep::Send(b"PING\r\n".to_vec()));
            assert_eq!(steps.len(), 3);
        }
        other => panic!("expected a tcp-check, got {other:?}"),
    }
}

#[test]
fn stats_page() {
    let text = format!(
        "{TIMEOUTS}listen stats\n  mode http\n  bind :8404\n  stats enable\n  stats refresh 10s\n  stats show-node\n  stats auth admin:letmein\n  stats admin if LOCALHOST\n  stats scope app\n"
    );
    let (config, diags) = parse_ok(&text);
    let page = config.proxies[0].stats.clone().expect("stats page");
    assert_eq!(page.uri, "/haproxy?stats");
    assert_eq!(page.refresh, Some(Duration::from_secs(10)));
    assert_eq!(page.show_node, Some(String::new()));
    assert_eq!(page.auth, [("admin".to_string(), "letmein".to_string())]);
    assert!(page.admin.is_some());
    assert_eq!(warnings(&diags), [(13, "'stats scope' ignored: the page shows every proxy".to_string())]);
}

#[test]
fn timeouts_and_legacy_names() {
    let (config, _) = parse_ok(&format!(
        "{TIMEOUTS}backend b\n  timeout http-request 10s\n  timeout http-keep-alive 1s\n  timeout queue 2s\n  timeout tunnel 1h\n  timeout check 500\n  timeout client-fin 1s\n  timeout server-fin 2s\n"
    ));
    let t = &config.proxies[0].timeouts;
    assert_eq!(t.tunnel, Some(Duration::from_secs(3600)));
    assert_eq!(t.check, Some(Duration::from_millis(500)));
    assert_eq!(t.server_fin, Some(Duration::from_secs(2)));
    assert_eq!(
        errors("defaults\n  srvtimeout 50000\n"),
        [(
            2,
            "the 'srvtimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout server'."
                .to_string()
        )]
    );
    assert_eq!(errors("defaults\n  timeout client 5q\n").len(), 1);
}

#[test]
fn diagnostics_are_sorted_by_line() {
    let text = "global\n  daemon\nfrontend f\n  bind :80\n  default_backend nope\n  frobnicate\n";
    let (_, diags) = parse("t.cfg", text);
    let lines: Vec<usize> = diags.iter().map(|d| d.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    assert_eq!(diags[0].to_string(), "t.cfg:2: warning: 'daemon' ignored: lanai proxy always runs in the foreground (the appliance supervises it)");
}

#[test]
fn bind_options_and_addresses() {
    let (config, _) = parse_ok(&format!(
        "{TIMEOUTS}frontend f\n  bind 127.0.0.1:80,[::1]:80 name web v4v6\n  bind :443 ssl crt /a.pem alpn h2,http/1.1 ssl-min-ver TLSv1.3 ca-file /ca.pem verify optional\n"
    ));
    let binds = &config.proxies[0].binds;
    assert_eq!(binds.len(), 3);
    assert_eq!(binds[1].addr, "[::1]:80".parse().expect("addr"));
    let tls = binds[2].tls.as_ref().expect("tls");
    assert_eq!((tls.min_version, tls.verify), (Some(TlsVersion::Tls13), Verify::Optional));
    assert_eq!(
        errors(&format!("{TIMEOUTS}frontend f\n  bind :443 ssl crt /a.pem ssl-min-ver TLSv1.0\n")),
        [(6, "'ssl-min-ver TLSv1.0' is not supported: rustls speaks TLS 1.2 and TLS 1.3 only".to_string())]
    );
}

#[test]
fn truncated_lines_never_panic() {
    // Every prefix of every line of a rich configuration: errors, not panics.
    let text = "\
global
  log 127.0.0.1:514 local2 notice
  stats socket /run/x.sock mode 660 level admin
  ssl-default-bind-ciphers ECDH+AESGCM:!aNULL
frontend f
  bind [::1]:443,:80 ssl crt /a.pem alpn h2 ssl-min-ver TLSv1.2
  acl a hdr_dom(host) -i -m dom \"x y\" 'z' \\ w
  http-request redirect location https://%[hdr(host)]%[path] code 301 if !a || { src 10.0.0.0/8 }
  http-request return status 200 content-type text/plain lf-string \"%[src] ok\" hdr X-A %%b
  tcp-request content accept if { req.ssl_hello_type 1 }
  use_backend b if { dst_port ge 1024 } METH_GET
backend b
  balance uri whole len 10 depth 2
  cookie S insert indirect domain .x.com
  option httpchk GET /h HTTP/1.1\\r\\nHost:\\ x
  http-check expect ! rstatus ^5
  server s 10.0.0.1:80 check inter 2s ssl verify none sni str(x) id 3 weight 256
";
    for (index, line) in text.lines().enumerate() {
        for (cut, _) in line.char_indices() {
            let mut mutated: Vec<&str> = text.lines().collect();
            mutated[index] = &line[..cut];
            let _ = parse("t.cfg", &mutated.join("\n"));
        }
    }
    parse_ok(text);
}

#[test]
fn named_defaults_and_from() {
    let text = "\
defaults web
  mode http
  timeout client 1s
defaults
  mode tcp
  timeout client 2s
frontend f from web
  bind :80
frontend g
  bind :81
frontend h from nope
  bind :82
";
    let (_, diags) = parse("t.cfg", text);
    let errors: Vec<(usize, &str)> =
        diags.iter().filter(|d| d.is_error()).map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(errors, [(11, "frontend 'h': unable to find defaults section 'nope'")]);
    let (config, _) = parse_ok(&text.replace("frontend h from nope\n  bind :82\n", ""));
    let f = config.proxy("f").expect("f");
    assert_eq!((f.mode, f.timeouts.client), (Mode::Http, Some(Duration::from_secs(1))));
    let g = config.proxy("g").expect("g");
    assert_eq!(
        (g.mode, g.timeouts.client),
        (Mode::Tcp, Some(Duration::from_secs(2))),
        "the last defaults apply"
    );
}

#[test]
fn check_rules_from_defaults_are_replaced_not_extended() {
    let text = format!(
        "{TIMEOUTS}  option httpchk GET /health\n  http-check expect status 200\nbackend inherits\n  server s 10.0.0.1:80 check\nbackend own\n  http-check expect status 204\n  server s 10.0.0.1:80 check\n"
    );
    let (config, _) = parse_ok(&text);
    let expect_of = |name: &str| match &config.proxy(name).expect("proxy").health {
        HealthCheck::Http(check) => (check.uri.clone(), check.expect.clone()),
        other => panic!("expected an HTTP check, got {other:?}"),
    };
    let status = |code| Some(HttpExpect { negated: false, kind: HttpExpectKind::Status(vec![(code, code)]) });
    assert_eq!(expect_of("inherits"), ("/health".to_string(), status(200)));
    assert_eq!(expect_of("own"), ("/health".to_string(), status(204)));
}

#[test]
fn http_settings_in_tcp_proxies_are_dropped_with_warnings() {
    let text = format!(
        "{TIMEOUTS}  option httplog\n  option forwardfor\nfrontend f\n  bind :80\n  monitor-uri /alive\n  stats enable\n"
    );
    let (config, diags) = parse_ok(&text);
    let f = config.proxy("f").expect("f");
    assert!(f.options.tcplog && !f.options.httplog);
    assert_eq!((f.monitor_uri.as_ref(), f.stats.as_ref(), f.options.forwardfor.as_ref()), (None, None, None));
    let messages: Vec<String> =
        warnings(&diags).into_iter().map(|(line, m)| format!("{line}: {m}")).collect();
    assert_eq!(
        messages,
        [
            "7: monitor-uri will be ignored for frontend 'f' (needs 'mode http')",
            "7: 'option httplog' not usable with frontend 'f' (needs 'mode http'). Falling back to 'option tcplog'.",
            "7: 'stats' statement ignored for frontend 'f' as it requires HTTP mode",
            "7: 'option forwardfor' ignored for frontend 'f' as it requires HTTP mode",
            "7: log format ignored for frontend 'f' since it has no log address",
        ]
    );
}

#[test]
fn tcplog_and_httplog_replace_each_other() {
    let text = format!("{TIMEOUTS}  option httplog\n  log stdout local0\nfrontend f\n  bind :80\n  option tcplog\nbackend b\n  server s 10.0.0.1:80\n");
    let (config, diags) = parse_ok(&text);
    let f = config.proxy("f").expect("f");
    assert!(f.options.tcplog && !f.options.httplog);
    assert!(warnings(&diags).is_empty(), "{diags:#?}");
    let b = config.proxy("b").expect("b");
    assert!(b.options.httplog, "a tcp backend keeps its inherited log format silently");
}

#[test]
fn rule_order_warnings() {
    let text = format!(
        "{TIMEOUTS}frontend f\n  mode http\n  log stdout local0\n  bind :80\n  tcp-request content accept\n  tcp-request connection accept\n  http-request deny if {{ path /x }}\n  http-request redirect scheme https\n  http-request return status 200 content-type text/plain\n"
    );
    let (config, diags) = parse_ok(&text);
    let messages: Vec<String> =
        warnings(&diags).into_iter().map(|(line, m)| format!("{line}: {m}")).collect();
    assert_eq!(
        messages,
        [
            "10: a 'tcp-request connection' rule placed after a 'tcp-request content' rule will still be processed before",
            "13: 'return' content-type ignored: neither a body nor an errorfile is given",
            "13: previous 'http-request' action (line 12) is final and has no condition attached, further entries are NOOP",
        ]
    );
    assert_eq!(config.proxies[0].http_request.len(), 3);
}

#[test]
fn one_address_bound_twice_warns() {
    let text = format!("{TIMEOUTS}frontend a\n  bind :80\nfrontend b\n  bind 0.0.0.0:80\n  bind :81\n");
    let (_, diags) = parse_ok(&text);
    assert_eq!(
        warnings(&diags),
        [(
            8,
            "address 0.0.0.0:80 is also bound by 'a' at line 6: connections will be shared between them"
                .to_string()
        )]
    );
}
