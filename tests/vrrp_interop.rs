//! Lanai's VRRP against a real keepalived 2.2.7, in network namespaces.
//! Each test has its own namespaces and virtual_router_id, so they run in
//! parallel. Needs root, iproute2, keepalived (and tshark for the decode test).

mod vrrp_support;

use std::time::{Duration, Instant};

use vrrp_support::{conf, wait_for, Lab};

const S: Duration = Duration::from_secs(1);
/// Beyond a takeover's protocol time: each poll runs `ip`, and a loaded CI
/// machine delays both daemons' timers. Below 300 ms, so a graceful (skew
/// time) takeover still cannot pass for a master-down one.
const SLACK: Duration = Duration::from_millis(250);

/// Asserts that, sampled every 10 ms for `dur`, the VIP is in exactly one of the
/// two nodes.
fn vip_exclusive(lab: &Lab, dur: Duration) {
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < dur {
        let (a, b) = (lab.has_vip(0), lab.has_vip(1));
        assert!(a ^ b, "VIP in {} namespaces at sample {n}", a as u8 + b as u8);
        n += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// v3 at 0.1 s. Lanai master, keepalived backup; SIGKILL Lanai -> keepalived
/// takes over within the master-down interval; Lanai restarts and preempts back.
#[test]
fn v3_lanai_master_keepalived_backup_kill_and_preempt() {
    let mut lab = Lab::new("v3lm", 2);
    let l = lab.lanai(0, "lanai", &conf(3, 31, "MASTER", 150, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "lanai never got the VIP: {}", lab.log(l));
    let k = lab.keepalived(1, "ka", &conf(3, 31, "BACKUP", 100, "0.1", ""));
    assert!(
        wait_for(5 * S, || lab.log(k).contains("(VI_1) Entering BACKUP STATE")).is_some(),
        "{}",
        lab.log(k)
    );
    vip_exclusive(&lab, S);
    assert!(lab.has_vip(0));
    let st = lab.show(l).expect("control socket");
    assert_eq!(st[0]["state"], "MASTER");
    assert_eq!(st[0]["effective_priority"], 150);
    assert!(st[0]["stats"]["advert_sent"].as_u64().unwrap_or(0) > 5);
    assert!(!lab.log(k).contains("Invalid VRRPv3 checksum"), "{}", lab.log(k));

    // Hard kill: keepalived's master-down interval is 3*0.1 + 156/256*0.1 = 0.361 s.
    let t0 = Instant::now();
    lab.kill(l);
    let took = wait_for(3 * S, || lab.has_vip(1)).expect("keepalived never took over");
    assert!(took < Duration::from_millis(361) + SLACK, "takeover took {took:?}");
    eprintln!("v3 kill: keepalived took over after {:?}", t0.elapsed());
    // Lanai died without cleaning up: its VIP is still configured in ns 0 (as with
    // keepalived -9). Restarting removes it, then preempts (150 > 100).
    let l2 = lab.lanai(0, "lanai2", &conf(3, 31, "MASTER", 150, "0.1", ""));
    assert!(wait_for(5 * S, || lab.state(l2) == "MASTER").is_some(), "{}", lab.log(l2));
    assert!(wait_for(2 * S, || !lab.has_vip(1)).is_some());
    assert!(wait_for(2 * S, || lab.has_vip(0)).is_some());
    assert!(wait_for(2 * S, || lab.log(k).contains("Entering BACKUP STATE")).is_some());
    vip_exclusive(&lab, S / 2);
}

/// v3 at 0.1 s. keepalived master, Lanai backup; graceful stop of keepalived
/// (priority 0) -> Lanai takes over within the skew time.
#[test]
fn v3_keepalived_master_lanai_backup_graceful() {
    let mut lab = Lab::new("v3km", 2);
    let k = lab.keepalived(0, "ka", &conf(3, 32, "MASTER", 150, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(k));
    let l = lab.lanai(1, "lanai", &conf(3, 32, "BACKUP", 100, "0.1", ""));
    assert!(wait_for(5 * S, || lab.state(l) == "BACKUP").is_some(), "{}", lab.log(l));
    vip_exclusive(&lab, S);
    let st = lab.show(l).expect("control socket");
    assert_eq!(st[0]["master_address"], "10.0.0.1");
    assert!(st[0]["stats"]["advert_rcvd"].as_u64().unwrap_or(0) > 5);
    assert_eq!(st[0]["stats"]["checksum_err"], 0);

    let t0 = Instant::now();
    lab.term(k);
    let took = wait_for(3 * S, || lab.has_vip(1)).expect("lanai never took over");
    // Skew time = 156/256 * 0.1 s = 61 ms.
    assert!(took < Duration::from_millis(61) + SLACK, "takeover took {took:?}");
    eprintln!("v3 graceful: lanai took over after {:?}", t0.elapsed());
    assert!(lab.log(l).contains("(VI_1) Backup received priority 0 advertisement"), "{}", lab.log(l));
    assert!(lab.log(l).contains("(VI_1) Entering MASTER STATE"));
    assert!(lab.wait_exit(k, 5 * S));
    assert!(!lab.has_vip(0));
}

const PASS: &str = "  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n";

/// v2 + PASS at 1 s. keepalived master, Lanai backup; SIGKILL keepalived ->
/// Lanai takes over within 3 * 1 + 156/256 s.
#[test]
fn v2_pass_keepalived_master_lanai_backup_kill() {
    let mut lab = Lab::new("v2km", 2);
    let k = lab.keepalived(0, "ka", &conf(2, 21, "MASTER", 150, "1", PASS));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(k));
    let l = lab.lanai(1, "lanai", &conf(2, 21, "BACKUP", 100, "1", PASS));
    let two = || lab.show(l).is_some_and(|v| v[0]["stats"]["advert_rcvd"].as_u64().unwrap_or(0) >= 2);
    assert!(wait_for(5 * S, two).is_some());
    assert_eq!(lab.state(l), "BACKUP");
    let t0 = Instant::now();
    lab.kill(k);
    let took = wait_for(6 * S, || lab.has_vip(1)).expect("lanai never took over");
    assert!(took < Duration::from_millis(3609) + SLACK, "takeover took {took:?}");
    eprintln!("v2 kill: lanai took over after {:?}", t0.elapsed());
    let log = lab.log(l);
    assert!(log.contains("(VI_1) Receive advertisement timeout"), "{log}");
    assert!(log.contains("(VI_1) Entering MASTER STATE"), "{log}");
    let st = lab.show(l).expect("control");
    assert_eq!(st[0]["stats"]["auth_failure"], 0);
    assert_eq!(st[0]["stats"]["become_master"], 1);
}

/// v2 + PASS at 1 s. Lanai master, keepalived backup; graceful stop of Lanai
/// (SIGTERM: priority 0, VIPs removed) -> keepalived takes over within the skew
/// time; notify scripts get keepalived's arguments.
#[test]
fn v2_pass_lanai_master_keepalived_backup_graceful_and_notify() {
    let mut lab = Lab::new("v2lm", 2);
    let out = lab.path("notify.out");
    let script = lab.write("notify.sh", &format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display()));
    std::process::Command::new("chmod").arg("+x").arg(&script).status().expect("chmod");
    let extra = format!("{PASS}  notify {s}\n  notify_master \"{s} master-only\"\n", s = script.display());
    let l = lab.lanai(0, "lanai", &conf(2, 22, "MASTER", 150, "1", &extra));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(l));
    let k = lab.keepalived(1, "ka", &conf(2, 22, "BACKUP", 100, "1", PASS));
    assert!(wait_for(5 * S, || lab.log(k).contains("(VI_1) Entering BACKUP STATE")).is_some());
    vip_exclusive(&lab, 2 * S);
    let klog = lab.log(k);
    assert!(!klog.contains("invalid passwd") && !klog.contains("checksum"), "{klog}");
    let t0 = Instant::now();
    lab.term(l);
    // Make-before-break: Lanai keeps the VIP until keepalived has taken over,
    // so at no sampled instant is the VIP nowhere.
    let took = wait_for(3 * S, || {
        let (a, b) = (lab.has_vip(0), lab.has_vip(1));
        assert!(a || b, "VIP absent from both nodes during the handover");
        b
    })
    .expect("keepalived never took over");
    // keepalived's skew for priority 100 at v2: 156/256 s = 609 ms.
    assert!(took < Duration::from_millis(609) + SLACK, "takeover took {took:?}");
    eprintln!("v2 graceful: keepalived took over after {:?}", t0.elapsed());
    assert!(lab.wait_exit(l, 5 * S));
    assert!(!lab.has_vip(0), "lanai left its VIP behind");
    assert!(lab.log(l).contains("(VI_1) sent 0 priority"));
    assert!(lab.log(l).contains("(VI_1) 10.0.0.2 took over, removing VIPs in 20ms"), "{}", lab.log(l));
    let notes = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(notes.contains("INSTANCE VI_1 BACKUP 150"), "{notes}");
    assert!(notes.contains("master-only"), "{notes}");
    assert!(notes.contains("INSTANCE VI_1 MASTER 150"), "{notes}");
    assert!(notes.contains("INSTANCE VI_1 STOP 150"), "{notes}");
}

/// Wrong password: each side rejects the other's adverts and logs it with
/// keepalived's wording; the counters show it.
#[test]
fn v2_auth_mismatch_rejected_and_logged() {
    let mut lab = Lab::new("auth", 2);
    let bad = PASS.replace("s3cret", "other");
    let k = lab.keepalived(0, "ka", &conf(2, 23, "MASTER", 150, "1", &bad));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some());
    let l = lab.lanai(1, "lanai", &conf(2, 23, "BACKUP", 100, "1", PASS));
    assert!(
        wait_for(4 * S, || lab.log(l).contains("(VI_1) received an invalid passwd!")).is_some(),
        "{}",
        lab.log(l)
    );
    // The line is logged just before the counter moves.
    let counted = || lab.show(l).is_some_and(|st| st[0]["stats"]["auth_failure"].as_u64().unwrap_or(0) >= 1);
    assert!(wait_for(2 * S, counted).is_some(), "{:?}", lab.show(l));
    let st = lab.show(l).expect("control");
    assert_eq!(st[0]["stats"]["advert_rcvd"], 0);
    // Ignoring the master means Lanai takes over as keepalived would.
    assert!(wait_for(5 * S, || lab.state(l) == "MASTER").is_some());
    assert!(
        wait_for(3 * S, || lab.log(k).contains("received an invalid passwd")).is_some(),
        "{}",
        lab.log(k)
    );
}

