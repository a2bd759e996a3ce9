//! `ip address dhcp`: busybox's DHCP client as a child process, with the lanai
//! binary itself as its script (no shell script to install).
//!
//! udhcpc runs in the foreground (`-f`) and releases its lease when stopped
//! (`-R`). It calls `SCRIPT deconfig|bound|renew|leasefail|nak` with the lease
//! in its environment (`interface ip mask subnet router`); our environment
//! variable `LANAI_DHCP_HOOK` makes `main` hand that call to [`hook`], which
//! adds the leased address and default route through netlink and records what
//! it added in a small lease file, so that it (on the next event) or the
//! daemon (when it stops the client) removes exactly that and nothing else:
//! unlike udhcpc's sample script, no `ip addr flush`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::netlink::{Change, Netlink};
use crate::conf::rc::{Cidr, Route};

/// Set (to anything) in udhcpc's environment: `lanai` is running as its script.
pub const HOOK_ENV: &str = "LANAI_DHCP_HOOK";
/// Path of the lease file the hook keeps for its interface.
pub const LEASE_ENV: &str = "LANAI_DHCP_LEASE";

/// What the hook knows of the lease and what it added for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Last udhcpc event (`bound`, `renew`, `deconfig`, `leasefail`, `nak`).
    pub event: String,
    /// The leased address, when the hook added it (so it is ours to remove).
    #[serde(default)]
    pub address: Option<Cidr>,
    /// Gateway of the default route the hook added.
    #[serde(default)]
    pub router: Option<IpAddr>,
}

pub fn read_lease(path: &Path) -> Option<Lease> {
    std::fs::read_to_string(path).ok().and_then(|s| serde_json::from_str(&s).ok())
}

fn write_lease(path: &Path, lease: &Lease) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(lease).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

fn default_route(router: IpAddr) -> Route {
    let any = if router.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { IpAddr::from([0u16; 8]) };
    Route { destination: Cidr { addr: any, prefix: 0 }, gateway: router }
}

/// One line per change (`Ok`) or failure (`Err`).
type Log = Vec<Result<String, String>>;

/// Removes what `lease` says we added on `iface`. Returns what is left (the
/// parts whose removal failed) and what happened.
fn remove(nl: &mut Netlink, iface: &str, mut lease: Lease) -> (Lease, Log) {
    let mut log = vec![];
    let index = match nl.link(iface) {
        Ok(Some(l)) => l.index,
        // The interface is gone, and its address and routes with it.
        Ok(None) => return (Lease { address: None, router: None, ..lease }, log),
        Err(e) => return (lease, vec![Err(e)]),
    };
    if let Some(gw) = lease.router {
        match nl.del_route(iface, index, &default_route(gw)) {
            Ok(_) => {
                log.push(Ok(format!("{iface}: removed DHCP default route via {gw}")));
                lease.router = None;
            }
            Err(e) => log.push(Err(e)),
        }
    }
    if let Some(a) = lease.address {
        nl.keep_secondaries(iface, index, a);
        match nl.del_address(iface, index, a) {
            Ok(_) => {
                log.push(Ok(format!("{iface}: removed DHCP address {a}")));
                lease.address = None;
            }
            Err(e) => log.push(Err(e)),
        }
    }
    (lease, log)
}

/// The lease of a `bound`/`renew` event, from udhcpc's environment.
pub fn lease_from_env(env: &BTreeMap<String, String>) -> Result<(Cidr, Option<IpAddr>), String> {
    let ip: Ipv4Addr =
        env.get("ip").and_then(|s| s.parse().ok()).ok_or_else(|| "udhcpc gave no valid 'ip'".to_string())?;
    // `mask` (prefix length) is set by recent busybox; `subnet` (dotted) by all.
    let prefix = env
        .get("mask")
        .and_then(|m| m.parse::<u8>().ok())
        .or_else(|| {
            let m: Ipv4Addr = env.get("subnet")?.parse().ok()?;
            let bits = u32::from(m);
            // Only contiguous masks.
            (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(bits.leading_ones() as u8)
        })
        .filter(|p| *p <= 32)
        .unwrap_or(32);
    let router = env.get("router").and_then(|r| r.split_whitespace().next()).and_then(|r| r.parse().ok());
    Ok((Cidr { addr: ip.into(), prefix }, router.map(IpAddr::V4)))
}

/// Entry point when udhcpc runs us as its script. Always exits 0 once it got
/// this far (udhcpc ignores the status); problems go to stderr, which is the
/// daemon's log.
pub fn hook(event: &str) -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let Some(iface) = env.get("interface").cloned() else {
        eprintln!("lanai dhcp hook: no 'interface' in the environment");
        return ExitCode::from(1);
    };
    let Some(path) = env.get(LEASE_ENV).map(PathBuf::from) else {
        eprintln!("lanai dhcp hook: {iface}: {LEASE_ENV} not set");
        return ExitCode::from(1);
    };
    let mut nl = match Netlink::open() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("lanai dhcp hook: {iface}: netlink: {e}");
            return ExitCode::from(1);
        }
    };
    let old = read_lease(&path).unwrap_or_default();
    let (lease, log) = handle(&mut nl, &iface, event, &env, old);
    for l in log {
        match l {
            Ok(l) => eprintln!("lanai dhcp hook: {l}"),
            Err(l) => eprintln!("lanai dhcp hook: error: {l}"),
        }
    }
    if let Err(e) = write_lease(&path, &lease) {
        eprintln!("lanai dhcp hook: {iface}: cannot write {}: {e}", path.display());
    }
    ExitCode::SUCCESS
}

