//! Certificates are made by the `openssl` CLI, once per test binary: a root
//! (RSA), an intermediate (EC), leaves with each key format HAProxy takes
//! (PKCS#1 RSA, SEC1 EC, PKCS#8), a wildcard, a directory, and a client cert.

use super::*;
use crate::conf::haproxy::model::{BindTls, ServerSni, ServerTls, TlsDefaults, TlsVersion, Verify};
use crate::proxy::testpeers;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SCRIPT: &str = r#"
set -e
ca_ext='basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash'
leaf() { # name san issuer
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$2" > "$1.ext"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 30 -subj "/CN=Lanai Test Root" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other.pem -days 30 \
  -subj "/CN=Other Root" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out int.key
openssl req -new -key int.key -subj "/CN=Lanai Test Intermediate" -out int.csr
printf '%s\n' "$ca_ext" > int.ext
openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 -extfile int.ext -out int.pem 2>/dev/null
# a.test: RSA key in PKCS#1, issued by the intermediate, chain in the bundle.
openssl genrsa -traditional -out a.test.key 2048 2>/dev/null
leaf a.test DNS:a.test int
cat a.test.crt int.pem a.test.key > a.pem
# a.test again with an ECDSA key (HAProxy multi-cert style), CN a-ec.test.
openssl ecparam -name prime256v1 -genkey -noout -out a-ec.test.key
leaf a-ec.test DNS:a.test int
cat a-ec.test.crt int.pem a-ec.test.key > a-ec.pem
# *.b.test + b.test: EC key in SEC1, issued by the root.
openssl ecparam -name prime256v1 -genkey -noout -out b.test.key
leaf b.test 'DNS:*.b.test,DNS:b.test' root
cat b.test.crt b.test.key > b.pem
# c.test: PKCS#8 key in a `.key` sibling, inside a directory with an OCSP sibling.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out c.test.key 2>/dev/null
leaf c.test DNS:c.test root
mkdir -p certs.d empty.d
cp c.test.crt certs.d/c.pem
cp c.test.key certs.d/c.pem.key
echo 'not a certificate' > certs.d/c.pem.ocsp
# server.test: PKCS#8 RSA, via the intermediate (reference servers).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server.test.key 2>/dev/null
leaf server.test DNS:server.test int
cat server.test.crt int.pem server.test.key > server.pem
# client certificate, from the root.
openssl ecparam -name prime256v1 -genkey -noout -out client.key
leaf client DNS:client.test root
cat client.crt client.key > client.pem
# cn-only.test: self-signed, subject CN only, no SAN.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout cn.key -out cn.crt -days 30 \
  -subj "/CN=cn-only.test" 2>/dev/null
cat cn.crt cn.key > cn.pem
# Broken inputs.
cat a.test.crt b.test.key > mismatch.pem
echo hello > garbage.pem
"#;

struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn leaf(&self, name: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.path(&format!("{name}.crt"))).expect("leaf certificate")
    }
}

static CERTS: OnceLock<Option<Certs>> = OnceLock::new();

/// Removes the shared certificate directory when the test binary exits
/// (statics are never dropped, so a TempDir there would leak).
extern "C" fn remove_certs_dir() {
    if let Some(Some(c)) = CERTS.get() {
        let _ = std::fs::remove_dir_all(&c.dir);
    }
}

/// The certificates, or None when `openssl` is not installed. The directory
/// is shared by all tests of the binary and removed at exit.
fn certs() -> Option<&'static Certs> {
    CERTS
        .get_or_init(|| {
            let dir = tempfile::Builder::new().prefix("lanai-tls-test").tempdir().ok()?.keep();
            // SAFETY: registers a plain extern "C" function without captures.
            unsafe { libc::atexit(remove_certs_dir) };
            if std::process::Command::new("openssl").arg("version").output().is_err() {
                eprintln!("openssl not installed: skipping TLS tests");
                return None;
            }
            let out =
                std::process::Command::new("sh").arg("-c").arg(SCRIPT).current_dir(&dir).output().ok()?;
            // openssl is there: a failure here is a broken test, not a skip.
            assert!(
                out.status.success(),
                "certificate generation failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(Certs { dir })
        })
        .as_ref()
}

