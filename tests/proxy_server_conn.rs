//! The proxy's HTTP/1.1 side towards servers: request bodies (streamed,
//! chunked or sized), servers that answer early, interim 100 responses,
//! close-delimited HTTP/1.0 answers, and pooled connections the server closed.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n";

fn proxy_to(server_port: u16, extra: &str) -> (Proc, ConfigFile, u16) {
    let port = free_port();
    let cfg = write_config(&format!(
        "{DEFAULTS}{extra}\nfrontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    server s 127.0.0.1:{server_port}\n"
    ));
    let proc = start_lanai(&cfg.path, port);
    (proc, cfg, port)
}

/// Reads a whole response sent with `Connection: close`: (head, body), the
/// body de-chunked when it came chunked.
async fn read_to_close(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "response not finished in 15 s: {}", String::from_utf8_lossy(&all));
    let end = all.windows(4).rposition(|w| w == b"\r\n\r\n").expect("a response head");
    // The last head (interim 100 responses come before it).
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut body = all[end + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (head, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).expect("hex"), 16).expect("hex");
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A backend answering "LEN SUM" of the request body it received.
async fn body_summing_backend() -> Backend {
    Backend::start(Arc::new(|req: hyper::Request<Bytes>| {
        let sum: u64 = req.body().iter().map(|&b| u64::from(b)).sum();
        Response::new(Full::new(Bytes::from(format!("{} {}", req.body().len(), sum))))
    }))
    .await
}

/// A raw TCP server on loopback running `script` on each connection it
/// accepts: its port and how many connections it accepted.
async fn scripted_server<F, Fut>(script: F) -> (u16, Arc<AtomicU64>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else { continue };
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(script(s));
        }
    });
    (port, accepted)
}

