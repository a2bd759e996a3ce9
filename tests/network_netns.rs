//! `lanai network` in network namespaces: addresses (v4+v6), routes, mtu,
//! link up, VLAN and dummy links, reload (valid, invalid), stop, SIGTERM,
//! SIGKILL + restart, a missing interface, DHCP against busybox udhcpd.
//!
//! Needs root, iproute2 and busybox (scripts/test.sh installs them). Each lab
//! is two namespaces named after the test pid and a tag: `a` runs lanai with
//! `veth0`, `b` holds its peer `peer0`. `Drop` kills what it started and
//! deletes the namespaces, also when a test panics.
//!
//! VLAN and dummy links need kernel support (8021q, dummy); on a kernel
//! without it those parts are skipped with a message, the rest still runs.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t0.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Lab {
    a: String,
    b: String,
    dir: tempfile::TempDir,
    procs: Vec<Child>,
    ctl: PathBuf,
    conf: PathBuf,
    log: PathBuf,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let base = format!("lanai-net-{}-{tag}", std::process::id());
        let (a, b) = (format!("{base}-a"), format!("{base}-b"));
        let dir = tempfile::tempdir().expect("tempdir");
        let lab = Lab {
            ctl: dir.path().join("network.sock"),
            conf: dir.path().join("config.rc"),
            log: dir.path().join("network.log"),
            a,
            b,
            dir,
            procs: vec![],
        };
        must(&["ip", "netns", "add", &lab.a]);
        must(&["ip", "netns", "add", &lab.b]);
        must(&[
            "ip", "link", "add", "veth0", "netns", &lab.a, "type", "veth", "peer", "name", "peer0", "netns",
            &lab.b,
        ]);
        for ns in [&lab.a, &lab.b] {
            // No duplicate address detection: IPv6 addresses and routes usable at once.
            for k in ["all", "default"] {
                must(&[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{k}.accept_dad=0"),
                ]);
            }
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        must(&["ip", "-n", &lab.b, "link", "set", "peer0", "up"]);
        lab
    }

    fn ip_a(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", &self.a];
        v.extend_from_slice(args);
        must(&v);
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut v = vec!["ip", "-n", &self.a, "-j"];
        v.extend_from_slice(args);
        let o = sh(&v);
        serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
    }

    /// Every address in namespace `a` as `IF ADDR/LEN`.
    fn addrs(&self) -> Vec<String> {
        let mut out = vec![];
        for link in self.json(&["addr", "show"]).as_array().cloned().unwrap_or_default() {
            let name = link["ifname"].as_str().unwrap_or_default().to_string();
            for a in link["addr_info"].as_array().cloned().unwrap_or_default() {
                if a["scope"] == "link" || a["scope"] == "host" {
                    continue;
                }
                out.push(format!("{name} {}/{}", a["local"].as_str().unwrap_or_default(), a["prefixlen"]));
            }
        }
        out
    }

    fn has_addr(&self, s: &str) -> bool {
        self.addrs().iter().any(|a| a == s)
    }

    /// Routes of protocol 76 (lanai's) as `DEST via GW dev IF`, v4 then v6.
    fn routes(&self) -> Vec<String> {
        let mut out = vec![];
        for fam in ["-4", "-6"] {
            for r in self.json(&[fam, "route", "show", "proto", "76"]).as_array().cloned().unwrap_or_default()
            {
                out.push(format!(
                    "{} via {} dev {}",
                    r["dst"].as_str().unwrap_or_default(),
                    r["gateway"].as_str().unwrap_or_default(),
                    r["dev"].as_str().unwrap_or_default()
                ));
            }
        }
        out
    }

    /// (exists, mtu, admin up) of a link in `a`.
    fn link(&self, name: &str) -> (bool, u64, bool) {
        let v = self.json(&["link", "show", "dev", name]);
        let l = &v[0];
        let up = l["flags"].as_array().is_some_and(|f| f.iter().any(|x| x == "UP"));
        (l.is_object(), l["mtu"].as_u64().unwrap_or(0), up)
    }

    /// Whether the kernel can create a link of this kind (`dummy`, `vlan`).
    fn kernel_has(&self, kind: &str) -> bool {
        let probe = format!("probe{kind}");
        let mut args = vec!["ip", "-n", &self.a, "link", "add"];
        if kind == "vlan" {
            args.extend(["link", "veth0"]);
        }
        args.extend(["name", &probe, "type", kind]);
        if kind == "vlan" {
            args.extend(["id", "7"]);
        }
        let ok = sh(&args).status.success();
        if ok {
            let _ = sh(&["ip", "-n", &self.a, "link", "del", &probe]);
        } else {
            eprintln!(
                "SKIPPED: this kernel cannot create {kind} links; that part of the test does not run here"
            );
        }
        ok
    }

    fn write_conf(&self, text: &str) {
        fs::write(&self.conf, text).expect("write config");
    }

    /// Starts `lanai network` in `a`; waits until its control socket answers.
    fn start(&mut self) {
        let _ = fs::remove_file(&self.ctl);
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.a, env!("CARGO_BIN_EXE_lanai"), "network", "-f"])
            .arg(&self.conf)
            .arg("--control")
            .arg(&self.ctl)
            .env("LANAI_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn lanai network");
        self.procs.push(child);
        let ok = wait_for(Duration::from_secs(20), || UnixStream::connect(&self.ctl).is_ok());
        assert!(ok, "control socket never answered; log:\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One command on the control socket: the whole reply.
    fn control(&self, cmd: &str) -> String {
        let mut s =
            UnixStream::connect(&self.ctl).unwrap_or_else(|e| panic!("connect: {e}\n{}", self.log_text()));
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        s.write_all(format!("{cmd}\n").as_bytes()).expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    }

    fn show(&self) -> Value {
        serde_json::from_str(self.control("show").trim()).unwrap_or(Value::Null)
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.procs.last().map(|c| c.id() as i32).expect("a process");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }

    /// Waits for the last started process to exit; returns its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let child = self.procs.last_mut()?;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(st)) = child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.a, &self.b] {
            // udhcpc, udhcpd and anything else still running in there.
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

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn apply_reload_invalid_reload_and_stop() {
    let mut lab = Lab::new("main");
    let vlan = lab.kernel_has("vlan");
    let dummy = lab.kernel_has("dummy");
    let mut conf = String::from(
        "# appliance settings\nservice network veth0\n  mtu 1400\n  ip address 192.0.2.1/24\n\
  ip address 2001:db8:1::1/64\n  ip route 198.51.100.0/24 192.0.2.254\n\
  ip route 2001:db8:99::/48 2001:db8:1::fe\n",
    );
    if vlan {
        conf += "service network veth0.100\n  mtu 1300\n  ip address 10.100.0.1/24\n";
    }
    if dummy {
        conf += "service network dummy0\n  type dummy\n  mtu 1280\n  ip address 203.0.113.1/32\n";
    }
    conf += "service network spare0\n  auto off\n  ip address 10.9.9.9/24\nservice haproxy\n  no autostart\n";
    lab.write_conf(&conf);
    lab.start();

    let mut want = s(&["veth0 192.0.2.1/24", "veth0 2001:db8:1::1/64"]);
    if vlan {
        want.push("veth0.100 10.100.0.1/24".into());
    }
    if dummy {
        want.push("dummy0 203.0.113.1/32".into());
    }
    assert_eq!(sorted(lab.addrs()), sorted(want.clone()), "log:\n{}", lab.log_text());
    assert_eq!(
        lab.routes(),
        s(&["198.51.100.0/24 via 192.0.2.254 dev veth0", "2001:db8:99::/48 via 2001:db8:1::fe dev veth0"])
    );
    assert_eq!(lab.link("veth0"), (true, 1400, true));
    if vlan {
        assert_eq!(lab.link("veth0.100"), (true, 1300, true));
    }
    if dummy {
        assert_eq!(lab.link("dummy0"), (true, 1280, true));
    }
    let log = lab.log_text();
    assert!(log.contains("veth0: added 192.0.2.1/24"), "{log}");
    let show = lab.show();
    let veth = show["interfaces"].as_array().and_then(|a| a.iter().find(|i| i["name"] == "veth0")).cloned();
    let veth = veth.unwrap_or_else(|| panic!("{show}"));
    assert_eq!(veth["addresses"], serde_json::json!(["192.0.2.1/24", "2001:db8:1::1/64"]));
    assert_eq!(veth["routes"][0]["gateway"], "192.0.2.254");

    // An address the operator adds is never ours.
    lab.ip_a(&["addr", "add", "192.0.2.77/24", "dev", "veth0"]);

    // Reload: one address and the v6 route go, one address and a route come,
    // the dummy goes.
    let mut conf2 = String::from(
        "service network veth0\n  mtu 1400\n  ip address 192.0.2.1/24\n  ip address 192.0.2.2/24\n\
  ip route 198.51.101.0/24 192.0.2.254\n",
    );
    if vlan {
        conf2 += "service network veth0.100\n  mtu 1300\n  ip address 10.100.0.1/24\n";
    }
    lab.write_conf(&conf2);
    assert_eq!(lab.control("reload"), "ok\n", "log:\n{}", lab.log_text());
    let mut want2 = s(&["veth0 192.0.2.1/24", "veth0 192.0.2.2/24", "veth0 192.0.2.77/24"]);
    if vlan {
        want2.push("veth0.100 10.100.0.1/24".into());
    }
    assert_eq!(sorted(lab.addrs()), sorted(want2.clone()));
    assert_eq!(lab.routes(), s(&["198.51.101.0/24 via 192.0.2.254 dev veth0"]));
    if dummy {
        assert!(!lab.link("dummy0").0, "dummy0 must be deleted");
    }

    // An invalid file: errors at their line, nothing changes.
    lab.write_conf(
        "service network veth0\n  ip address 192.0.2.1/24\n  ip address 192.0.2.300/24\n  bogus\n",
    );
    let reply = lab.control("reload");
    let conf_name = lab.conf.display().to_string();
    let lines: Vec<&str> = reply.lines().collect();
    assert_eq!(lines.len(), 2, "{reply}");
    assert!(lines[0].starts_with(&format!("error: {conf_name}:3: ")), "{reply}");
    assert!(lines[1].starts_with(&format!("error: {conf_name}:4: unknown keyword 'bogus'")), "{reply}");
    assert_eq!(sorted(lab.addrs()), sorted(want2));
    assert_eq!(lab.routes(), s(&["198.51.101.0/24 via 192.0.2.254 dev veth0"]));

    // Stop: everything ours goes, the operator's address stays.
    assert_eq!(lab.control("stop"), "ok\n", "log:\n{}", lab.log_text());
    assert_eq!(lab.wait_exit(), Some(0));
    assert_eq!(lab.addrs(), s(&["veth0 192.0.2.77/24"]), "log:\n{}", lab.log_text());
    assert!(lab.routes().is_empty());
    if vlan {
        assert!(!lab.link("veth0.100").0, "the VLAN must be deleted");
    }
    assert!(lab.link("veth0").0, "an existing interface is never deleted");
    assert!(!PathBuf::from(format!("{}.state", lab.ctl.display())).exists(), "state file left behind");
}

#[test]
fn sighup_reloads_and_sigterm_undoes() {
    let mut lab = Lab::new("sig");
    lab.write_conf("service network veth0\n  ip address 192.0.2.1/24\n");
    lab.start();
    assert_eq!(lab.addrs(), s(&["veth0 192.0.2.1/24"]));
    lab.write_conf("service network veth0\n  ip address 192.0.2.5/24\n  ip route default 192.0.2.254\n");
    lab.signal(nix::sys::signal::SIGHUP);
    assert!(
        wait_for(Duration::from_secs(10), || lab.addrs() == s(&["veth0 192.0.2.5/24"])
            && lab.routes() == s(&["default via 192.0.2.254 dev veth0"])),
        "addrs {:?} routes {:?}\n{}",
        lab.addrs(),
        lab.routes(),
        lab.log_text()
    );
    // Ours, deleted by hand: the next reload puts it back.
    lab.ip_a(&["addr", "del", "192.0.2.5/24", "dev", "veth0"]);
    assert_eq!(lab.control("reload"), "ok\n", "{}", lab.log_text());
    assert_eq!(lab.addrs(), s(&["veth0 192.0.2.5/24"]));
    lab.signal(nix::sys::signal::SIGTERM);
    assert_eq!(lab.wait_exit(), Some(0));
    assert!(lab.addrs().is_empty(), "{:?}", lab.addrs());
    assert!(lab.routes().is_empty());
}

#[test]
fn sigkill_then_restart_removes_orphans() {
    let mut lab = Lab::new("kill");
    lab.write_conf(
        "service network veth0\n  ip address 192.0.2.1/24\n  ip address 192.0.2.2/24\n\
  ip address 2001:db8:1::2/64\n  ip route 198.51.100.0/24 192.0.2.254\n",
    );
    lab.start();
    assert_eq!(lab.addrs().len(), 3);
    lab.signal(nix::sys::signal::SIGKILL);
    lab.wait_exit();
    assert_eq!(lab.addrs().len(), 3, "SIGKILL undoes nothing");
    lab.write_conf("service network veth0\n  ip address 192.0.2.1/24\n");
    lab.start();
    assert_eq!(lab.addrs(), s(&["veth0 192.0.2.1/24"]), "log:\n{}", lab.log_text());
    assert!(lab.routes().is_empty());
    assert_eq!(lab.control("stop"), "ok\n");
    assert_eq!(lab.wait_exit(), Some(0));
    assert!(lab.addrs().is_empty(), "{:?}", lab.addrs());
}

#[test]
fn missing_interface_is_an_error_but_others_apply() {
    let mut lab = Lab::new("miss");
    // An invalid file at start: FILE:LINE on stderr, exit 1.
    lab.write_conf("service network veth0\n  ip address 10.0.0.1\n");
    let o = sh(&[
        "ip",
        "netns",
        "exec",
        &lab.a,
        env!("CARGO_BIN_EXE_lanai"),
        "network",
        "-f",
        lab.conf.to_str().unwrap_or_default(),
        "--control",
        lab.ctl.to_str().unwrap_or_default(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{}:2: ", lab.conf.display())), "{err}");

    let vlan = lab.kernel_has("vlan");
    let mut conf = String::from(
        "service network nosuch0\n  ip address 10.1.0.1/24\n\
service network veth0\n  ip address 192.0.2.1/24\n  ip route 198.51.100.0/24 192.0.2.254\n\
  ip route 203.0.113.0/24 10.55.0.1\n",
    );
    if vlan {
        conf += "service network nosuch1.5\n  ip address 10.2.0.1/24\n";
    }
    lab.write_conf(&conf);
    lab.start();
    assert_eq!(lab.addrs(), s(&["veth0 192.0.2.1/24"]));
    assert_eq!(lab.routes(), s(&["198.51.100.0/24 via 192.0.2.254 dev veth0"]));
    let reply = lab.control("reload");
    let name = lab.conf.display().to_string();
    assert!(reply.starts_with("ok\n"), "the file is valid and in force: {reply}");
    assert!(reply.contains(&format!("warning: {name}:1: nosuch0: interface not found\n")), "{reply}");
    // The unreachable gateway names the route, at the interface's line.
    assert!(
        reply.contains(&format!("warning: {name}:3: veth0: cannot add route 203.0.113.0/24 via 10.55.0.1")),
        "{reply}"
    );
    if vlan {
        assert!(
            reply.contains(&format!("warning: {name}:7: nosuch1.5: parent interface nosuch1 not found")),
            "{reply}"
        );
    }
    let show = lab.show();
    let bad = show["interfaces"].as_array().and_then(|a| a.iter().find(|i| i["name"] == "nosuch0")).cloned();
    let bad = bad.unwrap_or_else(|| panic!("{show}"));
    assert_eq!(bad["present"], false);
    assert!(bad["errors"][0].as_str().is_some_and(|e| e.contains("interface not found")), "{bad}");
    // The interface appears: the next reload configures it.
    lab.ip_a(&["link", "add", "nosuch0", "type", "veth", "peer", "name", "nosuch0p"]);
    let reply = lab.control("reload");
    assert!(!reply.contains("nosuch0"), "{reply}");
    assert!(lab.has_addr("nosuch0 10.1.0.1/24"), "{:?}", lab.addrs());
    lab.signal(nix::sys::signal::SIGINT);
    assert_eq!(lab.wait_exit(), Some(0));
    assert!(lab.addrs().is_empty(), "{:?}", lab.addrs());
}

#[test]
fn dhcp_lease_applied_then_released_on_stop() {
    let mut lab = Lab::new("dhcp");
    let b = lab.b.clone();
    must(&["ip", "-n", &b, "addr", "add", "10.77.0.1/24", "dev", "peer0"]);
    let leases = lab.dir.path().join("udhcpd.leases");
    fs::write(&leases, "").expect("leases");
    let server_conf = lab.dir.path().join("udhcpd.conf");
    fs::write(
        &server_conf,
        format!(
            "start 10.77.0.100\nend 10.77.0.150\ninterface peer0\nlease_file {}\npidfile {}\n\
option subnet 255.255.255.0\noption router 10.77.0.1\noption lease 600\n",
            leases.display(),
            lab.dir.path().join("udhcpd.pid").display()
        ),
    )
    .expect("udhcpd.conf");
    let server = Command::new("ip")
        .args(["netns", "exec", &b, "busybox", "udhcpd", "-f"])
        .arg(&server_conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("udhcpd");
    lab.procs.insert(0, server);

    lab.write_conf("service network veth0\n  ip address dhcp\n  ip address 192.0.2.1/24\n");
    lab.start();
    let leased = || lab.addrs().into_iter().find(|a| a.starts_with("veth0 10.77.0."));
    assert!(
        wait_for(Duration::from_secs(20), || leased().is_some()
            && lab.routes() == s(&["default via 10.77.0.1 dev veth0"])),
        "addrs {:?} routes {:?}\nlog:\n{}",
        lab.addrs(),
        lab.routes(),
        lab.log_text()
    );
    let addr = leased().unwrap_or_default();
    assert!(addr.ends_with("/24"), "{addr}");
    // The hook records its lease after adding the address and route, so the
    // kernel can show them a moment before the lease file does.
    let bound = || lab.show()["interfaces"][0]["dhcp"]["lease"]["event"] == "bound";
    assert!(wait_for(Duration::from_secs(5), bound), "{}", lab.show());
    let show = lab.show();
    let veth = show["interfaces"][0].clone();
    assert_eq!(veth["dhcp"]["running"], true, "{show}");
    assert_eq!(veth["dhcp"]["lease"]["router"], "10.77.0.1", "{show}");

    // Dropping `dhcp` from the block stops the client and removes its lease.
    lab.write_conf("service network veth0\n  ip address 192.0.2.1/24\n");
    assert_eq!(lab.control("reload"), "ok\n", "{}", lab.log_text());
    assert_eq!(lab.addrs(), s(&["veth0 192.0.2.1/24"]));
    assert!(lab.routes().is_empty());
    // And back: a new lease, removed on stop.
    lab.write_conf("service network veth0\n  ip address dhcp\n");
    assert_eq!(lab.control("reload"), "ok\n");
    assert!(wait_for(Duration::from_secs(20), || leased().is_some()), "{}", lab.log_text());
    assert_eq!(lab.control("stop"), "ok\n", "{}", lab.log_text());
    assert_eq!(lab.wait_exit(), Some(0));
    assert!(lab.addrs().is_empty(), "{:?}\n{}", lab.addrs(), lab.log_text());
    assert!(lab.routes().is_empty());
    // No client left behind in the namespace.
    let pids = sh(&["ip", "netns", "pids", &lab.a]);
    assert!(String::from_utf8_lossy(&pids.stdout).trim().is_empty(), "processes left in the namespace");
}
