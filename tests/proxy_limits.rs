//! Limits and process settings: server `maxconn` with queueing, `timeout
//! queue`, `pidfile`, `user`/`group`.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

/// A backend that takes `delay` per request and records the highest concurrency seen.
async fn slow_counting(delay: Duration) -> (Backend, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let (n, p) = (Arc::clone(&now), Arc::clone(&peak));
    let be = Backend::start(Arc::new(move |_req| {
        let cur = n.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(cur, Ordering::SeqCst);
        std::thread::sleep(delay);
        n.fetch_sub(1, Ordering::SeqCst);
        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from("ok")))
    }))
    .await;
    (be, peak)
}

fn config(port: u16, server: &str, extra: &str) -> String {
    format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n{extra}\nfrontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    {server}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_maxconn_queues_requests() {
    let (be, peak) = slow_counting(Duration::from_millis(300)).await;
    let port = free_port();
    let cfg = write_config(&config(
        port,
        &format!("server s 127.0.0.1:{} maxconn 1", be.port),
        "    timeout queue 5s\n",
    ));
    let _l = start_lanai(&cfg.path, port);
    let start = Instant::now();
    let tasks: Vec<_> = (0..3).map(|_| tokio::spawn(async move { get(port, "/").await.status })).collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(peak.load(Ordering::SeqCst), 1, "server maxconn 1 exceeded");
    assert!(
        start.elapsed() >= Duration::from_millis(850),
        "requests were not serialised: {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_timeout_gives_503() {
    let (be, _) = slow_counting(Duration::from_millis(1500)).await;
    let port = free_port();
    let cfg = write_config(&config(
        port,
        &format!("server s 127.0.0.1:{} maxconn 1", be.port),
        "    timeout queue 200ms\n",
    ));
    let _l = start_lanai(&cfg.path, port);
    let first = tokio::spawn(async move { get(port, "/").await.status });
    // The first request holds the server's only slot.
    assert!(
        eventually(Duration::from_secs(5), || be.hits() == 1).await,
        "the first request never reached the server"
    );
    let t = Instant::now();
    assert_eq!(get(port, "/").await.status, 503);
    assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
    assert_eq!(first.await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pidfile_chroot_and_privilege_drop() {
    let be = Backend::named("ok").await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let jail = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("lanai.pid");
    let global = format!(
        "global\n    pidfile {}\n    user nobody\n    group nogroup\n    chroot {}\n",
        pidfile.display(),
        jail.path().display()
    );
    let cfg = write_config(&(global + &config(port, &format!("server s 127.0.0.1:{}", be.port), "")));
    let out = std::process::Command::new(lanai_bin()).args(["check", "-f"]).arg(&cfg.path).output().unwrap();
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("chroot"), "{out:?}");
    let lanai = start_lanai(&cfg.path, port);
    assert_eq!(get(port, "/").await.text(), "ok");
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert_eq!(pid, lanai.child.id());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid.as_raw();
    assert!(uid_line.split_whitespace().skip(1).all(|u| u == nobody.to_string()), "{uid_line}");
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, jail.path().canonicalize().unwrap());
    // Jailed and unprivileged, it still reloads (the broker reads the file).
    lanai.signal(nix::sys::signal::Signal::SIGHUP);
    let reloaded = || lanai.log_text().contains("configuration reloaded");
    assert!(eventually(Duration::from_secs(10), reloaded).await, "{}", lanai.log_text());
    assert_eq!(get(port, "/").await.text(), "ok");
}

/// Reads from a connection that sent nothing until the proxy closes it; returns
/// how long that took (None: still open after `within`).
fn wait_closed(conn: &mut std::net::TcpStream, within: Duration) -> Option<Duration> {
    use std::io::Read;
    let start = Instant::now();
    conn.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match conn.read(&mut buf) {
        Ok(0) => Some(start.elapsed()),
        Ok(n) => panic!("unexpected {n} bytes from the proxy: {:?}", &buf[..n]),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(start.elapsed()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_closes_after_http_request_timeout() {
    let (be, _) = slow_counting(Duration::ZERO).await;
    let port = free_port();
    let cfg = write_config(&config(
        port,
        &format!("server s 127.0.0.1:{}", be.port),
        "    timeout http-request 500ms\n",
    ));
    let _l = start_lanai(&cfg.path, port);
    // The proxy's timer starts at its accept, after this.
    let opened = Instant::now();
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Others are served meanwhile.
    assert_eq!(get(port, "/").await.status, 200);
    tokio::task::spawn_blocking(move || wait_closed(&mut silent, Duration::from_secs(5)))
        .await
        .unwrap()
        .expect("a connection that never sends is closed");
    let closed = opened.elapsed();
    assert!(closed >= Duration::from_millis(480), "closed too early: {closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_closes_on_graceful_stop() {
    let (be, _) = slow_counting(Duration::ZERO).await;
    let port = free_port();
    let cfg = write_config(&config(port, &format!("server s 127.0.0.1:{}", be.port), ""));
    let mut l = start_lanai(&cfg.path, port);
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(get(port, "/").await.status, 200);
    l.signal(nix::sys::signal::Signal::SIGTERM);
    let closed =
        tokio::task::spawn_blocking(move || wait_closed(&mut silent, Duration::from_secs(5))).await.unwrap();
    assert!(closed.is_some(), "the silent connection survived the stop (timeout client is 10s)");
    assert!(l.wait_exit(Duration::from_secs(5)).is_some(), "lanai did not exit");
}

/// Starts `lanai proxy` with its open-file limit set to `soft`/`hard` first,
/// as `user` (None: this user) so that a hard limit below the need cannot be
/// raised whatever the test runs as.
fn spawn_with_fd_limit(cfg: &ConfigFile, soft: u64, hard: u64, user: Option<&nix::unistd::User>) -> Proc {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // Readable by `user`.
    std::fs::set_permissions(cfg.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&cfg.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    spawn_lanai_with(&cfg.path, |cmd| {
        if let Some(user) = user {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, soft, hard)
                    .map_err(std::io::Error::from)
            });
        }
    })
}

/// "Max open files" of a process: (soft, hard).
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let n: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (n[0], n[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_file_limit_follows_maxconn() {
    let be = Backend::named("ok").await;
    let port = free_port();
    let server = format!("server s 127.0.0.1:{}", be.port);
    let global = "global\n    maxconn 1000\n";

    // Below the need but within the hard limit: raised, as HAProxy does
    // (2 per connection, 1 listener, 64 in reserve).
    let cfg = write_config(&(global.to_string() + &config(port, &server, "")));
    let lanai = spawn_with_fd_limit(&cfg, 256, 4096, None);
    assert!(lanai.wait_log("lanai proxy started with", Duration::from_secs(10)), "{}", lanai.log_text());
    assert_eq!(open_file_limits(lanai.child.id()), (2065, 4096), "{}", lanai.log_text());
    assert_eq!(get(port, "/").await.text(), "ok");
    drop(lanai);

    // A hard limit below it (as an unprivileged user, who cannot raise it):
    // refused at start with the line that asked, as HAProxy's strict-limits.
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let mut lanai = spawn_with_fd_limit(&cfg, 256, 256, Some(&nobody));
    assert_eq!(lanai.wait_exit(Duration::from_secs(10)), Some(1), "{}", lanai.log_text());
    let log = lanai.log_text();
    assert!(
        log.contains("haproxy.cfg:2: maxconn 1000 needs 2065 open files, but the open-file limit cannot be raised above 256"),
        "{log}"
    );

    // `no strict-limits`: started with a warning, at the hard limit.
    let relaxed = write_config(&(format!("{global}    no strict-limits\n") + &config(port, &server, "")));
    let lanai = spawn_with_fd_limit(&relaxed, 128, 256, Some(&nobody));
    assert!(lanai.wait_log("lanai proxy started with", Duration::from_secs(10)), "{}", lanai.log_text());
    assert!(lanai.log_text().contains("the open-file limit stays at 256"), "{}", lanai.log_text());
    assert_eq!(open_file_limits(lanai.child.id()), (256, 256));
    assert_eq!(get(port, "/").await.text(), "ok");
}