/// Reads a request head byte by byte (nothing of the body): false at EOF.
async fn read_request_head(s: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap_or(0) == 0 {
            return false;
        }
        head.push(byte[0]);
    }
    true
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_reach_the_server_whole() {
    let be = body_summing_backend().await;
    let (_l, _cfg, port) = proxy_to(be.port, "");
    let data = pattern(1 << 20);
    let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();

    // Chunked upload, in uneven chunks.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        .await
        .expect("head");
    for piece in data.chunks(3001) {
        s.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await.expect("size");
        s.write_all(piece).await.expect("data");
        s.write_all(b"\r\n").await.expect("crlf");
    }
    s.write_all(b"0\r\n\r\n").await.expect("last chunk");
    let (head, body) = read_to_close(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(String::from_utf8_lossy(&body), format!("{} {sum}", data.len()));

    // Sized upload, larger than any buffer kept for retries.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let head =
        format!("PUT /up HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", data.len());
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(&data).await.expect("body");
    let (head, body) = read_to_close(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(String::from_utf8_lossy(&body), format!("{} {sum}", data.len()));

    // A small body with retries on (kept whole for a second attempt).
    let (_l2, _cfg2, port2) = proxy_to(be.port, "    retry-on all-retryable-errors\n    retries 2\n");
    let got = request(port2, "POST", "/small", &[], "hello").await.expect("request");
    assert_eq!(got.text(), format!("5 {}", b"hello".iter().map(|&b| u64::from(b)).sum::<u64>()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_answering_before_the_upload_ends_is_relayed() {
    // The server refuses a large upload as soon as it sees the head and never
    // reads the body (as nginx does with client_max_body_size).
    let (be_port, _) = scripted_server(|mut s| async move {
        if !read_request_head(&mut s).await {
            return;
        }
        let _ = s
            .write_all(
                b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big\n",
            )
            .await;
        tokio::time::sleep(Duration::from_secs(20)).await;
    })
    .await;
    let (_l, _cfg, port) = proxy_to(be_port, "");
    let s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let started = Instant::now();
    let uploader = tokio::spawn(async move {
        let _ = wr.write_all(b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 67108864\r\n\r\n").await;
        let block = vec![b'x'; 65536];
        for _ in 0..1024 {
            if wr.write_all(&block).await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("too big") {
        match tokio::time::timeout(Duration::from_secs(8), rd.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            other => panic!(
                "no answer ({other:?}) after {:?}: {}",
                started.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    uploader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_100_continue_is_passed_over() {
    let (be_port, _) = scripted_server(|mut s| async move {
        if !read_request_head(&mut s).await {
            return;
        }
        let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
        let mut body = [0u8; 5];
        if s.read_exact(&mut body).await.is_err() {
            return;
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\ngot {}",
            String::from_utf8_lossy(&body[..3])
        );
        let _ = s.write_all(reply.as_bytes()).await;
    })
    .await;
    let (_l, _cfg, port) = proxy_to(be_port, "");
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n")
        .await
        .expect("head");
    // The proxy says 100 Continue itself when it wants the body.
    let mut interim = [0u8; 25];
    let n =
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut interim)).await.expect("100").expect("read");
    assert!(interim[..n].starts_with(b"HTTP/1.1 100 Continue"), "{}", String::from_utf8_lossy(&interim[..n]));
    s.write_all(b"hello").await.expect("body");
    let (head, body) = read_to_close(&mut s).await;
    assert!(head.contains("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"got hel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_close_delimited_answer_is_relayed() {
    let (be_port, _task) = raw_backend(
        b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nanswer of an old server",
        Duration::ZERO,
    )
    .await;
    let (_l, _cfg, port) = proxy_to(be_port, "");
    for _ in 0..3 {
        let got = get(port, "/").await;
        assert_eq!(got.status, 200);
        assert_eq!(got.text(), "answer of an old server");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connection_closed_by_the_server_is_not_an_error() {
    // Keep-alive answers, then the server closes each connection 100 ms later:
    // the next request must not be sent on the dead pooled one.
    let (be_port, accepted) = scripted_server(|mut s| async move {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    })
    .await;
    // No retries: a request sent on a dead connection would fail.
    let (_l, _cfg, port) = proxy_to(be_port, "    retries 0\n");
    for i in 0..4 {
        let got = get(port, "/").await;
        assert_eq!((got.status, got.text()), (200, "ok".to_string()), "request {i}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 4);
}

/// A keep-alive server counting its connections: GET gets "pooled", HEAD the
/// same head without a body, /empty a 204.
async fn counting_keep_alive_server() -> (u16, Arc<AtomicU64>) {
    scripted_server(|mut s| async move {
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                pending.drain(..end + 4);
                let reply: &[u8] = if head.starts_with("HEAD") {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n"
                } else if head.starts_with("GET /empty") {
                    b"HTTP/1.1 204 No Content\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\npooled"
                };
                if s.write_all(reply).await.is_err() {
                    return;
                }
            }
            match s.read(&mut buf).await {
                Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_server_connection_is_reused() {
    let (be_port, accepted) = counting_keep_alive_server().await;
    let (_l, _cfg, port) = proxy_to(be_port, "");
    // Sequential requests on separate client connections share one server connection.
    for _ in 0..20 {
        assert_eq!(get(port, "/").await.text(), "pooled");
    }
    // HEAD and 204 answers carry no body and leave the connection reusable.
    let head = request(port, "HEAD", "/", &[], "").await.expect("HEAD");
    assert_eq!((head.status, head.body.len()), (200, 0));
    let empty = get(port, "/empty").await;
    assert_eq!((empty.status, empty.body.len()), (204, 0));
    assert_eq!(get(port, "/").await.text(), "pooled");
    assert_eq!(accepted.load(Ordering::Relaxed), 1, "server connections opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_response_body_ends_after_timeout_server() {
    // Head and part of the body, then silence: `timeout server` must end the
    // exchange (HAProxy: termination "sD") instead of holding the client forever.
    let (be_port, _) = scripted_server(|mut s| async move {
        if !read_request_head(&mut s).await {
            return;
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial").await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let (_l, _cfg, port) = proxy_to(be_port, "    timeout server 1s\n");
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("request");
    let started = Instant::now();
    let mut got = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(ended.is_ok(), "client still held after 10 s: {text}");
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("partial"), "{text}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "closed after {took:?}");
}