/// Unicast peers (v3 0.1 s), Lanai master then killed.
#[test]
fn v3_unicast_lanai_master_keepalived_backup() {
    let mut lab = Lab::new("uni", 2);
    let u = |me: &str, peer: &str| format!("  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}\n");
    let l = lab.lanai(0, "lanai", &conf(3, 24, "MASTER", 150, "0.1", &u("10.0.0.1", "10.0.0.2")));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(l));
    let k = lab.keepalived(1, "ka", &conf(3, 24, "BACKUP", 100, "0.1", &u("10.0.0.2", "10.0.0.1")));
    assert!(wait_for(5 * S, || lab.log(k).contains("(VI_1) Entering BACKUP STATE")).is_some());
    vip_exclusive(&lab, S);
    let klog = lab.log(k);
    assert!(!klog.contains("Invalid VRRPv3 checksum") && !klog.contains("Expected"), "{klog}");
    assert!(lab.show(l).is_some_and(|v| v[0]["stats"]["advert_rcvd"] == 0 || v[0]["state"] == "MASTER"));
    lab.kill(l);
    let took = wait_for(3 * S, || lab.has_vip(1)).expect("keepalived never took over");
    assert!(took < Duration::from_millis(361) + SLACK, "takeover took {took:?}");
}

/// Unicast, keepalived master, Lanai backup: Lanai accepts keepalived's unicast
/// checksum and follows.
#[test]
fn v3_unicast_keepalived_master_lanai_backup() {
    let mut lab = Lab::new("unib", 2);
    let u = |me: &str, peer: &str| format!("  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}\n");
    let k = lab.keepalived(0, "ka", &conf(3, 25, "MASTER", 150, "0.1", &u("10.0.0.1", "10.0.0.2")));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(k));
    let l = lab.lanai(1, "lanai", &conf(3, 25, "BACKUP", 100, "0.1", &u("10.0.0.2", "10.0.0.1")));
    assert!(
        wait_for(5 * S, || lab.show(l).is_some_and(|v| v[0]["stats"]["advert_rcvd"].as_u64() > Some(5)))
            .is_some(),
        "{}",
        lab.log(l)
    );
    assert_eq!(lab.state(l), "BACKUP");
    vip_exclusive(&lab, S / 2);
    lab.term(k);
    assert!(wait_for(S, || lab.has_vip(1)).is_some());
}

