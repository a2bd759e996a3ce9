//! Compares our formats with a real HAProxy (the Debian package that
//! `scripts/test.sh` installs) on loopback: the `show stat` header, the
//! `show servers state` header, and the health-check log lines.
//! Skipped when `/usr/sbin/haproxy` is not installed.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lanai::conf::haproxy::{Level, ServerCheck};
use lanai::proxy::health::{spawn_checks_tracked, CheckTarget, LogSink};
use lanai::proxy::state::ServerState;

mod support;

const HAPROXY: &str = "/usr/sbin/haproxy";

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on, which no other test can take meanwhile.
fn closed_port() -> u16 {
    support::free_port()
}

fn start(dir: &Path, log: SocketAddr, dead_port: u16, opt: &str) -> (Haproxy, PathBuf) {
    let sock = dir.join("admin.sock");
    let fe_port = closed_port();
    let cfg = format!(
        "global\n    log {log} local0 debug\n    stats socket {} level admin\n\
         defaults\n    mode http\n    log global\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend www\n    bind 127.0.0.1:{fe_port}\n    default_backend app\n\
         backend app\n{opt}    server srv1 127.0.0.1:{dead_port} check inter 100 rise 2 fall 3\n",
        sock.display()
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).expect("write cfg");
    let child = Command::new(HAPROXY)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn haproxy");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    (Haproxy(child), sock)
}

fn ask(sock: &Path, cmd: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect");
    s.write_all(format!("{cmd}\n").as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Syslog lines received until `until` matches one or the time runs out,
/// as (severity, message) with durations normalised.
fn syslog_lines(udp: &UdpSocket, until: &str) -> Vec<(u8, String)> {
    let mut lines = Vec::new();
    collect_syslog(udp, &mut lines, until);
    lines
}

fn collect_syslog(udp: &UdpSocket, lines: &mut Vec<(u8, String)>, until: &str) {
    let re = regex::Regex::new(r"duration: \d+ms").expect("regex");
    udp.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let Ok(n) = udp.recv(&mut buf) else { continue };
        let text = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
        // `<PRI>Mon DD HH:MM:SS haproxy[PID]: message`
        let pri: u8 = text.get(1..text.find('>').unwrap_or(1)).and_then(|p| p.parse().ok()).unwrap_or(0);
        let msg = text.split_once("]: ").map(|(_, m)| m.to_string()).unwrap_or(text);
        let msg = re.replace_all(&msg, "duration: 0ms").into_owned();
        let done = msg.contains(until);
        lines.push((pri % 8, msg));
        if done {
            break;
        }
    }
}

fn level_number(l: Level) -> u8 {
    l as u8
}

/// Runs our checker against the same dead port until `until` is logged;
/// returns the log lines and the configuration and state it ran with.
fn ours(
    dead_port: u16,
    log_health_checks: bool,
    until: &str,
) -> (Vec<(u8, String)>, lanai::conf::haproxy::Config, Arc<lanai::proxy::state::StateRegistry>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let logs: Arc<Mutex<Vec<(u8, String)>>> = Arc::default();
        let l = Arc::clone(&logs);
        let re = regex::Regex::new(r"duration: \d+ms").expect("regex");
        let sink: LogSink = Arc::new(move |level, msg| {
            if let Ok(mut v) = l.lock() {
                v.push((level_number(level), re.replace_all(&msg, "duration: 0ms").into_owned()));
            }
        });
        let mut backend = lanai_test_proxy("app");
        backend.options.log_health_checks = log_health_checks;
        let check = ServerCheck {
            inter: Duration::from_millis(100),
            fastinter: Duration::from_millis(100),
            downinter: Duration::from_millis(100),
            rise: 2,
            fall: 3,
            ..ServerCheck::default()
        };
        let server = lanai_test_server("srv1", SocketAddr::from(([127, 0, 0, 1], dead_port)), check);
        backend.servers.push(server.clone());
        let registry = Arc::new(lanai::proxy::state::StateRegistry::new());
        let state: Arc<ServerState> = registry.server("app", "srv1", 1, true);
        let target = CheckTarget { server, state, tls: None };
        let _tasks = spawn_checks_tracked(&backend, vec![target], sink, Some(registry.proxy("app")));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if logs.lock().map(|v| v.iter().any(|(_, m)| m.contains(until))).unwrap_or(false) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut www = lanai_test_proxy("www");
        www.cap = lanai::conf::haproxy::Capabilities { frontend: true, backend: false };
        let config = lanai::conf::haproxy::Config { proxies: vec![www, backend], ..Default::default() };
        (logs.lock().map(|v| v.clone()).unwrap_or_default(), config, registry)
    })
}

