//! The seed configurations, parsed into the model the data plane consumes:
//! what each seed asks for must be there.

use std::path::PathBuf;
use std::time::Duration;

use lanai::conf::haproxy::{self, *};

fn seed(name: &str) -> Config {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/haproxy").join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    let (config, diags) = haproxy::parse(name, &text);
    config.unwrap_or_else(|| panic!("{name} does not parse: {diags:#?}"))
}

#[test]
fn seed001_tls_termination_and_retries() {
    let config = seed("seed001_keepalived_ssl.cfg");
    assert_eq!(config.global.logs.len(), 2);
    assert_eq!(config.global.stats_sockets[0].level, RuntimeLevel::Admin);
    assert_eq!(
        config.global.ssl_default_bind.ciphersuites.len(),
        3 + 4,
        "TLS 1.3 defaults + 4 ECDHE-GCM suites"
    );
    let front = config.proxy("www.example.com").expect("frontend");
    assert_eq!(front.mode, Mode::Http);
    let tls = front.binds[1].tls.as_ref().expect("TLS bind");
    assert_eq!(tls.certs, [PathBuf::from("tests/fixtures/certs/mycert.pem")], "crt-base applied");
    assert_eq!(tls.ciphersuites, config.global.ssl_default_bind.ciphersuites);
    match &front.http_request[0].action {
        HttpRequestAction::Redirect(redirect) => {
            assert_eq!(redirect.kind, RedirectKind::Scheme(FmtString::literal("https")))
        }
        other => panic!("expected the https redirect, got {other:?}"),
    }
    let all = config.proxy("web_retry_all").expect("backend");
    assert!(all.retry_on.needs_l7_buffer());
    assert_eq!(all.errorfiles.len(), 7, "errorfiles come from defaults");
    let get_only = config.proxy("web_retry_get_only").expect("backend");
    assert_eq!(get_only.http_request[0].action, HttpRequestAction::DisableL7Retry);
    assert_eq!(config.proxy("web_servers").expect("backend").servers.len(), 3);
}

#[test]
fn seed002_stats_checks_and_server_tls() {
    let config = seed("seed002_stats_ssl_checks.cfg");
    let stats = config.proxy("stats").expect("stats").stats.clone().expect("stats page");
    assert_eq!(stats.uri, "/haproxy/stats");
    assert_eq!(stats.refresh, Some(Duration::from_secs(10)));
    assert_eq!(stats.auth, [("haproxy".to_string(), "passw0rd".to_string())]);
    let http_in = config.proxy("http-in").expect("frontend");
    match &http_in.http_request[0].action {
        HttpRequestAction::ReplaceValue { name, regex, replace } => {
            assert_eq!(name, "Host");
            assert_eq!(regex.0.replace("example.com:8080", replace.as_str()), "example.com:8443");
        }
        other => panic!("expected replace-value, got {other:?}"),
    }
    let app = config.proxy("app").expect("backend");
    let check = app.servers[0].check.as_ref().expect("check");
    assert_eq!((check.inter, check.fall, check.rise), (Duration::from_secs(10), 3, 2));
    assert!(app.options.log_health_checks);
    let app_ssl = config.proxy("app_ssl").expect("backend");
    match &app_ssl.health {
        HealthCheck::Http(check) => {
            assert_eq!((check.method.as_str(), check.uri.as_str()), ("GET", "/healthz"))
        }
        other => panic!("expected httpchk, got {other:?}"),
    }
    let tls = app_ssl.servers[0].tls.as_ref().expect("server TLS");
    assert_eq!(tls.verify, Verify::Required);
    assert_eq!(tls.ca_file, Some(PathBuf::from("tests/fixtures/certs/ca.pem")));
    assert!(app_ssl.servers[0].check.as_ref().expect("check").ssl);
    let tcp = config.proxy("app_tcp").expect("backend");
    assert_eq!(tcp.health, HealthCheck::TcpCheck(Vec::new()));
    assert_eq!(tcp.servers[1].check.as_ref().expect("check").port, Some(18032));
    assert_eq!(config.proxy("tcp-passthrough").expect("frontend").mode, Mode::Tcp);
    assert_eq!(config.proxy("http-in").expect("frontend").maxconn, Some(3000), "maxconn from defaults");
}

#[test]
fn seed003_cookie_persistence_and_checks() {
    let config = seed("seed003_failover.cfg");
    let backend = config.proxy("web_servers").expect("backend");
    let cookie = backend.cookie.as_ref().expect("cookie persistence");
    assert_eq!(
        (cookie.name.as_str(), cookie.mode, cookie.indirect, cookie.nocache),
        ("SERVERID", CookieMode::Insert, true, true)
    );
    let cookies: Vec<Option<&str>> = backend.servers.iter().map(|s| s.cookie.as_deref()).collect();
    assert_eq!(cookies, [Some("web01"), Some("web02")]);
    match &backend.health {
        HealthCheck::Http(check) => assert_eq!(
            check.expect,
            Some(HttpExpect { negated: false, kind: HttpExpectKind::Status(vec![(200, 200)]) })
        ),
        other => panic!("expected httpchk, got {other:?}"),
    }
    let check = backend.servers[1].check.as_ref().expect("check");
    assert_eq!(
        (check.inter, check.fall, check.rise),
        (Duration::from_secs(2), 3, 2),
        "default-server applies"
    );
    assert_eq!(backend.servers.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn seed004_legacy_listen_and_source_routing() {
    let config = seed("seed004_mercurial.cfg");
    assert_eq!(config.global.maxconn, 8192);
    let stats = config.proxy("HAProxy-Statistics").expect("listen");
    assert_eq!(
        stats.binds[0].addr,
        "127.0.0.1:18081".parse().expect("addr"),
        "legacy address becomes a bind"
    );
    let page = stats.stats.as_ref().expect("stats page");
    assert!(page.show_legends);
    assert_eq!(page.show_node.as_deref(), Some(""));
    let tunnel = config.proxy("Public-AppTunnel").expect("frontend");
    let rule = &tunnel.use_backends[0];
    assert_eq!(rule.backend, "App-PilotCustomer2");
    assert_eq!(rule.cond.as_ref().expect("condition").any_of[0][0].acl[0].fetch, Fetch::Src);
    assert!(config.proxy("Public-HTTPS").expect("frontend").binds.is_empty());
    assert!(config.proxies.iter().all(|p| p.options.nolinger), "option nolinger from defaults");
    assert_eq!(config.proxy("Web-Farm").expect("backend").health, HealthCheck::Http(HttpCheck::default()));
}
