//! Lanai's VRRP against a real keepalived 2.2.7, in network namespaces.
//! Each test has its own namespaces and virtual_router_id, so they run in
//! parallel. Needs root, iproute2, keepalived (and tshark for the decode test).

mod vrrp_support;

use std::time::{Duration, Instant};

use vrrp_support::{conf, wait_for, Lab};

const S: Duration = Duration::from_secs(1);

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
    assert!(took < Duration::from_millis(361 + 150), "takeover took {took:?}");
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
    assert!(took < Duration::from_millis(61 + 150), "takeover took {took:?}");
    eprintln!("v3 graceful: lanai took over after {:?}", t0.elapsed());
    assert!(lab.log(l).contains("(VI_1) Backup received priority 0 advertisement"), "{}", lab.log(l));
    assert!(lab.log(l).contains("(VI_1) Entering MASTER STATE"));
    assert!(lab.wait_exit(k, 5 * S));
    assert!(!lab.has_vip(0));
}
