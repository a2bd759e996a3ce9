//! Network-namespace lab for the VRRP tests and the failover benchmark.
//!
//! Topology: one "switch" namespace holding a bridge, and N node namespaces each
//! joined to it by a veth pair (`eth0` in the node, `pI` on the bridge). Node i has
//! 10.0.0.(i+1)/24. Every namespace name carries the test process id and a tag, so
//! parallel tests and parallel engineers never collide. `Drop` kills every process
//! started here and deletes the namespaces, also when the test panics.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const VIP: &str = "10.0.0.100";
pub const VIP6: &str = "fd00::100";

pub struct Lab {
    pub tag: String,
    sw: String,
    pub nodes: Vec<String>,
    pub dir: tempfile::TempDir,
    procs: Vec<Proc>,
}

pub struct Proc {
    pub child: Child,
    pub ns: usize,
    pub log: PathBuf,
    /// keepalived's VRRP child pid file (hard kill must hit it too).
    pub vrrp_pid: Option<PathBuf>,
    pub control: Option<PathBuf>,
}

fn sh(args: &[&str]) -> std::process::Output {
    match Command::new(args[0]).args(&args[1..]).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {args:?}: {e}"),
    }
}

fn must(args: &[&str]) {
    let o = sh(args);
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
}

impl Lab {
    /// Creates `n` node namespaces on one bridge.
    pub fn new(tag: &str, n: usize) -> Lab {
        let pid = std::process::id();
        let base = format!("lanai-vrrp-{pid}-{tag}");
        let sw = format!("{base}-sw");
        let mut lab = Lab {
            tag: tag.to_string(),
            sw: sw.clone(),
            nodes: vec![],
            dir: tempfile::tempdir().expect("tempdir"),
            procs: vec![],
        };
        must(&["ip", "netns", "add", &sw]);
        must(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for i in 0..n {
            let ns = format!("{base}-{i}");
            must(&["ip", "netns", "add", &ns]);
            lab.nodes.push(ns.clone());
            let p = format!("p{i}");
            must(&[
                "ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &p, "netns", &sw,
            ]);
            must(&["ip", "-n", &sw, "link", "set", &p, "master", "br0", "up"]);
            // No duplicate address detection: link-local (IPv6 VRRP) usable at once.
            for k in ["all", "default", "eth0"] {
                must(&[
                    "ip",
                    "netns",
                    "exec",
                    &ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{k}.accept_dad=0"),
                ]);
            }
            must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            must(&["ip", "-n", &ns, "addr", "add", &format!("10.0.0.{}/24", i + 1), "dev", "eth0"]);
            must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    pub fn ip(&self, i: usize) -> String {
        format!("10.0.0.{}", i + 1)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, text).expect("write");
        p
    }

    /// Runs a command inside node `i`, returns its stdout.
    pub fn exec(&self, i: usize, args: &[&str]) -> String {
        let mut a = vec!["ip", "netns", "exec", &self.nodes[i]];
        a.extend_from_slice(args);
        String::from_utf8_lossy(&sh(&a).stdout).into_owned()
    }

    pub fn has_vip(&self, i: usize) -> bool {
        self.has_addr(i, VIP)
    }

    pub fn has_addr(&self, i: usize, addr: &str) -> bool {
        let out = String::from_utf8_lossy(&sh(&["ip", "-n", &self.nodes[i], "-o", "addr", "show"]).stdout)
            .into_owned();
        out.contains(&format!(" {addr}/"))
    }

    fn spawn(&mut self, i: usize, args: &[&str], log: PathBuf) -> usize {
        let f = fs::File::create(&log).expect("log");
        let f2 = f.try_clone().expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.nodes[i]])
            .args(args)
            .env("RUST_LOG", std::env::var("LANAI_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .expect("spawn");
        self.procs.push(Proc { child, ns: i, log, vrrp_pid: None, control: None });
        self.procs.len() - 1
    }

    /// Starts `lanai vrrp` in node `i`; returns a process handle index.
    pub fn lanai(&mut self, i: usize, name: &str, conf: &str) -> usize {
        let cfg = self.write(&format!("{name}.conf"), conf);
        let ctl = self.path(&format!("{name}.sock"));
        let _ = fs::remove_file(&ctl);
        let log = self.path(&format!("{name}.log"));
        let bin = env!("CARGO_BIN_EXE_lanai");
        let h = self.spawn(
            i,
            &[
                bin,
                "vrrp",
                "-f",
                cfg.to_str().unwrap_or_default(),
                "--control",
                ctl.to_str().unwrap_or_default(),
            ],
            log,
        );
        self.procs[h].control = Some(ctl);
        h
    }

    /// Starts keepalived (VRRP only, foreground, console logs) in node `i`.
    pub fn keepalived(&mut self, i: usize, name: &str, conf: &str) -> usize {
        let cfg = self.write(&format!("{name}.conf"), conf);
        let pid = self.path(&format!("{name}.pid"));
        let vpid = self.path(&format!("{name}.vrrp.pid"));
        let log = self.path(&format!("{name}.log"));
        let h = self.spawn(
            i,
            &[
                "/usr/sbin/keepalived",
                "-n",
                "-l",
                "-D",
                "-G",
                "-R",
                "-P",
                "-f",
                cfg.to_str().unwrap_or_default(),
                "-p",
                pid.to_str().unwrap_or_default(),
                "-r",
                vpid.to_str().unwrap_or_default(),
            ],
            log,
        );
        self.procs[h].vrrp_pid = Some(vpid);
        h
    }

    pub fn log(&self, h: usize) -> String {
        fs::read_to_string(&self.procs[h].log).unwrap_or_default()
    }

    /// SIGKILL, including keepalived's VRRP child (killed first so that it does
    /// not see its parent die and stop gracefully).
    pub fn kill(&mut self, h: usize) {
        let p = &mut self.procs[h];
        if let Some(vp) = &p.vrrp_pid {
            if let Ok(s) = fs::read_to_string(vp) {
                if let Ok(pid) = s.trim().parse::<i32>() {
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                }
            }
        }
        let _ = p.child.kill();
        let _ = p.child.wait();
    }

    /// SIGTERM and wait for exit (graceful stop).
    pub fn term(&mut self, h: usize) {
        let p = &mut self.procs[h];
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p.child.id() as i32),
            nix::sys::signal::SIGTERM,
        );
    }

