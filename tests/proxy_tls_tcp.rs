//! TLS termination (SNI, ALPN h2), TLS to servers, and `mode tcp`: byte-exact
//! relay, `src` and `req.ssl_sni` routing, PROXY protocol both ways.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate + key for `name`, in one PEM file as HAProxy's `crt` takes it.
fn cert(dir: &Path, name: &str) -> PathBuf {
    self_signed_pem(dir, name, &format!("{name}.pem"))
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").args(["-s", "-S", "--max-time", "10"]).args(args).output().expect("curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_termination_picks_cert_by_sni_and_speaks_h2() {
    let dir = tempfile::tempdir().unwrap();
    let a = cert(dir.path(), "a.test");
    let b = cert(dir.path(), "b.test");
    let be = Backend::echo().await;
    let (plain, tls) = (free_port(), free_port());
    let cfg = write_config(&format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nfrontend fe\n    bind 127.0.0.1:{plain}\n    bind 127.0.0.1:{tls} ssl crt {} crt {} alpn h2,http/1.1\n    redirect scheme https code 301 if !{{ ssl_fc }}\n    http-request set-header X-SNI %[ssl_fc_sni]\n    default_backend be\nbackend be\n    server s 127.0.0.1:{}\n",
        a.display(),
        b.display(),
        be.port
    ));
    let _l = start_lanai(&cfg.path, tls);
    let r = request(plain, "GET", "/x", &[("host", "b.test")], "").await.unwrap();
    assert_eq!((r.status, r.header("location").as_deref()), (301, Some("https://b.test/x")));
    for (name, ca) in [("a.test", &a), ("b.test", &b)] {
        let url = format!("https://{name}:{tls}/hello");
        let resolve = format!("{name}:{tls}:127.0.0.1");
        let (ok, out) =
            curl(&["-i", "--http2", "--cacert", ca.to_str().unwrap(), "--resolve", &resolve, &url]);
        assert!(ok, "curl to {name} failed (wrong certificate?): {out}");
        assert!(out.starts_with("HTTP/2 200"), "expected HTTP/2: {out}");
        assert!(out.to_ascii_lowercase().contains(&format!("x-sni: {name}")), "{out}");
    }
    // HTTP/1.1 over TLS too, and the wrong CA is refused (the cert really is b's).
    let resolve = format!("b.test:{tls}:127.0.0.1");
    let url = format!("https://b.test:{tls}/");
    let (ok, out) = curl(&["--http1.1", "--cacert", b.to_str().unwrap(), "--resolve", &resolve, &url]);
    assert!(ok && out.starts_with("GET /\n"), "{out}");
    let (ok, _) = curl(&["--cacert", a.to_str().unwrap(), "--resolve", &resolve, &url]);
    assert!(!ok, "b.test must not be served a.test's certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_servers_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let good = cert(dir.path(), "backend.test");
    let other = cert(dir.path(), "other.test");
    // HAProxy terminates TLS as the backend server.
    let hport = free_port();
    let hcfg = write_config(&format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nfrontend tlsb\n    bind 127.0.0.1:{hport} ssl crt {}\n    http-request return status 200 content-type text/plain string tls-backend\n",
        good.display()
    ));
    let _h = start_haproxy(&hcfg.path, hport);
    let port = free_port();
    let cfg = write_config(&format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nfrontend fe\n    bind 127.0.0.1:{port}\n    use_backend wrong if {{ path /wrong }}\n    default_backend be\nbackend be\n    server s 127.0.0.1:{hport} ssl verify required ca-file {} sni str(backend.test)\nbackend wrong\n    server s 127.0.0.1:{hport} ssl verify required ca-file {} sni str(backend.test)\n",
        good.display(),
        other.display()
    ));
    let _l = start_lanai(&cfg.path, port);
    let r = get(port, "/").await;
    assert_eq!((r.status, r.text().as_str()), (200, "tls-backend"));
    // A server whose certificate does not verify is a connection failure: 503.
    assert_eq!(get(port, "/wrong").await.status, 503);
}

async fn echo_server() -> (u16, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { continue };
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (port, task)
}

/// A TCP server that answers `name` to every connection, then closes.
async fn named_tcp(name: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { continue };
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(name.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_mode_relays_bytes_exactly_with_half_close() {
    let (echo, _t) = echo_server().await;
    let port = free_port();
    let cfg = write_config(&format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\nlisten portmap\n    bind 127.0.0.1:{port}\n    server app 127.0.0.1:{echo}\n"
    ));
    let _l = start_lanai(&cfg.path, port);
    let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap(); // half-close: the echo must still come back
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), r.read_to_end(&mut got)).await.unwrap().unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "relayed bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_mode_routes_by_source_and_sni() {
    let (one, _t1) = named_tcp("customer1").await;
    let (two, _t2) = named_tcp("customer2").await;
    let (sni_a, _t3) = named_tcp("sni-a").await;
    let (port, sni_port) = (free_port(), free_port());
    let cfg = write_config(&format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend tunnel\n    bind 127.0.0.1:{port}\n    acl IsFrom_PilotCustomer2 src 127.0.0.2\n    use_backend c2 if IsFrom_PilotCustomer2\n    default_backend c1\n\
         frontend tls_sni\n    bind 127.0.0.1:{sni_port}\n    tcp-request inspect-delay 5s\n    tcp-request content accept if {{ req.ssl_hello_type 1 }}\n    use_backend a if {{ req.ssl_sni -i a.example }}\n    default_backend c1\n\
         backend c1\n    server s 127.0.0.1:{one}\nbackend c2\n    server s 127.0.0.1:{two}\nbackend a\n    server s 127.0.0.1:{sni_a}\n"
    ));
    let _l = start_lanai(&cfg.path, port);
    let talk = |from: &'static str, to: u16, payload: Vec<u8>| async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut s = sock.connect(([127, 0, 0, 1], to).into()).await.unwrap();
        s.write_all(&payload).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await.unwrap().unwrap();
        out
    };
    assert_eq!(talk("127.0.0.1", port, b"hi".to_vec()).await, "customer1");
    assert_eq!(talk("127.0.0.2", port, b"hi".to_vec()).await, "customer2");
    assert_eq!(talk("127.0.0.1", sni_port, client_hello("A.example")).await, "sni-a");
    assert_eq!(talk("127.0.0.1", sni_port, client_hello("b.example")).await, "customer1");
}

/// The first flight of a real TLS client for `name`.
fn client_hello(name: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let server_name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server_name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_is_sent_and_accepted() {
    // A backend that reads a PROXY header and answers the source it carried.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let be_port = l.local_addr().unwrap().port();
    let _task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { continue };
            tokio::spawn(async move {
                let header = lanai::proxy::proxy_protocol::read_header(&mut s, Duration::from_secs(2)).await;
                let answer = match header {
                    Ok(h) => format!("{:?}", h.addresses.map(|a| a.source.ip())),
                    Err(e) => format!("error {e}"),
                };
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    // lanai accepts PROXY v1 on the front and sends v2 to the server.
    let port = free_port();
    let cfg = write_config(&format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nlisten pp\n    bind 127.0.0.1:{port} accept-proxy\n    server s 127.0.0.1:{be_port} send-proxy-v2\n"
    ));
    let _l = start_lanai(&cfg.path, port);
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 80\r\nhello").await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await.unwrap().unwrap();
    assert_eq!(out, "Some(192.0.2.7)");
}
