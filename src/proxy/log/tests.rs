use super::*;
use crate::conf::haproxy::model::{Facility, Level, LogDest, LogFormat, LogTarget};
use crate::proxy::testpeers;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// 2026-11-21T10:12:13.123Z
fn when() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_795_255_933_123)
}

/// `%tr` of `when()` in this machine's time zone.
fn local_date(t: SystemTime) -> String {
    let tm = super::time::local(t);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02}.{:03}",
        tm.day,
        tm.month_name(),
        tm.year,
        tm.hour,
        tm.min,
        tm.sec,
        tm.millis
    )
}

fn http_record() -> HttpLogRecord {
    HttpLogRecord {
        client: sa("127.0.0.1:40946"),
        accept_date: when(),
        frontend: "www".into(),
        frontend_tls: false,
        backend: "app".into(),
        server: "web1".into(),
        tr: 0,
        tw: 0,
        tc: 0,
        tr_server: 1,
        ta: 1,
        status: 200,
        bytes_read: 170,
        captured_request_cookie: None,
        captured_response_cookie: None,
        termination_state: *b"----",
        actconn: 1,
        feconn: 1,
        beconn: 0,
        srv_conn: 0,
        retries: 0,
        redispatched: false,
        srv_queue: 0,
        backend_queue: 0,
        request_line: "GET / HTTP/1.1".into(),
    }
}

fn tcp_record() -> TcpLogRecord {
    TcpLogRecord {
        client: sa("127.0.0.1:46280"),
        accept_date: when(),
        frontend: "tcpfe".into(),
        frontend_tls: false,
        backend: "tapp".into(),
        server: "t1".into(),
        tw: 1,
        tc: 0,
        tt: 5001,
        bytes_read: 0,
        termination_state: *b"cD",
        actconn: 1,
        feconn: 1,
        beconn: 0,
        srv_conn: 0,
        retries: 0,
        redispatched: false,
        srv_queue: 0,
        backend_queue: 0,
    }
}

#[test]
fn httplog_line() {
    let d = local_date(when());
    assert_eq!(
        format_httplog(&http_record()),
        format!(
            "127.0.0.1:40946 [{d}] www app/web1 0/0/0/1/1 200 170 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
        )
    );
    let mut r = http_record();
    r.client = sa("[::1]:5000");
    r.frontend_tls = true;
    r.server = "<NOSRV>".into();
    r.tr_server = -1;
    r.status = 503;
    r.termination_state = *b"SC--";
    r.retries = 3;
    r.redispatched = true;
    r.request_line = "GET /a\"b#c\x01é HTTP/1.1".into();
    assert_eq!(
        format_httplog(&r),
        format!(
            "::1:5000 [{d}] www~ app/<NOSRV> 0/0/0/-1/1 503 170 - - SC-- 1/1/0/0/+3 0/0 \
             \"GET /a#22b#23c#01#C3#A9 HTTP/1.1\""
        )
    );
}

#[test]
fn httplog_clf_line() {
    assert_eq!(
        format_httplog_clf(&http_record()),
        "127.0.0.1 - - [21/Nov/2026:10:12:13 +0000] \"GET / HTTP/1.1\" 200 170 \"\" \"\" 40946 123 \
         \"www\" \"app\" \"web1\" 0 0 0 1 1 ---- 1 1 0 0 0 0 0 \"\" \"\" "
    );
}

#[test]
fn tcplog_and_connect_lines() {
    let d = local_date(when());
    assert_eq!(
        format_tcplog(&tcp_record()),
        format!("127.0.0.1:46280 [{d}] tcpfe tapp/t1 1/0/5001 0 cD 1/1/0/0/0 0/0")
    );
    assert_eq!(
        format_connect(sa("127.0.0.1:40946"), sa("127.0.0.1:8080"), "www", true),
        "Connect from 127.0.0.1:40946 to 127.0.0.1:8080 (www/HTTP)"
    );
    assert_eq!(
        format_connect(sa("[::1]:1"), sa("[::1]:2"), "plain", false),
        "Connect from ::1:1 to ::1:2 (plain/TCP)"
    );
}

fn target(dest: LogDest, facility: Facility, max_level: Level, format: LogFormat) -> LogTarget {
    LogTarget { line: 1, dest, facility, max_level, format, max_len: None }
}

