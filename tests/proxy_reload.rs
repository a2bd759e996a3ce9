//! Reload, graceful stop and failover of `lanai proxy` under load.

mod support;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::*;

fn config(port: u16, servers: &str, extra: &str) -> String {
    format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\nfrontend fe\n    bind 127.0.0.1:{port}\n{extra}    default_backend be\n\nbackend be\n    balance roundrobin\n{servers}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_reloads_under_load_fail_no_request() {
    let a = Backend::named("a").await;
    let b = Backend::named("b").await;
    let port = free_port();
    let servers_a = format!("    server a 127.0.0.1:{}\n", a.port);
    let servers_ab = format!("    server a 127.0.0.1:{}\n    server b 127.0.0.1:{}\n", a.port, b.port);
    let cfg = write_config(&config(port, &servers_a, ""));
    let lanai = start_lanai(&cfg.path, port);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load_loop(port, 4, Arc::clone(&stop)));
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let servers = if i % 2 == 0 { &servers_ab } else { &servers_a };
        let extra = format!("    http-request set-header X-Generation {i}\n");
        std::fs::write(&cfg.path, config(port, servers, &extra)).unwrap();
        lanai.signal(Signal::SIGHUP);
        // One reload at a time: two SIGHUPs pending at once count as one.
        let reloaded = || lanai.log_text().matches("configuration reloaded").count() > i;
        assert!(eventually(Duration::from_secs(10), reloaded).await, "reload {i}: {}", lanai.log_text());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, errors) = load.await.unwrap();
    assert!(ok > 200, "too few requests went through: {ok}");
    assert_eq!(failed, 0, "failed requests during reloads: {errors:?}");
    assert!(b.hits() > 0, "the reloaded configuration never took effect");
    assert_eq!(lanai.log_text().matches("configuration reloaded").count(), 10, "{}", lanai.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reload_keeps_the_old_configuration() {
    let a = Backend::named("a").await;
    let port = free_port();
    let cfg = write_config(&config(port, &format!("    server a 127.0.0.1:{}\n", a.port), ""));
    let lanai = start_lanai(&cfg.path, port);
    assert_eq!(get(port, "/").await.text(), "a");
    std::fs::write(&cfg.path, config(port, "    server a 127.0.0.1:1 bogus-keyword\n", "")).unwrap();
    lanai.signal(Signal::SIGHUP);
    let refused = || lanai.log_text().contains("reload refused");
    assert!(eventually(Duration::from_secs(10), refused).await, "{}", lanai.log_text());
    assert_eq!(get(port, "/").await.text(), "a", "old configuration must keep serving");
    let log = lanai.log_text();
    assert!(log.contains("reload refused"), "{log}");
    assert!(log.contains("haproxy.cfg:13:"), "error names file and line: {log}");
    assert!(log.contains("bogus-keyword"), "error names the keyword: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflight_request_finishes_on_old_config_and_new_bind_opens() {
    let slow = Backend::start(Arc::new(|_req| {
        std::thread::sleep(Duration::from_millis(800));
        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from("old")))
    }))
    .await;
    let fresh = Backend::named("new").await;
    let port = free_port();
    let port2 = free_port();
    let cfg = write_config(&config(port, &format!("    server s 127.0.0.1:{}\n", slow.port), ""));
    let lanai = start_lanai(&cfg.path, port);
    let inflight = tokio::spawn(async move { get(port, "/").await });
    assert!(
        eventually(Duration::from_secs(5), || slow.hits() == 1).await,
        "the request never reached the server"
    );
    let new_cfg = config(port, &format!("    server s 127.0.0.1:{}\n", fresh.port), "")
        + &format!("\nfrontend second\n    bind 127.0.0.1:{port2}\n    default_backend be\n");
    std::fs::write(&cfg.path, new_cfg).unwrap();
    lanai.signal(Signal::SIGHUP);
    assert!(wait_port(port2, Duration::from_secs(5)), "new bind not opened: {}", lanai.log_text());
    assert_eq!(get(port, "/").await.text(), "new");
    assert_eq!(get(port2, "/").await.text(), "new");
    assert_eq!(inflight.await.unwrap().text(), "old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_inflight_requests_finish() {
    let slow = Backend::start(Arc::new(|_req| {
        std::thread::sleep(Duration::from_millis(700));
        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from("done")))
    }))
    .await;
    let port = free_port();
    let cfg = write_config(&config(port, &format!("    server s 127.0.0.1:{}\n", slow.port), ""));
    let mut lanai = start_lanai(&cfg.path, port);
    let inflight = tokio::spawn(async move { get(port, "/").await });
    assert!(
        eventually(Duration::from_secs(5), || slow.hits() == 1).await,
        "the request never reached the server"
    );
    lanai.signal(Signal::SIGTERM);
    // Well before the in-flight request (700 ms) is done.
    let refused = || std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
    assert!(eventually(Duration::from_millis(500), refused).await, "must stop accepting at once");
    assert_eq!(inflight.await.unwrap().text(), "done");
    assert_eq!(lanai.wait_exit(Duration::from_secs(5)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_stop_after_bounds_the_wait() {
    let slow = Backend::start(Arc::new(|_req| {
        std::thread::sleep(Duration::from_secs(5));
        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from("late")))
    }))
    .await;
    let port = free_port();
    let cfg = write_config(&format!(
        "global\n    hard-stop-after 500ms\n{}",
        config(port, &format!("    server s 127.0.0.1:{}\n", slow.port), "")
    ));
    let mut lanai = start_lanai(&cfg.path, port);
    let _inflight = tokio::spawn(async move { request(port, "GET", "/", &[], "").await });
    assert!(
        eventually(Duration::from_secs(5), || slow.hits() == 1).await,
        "the request never reached the server"
    );
    let t = std::time::Instant::now();
    lanai.signal(Signal::SIGTERM);
    assert_eq!(lanai.wait_exit(Duration::from_secs(4)), Some(0));
    // Bounded by hard-stop-after (500 ms), not by the 5 s request.
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_killed_under_load_with_retry_on_conn_failure() {
    let (p1, p2) = (free_port(), free_port());
    let (mut n1, _d1) = start_nginx(p1, "one");
    let (_n2, _d2) = start_nginx(p2, "two");
    let port = free_port();
    let servers = format!(
        "    retries 3\n    option redispatch\n    retry-on conn-failure\n    server one 127.0.0.1:{p1} check inter 200ms fall 2 rise 2\n    server two 127.0.0.1:{p2} check inter 200ms fall 2 rise 2\n"
    );
    let cfg = write_config(&config(port, &servers, ""));
    let _lanai = start_lanai(&cfg.path, port);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load_loop(port, 4, Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = n1.child.kill();
    let _ = n1.child.wait();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, errors) = load.await.unwrap();
    assert!(ok > 100, "too few requests: {ok}");
    assert_eq!(failed, 0, "client-visible errors after killing a backend: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_as_soon_as_the_port_answers_reloads() {
    let a = Backend::named("a").await;
    let port = free_port();
    let cfg = write_config(&config(port, &format!("    server a 127.0.0.1:{}\n", a.port), ""));
    let mut lanai = spawn_lanai(&cfg.path);
    // The moment the port answers (no sleep between polls), before the
    // start-up has finished: a supervisor may reload at any time.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{}", lanai.log_text());
    }
    lanai.signal(Signal::SIGHUP);
    let reloaded = || lanai.log_text().contains("configuration reloaded");
    assert!(eventually(Duration::from_secs(10), reloaded).await, "{}", lanai.log_text());
    assert_eq!(lanai.wait_exit(Duration::ZERO), None, "the SIGHUP must not kill it");
    assert_eq!(get(port, "/").await.text(), "a");
}