/// `nopreempt`: a higher-priority Lanai backup does not take the VIP from a
/// running keepalived master; without it, it does (preemption).
#[test]
fn v3_nopreempt_honoured_then_preemption() {
    let mut lab = Lab::new("nopre", 2);
    let k = lab.keepalived(0, "ka", &conf(3, 26, "MASTER", 100, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some());
    let l = lab.lanai(1, "lanai", &conf(3, 26, "BACKUP", 200, "0.1", "  nopreempt\n"));
    assert!(wait_for(5 * S, || lab.state(l) == "BACKUP").is_some());
    vip_exclusive(&lab, 3 * S / 2);
    assert!(lab.has_vip(0));
    assert_eq!(lab.state(l), "BACKUP");
    lab.kill(l);
    // Same priority, preemption allowed: takes over after one down interval.
    let l2 = lab.lanai(1, "lanai2", &conf(3, 26, "BACKUP", 200, "0.1", ""));
    assert!(wait_for(3 * S, || lab.state(l2) == "MASTER").is_some(), "{}", lab.log(l2));
    assert!(wait_for(2 * S, || lab.has_vip(1) && !lab.has_vip(0)).is_some());
    assert!(lab.log(l2).contains("received lower priority (100) advert from 10.0.0.1 - discarding"));
    assert!(
        wait_for(2 * S, || lab
            .log(k)
            .contains("Master received advert from 10.0.0.2 with higher priority 200, ours 100"))
        .is_some(),
        "{}",
        lab.log(k)
    );
}

/// A failing weighted track_script lowers Lanai's advertised priority below
/// keepalived's, which then preempts; the script recovering brings it back.
#[test]
fn v3_failing_track_script_moves_vip() {
    let mut lab = Lab::new("track", 2);
    let flag = lab.path("fail.flag");
    let script = format!(
        "vrrp_script chk {{\n  script \"/usr/bin/test ! -e {}\"\n  interval 0.1\n  weight -100\n}}\n",
        flag.display()
    );
    let mut c = conf(3, 27, "MASTER", 150, "0.1", "  track_script {\n    chk\n  }\n");
    c.push_str(&script);
    let l = lab.lanai(0, "lanai", &c);
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(l));
    let _k = lab.keepalived(1, "ka", &conf(3, 27, "BACKUP", 100, "0.1", ""));
    std::thread::sleep(S);
    assert!(lab.has_vip(0));
    std::fs::write(&flag, "").expect("flag");
    assert!(wait_for(3 * S, || lab.has_vip(1) && !lab.has_vip(0)).is_some(), "{}", lab.log(l));
    let st = lab.show(l).expect("control");
    assert_eq!(st[0]["effective_priority"], 50);
    assert_eq!(st[0]["state"], "BACKUP");
    std::fs::remove_file(&flag).expect("unflag");
    assert!(wait_for(3 * S, || lab.has_vip(0) && !lab.has_vip(1)).is_some(), "{}", lab.log(l));
}

