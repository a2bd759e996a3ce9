use super::*;
use crate::proxy::testpeers;
use rand::{Rng, RngCore};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(2);

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// Reads a header from `bytes` and returns it with the bytes left unread.
async fn read_from(bytes: &[u8]) -> (Result<ProxyHeader, ProxyProtocolError>, Vec<u8>) {
    let mut r: &[u8] = bytes;
    let res = read_header(&mut r, T).await;
    (res, r.to_vec())
}

#[test]
fn v1_encodings() {
    assert_eq!(
        encode_v1(sa("192.168.0.1:56324"), sa("192.168.0.11:443")),
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    );
    assert_eq!(encode_v1(sa("[::1]:1"), sa("[2001:db8::2]:80")), b"PROXY TCP6 ::1 2001:db8::2 1 80\r\n");
    // Mixed families are sent as TCP6 with the v4 address mapped.
    assert_eq!(encode_v1(sa("10.0.0.1:5"), sa("[::1]:80")), b"PROXY TCP6 ::ffff:10.0.0.1 ::1 5 80\r\n");
    // The longest possible line is exactly 107 bytes long (spec 2.1).
    let max = sa("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    assert_eq!(encode_v1(max, max).len(), 104); // TCP6 is 3 bytes shorter than UNKNOWN
    assert_eq!(encode_v1_unknown(), b"PROXY UNKNOWN\r\n");
}

#[test]
fn v2_encodings() {
    let h = encode_v2(sa("1.2.3.4:1000"), sa("5.6.7.8:80"));
    assert_eq!(&h[..12], &V2_SIGNATURE);
    assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
    assert_eq!(&h[16..], &[1, 2, 3, 4, 5, 6, 7, 8, 0x03, 0xe8, 0, 80]);
    let h = encode_v2(sa("[::1]:1"), sa("[::2]:2"));
    assert_eq!(&h[12..16], &[0x21, 0x21, 0, 36]);
    assert_eq!(h.len(), 16 + 36);
    assert_eq!(encode_v2_local()[12..], [0x20, 0x00, 0, 0]);
}

#[tokio::test]
async fn roundtrips_leave_payload_unread() {
    let pairs = [
        (sa("192.168.0.1:56324"), sa("192.168.0.11:443")),
        (sa("[2001:db8::1]:65535"), sa("[fe80::1]:0")),
        (sa("0.0.0.0:0"), sa("255.255.255.255:65535")),
    ];
    for (src, dst) in pairs {
        for version in [ProxyProtocolVersion::V1, ProxyProtocolVersion::V2] {
            let mut bytes = encode(version, src, dst);
            bytes.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            let (res, rest) = read_from(&bytes).await;
            let h = res.expect("roundtrip");
            assert_eq!(h.version, version);
            assert_eq!(h.addresses, Some(ProxyAddresses { source: src, destination: dst }));
            assert_eq!(rest, b"GET / HTTP/1.1\r\n\r\n");
        }
    }
}

#[tokio::test]
async fn unknown_and_local() {
    let (res, rest) = read_from(b"PROXY UNKNOWN\r\nX").await;
    assert_eq!(res.expect("unknown").addresses, None);
    assert_eq!(rest, b"X");
    let (res, rest) = read_from(b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\nSMTP").await;
    assert_eq!(res.expect("unknown with junk").addresses, None);
    assert_eq!(rest, b"SMTP");

    let mut local = encode_v2_local();
    local.push(b'Z');
    let (res, rest) = read_from(&local).await;
    let h = res.expect("local");
    assert_eq!((h.version, h.addresses), (ProxyProtocolVersion::V2, None));
    assert_eq!(rest, b"Z");

    // LOCAL with an address block anyway: the block must still be skipped.
    let mut local = encode_v2(sa("1.1.1.1:1"), sa("2.2.2.2:2"));
    local[12] = 0x20;
    local.push(b'Z');
    let (res, rest) = read_from(&local).await;
    assert_eq!(res.expect("local with block").addresses, None);
    assert_eq!(rest, b"Z");
}

#[tokio::test]
async fn v2_tlvs_are_skipped() {
    let mut h = encode_v2(sa("10.0.0.1:1234"), sa("10.0.0.2:443"));
    // ALPN TLV "h2" and a NOOP TLV; the length field covers them.
    let tlvs = [0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x01, 0x00];
    h.extend_from_slice(&tlvs);
    let len = 12 + tlvs.len() as u16;
    h[14..16].copy_from_slice(&len.to_be_bytes());
    h.extend_from_slice(b"payload");
    let (res, rest) = read_from(&h).await;
    let hdr = res.expect("tlvs");
    assert_eq!(hdr.addresses.map(|a| a.destination), Some(sa("10.0.0.2:443")));
    assert_eq!(hdr.tlv(PP2_TYPE_ALPN), Some(b"h2".as_slice()));
    assert_eq!(hdr.tlvs.len(), 2);
    assert_eq!(rest, b"payload");
}

#[test]
fn crc32c_check_value_and_tlv_bounds() {
    assert_eq!(crc32c(b"123456789".iter().copied()), 0xe306_9283);
    let base = encode_v2(sa("10.0.0.1:1"), sa("10.0.0.2:2"));
    let with = |tlvs: &[u8]| {
        let mut h = base.clone();
        h.extend_from_slice(tlvs);
        let len = (h.len() - 16) as u16;
        h[14..16].copy_from_slice(&len.to_be_bytes());
        let head: [u8; 16] = h[..16].try_into().expect("16");
        (head, h[16..].to_vec())
    };
    // A CRC32C TLV computed over the header with the field zeroed.
    let (head, mut payload) = with(&[0x03, 0x00, 0x04, 0, 0, 0, 0]);
    let crc = crc32c(head.iter().chain(payload.iter()).copied());
    payload[12 + 3..12 + 7].copy_from_slice(&crc.to_be_bytes());
    assert!(parse_v2(&head, &payload).is_ok());
    payload[16] ^= 1;
    assert!(parse_v2(&head, &payload).is_err(), "bad CRC accepted");
    // TLV running past the end, or cut inside its own header.
    let (head, payload) = with(&[0x05, 0x00, 0x09, b'x']);
    assert!(parse_v2(&head, &payload).is_err());
    let (head, payload) = with(&[0x05, 0x00]);
    assert!(parse_v2(&head, &payload).is_err());
    let (head, payload) = with(&[0x02, 0x00, 0x05, b'a', b'.', b'c', b'o', b'm']);
    assert_eq!(parse_v2(&head, &payload).expect("authority").authority(), Some("a.com"));
}

#[tokio::test]
async fn malformed_inputs_are_errors() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n",
        b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        b"PROXY TCP4 1.2.3.4\r\n",
        b"PROXY\r\n",
    ];
    for case in cases {
        let (res, _) = read_from(case).await;
        assert!(res.is_err(), "accepted {:?}", String::from_utf8_lossy(case));
    }
    // A line without CRLF within 107 bytes.
    let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
    assert!(matches!(read_from(&long).await.0, Err(ProxyProtocolError::TooLong)));
    // Truncated headers.
    assert!(matches!(read_from(b"PROXY TCP4 1.2").await.0, Err(ProxyProtocolError::Truncated)));
    let v2 = encode_v2(sa("1.1.1.1:1"), sa("2.2.2.2:2"));
    assert!(matches!(read_from(&v2[..20]).await.0, Err(ProxyProtocolError::Truncated)));
    // Bad version / command / family, short blocks, huge length.
    for (idx, val) in [(12, 0x11), (12, 0x22), (13, 0x41), (13, 0x13), (15, 4)] {
        let mut bad = v2.clone();
        bad[idx] = val;
        assert!(read_from(&bad).await.0.is_err(), "byte {idx}={val:#x} accepted");
    }
    let mut huge = v2.clone();
    huge[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    assert!(matches!(read_from(&huge).await.0, Err(ProxyProtocolError::V2TooLong(65535))));
}

#[tokio::test]
async fn random_garbage_never_panics() {
    let mut rng = rand::rng();
    let seeds: [&[u8]; 4] = [b"", b"PROXY ", b"PROXY TCP4 ", &V2_SIGNATURE];
    for i in 0..20_000 {
        let prefix = seeds[i % seeds.len()];
        let len = rng.random_range(0..200);
        let mut buf = prefix.to_vec();
        let start = buf.len();
        buf.resize(start + len, 0);
        rng.fill_bytes(&mut buf[start..]);
        if i % 3 == 0 && buf.len() > 14 {
            buf[12] = 0x21; // make v2 heads get past the version check more often
        }
        let (res, rest) = read_from(&buf).await;
        if res.is_ok() {
            // Whatever was accepted, the unread rest is a suffix of the input.
            assert!(buf.ends_with(&rest));
        }
    }
}

#[tokio::test]
async fn slow_sender_times_out() {
    let (mut a, mut b) = tokio::io::duplex(64);
    a.write_all(b"PROXY TCP4 1.2.3.4").await.expect("write");
    let res = read_header(&mut b, Duration::from_millis(100)).await;
    assert!(matches!(res, Err(ProxyProtocolError::Timeout(_))));
}

// ------------------------------------------------------------------ interop

/// A real HAProxy with `send-proxy` / `send-proxy-v2` servers pointing at our
/// listener: the header we read names the client's address and HAProxy's
/// frontend address. A third frontend with `accept-proxy` takes our own
/// encode_v1/encode_v2 headers and passes the claimed source on, proving it
/// parsed them.
#[tokio::test]
async fn interop_with_haproxy() {
    if testpeers::haproxy_bin().is_none() {
        eprintln!("haproxy not installed: skipping");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target = listener.local_addr().expect("addr").port();
    let [p1, p2, p3, p4] =
        [testpeers::free_port(), testpeers::free_port(), testpeers::free_port(), testpeers::free_port()];
    let cfg = format!(
        "global\n  maxconn 100\n\
         defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         listen v1\n  bind 127.0.0.1:{p1}\n  server s 127.0.0.1:{target} send-proxy\n\
         listen v2\n  bind 127.0.0.1:{p2}\n  server s 127.0.0.1:{target} send-proxy-v2\n\
         listen acc\n  bind 127.0.0.1:{p3} accept-proxy\n  server s 127.0.0.1:{target} send-proxy-v2\n\
         listen tlv\n  bind 127.0.0.1:{p4}\n  unique-id-format lanai-%ci-%cp\n\
         \x20 server s 127.0.0.1:{target} send-proxy-v2 proxy-v2-options crc32c,unique-id\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(_haproxy) = testpeers::start_haproxy(dir.path(), &cfg, &[p1, p2, p3, p4]) else {
        panic!("haproxy did not start");
    };
    // The readiness probes connected to each port; HAProxy may have opened
    // server connections for them. Accept until our real client's header shows up.
    async fn expect_header(listener: &TcpListener, want_src: SocketAddr) -> ProxyHeader {
        loop {
            let (mut s, _) = tokio::time::timeout(T * 3, listener.accept())
                .await
                .expect("accept in time")
                .expect("accept");
            let Ok(h) = read_header(&mut s, T).await else { continue };
            if h.addresses.map(|a| a.source) == Some(want_src) {
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.expect("payload after header");
                assert_eq!(&buf, b"ping");
                return h;
            }
        }
    }

    for (port, version) in [(p1, ProxyProtocolVersion::V1), (p2, ProxyProtocolVersion::V2)] {
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        c.write_all(b"ping").await.expect("write");
        let me = c.local_addr().expect("local");
        let h = expect_header(&listener, me).await;
        assert_eq!(h.version, version);
        assert_eq!(h.addresses.map(|a| a.destination), Some(sa(&format!("127.0.0.1:{port}"))));
    }

    // HAProxy's CRC32C and unique-id TLVs: the checksum verifies, the id is ours.
    let mut c = TcpStream::connect(("127.0.0.1", p4)).await.expect("connect");
    c.write_all(b"ping").await.expect("write");
    let me = c.local_addr().expect("local");
    let h = expect_header(&listener, me).await;
    assert!(h.tlv(PP2_TYPE_CRC32C).is_some(), "{h:?}");
    let want = format!("lanai-{}-{}", me.ip(), me.port());
    assert_eq!(h.unique_id(), Some(want.as_bytes()), "{h:?}");

    let claimed = [
        (sa("203.0.113.7:4242"), sa("198.51.100.1:443")),
        (sa("[2001:db8::7]:4243"), sa("[2001:db8::1]:443")),
    ];
    for (src, dst) in claimed {
        for version in [ProxyProtocolVersion::V1, ProxyProtocolVersion::V2] {
            let mut c = TcpStream::connect(("127.0.0.1", p3)).await.expect("connect");
            let mut bytes = encode(version, src, dst);
            bytes.extend_from_slice(b"ping");
            c.write_all(&bytes).await.expect("write");
            let h = expect_header(&listener, src).await;
            assert_eq!(h.addresses.map(|a| a.destination), Some(dst));
        }
    }
}

#[tokio::test]
async fn tcp_fast_path_and_split_headers() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let src = sa("[2001:db8::9]:1234");
    let dst = sa("[2001:db8::1]:443");
    for version in [ProxyProtocolVersion::V1, ProxyProtocolVersion::V2] {
        for split in [false, true] {
            let header = encode(version, src, dst);
            let (c, a) = tokio::join!(TcpStream::connect(addr), l.accept());
            let (mut c, mut server) = (c.expect("connect"), a.expect("accept").0);
            let writer = tokio::spawn(async move {
                if split {
                    // Header in two segments: the peek sees an incomplete one.
                    c.write_all(&header[..9]).await.expect("w1");
                    c.flush().await.expect("flush");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    c.write_all(&header[9..]).await.expect("w2");
                } else {
                    c.write_all(&header).await.expect("w");
                }
                c.write_all(b"payload").await.expect("w3");
                c
            });
            let h = read_header_tcp(&mut server, T).await.expect("header");
            assert_eq!(h.addresses, Some(ProxyAddresses { source: src, destination: dst }));
            let mut rest = [0u8; 7];
            server.read_exact(&mut rest).await.expect("payload");
            assert_eq!(&rest, b"payload", "{version:?} split={split}");
            let _c = writer.await.expect("writer");
        }
    }
    // Garbage is refused on the fast path too.
    let (c, a) = tokio::join!(TcpStream::connect(addr), l.accept());
    let (mut c, mut server) = (c.expect("connect"), a.expect("accept").0);
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").await.expect("w");
    assert!(matches!(read_header_tcp(&mut server, T).await, Err(ProxyProtocolError::NotProxy)));
}

#[test]
fn complete_len_on_random_prefixes() {
    let mut rng = rand::rng();
    let full = encode_v2(sa("1.2.3.4:5"), sa("6.7.8.9:10"));
    for cut in 1..full.len() {
        assert!(matches!(complete_len(&full[..cut]), Ok(None)), "cut {cut}");
    }
    assert_eq!(complete_len(&full).ok().flatten(), Some(full.len()));
    for _ in 0..10_000 {
        let mut buf = vec![0u8; rng.random_range(1..300)];
        rng.fill_bytes(&mut buf);
        buf[0] = if rng.random() { b'P' } else { b'\r' };
        if let Ok(Some(len)) = complete_len(&buf) {
            assert!(len <= buf.len());
            let _ = parse_complete(&buf[..len]);
        }
    }
}
