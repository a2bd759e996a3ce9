//! Failover benchmark (ignored by default; `bench/failover/run.sh` runs it).
//!
//! Three namespaces on one bridge: two routers (10.0.0.1 master prio 150,
//! 10.0.0.2 backup prio 100) each serving HTTP on 0.0.0.0:8080, and a client
//! (10.0.0.3) that starts a probe every 10 ms: TCP connection to VIP:8080, a
//! request, the reply (100 ms timeout, probes run concurrently). The gap is the longest outage seen by the client: for
//! each run of failed probes, the first success after it minus the last success
//! before it.
//!
//! The failure is triggered right after the client saw an advert from the
//! master, so every pair is measured at the same (worst) phase.
//!
//! Failures: `kill` = SIGKILL of the master's VRRP daemon *and* its bridge port
//! taken down at the same instant (a node dying: a killed daemon alone would leave
//! the VIP configured and the node still answering); `stop` = SIGTERM (graceful:
//! priority 0 advert, VIPs removed).
//!
//! Env: BENCH_RUNS (default 3 for v2, 7 for v3) runs per case, BENCH_CASES (comma-separated filter
//! on the case name, e.g. `v3`).

mod vrrp_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vrrp_support::{conf, wait_for, Lab, VIP};

const S: Duration = Duration::from_secs(1);

/// Moves the calling thread into a network namespace (setns is per thread).
fn enter_netns(ns: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("netns file");
    // SAFETY: plain syscall on a valid fd; affects only this thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

fn http_server(ns: String, name: String, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        enter_netns(&ns);
        let l = TcpListener::bind("0.0.0.0:8080").expect("bind 8080");
        l.set_nonblocking(true).expect("nonblocking");
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
                    let mut b = [0u8; 256];
                    let _ = s.read(&mut b);
                    let _ = s.write_all(format!("HTTP/1.0 200 OK\r\n\r\n{name}").as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    });
}

fn probe_once(addr: &SocketAddr) -> bool {
    let t = Duration::from_millis(100);
    let Ok(mut s) = TcpStream::connect_timeout(addr, t) else { return false };
    let _ = s.set_read_timeout(Some(t));
    if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(n) if n > 0)
}