fn handle(
    nl: &mut Netlink,
    iface: &str,
    event: &str,
    env: &BTreeMap<String, String>,
    old: Lease,
) -> (Lease, Log) {
    match event {
        "deconfig" => {
            let (mut lease, log) = remove(nl, iface, old);
            lease.event = event.into();
            (lease, log)
        }
        "bound" | "renew" => {
            let (cidr, router) = match lease_from_env(env) {
                Ok(l) => l,
                Err(e) => return (Lease { event: event.into(), ..old }, vec![Err(format!("{iface}: {e}"))]),
            };
            // Drop what changed, keep what is the same (a renew is usually a no-op).
            let stale = Lease {
                address: old.address.filter(|a| *a != cidr),
                router: old.router.filter(|r| Some(*r) != router),
                ..old.clone()
            };
            let (left, mut log) = remove(nl, iface, stale);
            let mut lease = Lease {
                event: event.into(),
                address: left.address.or(old.address.filter(|a| *a == cidr)),
                router: left.router.or(old.router.filter(|r| Some(*r) == router)),
            };
            let index = match nl.link(iface) {
                Ok(Some(l)) => l.index,
                Ok(None) => {
                    log.push(Err(format!("{iface}: interface not found")));
                    return (lease, log);
                }
                Err(e) => {
                    log.push(Err(e));
                    return (lease, log);
                }
            };
            if lease.address != Some(cidr) {
                match nl.add_address(iface, index, cidr) {
                    Ok(Change::Done) => {
                        log.push(Ok(format!("{iface}: added DHCP address {cidr}")));
                        lease.address = Some(cidr);
                    }
                    Ok(Change::Unchanged) => {
                        log.push(Ok(format!("{iface}: {cidr} already present, left alone")))
                    }
                    Err(e) => log.push(Err(e)),
                }
            }
            if let Some(gw) = router.filter(|gw| lease.router != Some(*gw)) {
                match nl.add_route(iface, index, &default_route(gw)) {
                    Ok(Change::Done) => {
                        log.push(Ok(format!("{iface}: added DHCP default route via {gw}")));
                        lease.router = Some(gw);
                    }
                    Ok(Change::Unchanged) => log.push(Ok(format!(
                        "{iface}: a default route exists already, DHCP router {gw} not added"
                    ))),
                    Err(e) => log.push(Err(e)),
                }
            }
            (lease, log)
        }
        // leasefail, nak: nothing to change.
        other => (Lease { event: other.into(), ..old }, vec![Ok(format!("{iface}: DHCP {other}"))]),
    }
}

/// The DHCP client program: `udhcpc` when in PATH, else `busybox udhcpc`.
fn client_program() -> (PathBuf, Vec<&'static str>) {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|d| d.join("udhcpc")).find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    match found {
        Some(p) => (p, vec![]),
        None => (PathBuf::from("busybox"), vec!["udhcpc"]),
    }
}

struct Client {
    child: Child,
    started: Instant,
    /// Exit status once it died on its own.
    exited: Option<String>,
}

/// Status of one interface's client, for `show`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub running: bool,
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exited: Option<String>,
    pub lease: Option<Lease>,
}

/// The daemon's DHCP clients, by interface.
pub struct Clients {
    /// Lease files are `{base}.dhcp-{IF}.json` (next to the control socket).
    base: PathBuf,
    clients: BTreeMap<String, Client>,
}

impl Clients {
    pub fn new(base: PathBuf) -> Clients {
        Clients { base, clients: BTreeMap::new() }
    }

    pub fn lease_path(&self, iface: &str) -> PathBuf {
        PathBuf::from(format!("{}.dhcp-{iface}.json", self.base.display()))
    }

