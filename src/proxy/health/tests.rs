//! Checks against real sockets on 127.0.0.1 with short intervals.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::conf::haproxy::{
    HealthCheck, HttpCheck, HttpExpect, HttpExpectKind, RegexPat, TcpCheckStep, TcpExpect,
};
use crate::proxy::testutil::{fast_check, proxy, server};

type Logs = Arc<Mutex<Vec<(Level, String)>>>;

fn sink() -> (LogSink, Logs) {
    let logs: Logs = Arc::default();
    let l = Arc::clone(&logs);
    let sink: LogSink = Arc::new(move |level, line| {
        if let Ok(mut v) = l.lock() {
            v.push((level, line));
        }
    });
    (sink, logs)
}

/// Log lines with the variable check duration normalised to 0ms.
fn lines(logs: &Logs) -> Vec<(Level, String)> {
    let re = regex::Regex::new(r"check duration: \d+ms").expect("regex");
    logs.lock()
        .map(|v| v.iter().map(|(l, s)| (*l, re.replace_all(s, "check duration: 0ms").into_owned())).collect())
        .unwrap_or_default()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A port on 127.0.0.1 where nothing listens.
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

/// Serves `response` to every connection after reading the request head.
async fn http_server(response: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

/// Answers `reply` when it receives a line, like a tiny Redis-style server.
async fn line_server(reply: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut chunk = [0u8; 256];
                if let Ok(n) = s.read(&mut chunk).await {
                    if n > 0 {
                        let _ = s.write_all(reply).await;
                    }
                }
            });
        }
    });
    (addr, task)
}

fn target(backend: &str, name: &str, addr: SocketAddr, rise: u32, fall: u32) -> CheckTarget {
    let srv = server(name, 1, addr, Some(fast_check(40, rise, fall)));
    CheckTarget { state: Arc::new(ServerState::new(backend, name, 1, true)), server: srv, tls: None }
}

async fn check_once(kind: HealthCheck, addr: SocketAddr) -> Outcome {
    let spec = ProbeSpec {
        addr,
        kind,
        tls: None,
        timeouts: Timeouts { connect: Duration::from_millis(300), read: None },
    };
    probe::run(&spec).await
}

#[tokio::test]
async fn tcp_server_goes_down_after_fall_and_up_after_rise() {
    let addr = closed_port().await;
    let mut be = proxy("app", false, true);
    be.options.log_health_checks = false;
    let t = target("app", "srv1", addr, 2, 3);
    let state = Arc::clone(&t.state);
    let (log, logs) = sink();
    let _tasks = spawn_checks(&be, vec![t], log);
    wait_for("DOWN", || state.health() == Health::Down).await;
    // Starts at health = rise: a single failure is enough (HAProxy).
    assert_eq!(state.failed_checks.load(Ordering::Relaxed), 1);
    let report = state.last_check.lock().map(|r| r.clone()).unwrap_or_default();
    assert_eq!((report.status.as_str(), report.description.as_str()), ("L4CON", "Connection refused"));
    assert_eq!(
        lines(&logs),
        vec![
            (
                Level::Alert,
                "Server app/srv1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", \
                 check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, \
                 0 remaining in queue."
                    .to_string()
            ),
            (Level::Emerg, "backend app has no server available!".to_string()),
        ]
    );
    let listener = TcpListener::bind(addr).await.expect("rebind");
    let accept = tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    wait_for("UP", || state.health() == Health::Up).await;
    assert_eq!(state.check_health(2, 3), 4);
    let all = lines(&logs);
    assert_eq!(
        all.last(),
        Some(&(
            Level::Notice,
            "Server app/srv1 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup \
             servers online. 0 sessions requeued, 0 total in queue."
                .to_string()
        ))
    );
    accept.abort();
}