fn bind(certs: Vec<PathBuf>) -> BindTls {
    BindTls {
        certs,
        alpn: Vec::new(),
        min_version: None,
        max_version: None,
        ciphersuites: Vec::new(),
        ca_file: None,
        verify: Verify::None,
    }
}

fn server_tls(verify: Verify, ca_file: Option<PathBuf>) -> ServerTls {
    ServerTls { verify, ca_file, crt: None, sni: None, alpn: Vec::new() }
}

/// Accepts TLS connections forever; each successful one gets `hi\n`.
async fn serve(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"hi\n").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
) -> std::io::Result<ClientStream> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
}

/// Handshake and read the greeting: true when the server accepted us.
async fn greeted(addr: SocketAddr, config: Arc<rustls::ClientConfig>, name: ServerName<'static>) -> bool {
    let Ok(mut s) = connect(addr, config, name).await else { return false };
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.is_ok() && buf == b"hi\n"
}

fn dns(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_string()).expect("dns name")
}

fn ip_name() -> ServerName<'static> {
    ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into())
}

/// A client trusting our test root, or trusting anything.
fn client(certs: &Certs, verify: bool) -> Arc<rustls::ClientConfig> {
    let tls = if verify {
        server_tls(Verify::Required, Some(certs.path("root.pem")))
    } else {
        server_tls(Verify::None, None)
    };
    client_config(&tls, &TlsDefaults::default()).expect("client config")
}

#[tokio::test]
async fn sni_selects_exact_wildcard_then_default() {
    let Some(c) = certs() else { return };
    let cfg = bind(vec![c.path("a.pem"), c.path("b.pem"), c.path("certs.d"), c.path("cn.pem")]);
    let addr = serve(server_config(&cfg, &TlsDefaults::default()).expect("server config")).await;
    let cases = [
        (Some("cn-only.test"), "cn"), // subject CN, as HAProxy indexes it
        (Some("a.test"), "a.test"),
        (Some("A.Test"), "a.test"),
        (Some("b.test"), "b.test"),
        (Some("x.b.test"), "b.test"),
        (Some("y.x.b.test"), "a.test"), // a wildcard covers one label only
        (Some("c.test"), "c.test"),
        (Some("unknown.test"), "a.test"),
        (None, "a.test"),
    ];
    for (sni, want) in cases {
        let name = sni.map(dns).unwrap_or_else(ip_name);
        // verify=none: the name check would refuse the default certificate.
        let s = connect(addr, client(c, false), name).await.expect("handshake");
        let peer = s.get_ref().1.peer_certificates().expect("peer certs");
        assert_eq!(peer[0], c.leaf(want), "SNI {sni:?} should get {want}");
    }
    // The chain sent for a.test includes the intermediate: strict verification
    // against the root alone succeeds.
    assert!(greeted(addr, client(c, true), dns("a.test")).await);
    assert!(greeted(addr, client(c, true), dns("x.b.test")).await);
}