    /// Spawns udhcpc for `iface`.
    pub fn start(&mut self, iface: &str) -> Result<u32, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("{iface}: cannot find the lanai binary: {e}"))?;
        let (prog, pre) = client_program();
        let mut cmd = Command::new(&prog);
        cmd.args(pre)
            .args(["-f", "-R", "-T", "3", "-A", "10", "-i", iface, "-s"])
            .arg(exe)
            .env(HOOK_ENV, "1")
            .env(LEASE_ENV, self.lease_path(iface))
            .stdin(Stdio::null());
        // The client must not outlive a daemon killed with SIGKILL. The daemon
        // runs on one thread (current-thread runtime), so "parent thread
        // exits" means "daemon exits".
        // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| format!("{iface}: cannot run {}: {e}", prog.display()))?;
        let pid = child.id();
        self.clients.insert(iface.to_string(), Client { child, started: Instant::now(), exited: None });
        Ok(pid)
    }

    pub fn running(&self, iface: &str) -> bool {
        self.clients.get(iface).is_some_and(|c| c.exited.is_none())
    }

    /// Notes clients that died; returns the interfaces whose client died at
    /// least `backoff` after its start (to be restarted) — a client failing at
    /// once is retried only on the next tick after the backoff.
    pub fn reap(&mut self, backoff: Duration) -> Vec<String> {
        let mut restart = vec![];
        for (iface, c) in &mut self.clients {
            if c.exited.is_none() {
                if let Ok(Some(st)) = c.child.try_wait() {
                    warn!("{iface}: DHCP client exited ({st})");
                    c.exited = Some(st.to_string());
                }
            }
            if c.exited.is_some() && c.started.elapsed() >= backoff {
                restart.push(iface.clone());
            }
        }
        restart
    }

    /// Stops the client (it releases the lease), then removes whatever its
    /// lease file still says we added, and the file. Errors are returned.
    pub async fn stop(&mut self, nl: &mut Netlink, iface: &str) -> Vec<String> {
        if let Some(mut c) = self.clients.remove(iface) {
            if c.exited.is_none() {
                // SIGTERM: udhcpc sends a DHCPRELEASE and runs `deconfig`.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(c.child.id() as i32),
                    nix::sys::signal::SIGTERM,
                );
                let t0 = Instant::now();
                while matches!(c.child.try_wait(), Ok(None)) {
                    if t0.elapsed() > Duration::from_secs(3) {
                        let _ = c.child.kill();
                        let _ = c.child.wait();
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            info!("{iface}: stopped DHCP client");
        }
        let path = self.lease_path(iface);
        let Some(lease) = read_lease(&path) else {
            let _ = std::fs::remove_file(&path);
            return vec![];
        };
        let (left, log) = remove(nl, iface, lease);
        let mut errors = vec![];
        for l in log {
            match l {
                Ok(l) => info!("{l}"),
                Err(l) => {
                    warn!("{l}");
                    errors.push(l);
                }
            }
        }
        if left.address.is_none() && left.router.is_none() {
            let _ = std::fs::remove_file(&path);
        } else if let Err(e) = write_lease(&path, &left) {
            warn!("{iface}: cannot write {}: {e}", path.display());
        }
        errors
    }

    pub fn status(&self, iface: &str) -> Status {
        let c = self.clients.get(iface);
        Status {
            running: self.running(iface),
            pid: c.filter(|c| c.exited.is_none()).map(|c| c.child.id()),
            exited: c.and_then(|c| c.exited.clone()),
            lease: read_lease(&self.lease_path(iface)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn lease_environment() {
        let (c, r) =
            lease_from_env(&env(&[("ip", "10.5.0.20"), ("mask", "24"), ("router", "10.5.0.1 10.5.0.2")]))
                .unwrap();
        assert_eq!(c, Cidr::parse("10.5.0.20/24").unwrap());
        assert_eq!(r, Some("10.5.0.1".parse().unwrap()));
        let (c, r) = lease_from_env(&env(&[("ip", "10.5.0.20"), ("subnet", "255.255.252.0")])).unwrap();
        assert_eq!(c.prefix, 22);
        assert_eq!(r, None);
        // A non-contiguous mask is not guessed at.
        let (c, _) = lease_from_env(&env(&[("ip", "10.5.0.20"), ("subnet", "255.0.255.0")])).unwrap();
        assert_eq!(c.prefix, 32);
        assert!(lease_from_env(&env(&[("ip", "nonsense")])).is_err());
    }

    #[test]
    fn lease_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.dhcp-eth0.json");
        let l = Lease {
            event: "bound".into(),
            address: Some(Cidr::parse("10.5.0.20/24").unwrap()),
            router: Some("10.5.0.1".parse().unwrap()),
        };
        write_lease(&p, &l).unwrap();
        assert_eq!(read_lease(&p), Some(l));
        assert_eq!(default_route("10.5.0.1".parse().unwrap()).destination, Cidr::parse("0.0.0.0/0").unwrap());
    }
}