#[tokio::test]
async fn log_health_checks_reports_each_counter_change() {
    let addr = closed_port().await;
    let mut be = proxy("app", false, true);
    be.options.log_health_checks = true;
    let t = target("app", "srv1", addr, 2, 2);
    let mut backup = target("app", "bk", addr, 2, 2);
    backup.server.check = None;
    backup.server.backup = true;
    backup.state = Arc::new(ServerState::new("app", "bk", 1, false));
    let state = Arc::clone(&t.state);
    let (log, logs) = sink();
    let _tasks = spawn_checks(&be, vec![t, backup], log);
    wait_for("DOWN", || state.health() == Health::Down).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        lines(&logs),
        vec![
            (
                Level::Notice,
                "Health check for server app/srv1 failed, reason: Layer4 connection problem, info: \
                 \"Connection refused\", check duration: 0ms, status: 0/2 DOWN."
                    .to_string()
            ),
            (
                Level::Alert,
                "Server app/srv1 is DOWN. 0 active and 1 backup servers left. Running on backup. \
                 0 sessions active, 0 requeued, 0 remaining in queue."
                    .to_string()
            ),
        ],
        "failures at health 0 change nothing and are not logged"
    );
    let (_http, task) = {
        // Re-listen on the same port with an HTTP answer; a plain connect check passes.
        let l = TcpListener::bind(addr).await.expect("rebind");
        let task = tokio::spawn(async move { while l.accept().await.is_ok() {} });
        (addr, task)
    };
    wait_for("UP", || state.health() == Health::Up).await;
    let all = lines(&logs);
    assert_eq!(
        all[2..].to_vec(),
        vec![
            (
                Level::Notice,
                "Health check for server app/srv1 succeeded, reason: Layer4 check passed, check duration: 0ms, \
                 status: 1/2 DOWN."
                    .to_string()
            ),
            (
                Level::Notice,
                "Health check for server app/srv1 succeeded, reason: Layer4 check passed, check duration: 0ms, \
                 status: 2/2 UP."
                    .to_string()
            ),
            (
                Level::Notice,
                "Server app/srv1 is UP. 1 active and 1 backup servers online. 0 sessions requeued, 0 total in queue."
                    .to_string()
            ),
        ]
    );
    task.abort();
}

#[tokio::test]
async fn http_default_expect_accepts_2xx_3xx() {
    let (ok, t1) = http_server("HTTP/1.0 302 Found\r\nContent-Length: 0\r\n\r\n").await;
    let (bad, t2) = http_server("HTTP/1.0 404 File not found\r\nContent-Length: 0\r\n\r\n").await;
    let kind = HealthCheck::Http(HttpCheck::default());
    let o = check_once(kind.clone(), ok).await;
    assert_eq!((o.status, o.code), (CheckStatus::L7Ok, Some(302)));
    let o = check_once(kind, bad).await;
    assert_eq!(o, Outcome::with_code(CheckStatus::L7Sts, 404, "File not found"));
    t1.abort();
    t2.abort();
}

#[tokio::test]
async fn http_expect_status_rstatus_string_and_negation() {
    let (addr, task) = http_server("HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nall is well").await;
    let http = |negated, kind| {
        HealthCheck::Http(HttpCheck { expect: Some(HttpExpect { negated, kind }), ..HttpCheck::default() })
    };
    let re = |s: &str| RegexPat(regex::Regex::new(s).expect("regex"));
    let o = check_once(http(false, HttpExpectKind::Status(vec![(404, 404)])), addr).await;
    assert_eq!(o, Outcome::with_code(CheckStatus::L7Sts, 200, "OK"));
    let o = check_once(http(false, HttpExpectKind::Status(vec![(200, 299)])), addr).await;
    assert_eq!(o.status, CheckStatus::L7Ok);
    let o = check_once(http(true, HttpExpectKind::Status(vec![(200, 200)])), addr).await;
    assert_eq!(o.status, CheckStatus::L7Sts);
    let o = check_once(http(false, HttpExpectKind::Rstatus(re("^5"))), addr).await;
    assert_eq!(o.status, CheckStatus::L7Sts);
    let o = check_once(http(false, HttpExpectKind::String("is well".into())), addr).await;
    assert_eq!(o.status, CheckStatus::L7Ok);
    let o = check_once(http(false, HttpExpectKind::String("nothere".into())), addr).await;
    assert_eq!(o, Outcome::with_code(CheckStatus::L7Rsp, 200, "HTTP content check did not match"));
    let o = check_once(http(true, HttpExpectKind::String("well".into())), addr).await;
    assert_eq!(o, Outcome::with_code(CheckStatus::L7Rsp, 200, "HTTP check matched unwanted content"));
    let o = check_once(http(false, HttpExpectKind::Rstring(re("all.*well"))), addr).await;
    assert_eq!(o.status, CheckStatus::L7Ok);
    task.abort();
}