fn udp_sink() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let a = s.local_addr().expect("addr");
    (s, a)
}

fn recv(s: &UdpSocket) -> Option<String> {
    let mut buf = [0u8; 2048];
    let n = s.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn udp_framing_levels_and_facilities() {
    let (s, a) = udp_sink();
    let logger = Logger::new(
        &[target(LogDest::Udp(a), Facility::Local0, Level::Notice, LogFormat::Rfc3164)],
        "lanai",
        4242,
    );
    assert!(logger.enabled(Level::Err) && !logger.enabled(Level::Info));
    logger.log(Level::Info, None, "filtered out");
    logger.log(Level::Notice, None, "hello");
    logger.log(Level::Err, Some(Facility::Daemon), "override");
    let re = regex::Regex::new(r"^<133>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d lanai\[4242\]: hello\n$")
        .expect("re");
    let first = recv(&s).expect("first line");
    assert!(re.is_match(&first), "{first:?}");
    let second = recv(&s).expect("second line");
    assert!(second.starts_with("<27>") && second.ends_with("lanai[4242]: override\n"), "{second:?}");

    // Short and raw formats, and truncation to 1024 bytes.
    let logger = Logger::new(
        &[
            target(LogDest::Udp(a), Facility::Local7, Level::Debug, LogFormat::Short),
            target(LogDest::Udp(a), Facility::Local7, Level::Debug, LogFormat::Raw),
        ],
        "lanai",
        1,
    );
    logger.log(Level::Debug, None, "m");
    assert_eq!(recv(&s).as_deref(), Some("<7>m\n"));
    assert_eq!(recv(&s).as_deref(), Some("m\n"));
    logger.log(Level::Info, None, &"x".repeat(5000));
    let long = recv(&s).expect("long");
    assert_eq!(long.len(), MAX_LINE_LEN + 1);
    assert!(long.ends_with("x\n"));
}

#[test]
fn unix_socket_reconnects_when_it_reappears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.sock");
    // Logger first, socket later: lines are dropped until it exists.
    let logger = Logger::new(
        &[target(LogDest::Unix(path.clone()), Facility::User, Level::Info, LogFormat::Raw)],
        "t",
        1,
    );
    logger.log(Level::Info, None, "lost");
    let rx = UnixDatagram::bind(&path).expect("bind");
    rx.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    std::thread::sleep(Duration::from_millis(1100)); // past the retry delay
    logger.log(Level::Info, None, "one");
    let mut buf = [0u8; 128];
    let n = rx.recv(&mut buf).expect("one");
    assert_eq!(&buf[..n], b"one\n");
    // syslog restarts: the socket file is replaced by a new one.
    drop(rx);
    std::fs::remove_file(&path).expect("rm");
    let rx = UnixDatagram::bind(&path).expect("rebind");
    rx.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    logger.log(Level::Info, None, "two");
    let n = rx.recv(&mut buf).expect("two after reconnect");
    assert_eq!(&buf[..n], b"two\n");
}

#[test]
fn full_socket_drops_instead_of_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("slow.sock");
    let _rx = UnixDatagram::bind(&path).expect("bind");
    let logger =
        Logger::new(&[target(LogDest::Unix(path), Facility::User, Level::Info, LogFormat::Raw)], "t", 1);
    let started = std::time::Instant::now();
    // Nobody reads: the receive queue fills, then lines are dropped.
    for _ in 0..5000 {
        logger.log(Level::Info, None, &"y".repeat(900));
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ------------------------------------------------------------------ interop

/// Collects datagrams until one contains `needle`.
fn wait_for(s: &UdpSocket, needle: &str) -> Option<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < deadline {
        if let Some(d) = recv(s) {
            if d.contains(needle) {
                return Some(d);
            }
        }
    }
    None
}

/// Our own datagram for `msg`, sent through a Logger signed like HAProxy.
fn our_datagram(msg: &str, pid: u32) -> String {
    let (s, a) = udp_sink();
    Logger::new(
        &[target(LogDest::Udp(a), Facility::Local0, Level::Info, LogFormat::Rfc3164)],
        "haproxy",
        pid,
    )
    .log(Level::Info, None, msg);
    recv(&s).expect("own datagram")
}

