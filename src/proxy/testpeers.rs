//! Test helpers that run the real reference peers (HAProxy, nginx) on loopback.
//! Tests that need a peer skip (with a message) when its binary is missing, so
//! `cargo test` still runs on a developer machine without the Debian packages.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (racy by nature: the port is released before use).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

pub fn haproxy_bin() -> Option<PathBuf> {
    ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"].iter().map(PathBuf::from).find(|p| p.exists())
}

#[allow(dead_code)] // used by the TLS interop tests
pub fn nginx_bin() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// A child process killed when dropped.
pub struct Peer {
    child: Child,
    pub stderr_path: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// Writes `cfg` into `dir/haproxy.cfg`, starts `haproxy -db` on it and waits
/// until every port in `wait_ports` accepts connections.
pub fn start_haproxy(dir: &Path, cfg: &str, wait_ports: &[u16]) -> Option<Peer> {
    let bin = haproxy_bin()?;
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).ok()?;
    let stderr_path = dir.join("haproxy.stderr");
    let err = std::fs::File::create(&stderr_path).ok()?;
    let child =
        Command::new(bin).arg("-db").arg("-f").arg(&path).stdout(Stdio::null()).stderr(err).spawn().ok()?;
    let peer = Peer { child, stderr_path };
    wait_listening(&peer, wait_ports)?;
    Some(peer)
}

/// Starts nginx in the foreground with `conf` as its whole configuration.
#[allow(dead_code)]
pub fn start_nginx(dir: &Path, conf: &str, wait_ports: &[u16]) -> Option<Peer> {
    let bin = nginx_bin()?;
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).ok()?;
    let stderr_path = dir.join("nginx.stderr");
    let err = std::fs::File::create(&stderr_path).ok()?;
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .arg("-g")
        .arg("daemon off;")
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .ok()?;
    let peer = Peer { child, stderr_path };
    wait_listening(&peer, wait_ports)?;
    Some(peer)
}

fn wait_listening(peer: &Peer, ports: &[u16]) -> Option<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in ports {
        let addr = SocketAddr::from(([127, 0, 0, 1], *port));
        loop {
            if StdStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("peer did not listen on {addr}: {}", peer.stderr());
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Some(())
}
