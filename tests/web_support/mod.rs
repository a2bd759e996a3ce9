//! Helpers of tests/api.rs: a real `lanai run` on a temporary data directory
//! (stopped, children included, on Drop) and an HTTPS client that trusts only
//! the certificate that run generated.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::support;
use super::support::free_port;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

pub const PASSWORD: &str = "test-password-1";

/// A `lanai run` process on its own data directory.
pub struct Appliance {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
    pub port: u16,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Appliance {
    pub fn start(data_dir: &Path, env_password: Option<&str>) -> Appliance {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanai"));
        cmd.arg("run")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("LANAI_LOG", "warn")
            .env_remove("LANAI_ADMIN_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(p) = env_password {
            cmd.env("LANAI_ADMIN_PASSWORD", p);
        }
        let mut child = cmd.spawn().expect("spawn lanai run");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().expect("lines").push(line);
            }
        });
        let app = Appliance { child: Some(child), data_dir: data_dir.to_path_buf(), port, stdout };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !app.stdout_text().contains("Lanai console: https://") {
            assert!(Instant::now() < deadline, "lanai run did not start; stdout: {}", app.stdout_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        app
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().expect("lines").join("\n")
    }

    pub fn origin(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// SIGTERM (the services stop with it), then whatever is left is killed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        // Children of a lanai run that died without stopping them.
        if let Ok(entries) = std::fs::read_dir(self.data_dir.join("run")) {
            for entry in entries.flatten() {
                if entry.path().extension().is_some_and(|e| e == "pid") {
                    if let Some(pid) = std::fs::read_to_string(entry.path())
                        .ok()
                        .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse::<i32>().ok()))
                    {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        https(&self.data_dir, self.port, method, path, headers, body.into()).await
    }

    pub async fn basic(&self, method: &str, path: &str, body: impl Into<Bytes>) -> Reply {
        let auth = basic_header("admin", PASSWORD);
        self.call(method, path, &[("authorization", &auth)], body).await
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn basic_header(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// An error reply: JSON with a non-empty `error` message.
    pub fn assert_error(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        let ct = self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(ct.starts_with("application/json"), "content-type {ct}: {}", self.body);
        let v = self.json();
        assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        v
    }

    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }
}

/// One HTTPS/1.1 request on a new connection, trusting only the appliance's certificate.
pub async fn https(
    data_dir: &Path,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    https_as(data_dir, port, "127.0.0.1", false, method, path, headers, body).await
}

/// `https` with the TLS server name and the protocol chosen: HTTP/2 (ALPN h2,
/// as browsers do) carries the host in `:authority`, not in a Host header.
#[allow(clippy::too_many_arguments)]
pub async fn https_as(
    data_dir: &Path,
    port: u16,
    server_name: &str,
    h2: bool,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    use rustls_pki_types::pem::PemObject;
    let cert_path = data_dir.join("tls/cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(&cert_path).expect("cert.pem") {
        roots.add(cert.expect("certificate")).expect("trust the generated certificate");
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth();
    if h2 {
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string()).expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake with the generated certificate");
    if h2 {
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "server should speak h2");
        let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        let mut req =
            hyper::Request::builder().method(method).uri(format!("https://{server_name}:{port}{path}"));
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let resp = sender.send_request(req.body(Full::new(body)).expect("request")).await.expect("response");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() };
    }
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tls)).await.expect("handshake");
    tokio::spawn(conn);
    let mut req =
        hyper::Request::builder().method(method).uri(path).header("host", format!("{server_name}:{port}"));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(Full::new(body)).expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(20), sender.send_request(req))
        .await
        .expect("timeout")
        .expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

pub fn proxy_config(port: u16, word: &str) -> String {
    format!(
        "global\n    log stdout format raw local0 info\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\nfrontend fe\n    bind 127.0.0.1:{port}\n    http-request return status 200 content-type text/plain string {word}\n"
    )
}

/// The body answered on `port` (plain HTTP through the data plane), retried for a while.
pub async fn through_proxy(port: u16, want: Option<&str>) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = support::request(port, "GET", "/", &[], "").await.ok().map(|g| g.text());
        if got.as_deref() == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the supervisor reports `service` running (it starts with `lanai run`).
pub async fn wait_running(app: &Appliance, service: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = app.basic("GET", "/api/services", "").await.json();
        let status = list
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == service))
            .and_then(|s| s["status"].as_str().map(str::to_string))
            .unwrap_or_default();
        if status == "running" {
            return;
        }
        assert!(Instant::now() < deadline, "{service} not running: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn running_revision(app: &Appliance, service: &str) -> i64 {
    let list = app.basic("GET", "/api/services", "").await.json();
    list.as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == service))
        .and_then(|s| s["running_revision"].as_i64())
        .expect("running revision")
}