/// A regex matching `ours` where only the syslog timestamp, the accept date and
/// the timing fields (given as sentinel numbers) may differ.
fn pattern(ours: &str, dates: &[String], timers: &[i64]) -> regex::Regex {
    let mut p = regex::escape(ours);
    // Syslog header time: `Mmm dd hh:mm:ss`.
    let hdr = regex::Regex::new(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ").expect("re");
    p = hdr.replace(&p, r"<$1>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ").into_owned();
    for d in dates {
        p = p.replace(&regex::escape(d), r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d(\.\d{3}| \+0000)");
    }
    for t in timers {
        p = p.replace(&format!("{t}"), r"-?\d+");
    }
    regex::Regex::new(&format!("^{p}$")).expect("pattern")
}

/// Runs HAProxy 2.6 with httplog, httplog clf, tcplog and plain frontends
/// logging to a UDP socket, makes one exchange on each, and checks that our
/// formatter + Logger produce the same datagram, field by field, for the same
/// values (timings and dates aside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_with_haproxy_logs() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    if testpeers::haproxy_bin().is_none() {
        eprintln!("haproxy not installed: skipping");
        return;
    }
    let (sink, sink_addr) = udp_sink();
    // Backend: answers any request with a fixed response, then closes.
    let backend = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let be_port = backend.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = backend.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
                    .await;
            });
        }
    });
    let [p_http, p_clf, p_tcp, p_plain] =
        [testpeers::free_port(), testpeers::free_port(), testpeers::free_port(), testpeers::free_port()];
    let cfg = format!(
        "global\n  log {sink_addr} local0\n\
         defaults\n  log global\n  mode http\n  option dontlognull\n\
         \x20 timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend www\n  bind 127.0.0.1:{p_http}\n  option httplog\n  default_backend app\n\
         frontend clf\n  bind 127.0.0.1:{p_clf}\n  option httplog clf\n  default_backend app\n\
         frontend tcpfe\n  mode tcp\n  bind 127.0.0.1:{p_tcp}\n  option tcplog\n  default_backend tapp\n\
         frontend plain\n  mode tcp\n  bind 127.0.0.1:{p_plain}\n  default_backend tapp\n\
         backend app\n  server web1 127.0.0.1:{be_port}\n\
         backend tapp\n  mode tcp\n  server t1 127.0.0.1:{be_port}\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let haproxy = testpeers::start_haproxy(dir.path(), &cfg, &[p_http, p_clf, p_tcp, p_plain])
        .expect("haproxy did not start");
    let pid = haproxy.pid();

    async fn exchange(port: u16) -> (SocketAddr, u64) {
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        c.write_all(b"GET /x?a=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.expect("write");
        let mut resp = Vec::new();
        c.read_to_end(&mut resp).await.expect("read");
        (c.local_addr().expect("local"), resp.len() as u64)
    }
    let sentinels = [900_001, 900_002, 900_003, 900_004, 900_005];
    let date = local_date(when());
    let gmt = "21/Nov/2026:10:12:13 +0000".to_string();

    // option httplog
    // HAProxy 2.6 counts %B on its internal (HTX) form of the response, not
    // the bytes on the wire, so the byte count is left free like the timers.
    // Likewise the process/frontend connection counts include HAProxy's
    // readiness probes until it has noticed they closed.
    let sentinels = [sentinels.as_slice(), &[900_007, 900_008, 900_009]].concat();
    let (client, _) = exchange(p_http).await;
    let theirs = wait_for(&sink, &format!("{client} [")).expect("httplog datagram");
    let mut r = http_record();
    r.client = client;
    r.bytes_read = 900_007;
    (r.actconn, r.feconn) = (900_008, 900_009);
    r.request_line = "GET /x?a=1 HTTP/1.1".into();
    [r.tr, r.tw, r.tc, r.tr_server, r.ta] =
        [sentinels[0], sentinels[1], sentinels[2], sentinels[3], sentinels[4]];
    let ours = our_datagram(&format_httplog(&r), pid);
    let re = pattern(&ours, std::slice::from_ref(&date), &sentinels);
    assert!(re.is_match(&theirs), "httplog differs:\n theirs {theirs:?}\n ours   {ours:?}");

    // option httplog clf
    let (client, _) = exchange(p_clf).await;
    let theirs = wait_for(&sink, &format!(" {} ", client.port())).expect("clf datagram");
    let mut r = http_record();
    r.client = client;
    r.frontend = "clf".into();
    r.bytes_read = 900_007;
    (r.actconn, r.feconn) = (900_008, 900_009);
    r.request_line = "GET /x?a=1 HTTP/1.1".into();
    [r.tr, r.tw, r.tc, r.tr_server, r.ta] =
        [sentinels[0], sentinels[1], sentinels[2], sentinels[3], sentinels[4]];
    let ours = our_datagram(&format_httplog_clf(&r), pid);
    // %ms (accept milliseconds) follows the client port.
    let ours_ms =
        ours.replacen(&format!(" {} 123 ", client.port()), &format!(" {} 900006 ", client.port()), 1);
    let re = pattern(&ours_ms, std::slice::from_ref(&gmt), &[sentinels.as_slice(), &[900_006]].concat());
    assert!(re.is_match(&theirs), "clf differs:\n theirs {theirs:?}\n ours   {ours:?}");

    // option tcplog
    let (client, bytes) = exchange(p_tcp).await;
    let theirs = wait_for(&sink, &format!("{client} [")).expect("tcplog datagram");
    let mut r = tcp_record();
    r.client = client;
    r.bytes_read = bytes;
    r.termination_state = *b"--";
    (r.actconn, r.feconn) = (900_008, 900_009);
    [r.tw, r.tc, r.tt] = [sentinels[0], sentinels[1], sentinels[2]];
    let ours = our_datagram(&format_tcplog(&r), pid);
    let re = pattern(&ours, std::slice::from_ref(&date), &[&sentinels[..3], &sentinels[6..]].concat());
    assert!(re.is_match(&theirs), "tcplog differs:\n theirs {theirs:?}\n ours   {ours:?}");

    // Neither: the connect line.
    let (client, _) = exchange(p_plain).await;
    let theirs = wait_for(&sink, &format!("Connect from {client} ")).expect("connect datagram");
    let local = sa(&format!("127.0.0.1:{p_plain}"));
    let ours = our_datagram(&format_connect(client, local, "plain", false), pid);
    let re = pattern(&ours, &[], &[]);
    assert!(re.is_match(&theirs), "connect line differs:\n theirs {theirs:?}\n ours   {ours:?}");
}

/// `log stdout` (default format: rfc3164, like syslog) and
/// `log stdout format raw` as HAProxy writes them, against our framing.
#[tokio::test]
async fn stdout_formats_match_haproxy() {
    if testpeers::haproxy_bin().is_none() {
        eprintln!("haproxy not installed: skipping");
        return;
    }
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let be = backend.local_addr().expect("addr");
    let port = testpeers::free_port();
    let cfg = format!(
        "global\n  log stdout local0\n  log stdout format raw local1\n  log stdout format short local2\n\
         \x20 log stdout format rfc5424 local3\n\
         defaults\n  log global\n  mode tcp\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend plain\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  server s {be}\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let haproxy = testpeers::start_haproxy(dir.path(), &cfg, &[port]).expect("haproxy did not start");
    let c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let msg =
        format_connect(c.local_addr().expect("local"), sa(&format!("127.0.0.1:{port}")), "plain", false);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut lines: Vec<String> = Vec::new();
    while std::time::Instant::now() < deadline {
        let out = std::fs::read_to_string(dir.path().join("haproxy.stdout")).unwrap_or_default();
        lines = out.lines().filter(|l| l.ends_with(&msg)).map(|l| format!("{l}\n")).collect();
        if lines.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logger = Logger::new(&[], "haproxy", haproxy.pid());
    let frame = |format, facility| {
        String::from_utf8(logger.frame(format, MAX_LINE_LEN, facility, Level::Info, SystemTime::now(), &msg))
            .expect("utf8")
    };
    let syslog = frame(LogFormat::Rfc3164, Facility::Local0);
    let re = pattern(&syslog, &[], &[]);
    assert!(lines.iter().any(|l| re.is_match(l)), "no rfc3164 line like {syslog:?} in {lines:?}");
    let raw = frame(LogFormat::Raw, Facility::Local1);
    assert!(lines.contains(&raw), "no raw line {raw:?} in {lines:?}");
    let short = frame(LogFormat::Short, Facility::Local2);
    assert!(lines.contains(&short), "no short line {short:?} in {lines:?}");
    let rfc5424 = frame(LogFormat::Rfc5424, Facility::Local3);
    let ts = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d").expect("re");
    let template = ts.replace(&rfc5424, "TIMESTAMP");
    let re = regex::Regex::new(&format!("^{}$", regex::escape(&template).replace("TIMESTAMP", ts.as_str())))
        .expect("re");
    assert!(template.contains("TIMESTAMP"), "{rfc5424:?}");
    assert!(lines.iter().any(|l| re.is_match(l)), "no rfc5424 line like {rfc5424:?} in {lines:?}");
}

#[test]
fn style_per_proxy_and_fresh_records() {
    use crate::conf::haproxy::model::Mode;
    let style = |mode, httplog, clf, tcplog| {
        let mut p = testpeers::proxy("p");
        p.mode = mode;
        (p.options.httplog, p.options.httplog_clf, p.options.tcplog) = (httplog, clf, tcplog);
        LogStyle::for_proxy(&p)
    };
    assert_eq!(style(Mode::Http, true, false, false), LogStyle::Http);
    assert_eq!(style(Mode::Http, true, true, false), LogStyle::HttpClf);
    assert_eq!(style(Mode::Tcp, true, false, false), LogStyle::Tcp); // HAProxy's fallback
    assert_eq!(style(Mode::Tcp, false, false, true), LogStyle::Tcp);
    assert_eq!(style(Mode::Http, false, false, false), LogStyle::Connect);
    let r = HttpLogRecord::new(sa("10.0.0.1:1234"), when(), "www");
    let line = format_httplog(&r);
    assert!(
        line.ends_with(" www www/<NOSRV> -1/-1/-1/-1/-1 -1 0 - - ---- 0/0/0/0/0 0/0 \"<BADREQ>\""),
        "{line}"
    );
    let t = TcpLogRecord::new(sa("10.0.0.1:1234"), when(), "db");
    assert!(format_tcplog(&t).ends_with(" db db/<NOSRV> -1/-1/-1 0 -- 0/0/0/0/0 0/0"));
}

#[test]
fn logger_is_shareable_across_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Logger>();
}

/// Lines captured from HAProxy 2.6 (IPv6 client, TLS frontend, refused
/// server with retries, bad request), dates swapped for the record's.
#[test]
fn matches_captured_haproxy_lines() {
    let d = local_date(when());
    let mut r = HttpLogRecord::new(sa("[::1]:58926"), when(), "www");
    (r.backend, r.server) = ("app".into(), "web1".into());
    (r.tr, r.tw, r.tc, r.tr_server, r.ta) = (0, 0, -1, -1, 3007);
    (r.status, r.bytes_read, r.termination_state) = (503, 217, *b"SC--");
    (r.actconn, r.feconn, r.retries) = (1, 1, 3);
    r.request_line = "GET /v6 HTTP/1.1".into();
    assert_eq!(
        format_httplog(&r),
        format!(
            "::1:58926 [{d}] www app/web1 0/0/-1/-1/3007 503 217 - - SC-- 1/1/0/0/3 0/0 \"GET /v6 HTTP/1.1\""
        )
    );
    r.client = sa("127.0.0.1:56586");
    r.frontend_tls = true;
    r.ta = 3005;
    r.request_line = "GET /tls HTTP/1.1".into();
    assert_eq!(
        format_httplog(&r),
        format!(
            "127.0.0.1:56586 [{d}] www~ app/web1 0/0/-1/-1/3005 503 217 - - SC-- 1/1/0/0/3 0/0 \"GET /tls HTTP/1.1\""
        )
    );
    let mut bad = HttpLogRecord::new(sa("[::1]:55578"), when(), "www");
    (bad.ta, bad.status, bad.termination_state, bad.actconn, bad.feconn) = (0, 400, *b"CR--", 1, 1);
    assert_eq!(
        format_httplog(&bad),
        format!("::1:55578 [{d}] www www/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- 1/1/0/0/0 0/0 \"<BADREQ>\"")
    );
    assert_eq!(
        format_connect(sa("[::1]:39398"), sa("[::1]:51584"), "plain6", false),
        "Connect from ::1:39398 to ::1:51584 (plain6/TCP)"
    );
}
