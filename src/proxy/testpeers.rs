//! Test helpers that run the real reference peers (HAProxy) on loopback.
//! Tests that need a peer skip (with a message) when its binary is missing, so
//! `cargo test` still runs on a developer machine without the Debian packages.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (racy by nature: the port is released before use).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

pub fn haproxy_bin() -> Option<PathBuf> {
    ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"].iter().map(PathBuf::from).find(|p| p.exists())
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

/// Writes `cfg` into `dir/haproxy.cfg`, starts `haproxy -db` on it (output in
/// `dir/haproxy.stdout` and `dir/haproxy.stderr`) and waits until every port
/// in `wait_ports` accepts connections.
pub fn start_haproxy(dir: &Path, cfg: &str, wait_ports: &[u16]) -> Option<Peer> {
    let bin = haproxy_bin()?;
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).ok()?;
    let stderr_path = dir.join("haproxy.stderr");
    let err = std::fs::File::create(&stderr_path).ok()?;
    let out = std::fs::File::create(dir.join("haproxy.stdout")).ok()?;
    let child = Command::new(bin).arg("-db").arg("-f").arg(&path).stdout(out).stderr(err).spawn().ok()?;
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

/// A proxy section with nothing set, for tests that need a `Proxy` (the
/// parser is not used by these modules' tests).
pub fn proxy(name: &str) -> crate::conf::haproxy::model::Proxy {
    use crate::conf::haproxy::model::{Capabilities, Proxy};
    Proxy { retry_on: Default::default(), ..Proxy::new(name, 1, Capabilities::default()) }
}
