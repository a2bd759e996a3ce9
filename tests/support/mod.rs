//! Shared test helpers: real processes (lanai, haproxy) on loopback, backends
//! written with hyper inside the test, and a small HTTP client. Every process
//! is killed when its guard drops, even when a test panics.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Ports handed out by [`free_port`]: below the kernel's ephemeral range
/// (32768 and up by default), where no `bind(0)` or outgoing connection of a
/// test running alongside can take a port between its choice and its use.
const TEST_PORTS: std::ops::Range<u16> = 20000..32000;

/// A TCP port on 127.0.0.1 that nothing listens on, never the same twice in
/// one process (tests of a file run in parallel).
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    // Each process from its own place, should two test binaries run at once.
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = TEST_PORTS.start + ((start + n) % span) as u16;
        if StdListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {TEST_PORTS:?}")
}

pub fn wait_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if StdStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
    pub log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Proc {
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log_text().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct ConfigFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn write_config(text: &str) -> ConfigFile {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, text).expect("write config");
    ConfigFile { dir, path }
}

pub fn lanai_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lanai")
}

/// Starts `lanai proxy -f PATH` and waits until `port` accepts.
pub fn start_lanai(cfg: &Path, port: u16) -> Proc {
    let p = spawn_lanai(cfg);
    assert!(wait_port(port, Duration::from_secs(10)), "lanai did not listen on {port}: {}", p.log_text());
    // Listening comes before the runtime socket, pidfile, chroot and user
    // change; this line comes after them all.
    assert!(
        p.wait_log("lanai proxy started with", Duration::from_secs(10)),
        "lanai did not finish starting: {}",
        p.log_text()
    );
    p
}

/// Starts `lanai proxy -f PATH`, its output in `PATH.lanai.log`, without waiting.
pub fn spawn_lanai(cfg: &Path) -> Proc {
    spawn_lanai_with(cfg, |_| {})
}

/// The same, with `setup` applied to the command first (limits, user).
pub fn spawn_lanai_with(cfg: &Path, setup: impl FnOnce(&mut Command)) -> Proc {
    let log = cfg.with_extension("lanai.log");
    let out = std::fs::File::create(&log).expect("log file");
    let out2 = out.try_clone().expect("log file");
    let mut cmd = Command::new(lanai_bin());
    cmd.args(["proxy", "-f"]).arg(cfg).env("LANAI_LOG", "info").stdout(out2).stderr(out);
    setup(&mut cmd);
    let child = cmd.spawn().expect("spawn lanai");
    Proc { child, name: "lanai", log, _dir: None }
}

/// Starts HAProxy 2.6 (Debian package) in the foreground on the same kind of config.
pub fn start_haproxy(cfg: &Path, port: u16) -> Proc {
    let bin = Path::new("/usr/sbin/haproxy");
    assert!(bin.exists(), "haproxy is required for this test: apt-get install haproxy");
    let log = cfg.with_extension("haproxy.log");
    let out = std::fs::File::create(&log).expect("log file");
    let child = Command::new(bin)
        .arg("-db")
        .arg("-f")
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("spawn haproxy");
    let p = Proc { child, name: "haproxy", log, _dir: None };
    assert!(wait_port(port, Duration::from_secs(10)), "haproxy did not listen on {port}: {}", p.log_text());
    p
}

/// A response as the test sees it.
#[derive(Debug, Clone)]
pub struct Got {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

/// One request on a new connection.
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Got, String> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut builder = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        builder = builder.header("host", format!("127.0.0.1:{port}"));
    }
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    let req = builder.body(Full::new(Bytes::from(body.to_string()))).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Got { status, headers, body })
}

pub async fn get(port: u16, path: &str) -> Got {
    request(port, "GET", path, &[], "").await.expect("request failed")
}

/// What a test backend answers.
pub type Handler = Arc<dyn Fn(Request<Bytes>) -> Response<Full<Bytes>> + Send + Sync>;

/// An HTTP backend inside the test, answering with `handler`. Counts requests.
pub struct Backend {
    pub port: u16,
    pub hits: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub async fn start(handler: Handler) -> Backend {
        Self::start_on(0, handler).await
    }