/// An unweighted failing script puts the instance in FAULT (VIP released).
#[test]
fn v3_unweighted_script_means_fault() {
    let mut lab = Lab::new("fault", 2);
    let flag = lab.path("fail.flag");
    let mut c = conf(3, 28, "MASTER", 150, "0.1", "  track_script {\n    chk\n  }\n");
    c.push_str(&format!(
        "vrrp_script chk {{\n  script \"/usr/bin/test ! -e {}\"\n  interval 0.1\n}}\n",
        flag.display()
    ));
    let l = lab.lanai(0, "lanai", &c);
    let _k = lab.keepalived(1, "ka", &conf(3, 28, "BACKUP", 100, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(l));
    std::fs::write(&flag, "").expect("flag");
    assert!(wait_for(3 * S, || lab.state(l) == "FAULT").is_some(), "{}", lab.log(l));
    assert!(wait_for(S, || lab.has_vip(1) && !lab.has_vip(0)).is_some());
    assert!(lab.log(l).contains("(VI_1) Entering FAULT STATE"));
}

/// `reload` keeps unchanged instances' state and restarts changed ones.
#[test]
fn reload_keeps_unchanged_instances() {
    let mut lab = Lab::new("reload", 1);
    let l = lab.lanai(0, "lanai", &conf(3, 29, "MASTER", 150, "0.1", ""));
    assert!(wait_for(5 * S, || lab.state(l) == "MASTER").is_some(), "{}", lab.log(l));
    let before = lab.show(l).expect("control")[0]["last_transition"].clone();
    assert_eq!(lab.control(l, "reload").as_deref(), Some("ok"));
    let after = lab.show(l).expect("control");
    assert_eq!(after[0]["last_transition"], before);
    assert_eq!(after[0]["state"], "MASTER");
    // A broken file is refused with file:line, the running config stays.
    lab.write("lanai.conf", "vrrp_instance VI_1 {\n bogus\n}\n");
    let r = lab.control(l, "reload").unwrap_or_default();
    assert!(
        r.starts_with("error: ") && r.contains("lanai.conf:2: vrrp_instance: unknown keyword 'bogus'"),
        "{r}"
    );
    assert_eq!(lab.state(l), "MASTER");
    // Changed priority: the instance restarts with it.
    lab.write("lanai.conf", &conf(3, 29, "MASTER", 120, "0.1", ""));
    assert_eq!(lab.control(l, "reload").as_deref(), Some("ok"));
    assert!(wait_for(3 * S, || lab
        .show(l)
        .is_some_and(|v| v[0]["effective_priority"] == 120 && v[0]["state"] == "MASTER"))
    .is_some());
    assert!(lab.has_vip(0));
    assert_eq!(lab.control(l, "stop").as_deref(), Some("ok"));
    assert!(lab.wait_exit(l, 5 * S));
    assert!(!lab.has_vip(0));
}

/// tshark (Wireshark's VRRP dissector) decodes Lanai's v3 and v2 adverts as valid
/// VRRP with a correct checksum. Two instances in one file also covers
/// multi-instance operation.
#[test]
fn tshark_decodes_lanai_adverts_with_good_checksum() {
    if std::process::Command::new("tshark").arg("--version").output().is_err() {
        panic!("tshark is not installed (scripts/test.sh installs it)");
    }
    let mut lab = Lab::new("tshark", 2);
    let mut c = conf(3, 30, "MASTER", 150, "0.1", "");
    c.push_str(
        "vrrp_instance VI_2 {\n  state MASTER\n  interface eth0\n  version 2\n  virtual_router_id 33\n  priority 120\n  advert_int 1\n  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n  virtual_ipaddress {\n    10.0.0.101/24\n    10.0.0.102/24\n  }\n}\n",
    );
    c.push_str(
        "vrrp_instance VI_3 {\n  state MASTER\n  interface eth0\n  virtual_router_id 42\n  priority 130\n  advert_int 0.5\n  virtual_ipaddress {\n    fd00::200/64\n  }\n}\n",
    );
    let l = lab.lanai(0, "lanai", &c);
    assert!(wait_for(5 * S, || lab.has_vip(0) && lab.has_addr(0, "10.0.0.101")).is_some(), "{}", lab.log(l));
    let pcap = lab.path("cap.pcap");
    let mut cap = lab.capture(1, 3, &pcap);
    let _ = cap.wait();
    let out = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&pcap)
        .args(["-T", "fields", "-e", "vrrp.version", "-e", "vrrp.virt_rtr_id", "-e", "vrrp.prio"])
        .args(["-e", "vrrp.checksum.status", "-e", "vrrp.auth_type", "-e", "ip.ttl", "-E", "separator=,"])
        .output()
        .expect("tshark -r");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().filter(|l| l.starts_with("3,30,150,1,")).count() >= 5, "{text}");
    assert!(lines.iter().any(|l| l.starts_with("2,33,120,1,1,255")), "{text}");
    // IPv6 (no ip.ttl field).
    assert!(lines.iter().any(|l| l.starts_with("3,42,130,1,,")), "{text}");
    // Every advert decodes with checksum status Good (1).
    for l in &lines {
        assert_eq!(l.split(',').nth(3), Some("1"), "bad line {l} in {text}");
    }
    let st = lab.show(l).expect("control");
    assert_eq!(st.as_array().map(Vec::len), Some(3));
}

