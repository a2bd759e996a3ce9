use super::head::{encode_head, has_final_head, parse_head, ParsedHead};
use super::*;
use crate::proxy::http::wire::Framing;
use tokio::io::AsyncWriteExt;

/// The parsed head and how many bytes of `head` it took.
fn parts(head: &str, method: Method) -> (ParsedHead, usize) {
    let mut buf = BytesMut::from(head);
    match parse_head(&mut buf, &method) {
        Ok(Some(p)) => (p, head.len() - buf.len()),
        Ok(None) => panic!("{head:?}: incomplete"),
        Err(e) => panic!("{head:?}: {e}"),
    }
}

fn parse_err(head: &[u8]) -> bool {
    parse_head(&mut BytesMut::from(head), &Method::GET).is_err()
}

#[test]
fn framing_follows_rfc_9112() {
    let (h, _) = parts("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::GET);
    assert_eq!(h.framing, Framing::Length(5));
    assert!(h.reusable);
    let (h, _) = parts(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
        Method::GET,
    );
    assert_eq!(h.framing, Framing::Chunked);
    assert!(!h.parts.headers.contains_key(CONTENT_LENGTH), "Content-Length dropped beside chunked");
    let (h, _) = parts("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", Method::GET);
    assert_eq!(h.framing, Framing::UntilClose);
    assert!(!h.reusable);
    let (h, _) = parts("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD);
    assert_eq!(h.framing, Framing::Empty);
    let (h, _) = parts("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", Method::GET);
    assert_eq!(h.framing, Framing::Empty);
    let (h, _) = parts("HTTP/1.1 200 OK\r\n\r\n", Method::GET);
    assert_eq!(h.framing, Framing::UntilClose);
    assert!(parse_err(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"));
    assert!(parse_err(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"));
    let (h, _) = parts("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", Method::GET);
    assert_eq!(h.framing, Framing::Length(5));
}

#[test]
fn hop_by_hop_headers_stop_at_the_parse() {
    let (h, _) = parts(
        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nServer: s\r\n\r\n",
        Method::GET,
    );
    assert!(h.hop_by_hop_dropped);
    let names: Vec<_> = h.parts.headers.keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["server"]);
    assert_eq!(h.framing, Framing::Chunked, "noted before being dropped");
    let (h, _) = parts("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", Method::GET);
    assert!(h.hop_by_hop_dropped && !h.reusable, "close still seen");

    // Connection names another header, maybe before it: the map is whole,
    // for `forward` to strip both.
    let (h, _) = parts(
        "HTTP/1.1 200 OK\r\nX-Trace: 1\r\nConnection: X-Trace\r\nContent-Length: 0\r\n\r\n",
        Method::GET,
    );
    assert!(!h.hop_by_hop_dropped);
    assert!(
        h.parts.headers.contains_key("x-trace") && h.parts.headers.contains_key(http::header::CONNECTION)
    );

    // A 101 keeps what the upgrade needs.
    let (h, _) = parts(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        Method::GET,
    );
    assert!(!h.hop_by_hop_dropped);
    assert!(h.parts.headers.contains_key(http::header::UPGRADE));
}

#[test]
fn keep_alive_by_version_and_connection() {
    let (h, _) = parts("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", Method::GET);
    assert!(!h.reusable);
    let (h, _) = parts("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Method::GET);
    assert!(!h.reusable);
    let (h, _) = parts("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", Method::GET);
    assert!(h.reusable);
}

#[test]
fn reason_phrase_kept_when_not_canonical() {
    let (h, used) = parts("HTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\nrest", Method::GET);
    assert_eq!(used, 40);
    let reason = h.parts.extensions.get::<hyper::ext::ReasonPhrase>().map(|r| r.as_bytes().to_vec());
    assert_eq!(reason.as_deref(), Some(&b"Fine"[..]));
    let (h, _) = parts("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Method::GET);
    assert!(h.parts.extensions.get::<hyper::ext::ReasonPhrase>().is_none());
}

#[test]
fn interim_heads_are_not_final() {
    assert!(!has_final_head(b"HTTP/1.1 100 Continue\r\n\r\n"));
    assert!(!has_final_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
    assert!(has_final_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Too Large\r\n\r\n"));
    assert!(has_final_head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"));
}

#[test]
fn request_head_framing() {
    let headers = HeaderMap::new();
    let uri: Uri = "/a?b".parse().unwrap_or_default();
    let mut out = Vec::new();
    encode_head(&mut out, &Method::POST, &uri, &headers, Some(3));
    assert_eq!(out, b"POST /a?b HTTP/1.1\r\ncontent-length: 3\r\n\r\n");
    out.clear();
    encode_head(&mut out, &Method::POST, &uri, &headers, None);
    assert_eq!(out, b"POST /a?b HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
    out.clear();
    encode_head(&mut out, &Method::GET, &uri, &headers, Some(0));
    assert_eq!(out, b"GET /a?b HTTP/1.1\r\n\r\n");
}

/// A chunked body split across reads, with extensions and trailers, then
/// the connection handed back for reuse.
#[tokio::test]
async fn chunked_body_across_reads_returns_the_connection() {
    use http_body_util::BodyExt;
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut req = [0u8; 1024];
        let _ = s.read(&mut req).await;
        let parts: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            b"lo\r\n6;x=y\r\n world\r",
            b"\n0\r\nX-Trailer: 1\r\n",
            b"\r\n",
        ];
        for p in parts {
            s.write_all(p).await.expect("write");
            s.flush().await.expect("flush");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        s
    });
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let conn =
        ServerConn::new(ServerIo::Plain(crate::proxy::http::wire::lean_tcp::LeanTcp::new(tcp).unwrap()));
    let mut body = RequestBody::Replayable(Bytes::new());
    let start =
        match conn.send(&Method::GET, &"/".parse().expect("uri"), &HeaderMap::new(), &mut body, None).await {
            Ok(s) => s,
            Err(e) => panic!("send: {e:?}"),
        };
    let (tx, rx) = std::sync::mpsc::channel();
    let (parts, body) = start.into_body(
        Some(Box::new(move |c| {
            let _ = tx.send(c.is_alive());
        })),
        Some(std::time::Duration::from_secs(5)),
    );
    assert_eq!(parts.status, 200);
    let bytes = body.collect().await.expect("body").to_bytes();
    assert_eq!(&bytes[..], b"hello world");
    assert_eq!(rx.try_recv().ok(), Some(true), "connection handed back alive");
    drop(server.await);
}

#[test]
fn mangled_responses_are_parsed_or_refused_never_a_panic() {
    use crate::proxy::http::wire::mangle::Mangler;
    let seeds: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\nSet-Cookie: a=1; Path=/\r\n\r\nhello",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive\r\n\r\n",
        b"HTTP/1.0 304 Not Modified\r\nETag: \"x\xe9\"\r\nContent-Length: 7, 7\r\n\r\n",
    ];
    let mut m = Mangler::new(0xbad);
    let (mut parsed, mut refused) = (0, 0);
    for i in 0..20_000 {
        let input = m.mangle(seeds[i % seeds.len()]);
        let method = if i % 5 == 0 { Method::HEAD } else { Method::GET };
        let final_head = has_final_head(&input);
        let mut buf = BytesMut::from(&input[..]);
        match parse_head(&mut buf, &method) {
            Ok(Some(h)) => {
                parsed += 1;
                assert!(buf.len() < input.len(), "a head was taken off the buffer");
                for value in h.parts.headers.values() {
                    assert!(http::HeaderValue::from_bytes(value.as_bytes()).is_ok(), "{input:?}");
                }
            }
            Ok(None) => assert!(!final_head, "a whole head reported incomplete: {input:?}"),
            Err(_) => refused += 1,
        }
    }
    assert!(parsed > 1_000 && refused > 1_000, "{parsed} parsed, {refused} refused");
}
