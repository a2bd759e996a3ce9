//! The proxy's HTTP/1.1 side towards clients, spoken to over raw sockets:
//! pipelining, Expect: 100-continue, HTTP/1.0 keep-alive, chunked uploads,
//! request smuggling guards, bad and oversized heads, head timeouts (408),
//! HEAD and close-delimited answers.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn proxy_to(server_port: u16, defaults: &str, frontend: &str) -> (Proc, ConfigFile, u16) {
    let port = free_port();
    let cfg = write_config(&format!(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout server 10s\n{defaults}\nfrontend fe\n    bind 127.0.0.1:{port}\n{frontend}\n    default_backend be\nbackend be\n    server s 127.0.0.1:{server_port}\n"
    ));
    let proc = start_lanai(&cfg.path, port);
    (proc, cfg, port)
}

const CLIENT_10S: &str = "    timeout client 10s";

/// One response read off a keep-alive connection: (head, body). The body is
/// read by its Content-Length, de-chunked, or read to the close.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> (String, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(15), read_one(s, buf)).await.expect("a response within 15 s")
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    let n = s.read(&mut chunk).await.expect("read");
    buf.extend_from_slice(&chunk[..n]);
    n > 0
}

async fn read_one(s: &mut TcpStream, buf: &mut Vec<u8>) -> (String, Vec<u8>) {
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        assert!(fill(s, buf).await, "closed before a head: {:?}", String::from_utf8_lossy(buf));
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 4);
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().expect("length"));
    let status: u16 = head[9..12].parse().expect("status");
    if lower.starts_with("http/1.1 100") || status == 204 || status == 304 {
        return (head, Vec::new());
    }
    if let Some(n) = length {
        while buf.len() < n {
            assert!(fill(s, buf).await, "closed in the body");
        }
        return (head, buf.drain(..n).collect());
    }
    if lower.contains("transfer-encoding: chunked") {
        let mut body = Vec::new();
        loop {
            let eol = loop {
                if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                assert!(fill(s, buf).await, "closed in a chunk size");
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..eol]).expect("hex"), 16).expect("hex");
            buf.drain(..eol + 2);
            while buf.len() < size + 2 {
                assert!(fill(s, buf).await, "closed in a chunk");
            }
            body.extend(buf.drain(..size));
            buf.drain(..2);
            if size == 0 {
                return (head, body);
            }
        }
    }
    while fill(s, buf).await {}
    (head, std::mem::take(buf))
}