#[tokio::test]
async fn http_check_sends_configured_request() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let seen = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        String::from_utf8_lossy(&buf).into_owned()
    });
    let http = HttpCheck {
        method: "GET".into(),
        uri: "/health".into(),
        version: "HTTP/1.1".into(),
        headers: vec![("host".into(), "www.example".into())],
        ..HttpCheck::default()
    };
    let o = check_once(HealthCheck::Http(http), addr).await;
    assert_eq!(o.status, CheckStatus::L7Ok);
    let req = seen.await.unwrap_or_default();
    assert!(req.starts_with("GET /health HTTP/1.1\r\nhost: www.example\r\n"), "{req:?}");
}

#[tokio::test]
async fn http_timeout_is_l7tout() {
    // Accepts and never answers.
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let o = check_once(HealthCheck::Http(HttpCheck::default()), addr).await;
    assert_eq!(o, Outcome::new(CheckStatus::L7Tout, ""));
    let steps = vec![TcpCheckStep::Expect { negated: false, kind: TcpExpect::String("+OK".into()) }];
    let o = check_once(HealthCheck::TcpCheck(steps), addr).await;
    assert_eq!(o, Outcome::new(CheckStatus::L7Tout, " at step 1 of tcp-check (expect string '+OK')"));
    task.abort();
}

#[tokio::test]
async fn tcp_check_send_expect() {
    let (addr, task) = line_server(b"+PONG\r\n").await;
    let send = TcpCheckStep::Send(b"PING\r\n".to_vec());
    let expect = |negated, kind| TcpCheckStep::Expect { negated, kind };
    let ok = vec![send.clone(), expect(false, TcpExpect::String("+PONG".into()))];
    assert_eq!(
        check_once(HealthCheck::TcpCheck(ok), addr).await,
        Outcome::with_code(CheckStatus::L7Ok, 0, "(tcp-check)")
    );
    let bad = vec![send.clone(), expect(false, TcpExpect::String("+OK".into()))];
    assert_eq!(
        check_once(HealthCheck::TcpCheck(bad), addr).await,
        Outcome::new(CheckStatus::L7Rsp, "TCPCHK did not match content '+OK' at step 2")
    );
    let bin = vec![
        TcpCheckStep::SendBinary(b"PING\r\n".to_vec()),
        expect(false, TcpExpect::Binary(b"+OK".to_vec())),
    ];
    assert_eq!(
        check_once(HealthCheck::TcpCheck(bin), addr).await,
        Outcome::new(CheckStatus::L7Rsp, "TCPCHK did not match content (binary) at step 2")
    );
    let re = RegexPat(regex::Regex::new("^-ERR").expect("regex"));
    let neg = vec![send.clone(), expect(true, TcpExpect::Rstring(re))];
    assert_eq!(check_once(HealthCheck::TcpCheck(neg), addr).await.status, CheckStatus::L7Ok);
    let closed = closed_port().await;
    let conn = vec![TcpCheckStep::Connect { port: Some(closed.port()), ssl: false, send_proxy: false }];
    let o = check_once(HealthCheck::TcpCheck(conn), addr).await;
    assert_eq!(
        o,
        Outcome::new(
            CheckStatus::L4Con,
            format!("Connection refused at step 1 of tcp-check (connect port {})", closed.port())
        )
    );
    task.abort();
}

#[tokio::test]
async fn maint_servers_are_not_checked() {
    let addr = closed_port().await;
    let be = proxy("app", false, true);
    let t = target("app", "srv1", addr, 2, 3);
    t.state.set_admin(Admin::Maint);
    let state = Arc::clone(&t.state);
    let (log, logs) = sink();
    let _tasks = spawn_checks(&be, vec![t], log);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state.health(), Health::Up);
    assert_eq!(state.failed_checks.load(Ordering::Relaxed), 0);
    assert!(lines(&logs).is_empty());
    // Back to ready: checks resume.
    state.set_admin(Admin::Ready);
    wait_for("DOWN", || state.health() == Health::Down).await;
}