fn lanai_test_proxy(name: &str) -> lanai::conf::haproxy::Proxy {
    use lanai::conf::haproxy::*;
    let mut p = Proxy::new(name, 1, Capabilities { frontend: false, backend: true });
    p.mode = Mode::Http;
    p
}

fn lanai_test_server(name: &str, addr: SocketAddr, check: ServerCheck) -> lanai::conf::haproxy::Server {
    lanai::conf::haproxy::Server {
        line: 1,
        name: name.into(),
        host: None,
        addr,
        id: 1,
        weight: 1,
        backup: false,
        disabled: false,
        maxconn: None,
        cookie: None,
        check: Some(check),
        tls: None,
        send_proxy: None,
    }
}

/// Columns whose values do not depend on timing or on HAProxy internals we
/// do not model (limits derived from ulimit, h1/h2 counters, timers).
const COMPARED: &[&str] = &[
    "pxname",
    "svname",
    "scur",
    "stot",
    "bin",
    "bout",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "pid",
    "iid",
    "sid",
    "lbtot",
    "type",
    "check_status",
    "check_code",
    "hrsp_2xx",
    "req_tot",
    "lastsess",
    "last_chk",
    "check_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "addr",
    "mode",
    "algo",
    "uweight",
];

fn compare_rows(ours: &str, theirs: &str) {
    let cols: Vec<&str> = lanai::proxy::stats::csv::COLUMNS.split(',').collect();
    let table = |csv: &str| -> Vec<Vec<(String, String)>> {
        csv.lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(|l| {
                cols.iter()
                    .zip(l.split(','))
                    .filter(|(c, _)| COMPARED.contains(c))
                    .map(|(c, v)| (c.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    };
    assert_eq!(table(ours), table(theirs));
}

#[test]
fn formats_and_health_logs_match_haproxy() {
    if !Path::new(HAPROXY).exists() {
        eprintln!("skipped: {HAPROXY} is not installed");
        return;
    }
    for log_health_checks in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let dead = closed_port();
        let opt = if log_health_checks { "    option log-health-checks\n" } else { "" };
        let (_haproxy, sock) = start(dir.path(), udp.local_addr().expect("addr"), dead, opt);
        let theirs = syslog_lines(&udp, "has no server available");
        assert!(!theirs.is_empty(), "haproxy logged nothing");
        let (mine, config, registry) = ours(dead, log_health_checks, "has no server available");
        assert_eq!(mine, theirs, "log-health-checks: {log_health_checks}");

        if !log_health_checks {
            let stat = ask(&sock, "show stat");
            let header = stat.lines().next().unwrap_or_default();
            assert_eq!(header, format!("# {},", lanai::proxy::stats::csv::COLUMNS));
            let state = ask(&sock, "show servers state");
            assert_eq!(state.lines().nth(1), Some(lanai::proxy::runtime::info::STATE_HEADER));
            let ctx = lanai::proxy::stats::StatsContext {
                config: Arc::new(config),
                registry,
                started: Instant::now(),
                pid: 1,
                node: "n".into(),
                version: "0",
            };
            compare_rows(&lanai::proxy::stats::csv(&ctx), &stat);
            // `show servers state`: all but the time since last change.
            let pick = |s: &str| -> Vec<String> {
                s.lines()
                    .skip(2)
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        l.split(' ')
                            .enumerate()
                            .filter(|(i, _)| *i != 9)
                            .map(|(_, f)| f)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect()
            };
            let ours_state = lanai::proxy::runtime::info::show_servers_state(&ctx, None).unwrap_or_default();
            assert_eq!(pick(&ours_state), pick(&state));
        }
    }
}

/// The same commands against HAProxy's socket and ours give the same replies.
#[test]
fn runtime_replies_match_haproxy() {
    use lanai::conf::haproxy::{Capabilities, Config, RuntimeLevel};
    use lanai::proxy::runtime::{serve, RuntimeContext};
    if !Path::new(HAPROXY).exists() {
        eprintln!("skipped: {HAPROXY} is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let dead = closed_port();
    let (_haproxy, theirs) = start(dir.path(), udp.local_addr().expect("addr"), dead, "");

    let check = ServerCheck { rise: 2, fall: 3, ..ServerCheck::default() };
    let mut app = lanai_test_proxy("app");
    app.servers.push(lanai_test_server("srv1", SocketAddr::from(([127, 0, 0, 1], dead)), check));
    let mut www = lanai_test_proxy("www");
    www.cap = Capabilities { frontend: true, backend: false };
    let config = Config { proxies: vec![www, app], ..Config::default() };
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let mine = dir.path().join("ours.sock");
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let ctx = Arc::new(RuntimeContext {
        config: Arc::new(arc_swap::ArcSwap::from_pointee(config)),
        registry: Arc::new(lanai::proxy::state::StateRegistry::new()),
        started: Instant::now(),
        pid: std::process::id(),
        node: "test".into(),
        version: "0",
        reload: tx,
        log: None,
    });
    let _server = rt.block_on(serve(&mine, None, RuntimeLevel::Admin, ctx)).expect("serve");

    for cmd in [
        "show backend",
        "get weight app/srv1",
        "set weight app/srv1 7",
        "get weight app/srv1",
        "set weight app/srv1 50%",
        "get weight app/srv1",
        "set weight app/srv1 300",
        "set weight app/srv1 abc",
        "set server app/srv1 state drain",
        "set server app/srv1 state bogus",
        "set server app/srv1 state ready",
        "disable server app/nope",
        "disable server nope/srv1",
        "disable server app",
        "get weight",
        "enable server app/srv1",
        "show servers state nope",
        "show cli level",
        "show backend; get weight app/srv1",
    ] {
        assert_eq!(ask(&mine, cmd), ask(&theirs, cmd), "command: {cmd}");
    }
    // Same rows (first two columns) for `show stat` filters.
    let rows = |out: String| -> Vec<String> {
        out.lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect()
    };
    for cmd in
        ["show stat", "show stat -1 4 -1", "show stat app -1 -1", "show stat 3 2 -1", "show stat -1 1 -1"]
    {
        assert_eq!(rows(ask(&mine, cmd)), rows(ask(&theirs, cmd)), "command: {cmd}");
    }
}

/// Serves `HTTP/1.0 200 OK` on `port` from a plain thread until the process ends.
fn http_ok_on(port: u16) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind freed port");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
}

/// DOWN then UP with `option httpchk` and `log-health-checks`: HAProxy and
/// our checker run side by side against the same port and must log the same.
#[test]
fn down_then_up_logs_match_haproxy() {
    use lanai::conf::haproxy::{HealthCheck, HttpCheck};
    if !Path::new(HAPROXY).exists() {
        eprintln!("skipped: {HAPROXY} is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let port = closed_port();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let logs: Arc<Mutex<Vec<(u8, String)>>> = Arc::default();
    let l = Arc::clone(&logs);
    let re = regex::Regex::new(r"duration: \d+ms").expect("regex");
    let sink: LogSink = Arc::new(move |level, msg| {
        if let Ok(mut v) = l.lock() {
            v.push((level_number(level), re.replace_all(&msg, "duration: 0ms").into_owned()));
        }
    });
    let mut backend = lanai_test_proxy("app");
    backend.options.log_health_checks = true;
    backend.health = HealthCheck::Http(HttpCheck { method: "GET".into(), ..HttpCheck::default() });
    let check = ServerCheck {
        inter: Duration::from_millis(100),
        fastinter: Duration::from_millis(100),
        downinter: Duration::from_millis(100),
        rise: 2,
        fall: 3,
        ..ServerCheck::default()
    };
    let server = lanai_test_server("srv1", SocketAddr::from(([127, 0, 0, 1], port)), check);
    let target = CheckTarget { server, state: Arc::new(ServerState::new("app", "srv1", 1, true)), tls: None };
    let _tasks = rt.block_on(async { spawn_checks_tracked(&backend, vec![target], sink, None) });
    let opt = "    option log-health-checks\n    option httpchk GET /\n";
    let (_haproxy, _sock) = start(dir.path(), udp.local_addr().expect("addr"), port, opt);

    let mut theirs = Vec::new();
    collect_syslog(&udp, &mut theirs, "has no server available");
    let wait_ours = |until: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if logs.lock().map(|v| v.iter().any(|(_, m)| m.contains(until))).unwrap_or(false) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_ours("has no server available");
    http_ok_on(port);
    collect_syslog(&udp, &mut theirs, " is UP");
    wait_ours(" is UP");
    let ours = logs.lock().map(|v| v.clone()).unwrap_or_default();
    assert!(theirs.iter().any(|(_, m)| m.contains("is UP")), "{theirs:?}");
    assert_eq!(ours, theirs);
}

/// Every series we expose exists in HAProxy's own exporter for the same
/// configuration, with the same HELP and TYPE lines.
#[test]
fn prometheus_series_exist_in_haproxy_exporter() {
    use lanai::conf::haproxy::Capabilities;
    use std::collections::HashSet;
    use std::io::{Read, Write};
    if !Path::new(HAPROXY).exists() {
        eprintln!("skipped: {HAPROXY} is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fe_port = closed_port();
    let dead = closed_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend www\n    bind 127.0.0.1:{fe_port}\n    http-request use-service prometheus-exporter if {{ path /metrics }}\n    default_backend app\n\
         backend app\n    server srv1 127.0.0.1:{dead} check inter 100\n    server srv2 127.0.0.1:{dead}\n"
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).expect("write cfg");
    let child = Command::new(HAPROXY)
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn haproxy");
    let _guard = Haproxy(child);
    let mut theirs = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while theirs.is_empty() && Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", fe_port)) {
            let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
            let _ = s.read_to_string(&mut theirs);
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let series = |text: &str| -> HashSet<String> {
        text.lines()
            .filter(|l| l.starts_with("haproxy_") || l.starts_with("# HELP") || l.starts_with("# TYPE"))
            .map(|l| {
                if l.starts_with('#') {
                    l.to_string()
                } else {
                    l.rsplit_once(' ').map(|(k, _)| k).unwrap_or(l).to_string()
                }
            })
            // The version label differs by design.
            .filter(|l| !l.starts_with("haproxy_process_build_info"))
            .collect()
    };
    let theirs = series(&theirs);
    assert!(theirs.len() > 100, "no metrics from haproxy");

    let mut www = lanai_test_proxy("www");
    www.cap = Capabilities { frontend: true, backend: false };
    let mut app = lanai_test_proxy("app");
    let addr = SocketAddr::from(([127, 0, 0, 1], dead));
    app.servers.push(lanai_test_server("srv1", addr, ServerCheck::default()));
    let mut srv2 = lanai_test_server("srv2", addr, ServerCheck::default());
    srv2.id = 2;
    srv2.check = None;
    app.servers.push(srv2);
    let ctx = lanai::proxy::stats::StatsContext {
        config: Arc::new(lanai::conf::haproxy::Config { proxies: vec![www, app], ..Default::default() }),
        registry: Arc::new(lanai::proxy::state::StateRegistry::new()),
        started: Instant::now(),
        pid: 1,
        node: "n".into(),
        version: "0",
    };
    let ours = series(&lanai::proxy::stats::prometheus(&ctx));
    let mut missing: Vec<&String> = ours.difference(&theirs).collect();
    missing.sort();
    assert!(missing.is_empty(), "not in HAProxy's exporter: {missing:#?}");
}