/// RFC 5798 6.4.2: a v3 backup adopts the master's advert interval, so a Lanai
/// configured with 1 s detects keepalived's death (0.1 s adverts) in 0.36 s.
#[test]
fn v3_backup_adopts_master_interval() {
    let mut lab = Lab::new("adopt", 2);
    let k = lab.keepalived(0, "ka", &conf(3, 34, "MASTER", 150, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(k));
    let l = lab.lanai(1, "lanai", &conf(3, 34, "BACKUP", 100, "1", ""));
    assert!(
        wait_for(5 * S, || lab
            .log(l)
            .contains("advertisement interval updated from 1000ms to 100ms by master"))
        .is_some(),
        "{}",
        lab.log(l)
    );
    std::thread::sleep(S / 2);
    lab.kill(k);
    let took = wait_for(5 * S, || lab.has_vip(1)).expect("lanai never took over");
    assert!(took < Duration::from_millis(361) + SLACK, "takeover took {took:?}");
    assert!(lab.log(l).contains("changing advert interval from 100ms to locally configured 1000ms"));
}

/// Equal priorities, both masters (the link was split): when they meet, the
/// higher primary IP wins (Lanai 10.0.0.2 over keepalived 10.0.0.1).
#[test]
fn v3_equal_priority_tie_break_on_ip() {
    let mut lab = Lab::new("tie", 2);
    // Detach node 1 from the bridge (carrier stays up) so both become master.
    lab.switch(&["link", "set", "p1", "nomaster"]);
    let k = lab.keepalived(0, "ka", &conf(3, 35, "MASTER", 100, "0.1", ""));
    let l = lab.lanai(1, "lanai", &conf(3, 35, "MASTER", 100, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0) && lab.has_vip(1)).is_some(), "{}", lab.log(l));
    lab.switch(&["link", "set", "p1", "master", "br0"]);
    assert!(wait_for(5 * S, || lab.has_vip(1) && !lab.has_vip(0)).is_some(), "{}", lab.log(l));
    assert_eq!(lab.state(l), "MASTER");
    assert!(
        wait_for(2 * S, || lab.log(k).contains("with same priority 100 but higher IP address than ours"))
            .is_some(),
        "{}",
        lab.log(k)
    );
    vip_exclusive(&lab, S / 2);
}