    pub async fn start_on(port: u16, handler: Handler) -> Backend {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind backend");
        let port = listener.local_addr().map(|a: SocketAddr| a.port()).expect("addr");
        let hits = Arc::new(AtomicU64::new(0));
        let hits2 = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let handler = Arc::clone(&handler);
                let hits = Arc::clone(&hits2);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let handler = Arc::clone(&handler);
                        let hits = Arc::clone(&hits);
                        async move {
                            hits.fetch_add(1, Ordering::Relaxed);
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                            let req = Request::from_parts(parts, body);
                            // Handlers may block (slow backends sleep): keep them
                            // off the runtime's workers. Upgrade handlers need the
                            // runtime context, so they run inline.
                            let resp = if req.headers().contains_key(http::header::UPGRADE) {
                                handler(req)
                            } else {
                                match tokio::task::spawn_blocking(move || handler(req)).await {
                                    Ok(r) => r,
                                    Err(_) => Response::builder()
                                        .status(500)
                                        .body(Full::new(Bytes::new()))
                                        .expect("response"),
                                }
                            };
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Backend { port, hits, task }
    }

    /// A backend answering its own name as the body.
    pub async fn named(name: &'static str) -> Backend {
        Self::start(Arc::new(move |_req| Response::new(Full::new(Bytes::from(name))))).await
    }

    /// A backend echoing the request head as text ("METHOD URI\nname: value\n…").
    pub async fn echo() -> Backend {
        Self::start(Arc::new(|req: Request<Bytes>| {
            let mut text = format!("{} {}\n", req.method(), req.uri());
            for (n, v) in req.headers() {
                text.push_str(&format!("{}: {}\n", n, v.to_str().unwrap_or("?")));
            }
            text.push_str(&format!("\n{}", String::from_utf8_lossy(req.body())));
            Response::new(Full::new(Bytes::from(text)))
        }))
        .await
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

/// A raw TCP backend that answers every connection with fixed bytes then closes.
pub async fn raw_backend(reply: &'static [u8], delay: Duration) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let _ = s.write_all(reply).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, task)
}

/// Writes a file in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).expect("create");
    f.write_all(content).expect("write");
    p
}

/// Starts nginx (Debian package) in the foreground on `port`, answering `name`
/// to every request. A real server process the tests can SIGKILL.
pub fn start_nginx(port: u16, name: &str) -> (Proc, tempfile::TempDir) {
    let bin = Path::new("/usr/sbin/nginx");
    assert!(bin.exists(), "nginx is required for this test: apt-get install nginx-light");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  keepalive_requests 100000;\n  server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 200 '{name}'; }}\n  }}\n}}\n"
    );
    let path = write_file(dir.path(), "nginx.conf", conf.as_bytes());
    let log = dir.path().join("stderr.log");
    let out = std::fs::File::create(&log).expect("log");
    let child = Command::new(bin)
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("spawn nginx");
    let p = Proc { child, name: "nginx", log, _dir: None };
    assert!(wait_port(port, Duration::from_secs(10)), "nginx did not listen on {port}: {}", p.log_text());
    (p, dir)
}

/// Runs `workers` client loops against `port` until `stop` is set; each loop
/// keeps its connection alive and also opens new ones. Returns (ok, failed, last errors).
pub async fn load_loop(
    port: u16,
    workers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (u64, u64, Vec<String>) {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut errors) = (0u64, 0u64, Vec::new());
            let mut sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> = None;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // Every third request on a fresh connection, the rest keep-alive.
                if sender.is_none() || (n + w as u64) % 3 == 0 {
                    sender = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                        Ok(s) => {
                            match hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(s))
                                .await
                            {
                                Ok((snd, conn)) => {
                                    tokio::spawn(conn);
                                    Some(snd)
                                }
                                Err(e) => {
                                    failed += 1;
                                    errors.push(format!("handshake: {e}"));
                                    None
                                }
                            }
                        }
                        Err(e) => {
                            failed += 1;
                            errors.push(format!("connect: {e}"));
                            None
                        }
                    };
                }
                let Some(s) = sender.as_mut() else { continue };
                let req =
                    Request::get("/").header("host", "load").body(Full::new(Bytes::new())).expect("req");
                match tokio::time::timeout(Duration::from_secs(10), s.send_request(req)).await {
                    Ok(Ok(resp)) => {
                        let status = resp.status().as_u16();
                        let body = resp.into_body().collect().await.map(|c| c.to_bytes());
                        if status == 200 && body.is_ok() {
                            ok += 1;
                        } else {
                            failed += 1;
                            errors.push(format!("status {status}"));
                        }
                    }
                    Ok(Err(e)) => {
                        failed += 1;
                        errors.push(format!("request: {e}"));
                        sender = None;
                    }
                    Err(_) => {
                        failed += 1;
                        errors.push("timeout".into());
                        sender = None;
                    }
                }
            }
            (ok, failed, errors)
        }));
    }
    let (mut ok, mut failed, mut errors) = (0, 0, Vec::new());
    for t in tasks {
        if let Ok((o, f, e)) = t.await {
            ok += o;
            failed += f;
            errors.extend(e.into_iter().take(5));
        }
    }
    (ok, failed, errors)
}

/// Sends one runtime API command on a Unix socket and returns the answer.
pub async fn runtime_cmd(path: &Path, cmd: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(path).await.expect("connect runtime socket");
    s.write_all(format!("{cmd}\n").as_bytes()).await.expect("write");
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await;
    out
}

/// Polls `cond` every 50 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// A self-signed ECDSA certificate + key for `name`, in one PEM file `dir/file`
/// as HAProxy's `crt` takes it (openssl is required).
pub fn self_signed_pem(dir: &Path, name: &str, file: &str) -> PathBuf {
    let (key, crt) = (dir.join(format!("{file}.k")), dir.join(format!("{file}.c")));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .args(["-subj", &format!("/CN={name}"), "-addext", &format!("subjectAltName=DNS:{name}")])
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pem = dir.join(file);
    let mut all = std::fs::read(&crt).unwrap();
    all.extend(std::fs::read(&key).unwrap());
    std::fs::write(&pem, all).unwrap();
    std::fs::remove_file(key).unwrap();
    std::fs::remove_file(crt).unwrap();
    pem
}