/// Whether the proxy closes the connection within `within` (no more bytes).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut rest = Vec::new();
    matches!(tokio::time::timeout(within, s.read_to_end(&mut rest)).await, Ok(Ok(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let be = Backend::echo().await;
    let (_p, _c, port) = proxy_to(be.port, CLIENT_10S, "");
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut all = Vec::new();
    for i in 0..5 {
        all.extend_from_slice(format!("GET /r{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    all.extend_from_slice(
        b"POST /r5 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbodyGET /r6 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    s.write_all(&all).await.expect("write");
    let mut buf = Vec::new();
    for i in 0..7 {
        let (head, body) = read_response(&mut s, &mut buf).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(&format!(" /r{i}\n")), "response {i}: {text}");
        if i == 5 {
            assert!(text.ends_with("\nbody"), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_only_when_the_body_is_wanted() {
    let be = Backend::echo().await;
    let (_p, _c, port) = proxy_to(be.port, CLIENT_10S, "    http-request deny if { path_beg /denied }");
    // Forwarded: the client hears "100 Continue" before it sends the body.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let (interim, _) = read_response(&mut s, &mut buf).await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    s.write_all(b"hello").await.expect("body");
    let (head, body) = read_response(&mut s, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(String::from_utf8_lossy(&body).ends_with("\nhello"));
    // Denied: 403 at once, no 100, and the unread body closes the connection.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"PUT /denied HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_clients_keep_alive_only_when_asked() {
    let sized = Backend::named("sized").await;
    // A chunked answer (length unknown) reaches an HTTP/1.0 client delimited by the close.
    let (chunked, _task) = raw_backend(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nstreamed\r\n0\r\n\r\n",
        Duration::ZERO,
    )
    .await;
    let port = free_port();
    let cfg = write_config(&format!(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout server 10s\n    timeout client 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    use_backend stream if {{ path_beg /stream }}\n    default_backend be\n\
         backend be\n    server s 127.0.0.1:{}\nbackend stream\n    server s 127.0.0.1:{chunked}\n",
        sized.port
    ));
    let _p = start_lanai(&cfg.path, port);
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut buf = Vec::new();
    for _ in 0..2 {
        s.write_all(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await.expect("write");
        let (head, body) = read_response(&mut s, &mut buf).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("connection: keep-alive"), "{head}");
        assert_eq!(body, b"sized");
    }
    s.write_all(b"GET /a HTTP/1.0\r\n\r\n").await.expect("write");
    let (head, _) = read_response(&mut s, &mut buf).await;
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);

    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await.expect("write");
    let mut buf = Vec::new();
    let (head, body) = read_response(&mut s, &mut buf).await;
    let lower = head.to_ascii_lowercase();
    assert!(!lower.contains("chunked") && lower.contains("connection: close"), "{head}");
    assert_eq!(body, b"streamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_reaches_the_server_and_smuggling_is_refused() {
    let be = Backend::echo().await;
    let (_p, _c, port) = proxy_to(be.port, CLIENT_10S, "");
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    // Transfer-Encoding wins over Content-Length, which the server does not get.
    s.write_all(
        b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    let (_, body) = read_response(&mut s, &mut buf).await;
    let text = String::from_utf8_lossy(&body).to_ascii_lowercase();
    assert!(text.ends_with("\nwikipedia"), "{text}");
    assert!(!text.contains("content-length: 3"), "{text}");
    let (_, body) = read_response(&mut s, &mut buf).await;
    assert!(String::from_utf8_lossy(&body).starts_with("GET /after"));
    // A coding other than chunked last: the length is unknowable → 400, closed.
    for bad in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        s.write_all(bad).await.expect("write");
        let mut buf = Vec::new();
        let (head, body) = read_response(&mut s, &mut buf).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{}: {head}", String::from_utf8_lossy(bad));
        assert!(String::from_utf8_lossy(&body).contains("400 Bad request"), "HAProxy's page");
        assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    }
    assert_eq!(get(port, "/").await.status, 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_timeouts_give_408_or_a_quiet_close() {
    let be = Backend::named("ok").await;
    let (_p, _c, port) = proxy_to(
        be.port,
        "    timeout client 10s\n    timeout http-request 700ms\n    timeout http-keep-alive 400ms",
        "",
    );
    // A head cut short: 408 once `timeout http-request` passes (counted from
    // the proxy's accept, after `started`).
    let started = std::time::Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost:").await.expect("write");
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(started.elapsed() >= Duration::from_millis(680), "{:?}", started.elapsed());
    // Idle after a response: closed without a word after `timeout http-keep-alive`.
    // The proxy's keep-alive timer starts once the response is out, after `started`.
    let started = std::time::Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed quietly: {:?}", String::from_utf8_lossy(&rest));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(380) && waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_requests_and_oversized_heads() {
    let be = Backend::named("hello").await;
    let (_p, _c, port) = proxy_to(be.port, CLIENT_10S, "");
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    // HEAD: the server's Content-Length and no body; the GET after it is intact.
    let mut buf = Vec::new();
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        assert!(fill(&mut s, &mut buf).await);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    assert!(head.contains("content-length: 5"), "{head}");
    buf.drain(..end + 4);
    let (head, body) = read_response(&mut s, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"hello");
    // Too many header lines: 431.
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
}
