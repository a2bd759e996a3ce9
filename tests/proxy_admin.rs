//! Operating `lanai proxy`: health checks, the stats page, the runtime API on
//! the stats socket, and the Prometheus exporter; formats compared with HAProxy.

mod support;

use std::time::Duration;

use support::*;

fn base(port: u16, sock: &std::path::Path, backend: &str) -> String {
    format!(
        "global\n    log stdout format raw local0 info\n    stats socket {} mode 600 level admin\n\ndefaults\n    mode http\n    log global\n    option httplog\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\nfrontend fe\n    bind 127.0.0.1:{port}\n    http-request use-service prometheus-exporter if {{ path /metrics }}\n    default_backend be\n\n{backend}",
        sock.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_takes_a_dead_server_out_and_logs_like_haproxy() {
    let good = Backend::named("good").await;
    let dead_port = free_port();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let backend = format!(
        "backend be\n    option httpchk GET /health\n    server good 127.0.0.1:{} check inter 100ms fall 2 rise 2\n    server dead 127.0.0.1:{dead_port} check inter 100ms fall 2 rise 2\n",
        good.port
    );
    let cfg = write_config(&base(port, &sock, &backend));
    let lanai = start_lanai(&cfg.path, port);
    assert!(
        eventually(Duration::from_secs(5), || lanai.log_text().contains("Server be/dead is DOWN")).await,
        "no DOWN log line: {}",
        lanai.log_text()
    );
    let log = lanai.log_text();
    assert!(log.contains("reason: Layer4 connection problem"), "{log}");
    assert!(log.contains("1 active and 0 backup servers left"), "{log}");
    for _ in 0..6 {
        let r = get(port, "/").await;
        assert_eq!((r.status, r.text().as_str()), (200, "good"));
    }
    // httplog lines for the requests, in HAProxy's layout.
    let log = lanai.log_text();
    let line = log.lines().find(|l| l.contains(" fe be/good ")).expect("an httplog line");
    let re = regex::Regex::new(
        r#"^127\.0\.0\.1:\d+ \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe be/good \d+/\d+/-?\d+/-?\d+/\d+ 200 \d+ - - ---- \d+/\d+/\d+/\d+/0 0/0 "GET / HTTP/1\.1"$"#,
    )
    .unwrap();
    assert!(re.is_match(line), "httplog line not in HAProxy's format: {line}");
    let state = runtime_cmd(&sock, "show servers state be").await;
    assert!(state.contains("be") && state.contains("dead"), "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_api_disables_servers_and_reloads() {
    let a = Backend::named("a").await;
    let b = Backend::named("b").await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let backend =
        format!("backend be\n    server a 127.0.0.1:{}\n    server b 127.0.0.1:{}\n", a.port, b.port);
    let cfg = write_config(&base(port, &sock, &backend));
    let _lanai = start_lanai(&cfg.path, port);

    let stat = runtime_cmd(&sock, "show stat").await;
    assert!(stat.starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,"), "{stat}");
    assert!(stat.contains("\nbe,a,") && stat.contains("\nbe,BACKEND,"), "{stat}");

    assert_eq!(runtime_cmd(&sock, "disable server be/a").await.trim(), "");
    for _ in 0..4 {
        assert_eq!(get(port, "/").await.text(), "b");
    }
    assert!(runtime_cmd(&sock, "show stat").await.contains("\nbe,a,"));
    runtime_cmd(&sock, "enable server be/a").await;
    runtime_cmd(&sock, "set weight be/b 0").await;
    for _ in 0..4 {
        assert_eq!(get(port, "/").await.text(), "a");
    }
    assert!(runtime_cmd(&sock, "get weight be/b").await.starts_with("0 (initial 1)"));
    assert_eq!(runtime_cmd(&sock, "disable server be/nope").await.trim(), "No such server.");

    // A good reload through the socket (b's configured weight changes, so the
    // runtime weight 0 gives way), then a bad one that changes nothing.
    std::fs::write(
        &cfg.path,
        base(port, &sock, &format!("backend be\n    server b 127.0.0.1:{} weight 5\n", b.port)),
    )
    .unwrap();
    let answer = runtime_cmd(&sock, "reload").await;
    assert!(answer.starts_with("Success=1"), "{answer}");
    assert_eq!(get(port, "/").await.text(), "b");
    std::fs::write(&cfg.path, base(port, &sock, "backend be\n    server b 127.0.0.1:1 weight 9999\n"))
        .unwrap();
    let answer = runtime_cmd(&sock, "reload").await;
    assert!(answer.starts_with("Success=0"), "{answer}");
    assert!(answer.contains("haproxy.cfg:"), "errors name the file and line: {answer}");
    assert_eq!(get(port, "/").await.text(), "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_page_auth_csv_and_prometheus() {
    let a = Backend::named("a").await;
    let port = free_port();
    let stats_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let backend = format!(
        "backend be\n    server a 127.0.0.1:{}\n\nlisten stats\n    bind 127.0.0.1:{stats_port}\n    stats enable\n    stats uri /haproxy/stats\n    stats refresh 10s\n    stats show-node\n    stats auth haproxy:passw0rd\n",
        a.port
    );
    let cfg = write_config(&base(port, &sock, &backend));
    let _lanai = start_lanai(&cfg.path, port);
    get(port, "/").await;

    let denied = get(stats_port, "/haproxy/stats").await;
    assert_eq!(denied.status, 401);
    assert!(denied.header("www-authenticate").is_some_and(|v| v.starts_with("Basic realm=")));
    // "haproxy:passw0rd" in base64
    let auth = [("authorization", "Basic aGFwcm94eTpwYXNzdzByZA==")];
    let page = request(stats_port, "GET", "/haproxy/stats", &auth, "").await.unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("<html") && page.text().contains(">be<"),
        "{}",
        &page.text()[..200.min(page.text().len())]
    );
    assert_eq!(page.header("refresh").as_deref(), Some("10"));
    let csv = request(stats_port, "GET", "/haproxy/stats;csv", &auth, "").await.unwrap();
    assert!(csv.text().starts_with("# pxname,svname,"), "{}", csv.text());

    // Same CSV header as HAProxy 2.6.
    let hp = free_port();
    let hcfg = write_config(&format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nlisten stats\n    bind 127.0.0.1:{hp}\n    stats enable\n    stats uri /s\n"
    ));
    let _h = start_haproxy(&hcfg.path, hp);
    let theirs = get(hp, "/s;csv").await.text();
    assert_eq!(csv.text().lines().next(), theirs.lines().next(), "CSV header differs from HAProxy's");

    let metrics = get(port, "/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(text.contains("# TYPE haproxy_server_status gauge"), "{text}");
    assert!(text.contains("haproxy_frontend_http_requests_total{proxy=\"fe\"}"), "{text}");
}