/// Priority 255 (address owner) takes over at once, even from a running master.
#[test]
fn v3_owner_priority_255_takes_over() {
    let mut lab = Lab::new("owner", 2);
    let k = lab.keepalived(0, "ka", &conf(3, 36, "MASTER", 200, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(k));
    let l = lab.lanai(1, "lanai", &conf(3, 36, "MASTER", 255, "0.1", ""));
    let took = wait_for(5 * S, || lab.has_vip(1) && !lab.has_vip(0)).expect("owner never took over");
    assert!(took < Duration::from_millis(500), "owner took {took:?}: {}", lab.log(l));
}

/// track_interface with a weight: the tracked link going down lowers the
/// priority and keepalived takes over; back up, Lanai preempts again. SIGHUP
/// reload on the way keeps the state.
#[test]
fn v3_track_interface_weight_and_sighup() {
    let mut lab = Lab::new("trif", 2);
    // No dummy driver on every kernel: a veth pair inside the namespace will do.
    lab.exec(0, &["ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1"]);
    lab.exec(0, &["ip", "link", "set", "dummy1", "up"]);
    lab.exec(0, &["ip", "link", "set", "dummy0", "up"]);
    let l = lab.lanai(
        0,
        "lanai",
        &conf(3, 37, "MASTER", 150, "0.1", "  track_interface {\n    dummy0 weight -100\n  }\n"),
    );
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(l));
    let _k = lab.keepalived(1, "ka", &conf(3, 37, "BACKUP", 100, "0.1", ""));
    std::thread::sleep(S / 2);
    lab.hup(l);
    assert!(wait_for(2 * S, || lab.log(l).contains("Reloading")).is_some(), "{}", lab.log(l));
    assert_eq!(lab.state(l), "MASTER", "{}", lab.log(l));
    lab.exec(0, &["ip", "link", "set", "dummy0", "down"]);
    assert!(wait_for(3 * S, || lab.has_vip(1) && !lab.has_vip(0)).is_some(), "{}", lab.log(l));
    assert_eq!(lab.show(l).expect("control")[0]["effective_priority"], 50);
    lab.exec(0, &["ip", "link", "set", "dummy0", "up"]);
    assert!(wait_for(3 * S, || lab.has_vip(0) && !lab.has_vip(1)).is_some(), "{}", lab.log(l));
}

/// Gratuitous ARPs on becoming master: `garp_master_repeat` at once, and again
/// after `garp_master_delay`.
#[test]
fn garp_repeat_and_delay() {
    let mut lab = Lab::new("garp", 2);
    let pcap = lab.path("arp.pcap");
    // Stopped by SIGINT once both batches are due; the duration only bounds it.
    let mut cap = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.nodes[1],
            "tshark",
            "-q",
            "-i",
            "eth0",
            "-a",
            "duration:30",
            "-f",
            "arp",
            "-w",
        ])
        .arg(&pcap)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tshark");
    // dumpcap writes the file's header once the interface is open.
    let capturing = || std::fs::metadata(&pcap).is_ok_and(|m| m.len() > 0);
    assert!(wait_for(15 * S, capturing).is_some(), "tshark never started capturing");
    std::thread::sleep(S / 5);
    let extra = "  garp_master_repeat 3\n  garp_master_delay 1\n";
    let l = lab.lanai(0, "lanai", &conf(3, 38, "MASTER", 150, "0.1", extra));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(l));
    // The second batch is due 1 s after the first; leave room for a third that must not come.
    std::thread::sleep(S * 5 / 2);
    // `ip netns exec` execs tshark: the child's pid is tshark's.
    let _ =
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(cap.id() as i32), nix::sys::signal::Signal::SIGINT);
    let _ = cap.wait();
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.time_relative",
            "-e",
            "arp.isgratuitous",
            "-e",
            "arp.src.proto_ipv4",
        ])
        .output()
        .expect("tshark -r");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let times: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("10.0.0.100") && l.split('\t').nth(1) == Some("1"))
        .filter_map(|l| l.split('\t').next().and_then(|t| t.parse().ok()))
        .collect();
    assert_eq!(times.len(), 6, "{text}\n{}", lab.log(l));
    assert!(times[2] - times[0] < 0.05, "{times:?}");
    let d = times[3] - times[0];
    assert!((0.95..1.5).contains(&d), "second batch after {d} s");
}