/// Starts a probe every 10 ms; returns (start instant, ok) for each. Probes run
/// on a pool of threads with a 100 ms timeout, so a slow answer on a loaded
/// machine is not mistaken for an outage and the 10 ms cadence holds during one.
fn prober(ns: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<(Instant, bool)>> {
    std::thread::spawn(move || {
        let (tx, rx) = std::sync::mpsc::channel::<Instant>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let results = Arc::new(std::sync::Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..16)
            .map(|_| {
                let (ns, rx, results) = (ns.clone(), rx.clone(), results.clone());
                std::thread::spawn(move || {
                    enter_netns(&ns);
                    let addr: SocketAddr = format!("{VIP}:8080").parse().expect("addr");
                    loop {
                        let tick = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(tick) = tick else { return };
                        let ok = probe_once(&addr);
                        if let Ok(mut v) = results.lock() {
                            v.push((tick, ok));
                        }
                    }
                })
            })
            .collect();
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let _ = tx.send(Instant::now());
            next += Duration::from_millis(10);
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
        drop(tx);
        for w in workers {
            let _ = w.join();
        }
        let mut v = results.lock().map(|v| v.clone()).unwrap_or_default();
        v.sort_by_key(|x| x.0);
        v
    })
}

/// Waits (in the client namespace) for one VRRP advert from `src`.
fn wait_advert(ns: &str, src: &str) -> bool {
    let ns = ns.to_string();
    let src: std::net::Ipv4Addr = src.parse().expect("ip");
    std::thread::spawn(move || {
        enter_netns(&ns);
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::RAW,
            Some(socket2::Protocol::from(112)),
        )
        .expect("raw socket");
        s.join_multicast_v4(&"224.0.0.18".parse().expect("group"), &"10.0.0.3".parse().expect("ip"))
            .expect("join");
        s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        let mut b = [0u8; 1500];
        loop {
            match (&s).read(&mut b) {
                Ok(n) if n >= 20 && b[12..16] == src.octets() => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    })
    .join()
    .unwrap_or(false)
}

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Keepalived,
    Lanai,
}

fn start(lab: &mut Lab, i: usize, who: Impl, name: &str, c: &str) -> usize {
    match who {
        Impl::Keepalived => lab.keepalived(i, name, c),
        Impl::Lanai => lab.lanai(i, name, c),
    }
}

/// One run: returns the client-visible gap.
fn run_case(tag: &str, master: Impl, backup: Impl, v3: bool, kill: bool) -> Option<Duration> {
    let mut lab = Lab::new(tag, 3);
    let (ver, adv, vrid) = if v3 { (3, "0.1", 60) } else { (2, "1", 61) };
    let stop = Arc::new(AtomicBool::new(false));
    http_server(lab.nodes[0].clone(), "a".into(), stop.clone());
    http_server(lab.nodes[1].clone(), "b".into(), stop.clone());
    let m = start(&mut lab, 0, master, "m", &conf(ver, vrid, "MASTER", 150, adv, ""));
    if wait_for(6 * S, || lab.has_vip(0)).is_none() {
        eprintln!("{tag}: master never got the VIP:\n{}", lab.log(m));
        return None;
    }
    let _b = start(&mut lab, 1, backup, "b", &conf(ver, vrid, "BACKUP", 100, adv, ""));
    // Let the backup settle into BACKUP (it must have heard the master).
    std::thread::sleep(if v3 { S } else { 3 * S });
    if lab.has_vip(1) {
        eprintln!("{tag}: backup holds the VIP before the failure:\n{}", lab.log(_b));
        return None;
    }
    let pstop = Arc::new(AtomicBool::new(false));
    let p = prober(lab.nodes[2].clone(), pstop.clone());
    std::thread::sleep(S / 2);
    // Fail right after an advert from the master reached the wire: the backup's
    // timer restarts at each advert, so a random phase would add up to one
    // interval of noise; this measures the worst case, the same for every pair.
    if !wait_advert(&lab.nodes[2], "10.0.0.1") {
        eprintln!("{tag}: no advert from the master seen");
        return None;
    }
    let t_fail = Instant::now();
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!("{tag}: failure at {:?}", std::time::SystemTime::now());
    }
    if kill {
        lab.kill(m);
        let _ = std::process::Command::new("ip")
            .args(["-n", &format!("lanai-vrrp-{}-{tag}-sw", std::process::id()), "link", "set", "p0", "down"])
            .status();
    } else {
        lab.term(m);
    }
    let took = wait_for(8 * S, || lab.has_vip(1));
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!("{tag}: VIP on the backup {took:?} after the failure");
        for l in lab.log(_b).lines().rev().take(12).collect::<Vec<_>>().into_iter().rev() {
            eprintln!("  backup: {l}");
        }
    }
    std::thread::sleep(S / 2);
    // Probes first: stopping the servers while probes are in flight would
    // fail them.
    pstop.store(true, Ordering::Relaxed);
    let samples = p.join().ok()?;
    stop.store(true, Ordering::Relaxed);
    if took.is_none() {
        eprintln!(
            "{tag}: the backup never took over\n--- master:\n{}\n--- backup:\n{}",
            lab.log(m),
            lab.log(_b)
        );
    }
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        for l in lab.log(m).lines().rev().take(6).collect::<Vec<_>>().into_iter().rev() {
            eprintln!("  master: {l}");
        }
        let fails: Vec<String> = samples
            .iter()
            .filter(|(t, ok)| !*ok && *t > t_fail)
            .map(|(t, _)| format!("{:?}", t.duration_since(t_fail)))
            .collect();
        eprintln!("  failed probes after the failure: {fails:?}");
    }
    took?;
    // Gap: the longest client-visible outage after the failure, i.e. for each
    // run of failed probes, first success after it minus last success before it.
    let mut gap = Duration::ZERO;
    let mut last_ok: Option<Instant> = None;
    let mut in_outage = false;
    for (t, ok) in &samples {
        if *ok {
            if in_outage {
                if let Some(l) = last_ok {
                    gap = gap.max(*t - l);
                }
                in_outage = false;
            }
            last_ok = Some(*t);
        } else {
            // Probing starts 0.5 s before the trigger; any outage in the whole
            // window counts (there is none before the trigger in practice).
            in_outage = true;
        }
    }
    if in_outage {
        eprintln!("{tag}: the client never recovered");
        return None;
    }
    Some(gap)
}

#[test]
#[ignore = "benchmark: run bench/failover/run.sh"]
fn failover_gap() {
    let runs: Option<usize> = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok());
    let filter = std::env::var("BENCH_CASES").unwrap_or_default();
    let pairs = [
        ("keepalived->keepalived", Impl::Keepalived, Impl::Keepalived),
        ("lanai->lanai", Impl::Lanai, Impl::Lanai),
        ("keepalived->lanai", Impl::Keepalived, Impl::Lanai),
        ("lanai->keepalived", Impl::Lanai, Impl::Keepalived),
    ];
    println!("| case | master -> backup | runs | gaps (ms) | median (ms) | max (ms) |");
    println!("|---|---|---|---|---|---|");
    let mut n = 0;
    for (v3, vname) in [(false, "v2 advert_int 1"), (true, "v3 advert_int 0.1")] {
        for (kill, kname) in [(true, "hard kill"), (false, "graceful stop")] {
            for (pname, m, b) in pairs {
                let case = format!("{vname}, {kname}");
                if !filter.is_empty() && !filter.split(',').any(|f| case.contains(f) || pname.contains(f)) {
                    continue;
                }
                let mut gaps = vec![];
                for _ in 0..runs.unwrap_or(if v3 { 7 } else { 3 }) {
                    n += 1;
                    match run_case(&format!("b{n}"), m, b, v3, kill) {
                        Some(g) => gaps.push(g.as_millis()),
                        None => eprintln!("{case} {pname}: run failed"),
                    }
                }
                let mut sorted = gaps.clone();
                sorted.sort();
                let median = sorted.get(sorted.len() / 2).map(|m| m.to_string()).unwrap_or("-".into());
                let list = gaps.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", ");
                let max = sorted.last().map(|m| m.to_string()).unwrap_or("-".into());
                println!("| {case} | {pname} | {} | {list} | {median} | {max} |", gaps.len());
            }
        }
    }
}