#[tokio::test]
async fn respawn_keeps_health() {
    let (addr, task) = http_server("HTTP/1.0 200 OK\r\n\r\n").await;
    let be = proxy("app", false, true);
    let t = target("app", "srv1", addr, 3, 2);
    let state = Arc::clone(&t.state);
    // Known DOWN before the first check (as a previous config left it).
    state.set_health(Health::Down);
    state.check_health.store(0, Ordering::Relaxed);
    let (log, logs) = sink();
    let tasks = spawn_checks(&be, vec![t.clone()], log.clone());
    wait_for("one success", || state.check_health(3, 2) >= 1).await;
    drop(tasks);
    let before = state.check_health(3, 2);
    assert!(before < 3, "still going up");
    assert_eq!(state.health(), Health::Down);
    // Reload: the same state is handed to new tasks; health continues from there.
    let _tasks = spawn_checks(&be, vec![t], log);
    wait_for("UP", || state.health() == Health::Up).await;
    assert_eq!(lines(&logs).iter().filter(|(_, l)| l.contains("is UP")).count(), 1);
    assert_eq!(state.down_transitions.load(Ordering::Relaxed), 1);
    task.abort();
}

#[test]
fn status_shows_transitions() {
    let check = fast_check(100, 2, 3);
    let s = ServerState::new("app", "s", 1, true);
    assert_eq!(status_with_health(&s, Some(&check)), "UP 1/3");
    s.check_health.store(4, Ordering::Relaxed);
    assert_eq!(status_with_health(&s, Some(&check)), "UP");
    s.set_health(Health::Down);
    s.check_health.store(1, Ordering::Relaxed);
    assert_eq!(status_with_health(&s, Some(&check)), "DOWN 1/2");
    s.set_admin(Admin::Maint);
    assert_eq!(status_with_health(&s, Some(&check)), "MAINT");
}

#[tokio::test]
async fn non_http_and_connect_only_results() {
    let (addr, task) = line_server(b"+PONG\r\n").await;
    // HAProxy: a non-HTTP answer is L7RSP without info.
    let (pong, t2) = http_server("+PONG\r\n").await;
    assert_eq!(
        check_once(HealthCheck::Http(HttpCheck::default()), pong).await,
        Outcome::new(CheckStatus::L7Rsp, "")
    );
    assert_eq!(
        check_once(HealthCheck::TcpCheck(Vec::new()), addr).await,
        Outcome::new(CheckStatus::L4Ok, "")
    );
    let connect = vec![TcpCheckStep::Connect { port: None, ssl: false, send_proxy: false }];
    assert_eq!(
        check_once(HealthCheck::TcpCheck(connect), addr).await,
        Outcome::new(CheckStatus::L4Ok, "(tcp-check)")
    );
    assert_eq!(check_once(HealthCheck::Connect, addr).await, Outcome::new(CheckStatus::L4Ok, ""));
    task.abort();
    t2.abort();
}

#[tokio::test]
async fn check_port_and_addr_override() {
    let (addr, task) = line_server(b"ok").await;
    let mut check = fast_check(40, 1, 1);
    check.port = Some(addr.port());
    check.addr = Some("127.0.0.1".parse().expect("ip"));
    // The server's own address is closed; the check goes to addr:port.
    let closed = closed_port().await;
    let srv = server("srv1", 1, SocketAddr::new("::1".parse().expect("ip"), closed.port()), Some(check));
    let t = CheckTarget { state: Arc::new(ServerState::new("app", "srv1", 1, true)), server: srv, tls: None };
    let state = Arc::clone(&t.state);
    let (log, _logs) = sink();
    let _tasks = spawn_checks(&proxy("app", false, true), vec![t], log);
    wait_for("a check", || !state.last_check.lock().map(|r| r.status.is_empty()).unwrap_or(true)).await;
    assert_eq!(state.last_check.lock().map(|r| r.status.clone()).unwrap_or_default(), "L4OK");
    assert_eq!(state.health(), Health::Up);
    task.abort();
}

// ---------------------------------------------------------------- TLS (check-ssl)

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for 127.0.0.1 made by the openssl CLI; `None`
/// when openssl is missing (the TLS tests then only cover failures).
fn self_signed(dir: &std::path::Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=lanai-test", "-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some((cert, key))
}