/// v2 without authentication (the zeroed 8 auth bytes must still be sent):
/// keepalived accepts Lanai's adverts and stays backup.
#[test]
fn v2_noauth_lanai_master_keepalived_backup() {
    let mut lab = Lab::new("v2na", 2);
    let l = lab.lanai(0, "lanai", &conf(2, 39, "MASTER", 150, "1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(l));
    let k = lab.keepalived(1, "ka", &conf(2, 39, "BACKUP", 100, "1", ""));
    assert!(wait_for(5 * S, || lab.log(k).contains("(VI_1) Entering BACKUP STATE")).is_some());
    vip_exclusive(&lab, 4 * S);
    let klog = lab.log(k);
    assert!(!klog.contains("too short") && !klog.contains("checksum"), "{klog}");
}

/// The instance's own interface losing its link puts it in FAULT (VIP released,
/// keepalived takes over); link back -> BACKUP, then preemption.
#[test]
fn v3_interface_down_means_fault() {
    let mut lab = Lab::new("ifdown", 2);
    let l = lab.lanai(0, "lanai", &conf(3, 40, "MASTER", 150, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(l));
    let _k = lab.keepalived(1, "ka", &conf(3, 40, "BACKUP", 100, "0.1", ""));
    std::thread::sleep(S / 2);
    // Pull the cable on the switch side: eth0 stays up but loses its carrier.
    lab.switch(&["link", "set", "p0", "down"]);
    assert!(wait_for(3 * S, || lab.state(l) == "FAULT").is_some(), "{}", lab.log(l));
    assert!(wait_for(2 * S, || lab.has_vip(1) && !lab.has_vip(0)).is_some());
    assert!(lab.log(l).contains("(VI_1) Entering FAULT STATE"));
    lab.switch(&["link", "set", "p0", "up"]);
    assert!(
        wait_for(3 * S, || lab.state(l) == "MASTER" && lab.has_vip(0) && !lab.has_vip(1)).is_some(),
        "{}",
        lab.log(l)
    );
}

/// VRRPv3 over IPv6 (link-local sources, ff02::12, kernel checksum): Lanai
/// master, keepalived backup, hard kill -> takeover; then Lanai restarts as
/// backup of keepalived and takes over again on its graceful stop.
#[test]
fn v3_ipv6_both_roles() {
    use vrrp_support::{conf6, VIP6};
    let mut lab = Lab::new("v6", 2);
    let l = lab.lanai(0, "lanai", &conf6(41, "MASTER", 150, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_addr(0, VIP6)).is_some(), "{}", lab.log(l));
    let k = lab.keepalived(1, "ka", &conf6(41, "BACKUP", 100, "0.1", ""));
    assert!(
        wait_for(5 * S, || lab.log(k).contains("(VI_1) Entering BACKUP STATE")).is_some(),
        "{}",
        lab.log(k)
    );
    std::thread::sleep(S);
    assert!(lab.has_addr(0, VIP6) && !lab.has_addr(1, VIP6), "{}", lab.log(k));
    let klog = lab.log(k);
    assert!(!klog.contains("checksum") && !klog.contains("too short"), "{klog}");
    lab.kill(l);
    let took = wait_for(3 * S, || lab.has_addr(1, VIP6)).expect("keepalived never took over");
    assert!(took < Duration::from_millis(361) + SLACK, "takeover took {took:?}");
    // Clean the dead master's address as a reboot would, then come back as backup.
    lab.exec(0, &["ip", "addr", "del", "fd00::100/64", "dev", "eth0"]);
    let l2 = lab.lanai(0, "lanai2", &conf6(41, "BACKUP", 50, "0.1", ""));
    assert!(
        wait_for(5 * S, || lab.show(l2).is_some_and(|v| v[0]["stats"]["advert_rcvd"].as_u64() > Some(5)))
            .is_some(),
        "{}",
        lab.log(l2)
    );
    assert_eq!(lab.state(l2), "BACKUP");
    let st = lab.show(l2).expect("control");
    assert!(st[0]["master_address"].as_str().unwrap_or_default().starts_with("fe80::"), "{st}");
    lab.term(k);
    assert!(wait_for(S, || lab.has_addr(0, VIP6)).is_some(), "{}", lab.log(l2));
    assert!(lab.log(l2).contains("(VI_1) Backup received priority 0 advertisement"));
}

/// Seed 001's keepalived.conf verbatim (e-mail settings warned about) on Lanai,
/// its second node (priority 50, as the article says) on keepalived.
#[test]
fn seed_001_verbatim_lanai_master_keepalived_backup() {
    let seed = "! Barebones conf File for keepalived\n\n  global_defs {\n     notification_email {\n       administrator@example.com\n     }\n     notification_email_from HAProxy1@example.com\n     smtp_server mymailserver.example.com\n     smtp_connect_timeout 60\n  }\n\n  vrrp_instance VI_1 {\n      state MASTER\n      interface eth0\n      virtual_router_id 101\n      priority 101\n      advert_int 1\n      authentication {\n          auth_type PASS\n          auth_pass 12345678\n      }\n      virtual_ipaddress {\n          192.168.3.135\n      }\n  }\n";
    let mut lab = Lab::new("seed1", 2);
    let l = lab.lanai(0, "lanai", seed);
    assert!(wait_for(5 * S, || lab.has_addr(0, "192.168.3.135")).is_some(), "{}", lab.log(l));
    assert!(lab.log(l).contains("warning: notification_email: e-mail alerts are not supported, ignored"));
    let node2 = seed
        .replace("HAProxy1", "HAProxy2")
        .replace("priority 101", "priority 50")
        .replace("MASTER", "BACKUP");
    let k = lab.keepalived(1, "ka", &node2);
    assert!(
        wait_for(5 * S, || lab.log(k).contains("(VI_1) Entering BACKUP STATE")).is_some(),
        "{}",
        lab.log(k)
    );
    std::thread::sleep(2 * S);
    assert!(lab.has_addr(0, "192.168.3.135") && !lab.has_addr(1, "192.168.3.135"));
    lab.term(l);
    assert!(wait_for(2 * S, || lab.has_addr(1, "192.168.3.135")).is_some(), "{}", lab.log(k));
}

/// Seed 003's pair (without the article's `<--` annotations): keepalived is lb01
/// (MASTER 100), Lanai is lb02 (BACKUP 90) and takes over when lb01 dies.
#[test]
fn seed_003_keepalived_master_lanai_backup() {
    let lb01 = "vrrp_instance VI_1 {\nstate MASTER\ninterface eth0\nvirtual_router_id 51\npriority 100\nadvert_int 1\nauthentication {\nauth_type PASS\nauth_pass s3cret\n}\nvirtual_ipaddress {\n192.168.1.10/24\n}\n}\n";
    let lb02 = lb01.replace("MASTER", "BACKUP").replace("priority 100", "priority 90");
    let mut lab = Lab::new("seed3", 2);
    let k = lab.keepalived(0, "ka", lb01);
    assert!(wait_for(5 * S, || lab.has_addr(0, "192.168.1.10")).is_some(), "{}", lab.log(k));
    let l = lab.lanai(1, "lanai", &lb02);
    assert!(wait_for(5 * S, || lab
        .show(l)
        .is_some_and(|v| v[0]["stats"]["advert_rcvd"].as_u64() >= Some(2)))
    .is_some());
    assert_eq!(lab.state(l), "BACKUP");
    lab.kill(k);
    assert!(wait_for(5 * S, || lab.has_addr(1, "192.168.1.10")).is_some(), "{}", lab.log(l));
}

/// `lanai vrrp -f` refuses a broken file (seed 004's block) with FILE:LINE
/// messages and exit status 1, before touching the network.
#[test]
fn cli_refuses_broken_config_with_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("k.conf");
    std::fs::write(&f, "vrrp_instance_VI_1 {\n\tstate MASTER\n\tinterface seth0\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lanai"))
        .args(["vrrp", "-f"])
        .arg(&f)
        .arg("--control")
        .arg(dir.path().join("s.sock"))
        .output()
        .expect("run lanai");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("k.conf:1: unknown keyword 'vrrp_instance_VI_1'"), "{err}");
    assert!(err.contains("k.conf:1: missing '}' for the block opened here"), "{err}");
}

