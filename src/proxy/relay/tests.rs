use super::*;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Deterministic pseudo-random bytes (xorshift64*): fast even in debug builds.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Two connected pairs: (test client, proxy's client side) and (proxy's server
/// side, test backend), as the engine would hold them.
async fn pairs() -> ((TcpStream, TcpStream), (TcpStream, TcpStream)) {
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (c, a) = tokio::join!(TcpStream::connect(addr), l.accept());
        (c.expect("connect"), a.expect("accept").0)
    }
    (pair().await, pair().await)
}

/// Writes `data` then shuts down writing, while reading everything until EOF.
fn endpoint(stream: TcpStream, data: Vec<u8>) -> JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let (mut r, mut w) = stream.into_split();
        let writer = async move {
            w.write_all(&data).await.expect("endpoint write");
            w.shutdown().await.expect("endpoint shutdown");
            w
        };
        let reader = async move {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.expect("endpoint read");
            got
        };
        let (_w, got) = tokio::join!(writer, reader);
        got
    })
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Splice,
    Generic,
}

async fn transfer(kind: Kind, up: Vec<u8>, down: Vec<u8>) -> (Vec<u8>, Vec<u8>, RelayStats) {
    let ((client, proxy_c), (proxy_s, backend)) = pairs().await;
    let opts = RelayOptions { client_timeout: Some(Duration::from_secs(20)), ..RelayOptions::default() };
    let relay = tokio::spawn(async move {
        match kind {
            Kind::Splice => relay_tcp(proxy_c, proxy_s, opts).await,
            Kind::Generic => relay_generic(proxy_c, proxy_s, opts).await,
        }
    });
    let c = endpoint(client, up);
    let b = endpoint(backend, down);
    let (got_by_client, got_by_backend, stats) = tokio::join!(c, b, relay);
    (got_by_client.expect("client"), got_by_backend.expect("backend"), stats.expect("relay"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabytes_each_way_byte_exact() {
    const LEN: usize = 50 * 1024 * 1024;
    let up = noise(LEN, 0x1234);
    let down = noise(LEN + 17, 0x9876);
    let mut outputs = Vec::new();
    for kind in [Kind::Splice, Kind::Generic] {
        let (got_by_client, got_by_backend, stats) = transfer(kind, up.clone(), down.clone()).await;
        assert!(got_by_backend == up, "{kind:?}: backend did not receive the client's bytes");
        assert!(got_by_client == down, "{kind:?}: client did not receive the backend's bytes");
        assert_eq!(stats.bytes_from_client, LEN as u64, "{kind:?}");
        assert_eq!(stats.bytes_from_server, LEN as u64 + 17, "{kind:?}");
        assert_eq!(stats.end, RelayEnd::Closed);
        outputs.push((got_by_client, got_by_backend));
    }
    assert!(outputs[0] == outputs[1], "splice and generic relays differ");
}

#[tokio::test]
async fn half_close_keeps_the_other_direction() {
    for kind in [Kind::Splice, Kind::Generic] {
        let ((client, proxy_c), (proxy_s, backend)) = pairs().await;
        let relay = tokio::spawn(async move {
            match kind {
                Kind::Splice => relay_tcp(proxy_c, proxy_s, RelayOptions::default()).await,
                Kind::Generic => relay_generic(proxy_c, proxy_s, RelayOptions::default()).await,
            }
        });
        let backend = tokio::spawn(async move {
            let mut backend = backend;
            let mut req = Vec::new();
            // EOF arrives only because the relay propagated the client's shutdown.
            backend.read_to_end(&mut req).await.expect("backend read");
            tokio::time::sleep(Duration::from_millis(50)).await;
            backend.write_all(b"reply after your FIN").await.expect("backend write");
            req
        });
        let mut client = client;
        client.write_all(b"request").await.expect("write");
        client.shutdown().await.expect("shutdown");
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.expect("client read");
        assert_eq!(reply, b"reply after your FIN", "{kind:?}");
        assert_eq!(backend.await.expect("backend"), b"request");
        let stats = relay.await.expect("relay");
        assert_eq!((stats.bytes_from_client, stats.bytes_from_server), (7, 20));
        assert_eq!(stats.end, RelayEnd::Closed);
    }
}

#[tokio::test]
async fn idle_timeout_closes_both_sides() {
    for kind in [Kind::Splice, Kind::Generic] {
        let ((mut client, proxy_c), (proxy_s, mut backend)) = pairs().await;
        let opts = RelayOptions {
            client_timeout: Some(Duration::from_millis(300)),
            server_timeout: Some(Duration::from_secs(30)),
            ..RelayOptions::default()
        };
        let started = Instant::now();
        let relay = tokio::spawn(async move {
            match kind {
                Kind::Splice => relay_tcp(proxy_c, proxy_s, opts).await,
                Kind::Generic => relay_generic(proxy_c, proxy_s, opts).await,
            }
        });
        // Activity pushes the deadline back.
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.write_all(b"x").await.expect("write");
        let mut one = [0u8; 1];
        backend.read_exact(&mut one).await.expect("relayed");
        let stats = relay.await.expect("relay");
        let took = started.elapsed();
        assert_eq!(stats.end, RelayEnd::ClientTimeout, "{kind:?}");
        assert_eq!(stats.end.termination_state(), *b"cD");
        assert!(took >= Duration::from_millis(480), "{kind:?} closed after {took:?}");
        assert!(took < Duration::from_secs(5));
        // Both peers see the connection closed.
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.map(|_| rest.len()).unwrap_or(0), 0);
        assert_eq!(backend.read(&mut one).await.unwrap_or(0), 0);
    }
}

#[tokio::test]
async fn tunnel_timeout_supersedes_client_and_server() {
    let ((mut client, proxy_c), (proxy_s, mut backend)) = pairs().await;
    let opts = RelayOptions {
        client_timeout: Some(Duration::from_millis(100)),
        server_timeout: Some(Duration::from_millis(100)),
        tunnel_timeout: Some(Duration::from_millis(1500)),
        ..RelayOptions::default()
    };
    let relay = tokio::spawn(relay_tcp(proxy_c, proxy_s, opts));
    tokio::time::sleep(Duration::from_millis(400)).await;
    client.write_all(b"still here").await.expect("write");
    let mut buf = [0u8; 10];
    backend.read_exact(&mut buf).await.expect("tunnel still open after the client timeout");
    assert_eq!(relay.await.expect("relay").end, RelayEnd::TunnelTimeout);
}

#[tokio::test]
async fn counters_update_while_running_and_nolinger_resets() {
    let ((mut client, proxy_c), (proxy_s, mut backend)) = pairs().await;
    let from_client = Arc::new(AtomicU64::new(0));
    let from_server = Arc::new(AtomicU64::new(0));
    let opts = RelayOptions {
        nolinger: true,
        tunnel_timeout: Some(Duration::from_millis(1000)),
        bytes_from_client: from_client.clone(),
        bytes_from_server: from_server.clone(),
        ..RelayOptions::default()
    };
    let relay = tokio::spawn(relay_tcp(proxy_c, proxy_s, opts));
    client.write_all(&[7u8; 1000]).await.expect("write");
    let mut buf = vec![0u8; 1000];
    backend.read_exact(&mut buf).await.expect("read");
    backend.write_all(&[8u8; 300]).await.expect("write");
    client.read_exact(&mut buf[..300]).await.expect("read");
    assert_eq!(from_client.load(Ordering::Relaxed), 1000);
    assert_eq!(from_server.load(Ordering::Relaxed), 300);
    assert!(!relay.is_finished());
    let stats = relay.await.expect("relay");
    assert_eq!((stats.bytes_from_client, stats.bytes_from_server), (1000, 300));
    // SO_LINGER 0: the close is a reset, not a FIN.
    let err = client.read(&mut buf).await.expect_err("reset expected");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn reset_by_server_aborts_with_server_error() {
    let ((mut client, proxy_c), (proxy_s, backend)) = pairs().await;
    let relay = tokio::spawn(relay_tcp(proxy_c, proxy_s, RelayOptions::default()));
    set_nolinger(&backend).expect("linger");
    drop(backend);
    let stats = relay.await.expect("relay");
    // The reset may be seen as an error or as EOF depending on timing; either
    // way the relay ends and the client is closed.
    assert!(matches!(stats.end, RelayEnd::ServerError(_) | RelayEnd::Closed), "{stats:?}");
    let mut buf = [0u8; 8];
    assert_eq!(client.read(&mut buf).await.unwrap_or(0), 0);
}

#[tokio::test]
async fn fin_timeout_applies_once_half_closed() {
    let ((mut client, proxy_c), (proxy_s, mut backend)) = pairs().await;
    let opts = RelayOptions {
        tunnel_timeout: Some(Duration::from_secs(30)),
        client_fin_timeout: Some(Duration::from_millis(300)),
        ..RelayOptions::default()
    };
    let relay = tokio::spawn(relay_tcp(proxy_c, proxy_s, opts));
    // Both directions open: the 30 s tunnel timeout is in force.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!relay.is_finished());
    // The client half-closes and the server never answers: client-fin ends it.
    client.shutdown().await.expect("shutdown");
    let mut buf = [0u8; 1];
    assert_eq!(backend.read(&mut buf).await.expect("eof"), 0);
    let started = Instant::now();
    let stats = tokio::time::timeout(Duration::from_secs(5), relay).await.expect("ended").expect("relay");
    assert_eq!(stats.end, RelayEnd::ClientTimeout);
    // Counted from the FIN, not from the last data.
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn options_from_frontend_and_backend() {
    let proxy = crate::proxy::testpeers::proxy;
    let s = Duration::from_secs;
    let mut fe = proxy("fe");
    fe.timeouts.client = Some(s(1));
    fe.timeouts.client_fin = Some(s(2));
    fe.timeouts.server = Some(s(99)); // a frontend's server timeout is not used
    let mut be = proxy("be");
    be.timeouts.server = Some(s(3));
    be.timeouts.server_fin = Some(s(4));
    be.timeouts.tunnel = Some(s(5));
    be.options.nolinger = true;
    let o = RelayOptions::for_proxies(&fe, &be);
    assert_eq!(
        (o.client_timeout, o.client_fin_timeout, o.server_timeout, o.server_fin_timeout, o.tunnel_timeout),
        (Some(s(1)), Some(s(2)), Some(s(3)), Some(s(4)), Some(s(5)))
    );
    assert!(o.nolinger);
    assert_eq!(o.idle_limit(false), Some((s(5), RelayEnd::TunnelTimeout)));
    assert_eq!(o.idle_limit(true), Some((s(2), RelayEnd::ClientTimeout)));
}

/// The engine spawns relays on the multi-threaded runtime.
#[allow(dead_code)]
fn relays_are_send(c: TcpStream, s: TcpStream) {
    fn assert_send<T: Send>(_: &T) {}
    let f = relay_tcp(c, s, RelayOptions::default());
    assert_send(&f);
}

#[tokio::test]
async fn client_preamble_goes_first() {
    for kind in [Kind::Splice, Kind::Generic] {
        let ((mut client, proxy_c), (proxy_s, mut backend)) = pairs().await;
        let opts = RelayOptions {
            client_preamble: bytes::Bytes::from_static(b"\x16\x03\x01 hello"),
            ..RelayOptions::default()
        };
        let relay = tokio::spawn(async move {
            match kind {
                Kind::Splice => relay_tcp(proxy_c, proxy_s, opts).await,
                Kind::Generic => relay_generic(proxy_c, proxy_s, opts).await,
            }
        });
        client.write_all(b" world").await.expect("write");
        client.shutdown().await.expect("shutdown");
        let mut got = Vec::new();
        backend.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"\x16\x03\x01 hello world", "{kind:?}");
        drop(backend);
        let stats = relay.await.expect("relay");
        assert_eq!(stats.bytes_from_client, 15, "{kind:?}");
    }
}