fn client_config(extra_root: Option<&std::path::Path>) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = extra_root {
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(path).expect("pem").flatten() {
            roots.add(cert).expect("add root");
        }
    }
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

fn tls_spec(addr: SocketAddr, kind: HealthCheck, cfg: Arc<rustls::ClientConfig>) -> ProbeSpec {
    ProbeSpec {
        addr,
        kind,
        tls: Some((cfg, ServerName::IpAddress(addr.ip().into()))),
        timeouts: Timeouts { connect: Duration::from_millis(500), read: None },
    }
}

#[tokio::test]
async fn tls_check_failures() {
    // Not TLS at all: the handshake fails (L6RSP).
    let (plain, t1) = line_server(b"HTTP/1.0 400 Bad\r\n\r\n").await;
    let o = probe::run(&tls_spec(plain, HealthCheck::Connect, client_config(None))).await;
    assert_eq!(o.status, CheckStatus::L6Rsp, "{o:?}");
    // Silent peer: the handshake times out (L6TOUT).
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent = l.local_addr().expect("addr");
    let t2 = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let o = probe::run(&tls_spec(silent, HealthCheck::Connect, client_config(None))).await;
    assert_eq!(o, Outcome::new(CheckStatus::L6Tout, ""));
    t1.abort();
    t2.abort();
}

#[tokio::test]
async fn tls_check_success() {
    use rustls_pki_types::pem::PemObject;
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((cert, key)) = self_signed(dir.path()) else {
        eprintln!("skipped: openssl cannot make a test certificate");
        return;
    };
    let certs: Vec<_> =
        rustls_pki_types::CertificateDer::pem_file_iter(&cert).expect("pem").flatten().collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&key).expect("key");
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else { return };
                let mut buf = [0u8; 1024];
                if let Ok(n) = tls.read(&mut buf).await {
                    if n > 0 {
                        let _ = tls.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                        let _ = tls.shutdown().await;
                    }
                }
            });
        }
    });
    let cfg = client_config(Some(&cert));
    let o = probe::run(&tls_spec(addr, HealthCheck::Connect, Arc::clone(&cfg))).await;
    assert_eq!(o, Outcome::new(CheckStatus::L6Ok, ""));
    let o = probe::run(&tls_spec(addr, HealthCheck::Http(HttpCheck::default()), Arc::clone(&cfg))).await;
    assert_eq!((o.status, o.code), (CheckStatus::L7Ok, Some(200)));
    // An untrusted certificate is a layer-6 failure.
    let o = probe::run(&tls_spec(addr, HealthCheck::Connect, client_config(None))).await;
    assert_eq!(o.status, CheckStatus::L6Rsp);
    task.abort();
}

#[tokio::test]
async fn running_mark_is_cleared_when_tasks_are_dropped() {
    // A peer that accepts and never answers keeps the HTTP check running.
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            conns.push(s);
        }
    });
    let mut be = proxy("app", false, true);
    be.health = HealthCheck::Http(HttpCheck::default());
    let mut t = target("app", "srv1", addr, 2, 3);
    t.server.check = Some(fast_check(5_000, 2, 3));
    let state = Arc::clone(&t.state);
    let (log, _logs) = sink();
    let tasks = spawn_checks(&be, vec![t], log);
    wait_for("a running check", || state.check_running.load(Ordering::Relaxed)).await;
    drop(tasks);
    wait_for("the mark to go", || !state.check_running.load(Ordering::Relaxed)).await;
    held.abort();
}

#[tokio::test]
async fn removing_check_on_reload_clears_down() {
    let addr = closed_port().await;
    let mut t = target("app", "srv1", addr, 2, 3);
    t.state.set_health(Health::Down);
    t.state.check_health.store(0, Ordering::Relaxed);
    t.server.check = None;
    let state = Arc::clone(&t.state);
    let (log, logs) = sink();
    let tasks = spawn_checks(&proxy("app", false, true), vec![t], log);
    assert!(tasks.is_empty());
    assert_eq!(state.health(), Health::NoCheck);
    assert_eq!(state.status_text(), "no check");
    assert!(lines(&logs).is_empty());
}