/// `preempt_delay`: a higher-priority Lanai backup waits that long after its
/// first advert before preempting keepalived.
#[test]
fn v3_preempt_delay_postpones_preemption() {
    let mut lab = Lab::new("pdelay", 2);
    let k = lab.keepalived(0, "ka", &conf(3, 43, "MASTER", 100, "0.1", ""));
    assert!(wait_for(5 * S, || lab.has_vip(0)).is_some(), "{}", lab.log(k));
    let t0 = Instant::now();
    let l = lab.lanai(1, "lanai", &conf(3, 43, "BACKUP", 200, "0.1", "  preempt_delay 1\n"));
    assert!(wait_for(S, || lab.state(l) == "BACKUP").is_some(), "{}", lab.log(l));
    std::thread::sleep((S * 8 / 10).saturating_sub(t0.elapsed()));
    assert_eq!(lab.state(l), "BACKUP", "{}", lab.log(l));
    assert!(lab.has_vip(0));
    assert!(wait_for(3 * S, || lab.state(l) == "MASTER").is_some(), "{}", lab.log(l));
    // First advert (~0.1 s) + 1 s delay + down interval (0.32 s).
    assert!(t0.elapsed() > Duration::from_millis(1300), "preempted after {:?}", t0.elapsed());
    assert!(wait_for(2 * S, || lab.has_vip(1) && !lab.has_vip(0)).is_some());
}