    pub fn wait_exit(&mut self, h: usize, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Ok(Some(_)) = self.procs[h].child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// `show instances` on a lanai's control socket.
    pub fn show(&self, h: usize) -> Option<serde_json::Value> {
        let ctl = self.procs[h].control.as_ref()?;
        let mut s = UnixStream::connect(ctl).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"show instances\n").ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        serde_json::from_str(&line).ok()
    }

    pub fn control(&self, h: usize, cmd: &str) -> Option<String> {
        let ctl = self.procs[h].control.as_ref()?;
        let mut s = UnixStream::connect(ctl).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(format!("{cmd}\n").as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line.trim().to_string())
    }

    /// State of the first instance of a lanai process.
    pub fn state(&self, h: usize) -> String {
        self.show(h).and_then(|v| v[0]["state"].as_str().map(str::to_string)).unwrap_or_default()
    }

    /// Runs `tcpdump`-like capture with tshark in node `i` for `secs`.
    pub fn capture(&self, i: usize, secs: u32, file: &Path) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.nodes[i], "tshark", "-q", "-i", "eth0", "-a"])
            .arg(format!("duration:{secs}"))
            .args(["-f", "ip proto 112 or ip6 proto 112", "-w"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tshark")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in 0..self.procs.len() {
            self.kill(h);
        }
        for ns in self.nodes.iter().chain(std::iter::once(&self.sw)) {
            // Anything else still running in the namespace (notify scripts...).
            let pids = sh(&["ip", "netns", "pids", ns]);
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                if let Ok(p) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
                }
            }
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

/// Polls `f` every 5 ms until it is true or `timeout` passes; returns the time it
/// took, or None.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if f() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The same with the IPv6 VIP (VRRPv3 over IPv6).
pub fn conf6(vrid: u8, state: &str, prio: u8, advert: &str, extra: &str) -> String {
    conf(3, vrid, state, prio, advert, extra).replace("10.0.0.100/24", "fd00::100/64")
}

/// A keepalived.conf with one instance; `extra` goes inside the instance block.
pub fn conf(version: u8, vrid: u8, state: &str, prio: u8, advert: &str, extra: &str) -> String {
    format!(
        "global_defs {{\n  vrrp_version {version}\n  vrrp_garp_master_delay 1\n}}\nvrrp_instance VI_1 {{\n  state {state}\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int {advert}\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n{extra}}}\n"
    )
}

impl Lab {
    /// `ip -n SWITCH ARGS...`: acts on the bridge side (ports `pI`, `br0`).
    pub fn switch(&self, args: &[&str]) {
        let mut a = vec!["ip", "-n", &self.sw];
        a.extend_from_slice(args);
        must(&a);
    }

    /// SIGHUP (reload).
    pub fn hup(&self, h: usize) {
        let p = &self.procs[h];
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.child.id() as i32), nix::sys::signal::SIGHUP);
    }
}