#[tokio::test]
async fn alpn_and_cipher_suites() {
    let Some(c) = certs() else { return };
    let mut cfg = bind(vec![c.path("b.pem")]);
    cfg.alpn = vec!["h2".into(), "http/1.1".into()];
    cfg.ciphersuites = vec!["TLS_CHACHA20_POLY1305_SHA256".into()];
    let addr = serve(server_config(&cfg, &TlsDefaults::default()).expect("server config")).await;
    let mut tls = server_tls(Verify::Required, Some(c.path("root.pem")));
    tls.alpn = vec!["h2".into()];
    let s = connect(addr, client_config(&tls, &TlsDefaults::default()).expect("client"), dns("b.test"))
        .await
        .expect("handshake");
    let conn = s.get_ref().1;
    assert_eq!(conn.alpn_protocol(), Some(b"h2".as_slice()));
    let suite = conn.negotiated_cipher_suite().and_then(|s| s.suite().as_str());
    assert_eq!(suite, Some("TLS13_CHACHA20_POLY1305_SHA256"));
    assert_eq!(conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn tls13_minimum_refuses_tls12_client() {
    let Some(c) = certs() else { return };
    let tls12_only = TlsDefaults { max_version: Some(TlsVersion::Tls12), ..TlsDefaults::default() };
    let old_client = client_config(&server_tls(Verify::None, None), &tls12_only).expect("client");
    // From the bind line…
    let mut cfg = bind(vec![c.path("a.pem")]);
    cfg.min_version = Some(TlsVersion::Tls13);
    let addr = serve(server_config(&cfg, &TlsDefaults::default()).expect("server")).await;
    assert!(!greeted(addr, old_client.clone(), dns("a.test")).await);
    assert!(greeted(addr, client(c, true), dns("a.test")).await);
    // …or from ssl-default-bind-options.
    let defaults = TlsDefaults { min_version: Some(TlsVersion::Tls13), ..TlsDefaults::default() };
    let addr = serve(server_config(&bind(vec![c.path("a.pem")]), &defaults).expect("server")).await;
    assert!(!greeted(addr, old_client.clone(), dns("a.test")).await);
    // Without the minimum, the TLS 1.2 client is served over TLS 1.2.
    let addr =
        serve(server_config(&bind(vec![c.path("a.pem")]), &TlsDefaults::default()).expect("server")).await;
    let s = connect(addr, old_client, dns("a.test")).await.expect("tls12 handshake");
    assert_eq!(s.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
}

#[tokio::test]
async fn client_certificates_required_and_optional() {
    let Some(c) = certs() else { return };
    let mut with_cert = server_tls(Verify::Required, Some(c.path("root.pem")));
    with_cert.crt = Some(c.path("client.pem"));
    let with_cert = client_config(&with_cert, &TlsDefaults::default()).expect("client with cert");
    for (verify, anonymous_ok) in [(Verify::Required, false), (Verify::Optional, true)] {
        let mut cfg = bind(vec![c.path("a.pem")]);
        cfg.ca_file = Some(c.path("root.pem"));
        cfg.verify = verify;
        let addr = serve(server_config(&cfg, &TlsDefaults::default()).expect("server")).await;
        assert!(greeted(addr, with_cert.clone(), dns("a.test")).await, "{verify:?} with cert");
        assert_eq!(
            greeted(addr, client(c, true), dns("a.test")).await,
            anonymous_ok,
            "{verify:?} without cert"
        );
    }
}

fn server_err(certs: Vec<PathBuf>) -> String {
    match server_config(&bind(certs), &TlsDefaults::default()) {
        Ok(_) => panic!("config accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_files_give_named_errors() {
    let Some(c) = certs() else { return };
    let p = |n: &str| c.path(n);
    let show = |n: &str| p(n).display().to_string();
    let e = server_err(vec![p("missing.pem")]);
    assert!(e.contains(&show("missing.pem")) && e.contains("cannot read"), "{e}");
    let e = server_err(vec![p("a.test.crt")]);
    assert!(e.contains(&show("a.test.crt")) && e.contains("no private key"), "{e}");
    let e = server_err(vec![p("a.test.key")]);
    assert!(e.contains(&show("a.test.key")) && e.contains("no certificate"), "{e}");
    let e = server_err(vec![p("garbage.pem")]);
    assert!(e.contains(&show("garbage.pem")) && e.contains("no certificate"), "{e}");
    let e = server_err(vec![p("mismatch.pem")]);
    assert!(e.contains(&show("mismatch.pem")) && e.contains("does not match"), "{e}");
    let e = server_err(vec![p("empty.d")]);
    assert!(e.contains(&show("empty.d")) && e.contains("no certificate file"), "{e}");
    assert!(server_err(vec![]).contains("no `crt`"));

    let mut cfg = bind(vec![p("a.pem")]);
    cfg.verify = Verify::Required;
    assert!(matches!(server_config(&cfg, &TlsDefaults::default()), Err(TlsError::VerifyWithoutCa)));
    cfg.ca_file = Some(p("garbage.pem"));
    let e = server_config(&cfg, &TlsDefaults::default()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains(&show("garbage.pem")) && e.contains("CA"), "{e}");
    let mut cfg = bind(vec![p("a.pem")]);
    cfg.ciphersuites = vec!["RC4-MD5".into()];
    assert!(
        matches!(server_config(&cfg, &TlsDefaults::default()), Err(TlsError::UnknownCipher(n)) if n == "RC4-MD5")
    );
    let mut cfg = bind(vec![p("a.pem")]);
    cfg.min_version = Some(TlsVersion::Tls13);
    cfg.ciphersuites = vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()];
    assert!(matches!(server_config(&cfg, &TlsDefaults::default()), Err(TlsError::NoUsableSuite)));

    let mut tls = server_tls(Verify::None, None);
    tls.crt = Some(p("mismatch.pem"));
    let e = client_config(&tls, &TlsDefaults::default()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains(&show("mismatch.pem")), "{e}");
}

// ------------------------------------------------------------------ interop

/// `openssl s_client` against our server: the handshake succeeds and the
/// certificate shown is the one for the requested name.
#[tokio::test]
async fn openssl_s_client_sees_the_sni_certificate() {
    let Some(c) = certs() else { return };
    let cfg = bind(vec![c.path("a.pem"), c.path("b.pem"), c.path("certs.d")]);
    let addr = serve(server_config(&cfg, &TlsDefaults::default()).expect("server")).await;
    for (servername, subject) in [("x.b.test", "b.test"), ("c.test", "c.test"), ("a.test", "a.test")] {
        let out = tokio::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-servername", servername])
            .args(["-CAfile", &c.path("root.pem").display().to_string(), "-verify_return_error"])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        let subject_line =
            text.lines().find(|l| l.starts_with("subject=")).unwrap_or_default().replace(' ', "");
        assert_eq!(subject_line, format!("subject=CN={subject}"), "{servername}: {text}");
        assert!(text.contains("Verify return code: 0 (ok)"), "{servername}: {text}");
    }
}

/// Our client config against a real HAProxy TLS listener: verification with
/// the right `ca-file` succeeds (by name and chain-only by address), a wrong
/// CA fails, `verify none` accepts it anyway, and HAProxy's own client
/// certificate check accepts our `crt`.
#[tokio::test]
async fn client_config_against_haproxy() {
    let Some(c) = certs() else { return };
    if testpeers::haproxy_bin().is_none() {
        eprintln!("haproxy not installed: skipping");
        return;
    }
    let [p1, p2] = [testpeers::free_port(), testpeers::free_port()];
    let srv = c.path("server.pem").display().to_string();
    let root = c.path("root.pem").display().to_string();
    let cfg = format!(
        "global\n  maxconn 100\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend plain\n  bind 127.0.0.1:{p1} ssl crt {srv} alpn h2,http/1.1\n\
         \x20 http-request return status 200 content-type text/plain string ok\n\
         frontend mtls\n  bind 127.0.0.1:{p2} ssl crt {srv} ca-file {root} verify required\n\
         \x20 http-request return status 200 content-type text/plain string mtls-ok\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let _haproxy = testpeers::start_haproxy(dir.path(), &cfg, &[p1, p2]).expect("haproxy did not start");

    async fn get(port: u16, tls: &ServerTls) -> Result<String, String> {
        let config = client_config(tls, &TlsDefaults::default()).map_err(|e| e.to_string())?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let name = server_name_for(tls, addr, None);
        let mut s = connect(addr, config, name).await.map_err(|e| e.to_string())?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: server.test\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&resp).into_owned())
    }
    let ok = |r: &Result<String, String>, body: &str| matches!(r, Ok(t) if t.starts_with("HTTP/1.1 200") && t.ends_with(body));

    let mut tls = server_tls(Verify::Required, Some(c.path("root.pem")));
    tls.sni = Some(ServerSni::Literal("server.test".into()));
    tls.alpn = vec!["http/1.1".into()];
    let r = get(p1, &tls).await;
    assert!(ok(&r, "ok"), "{r:?}");

    tls.sni = Some(ServerSni::Literal("wrong.test".into()));
    let r = get(p1, &tls).await;
    assert!(matches!(&r, Err(e) if e.contains("not valid for name")), "{r:?}");

    tls.sni = None; // by address: chain only, as HAProxy without `sni`
    let r = get(p1, &tls).await;
    assert!(ok(&r, "ok"), "{r:?}");

    let mut wrong = server_tls(Verify::Required, Some(c.path("other.pem")));
    wrong.sni = Some(ServerSni::Literal("server.test".into()));
    let r = get(p1, &wrong).await;
    assert!(matches!(&r, Err(e) if e.contains("UnknownIssuer")), "{r:?}");

    wrong.verify = Verify::None;
    let r = get(p1, &wrong).await;
    assert!(ok(&r, "ok"), "{r:?}");

    let mut mtls = server_tls(Verify::Required, Some(c.path("root.pem")));
    mtls.sni = Some(ServerSni::Literal("server.test".into()));
    let r = get(p2, &mtls).await;
    assert!(!ok(&r, "mtls-ok"), "accepted without a client certificate: {r:?}");
    mtls.crt = Some(c.path("client.pem"));
    let r = get(p2, &mtls).await;
    assert!(ok(&r, "mtls-ok"), "{r:?}");
}

/// HAProxy as the TLS client of our server (`server … ssl verify required
/// sni … crt … alpn …`): it verifies our chain, gets the certificate for its
/// SNI, and its client certificate passes our `verify required`.
#[tokio::test]
async fn haproxy_as_client_of_our_server() {
    let Some(c) = certs() else { return };
    if testpeers::haproxy_bin().is_none() {
        eprintln!("haproxy not installed: skipping");
        return;
    }
    let mut cfg = bind(vec![c.path("b.pem"), c.path("a.pem")]);
    cfg.alpn = vec!["h2".into(), "http/1.1".into()];
    cfg.ca_file = Some(c.path("root.pem"));
    cfg.verify = Verify::Required;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ours = listener.local_addr().expect("addr");
    let acceptor =
        tokio_rustls::TlsAcceptor::from(server_config(&cfg, &TlsDefaults::default()).expect("server"));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let conn = tls.get_ref().1;
                let line = format!(
                    "sni={} alpn={} client_certs={}\n",
                    conn.server_name().unwrap_or("-"),
                    String::from_utf8_lossy(conn.alpn_protocol().unwrap_or(b"-")),
                    conn.peer_certificates().map_or(0, |c| c.len()),
                );
                let _ = tls.write_all(line.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let port = testpeers::free_port();
    let root = c.path("root.pem").display().to_string();
    let client_pem = c.path("client.pem").display().to_string();
    let hcfg = format!(
        "global\n  maxconn 100\n\
         defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         listen to_ours\n  bind 127.0.0.1:{port}\n\
         \x20 server s {ours} ssl verify required ca-file {root} sni str(x.b.test) crt {client_pem} alpn h2\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let _haproxy = testpeers::start_haproxy(dir.path(), &hcfg, &[port]).expect("haproxy did not start");
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    assert_eq!(out, "sni=x.b.test alpn=h2 client_certs=1\n");
}

/// A second connection from the same client config resumes the session.
#[tokio::test]
async fn sessions_resume() {
    let Some(c) = certs() else { return };
    let addr =
        serve(server_config(&bind(vec![c.path("b.pem")]), &TlsDefaults::default()).expect("server")).await;
    let config = client(c, true);
    for (i, want) in [(0, rustls::HandshakeKind::Full), (1, rustls::HandshakeKind::Resumed)] {
        let mut s = connect(addr, config.clone(), dns("b.test")).await.expect("handshake");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read"); // tickets arrive after the handshake
        assert_eq!(s.get_ref().1.handshake_kind(), Some(want), "connection {i}");
    }
}

/// Two certificates for one name (RSA and ECDSA): the client's signature
/// algorithms pick, as with HAProxy's multi-cert bundles.
#[tokio::test]
async fn key_type_follows_client_signature_algorithms() {
    let Some(c) = certs() else { return };
    let cfg = bind(vec![c.path("a.pem"), c.path("a-ec.pem")]);
    let addr = serve(server_config(&cfg, &TlsDefaults::default()).expect("server")).await;
    for (sigalgs, subject) in
        [("ecdsa_secp256r1_sha256", "a-ec.test"), ("rsa_pss_rsae_sha256:rsa_pkcs1_sha256", "a.test")]
    {
        let out = tokio::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-servername", "a.test", "-sigalgs", sigalgs])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        let subject_line =
            text.lines().find(|l| l.starts_with("subject=")).unwrap_or_default().replace(' ', "");
        assert_eq!(subject_line, format!("subject=CN={subject}"), "{sigalgs}: {text}");
    }
}

/// A `<crt>.ocsp` sibling is stapled to the handshake.
#[tokio::test]
async fn ocsp_sibling_is_stapled() {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use std::sync::Mutex;
    #[derive(Debug)]
    struct Capture(Mutex<Vec<u8>>, Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for Capture {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            ocsp: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            if let Ok(mut seen) = self.0.lock() {
                *seen = ocsp.to_vec();
            }
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.1.signature_verification_algorithms.supported_schemes()
        }
    }
    let Some(c) = certs() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let crt = dir.path().join("b.pem");
    std::fs::copy(c.path("b.pem"), &crt).expect("copy");
    let staple = [0x30, 0x03, 0x0a, 0x01, 0x00];
    std::fs::write(dir.path().join("b.pem.ocsp"), staple).expect("ocsp");
    let addr = serve(server_config(&bind(vec![crt]), &TlsDefaults::default()).expect("server")).await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let capture = Arc::new(Capture(Mutex::new(Vec::new()), provider.clone()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let _s = connect(addr, Arc::new(config), dns("b.test")).await.expect("handshake");
    assert_eq!(capture.0.lock().map(|v| v.clone()).unwrap_or_default(), staple);
}

/// TLS termination in front of a plain backend, as `mode tcp` + `bind … ssl`
/// runs it: our server config, then `relay_generic` between the TLS stream and
/// the backend socket. The client's close_notify half-closes toward the
/// backend, whose late reply still reaches the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_tls_relays_to_plain_backend() {
    use crate::proxy::relay::{relay_generic, RelayEnd, RelayOptions};
    let Some(c) = certs() else { return };
    let backend = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let be_addr = backend.local_addr().expect("addr");
    let backend_task = tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.expect("accept");
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("backend read");
        s.write_all(format!("got {} bytes", got.len()).as_bytes()).await.expect("backend write");
        got
    });
    let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let fe_addr = front.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(
        server_config(&bind(vec![c.path("b.pem")]), &TlsDefaults::default()).expect("server"),
    );
    let proxy = tokio::spawn(async move {
        let (tcp, _) = front.accept().await.expect("accept");
        let tls = acceptor.accept(tcp).await.expect("tls accept");
        let server = TcpStream::connect(be_addr).await.expect("connect backend");
        relay_generic(tls, server, RelayOptions::default()).await
    });
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut s = connect(fe_addr, client(c, true), dns("b.test")).await.expect("handshake");
    s.write_all(&payload).await.expect("write");
    s.shutdown().await.expect("close_notify");
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.expect("reply");
    assert_eq!(reply, "got 1000000 bytes");
    assert!(backend_task.await.expect("backend") == payload);
    let stats = proxy.await.expect("proxy");
    assert_eq!(
        (stats.bytes_from_client, stats.bytes_from_server, stats.end),
        (1_000_000, 17, RelayEnd::Closed)
    );
}
