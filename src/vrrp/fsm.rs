//! The VRRP state machine (RFC 5798 section 6.4, with keepalived 2.2's practice),
//! sans-IO: `handle(event, now) -> actions`. Time is passed in, never read, so the
//! tests drive it with a fake clock; sockets, netlink and scripts live in the edge
//! (`vrrp::run`), which executes the returned actions.
//!
//! Log lines use keepalived's wording so that operators' greps keep working.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{debug, info, warn};

use super::packet::{Auth, DecodeError, Received, AUTH_LEN, VRRP_TTL};

/// Priority of the address owner (RFC 5798 5.2.4).
pub const PRIO_OWNER: u8 = 255;

/// How long a gracefully stopping master keeps its VIPs after the new master's
/// first advert (the new master adds the VIPs and sends GARPs right after it).
/// Short, because both nodes hold the VIPs meanwhile.
pub const HANDOVER_GRACE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
    Stop,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
        }
    }
}

/// What the state machine needs from the configuration of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub name: String,
    pub vrid: u8,
    pub version: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds.
    pub adver_int_cs: u16,
    pub auth: Auth,
    pub vips: Vec<IpAddr>,
    /// Our source address: unicast_src_ip or the interface's primary address. Also
    /// the tie-breaker when priorities are equal.
    pub src: IpAddr,
    pub unicast_peers: Vec<IpAddr>,
    /// `state MASTER` in the configuration.
    pub want_master: bool,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub garp_delay: Duration,
    pub garp_repeat: u32,
}

#[derive(Debug, Clone)]
pub enum Event {
    /// The instance starts; `fault` when the interface is down or a tracker fails.
    Startup { fault: bool },
    /// A deadline returned by `next_deadline` has passed.
    Timer,
    /// A datagram that decoded as VRRP.
    Advert(Received),
    /// A datagram that did not decode; only counted and logged.
    Malformed(DecodeError),
    /// Tracking changed: sum of weights to add to the base priority, and whether
    /// an unweighted tracker is failing (FAULT).
    Track { delta: i32, fault: bool },
    /// Graceful stop (SIGTERM, `stop`, removal at reload).
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send one advertisement with this priority (to the group or every peer).
    SendAdvert {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    /// Send `repeat` gratuitous ARPs for every VIP.
    SendGarp {
        repeat: u32,
    },
    /// Run the notify scripts for this new state.
    Notify(State),
}

/// Counters shown on the control socket (names follow keepalived's stats dump).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub advert_sent: u64,
    pub advert_rcvd: u64,
    pub become_master: u64,
    pub release_master: u64,
    pub pri_zero_sent: u64,
    pub pri_zero_rcvd: u64,
    pub packet_len_err: u64,
    pub checksum_err: u64,
    pub version_err: u64,
    pub invalid_type_rcvd: u64,
    pub ip_ttl_err: u64,
    pub invalid_authtype: u64,
    pub authtype_mismatch: u64,
    pub auth_failure: u64,
    pub adver_int_err: u64,
    pub addr_list_err: u64,
}

pub struct Fsm {
    p: Params,
    state: State,
    track_delta: i32,
    track_fault: bool,
    effective: u8,
    /// Interval of the current master (v3 backups adopt it), centiseconds.
    master_adver_cs: u16,
    /// Next advert (MASTER) or master-down expiry (BACKUP).
    sands: Option<Instant>,
    garp_at: Option<Instant>,
    preempt_time: Option<Instant>,
    master_addr: Option<IpAddr>,
    master_priority: u8,
    last_transition: Option<Instant>,
    /// Graceful stop of a master: VIPs kept until this instant at the latest.
    hold_until: Option<Instant>,
    handover_seen: bool,
    finished: bool,
    pub stats: Stats,
}

impl Fsm {
    pub fn new(p: Params) -> Fsm {
        let effective = p.priority;
        let master_adver_cs = p.adver_int_cs;
        Fsm {
            p,
            state: State::Init,
            track_delta: 0,
            track_fault: false,
            effective,
            master_adver_cs,
            sands: None,
            garp_at: None,
            preempt_time: None,
            master_addr: None,
            master_priority: 0,
            last_transition: None,
            hold_until: None,
            handover_seen: false,
            finished: false,
            stats: Stats::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn params(&self) -> &Params {
        &self.p
    }
    pub fn effective_priority(&self) -> u8 {
        self.effective
    }
    pub fn master_addr(&self) -> Option<IpAddr> {
        if self.state == State::Master {
            Some(self.p.src)
        } else {
            self.master_addr
        }
    }
    pub fn last_transition(&self) -> Option<Instant> {
        self.last_transition
    }
    pub fn master_adver_cs(&self) -> u16 {
        self.master_adver_cs
    }

    /// The earliest instant at which `handle(Event::Timer, _)` has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.sands, self.garp_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn cs(cs: u16) -> Duration {
        Duration::from_millis(u64::from(cs) * 10)
    }

    /// Skew time computed like keepalived's VRRP_TIMER_SKEW_CALC: v2 uses
    /// (256 - prio)/256 seconds (RFC 3768), v3 scales by the master's interval.
    fn skew_for(&self, prio_val: u32) -> Duration {
        if self.p.version == 3 {
            Duration::from_micros(u64::from(prio_val) * u64::from(self.master_adver_cs) * 625 / 16)
        } else {
            Duration::from_micros(u64::from(prio_val) * 1_000_000 / 256)
        }
    }
    pub fn skew(&self) -> Duration {
        self.skew_for(256 - u32::from(self.effective))
    }
    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        let adv = if self.p.version == 3 { self.master_adver_cs } else { self.p.adver_int_cs };
        Self::cs(adv) * 3 + self.skew()
    }

    fn compute_effective(&mut self) {
        self.effective = if self.p.priority == PRIO_OWNER {
            PRIO_OWNER
        } else {
            (i32::from(self.p.priority) + self.track_delta).clamp(1, 254) as u8
        };
    }

    fn transition(&mut self, to: State, now: Instant, out: &mut Vec<Action>) {
        self.state = to;
        self.last_transition = Some(now);
        out.push(Action::Notify(to));
    }

    pub fn handle(&mut self, ev: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Startup { fault } => self.startup(fault, now, &mut out),
            Event::Timer => self.timer(now, &mut out),
            Event::Advert(r) => self.advert(r, now, &mut out),
            Event::Malformed(e) => self.malformed(e),
            Event::Track { delta, fault } => self.track(delta, fault, now, &mut out),
            Event::Shutdown => self.shutdown(now, &mut out),
        }
        out
    }

    fn startup(&mut self, fault: bool, now: Instant, out: &mut Vec<Action>) {
        self.track_fault = fault;
        if fault {
            info!("({}) Entering FAULT STATE (init)", self.p.name);
            self.state = State::Fault;
            self.last_transition = Some(now);
            self.sands = None;
            out.push(Action::Notify(State::Fault));
            return;
        }
        // Whatever was left behind by a previous run must not stay on the wire.
        out.push(Action::RemoveVips);
        self.state = State::Backup;
        self.last_transition = Some(now);
        if self.p.want_master && self.effective == PRIO_OWNER {
            // The owner takes over at once (keepalived: 1 us down timer).
            self.sands = Some(now);
        } else if self.p.want_master {
            // Allow one advert interval to pass to make sure there is no master.
            self.sands = Some(now + Self::cs(self.p.adver_int_cs) + self.skew_for(1));
            info!("({}) Entering BACKUP STATE (init)", self.p.name);
            out.push(Action::Notify(State::Backup));
        } else {
            self.sands = Some(now + self.master_down_interval());
            info!("({}) Entering BACKUP STATE (init)", self.p.name);
            out.push(Action::Notify(State::Backup));
        }
    }

    fn timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Some(g) = self.garp_at {
            if now >= g {
                self.garp_at = None;
                if self.state == State::Master {
                    out.push(Action::SendGarp { repeat: self.p.garp_repeat });
                }
            }
        }
        let Some(s) = self.sands else { return };
        if now < s {
            return;
        }
        match self.state {
            State::Stop if self.hold_until.is_some() => self.release_hold(out),
            State::Backup => {
                info!("({}) Receive advertisement timeout", self.p.name);
                self.goto_master(now, out);
            }
            State::Master => {
                self.send(self.effective, out);
                self.sands = Some(now + Self::cs(self.p.adver_int_cs));
            }
            _ => self.sands = None,
        }
    }

    fn send(&mut self, priority: u8, out: &mut Vec<Action>) {
        self.stats.advert_sent += 1;
        if priority == 0 {
            self.stats.pri_zero_sent += 1;
        }
        out.push(Action::SendAdvert { priority });
    }

    fn goto_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        // Advert first so that the old master drops the VIPs before our GARPs.
        self.send(self.effective, out);
        info!("({}) Entering MASTER STATE", self.p.name);
        self.stats.become_master += 1;
        if self.p.version == 3 && self.master_adver_cs != self.p.adver_int_cs {
            info!(
                "({}) changing advert interval from {}ms to locally configured {}ms",
                self.p.name,
                u32::from(self.master_adver_cs) * 10,
                u32::from(self.p.adver_int_cs) * 10
            );
            self.master_adver_cs = self.p.adver_int_cs;
        }
        out.push(Action::AddVips);
        out.push(Action::SendGarp { repeat: self.p.garp_repeat });
        if !self.p.garp_delay.is_zero() {
            self.garp_at = Some(now + self.p.garp_delay);
        }
        self.master_addr = None;
        self.sands = Some(now + Self::cs(self.p.adver_int_cs));
        self.transition(State::Master, now, out);
    }

    fn leave_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        info!("({}) Entering BACKUP STATE", self.p.name);
        out.push(Action::RemoveVips);
        self.stats.release_master += 1;
        self.garp_at = None;
        self.preempt_time = None;
        self.transition(State::Backup, now, out);
        self.sands = Some(now + self.master_down_interval());
    }

    fn malformed(&mut self, e: DecodeError) {
        match e {
            DecodeError::Checksum(_) => self.stats.checksum_err += 1,
            DecodeError::Version(_) => self.stats.version_err += 1,
            DecodeError::Type(_) => self.stats.invalid_type_rcvd += 1,
            DecodeError::NotVrrp(_) | DecodeError::NotIpv4 => return,
            _ => self.stats.packet_len_err += 1,
        }
        info!("({}) {}", self.p.name, e);
    }

    /// keepalived's vrrp_check_packet checks that need the configuration. Returns
    /// false when the advert must be ignored (counted and logged).
    fn check(&mut self, r: &Received) -> bool {
        let name = &self.p.name;
        let a = &r.advert;
        let unicast = !self.p.unicast_peers.is_empty();
        if !unicast && r.ttl != VRRP_TTL {
            info!("({name}) invalid TTL/HL. Received {} and expect {}", r.ttl, VRRP_TTL);
            self.stats.ip_ttl_err += 1;
            return false;
        }
        if a.version != self.p.version {
            info!("({name}) wrong version. Received {} and expect {}", a.version, self.p.version);
            self.stats.version_err += 1;
            return false;
        }
        if a.version == 2 {
            if a.auth_type > 2 {
                info!("({name}) Invalid auth type: {}", a.auth_type);
                self.stats.invalid_authtype += 1;
                return false;
            }
            let (want_type, want_pw) = match &self.p.auth {
                Auth::None => (0u8, [0u8; AUTH_LEN]),
                Auth::Pass(pw) => (1u8, *pw),
            };
            if a.auth_type != want_type {
                info!("({name}) received a {} auth, expecting {}!", a.auth_type, want_type);
                self.stats.authtype_mismatch += 1;
                return false;
            }
            if want_type == 1 && !constant_time_eq(&a.auth_data, &want_pw) {
                info!("({name}) received an invalid passwd!");
                self.stats.auth_failure += 1;
                return false;
            }
            if a.adver_int_cs != self.p.adver_int_cs {
                info!(
                    "({name}) advertisement interval mismatch mine={} sec rcv'd={} sec",
                    self.p.adver_int_cs / 100,
                    a.adver_int_cs / 100
                );
                self.stats.adver_int_err += 1;
                return false;
            }
        }
        if a.addrs.len() != self.p.vips.len() {
            info!(
                "({name}) received an unexpected ip number count {}, expected {}!",
                a.addrs.len(),
                self.p.vips.len()
            );
            self.stats.addr_list_err += 1;
            return false;
        }
        if r.dst.is_multicast() == unicast {
            let (e, g) = if unicast { ("un", "mult") } else { ("mult", "un") };
            info!("({name}) Expected {e}icast packet but received {g}icast packet");
            self.stats.addr_list_err += 1;
            return false;
        }
        self.stats.advert_rcvd += 1;
        for v in &self.p.vips {
            if !a.addrs.contains(v) {
                info!(
                    "({name}) ip address associated with VRID {} not present in MASTER advert: {v}",
                    self.p.vrid
                );
                self.stats.addr_list_err += 1;
                return false;
            }
        }
        if unicast && !self.p.unicast_peers.contains(&r.src) {
            info!("({name}) unicast source address {} not a unicast peer", r.src);
            return false;
        }
        if a.priority == 0 {
            self.stats.pri_zero_rcvd += 1;
        }
        true
    }

    fn advert(&mut self, r: Received, now: Instant, out: &mut Vec<Action>) {
        // Other virtual routers share the group; our own adverts may loop back.
        if r.advert.vrid != self.p.vrid || r.src == self.p.src {
            return;
        }
        if self.state == State::Stop && self.hold_until.is_some() {
            // A valid advert with a real priority: someone else is master now.
            if r.advert.priority > 0 && self.check(&r) && !self.handover_seen {
                // The new master sends this advert just before adding the VIPs
                // and sending its GARPs: keep answering a little longer so that
                // clients still using our MAC are served until the GARPs land.
                info!("({}) {} took over, removing VIPs in {:?}", self.p.name, r.src, HANDOVER_GRACE);
                self.handover_seen = true;
                let end = now + HANDOVER_GRACE;
                self.hold_until = Some(self.hold_until.map_or(end, |h| h.min(end)));
                self.sands = self.hold_until;
            }
            return;
        }
        if matches!(self.state, State::Init | State::Stop | State::Fault) {
            return;
        }
        if !self.check(&r) {
            return;
        }
        let prio = r.advert.priority;
        match self.state {
            State::Backup => self.backup_rx(&r, prio, now),
            State::Master => self.master_rx(&r, prio, now, out),
            _ => {}
        }
    }

    fn backup_rx(&mut self, r: &Received, prio: u8, now: Instant) {
        let name = self.p.name.clone();
        if prio == 0 {
            // The master is leaving: take over after the skew time only.
            info!("({name}) Backup received priority 0 advertisement");
            self.sands = Some(now + self.skew());
            return;
        }
        let delaying = !self.p.preempt_delay.is_zero() && self.preempt_time.is_none_or(|t| t > now);
        if self.p.nopreempt || prio >= self.effective || delaying {
            if self.p.version == 3 && r.advert.adver_int_cs != self.master_adver_cs {
                // RFC 5798 6.4.2: Master_Adver_Interval := the advert's interval.
                info!(
                    "({name}) advertisement interval updated from {}ms to {}ms by master",
                    u32::from(self.master_adver_cs) * 10,
                    u32::from(r.advert.adver_int_cs) * 10
                );
                self.master_adver_cs = r.advert.adver_int_cs.max(1);
            }
            self.sands = Some(now + self.master_down_interval());
            debug!(
                "({name}) advert from {} priority {prio}, master down in {:?}",
                r.src,
                self.master_down_interval()
            );
            self.master_addr = Some(r.src);
            self.master_priority = prio;
            if !self.p.preempt_delay.is_zero() {
                if prio >= self.effective {
                    self.preempt_time = None;
                } else if self.preempt_time.is_none() {
                    info!("({name}) start preempt delay ({:.6})", self.p.preempt_delay.as_secs_f64());
                    self.preempt_time = Some(now + self.p.preempt_delay);
                }
            }
        } else {
            // Preemption: ignoring the advert lets the down timer run out.
            info!("({name}) received lower priority ({prio}) advert from {} - discarding", r.src);
            self.master_addr = Some(r.src);
        }
    }

    fn master_rx(&mut self, r: &Received, prio: u8, now: Instant, out: &mut Vec<Action>) {
        let name = self.p.name.clone();
        // Same family on both sides, so IpAddr's order is the numeric one.
        let theirs_higher_addr = r.src > self.p.src;
        if prio == 0 {
            // Another master is leaving: advertise at once so backups do not
            // take over after their skew time.
            self.send(self.effective, out);
            self.sands = Some(now + Self::cs(self.p.adver_int_cs));
            return;
        }
        if prio == self.effective && self.effective == PRIO_OWNER {
            warn!(
                "({name}) CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority"
            );
            self.p.priority = PRIO_OWNER - 1;
            self.compute_effective();
        }
        if prio < self.effective || (prio == self.effective && !theirs_higher_addr) {
            info!(
                "({name}) Received advert from {} with lower priority {prio}, ours {}, forcing new election",
                r.src, self.effective
            );
            self.send(self.effective, out);
            return;
        }
        if prio > self.effective {
            info!(
                "({name}) Master received advert from {} with higher priority {prio}, ours {}",
                r.src, self.effective
            );
        } else {
            info!(
                "({name}) Master received advert from {} with same priority {prio} but higher IP address than ours",
                r.src
            );
        }
        if self.p.version == 3 {
            self.master_adver_cs = r.advert.adver_int_cs.max(1);
        }
        self.master_addr = Some(r.src);
        self.master_priority = prio;
        self.leave_master(now, out);
    }

    fn track(&mut self, delta: i32, fault: bool, now: Instant, out: &mut Vec<Action>) {
        let old = self.effective;
        self.track_delta = delta;
        self.compute_effective();
        if self.effective != old {
            info!("({}) Changing effective priority from {} to {}", self.p.name, old, self.effective);
        }
        let was_fault = self.track_fault;
        self.track_fault = fault;
        match (was_fault, fault, self.state) {
            (false, true, State::Master | State::Backup) => {
                info!("({}) Entering FAULT STATE", self.p.name);
                if self.state == State::Master {
                    self.send(0, out);
                    out.push(Action::RemoveVips);
                    self.stats.release_master += 1;
                }
                self.sands = None;
                self.garp_at = None;
                self.transition(State::Fault, now, out);
            }
            (true, false, State::Fault) => {
                info!("({}) Entering BACKUP STATE", self.p.name);
                self.master_adver_cs = self.p.adver_int_cs;
                self.transition(State::Backup, now, out);
                self.sands = Some(now + self.master_down_interval());
            }
            (_, _, State::Master) if self.effective != old => {
                // Tell the backups at once so that a lowered priority moves the VIP
                // without waiting for the next advert.
                self.send(self.effective, out);
                self.sands = Some(now + Self::cs(self.p.adver_int_cs));
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state == State::Stop {
            return;
        }
        let was_master = self.state == State::Master;
        self.garp_at = None;
        if was_master {
            self.send(0, out);
            info!("({}) sent 0 priority", self.p.name);
            self.stats.release_master += 1;
            // Make-before-break: keep serving the VIPs until a backup announces
            // itself as the new master (it does so after its skew time, then adds
            // the VIPs and sends GARPs), so clients see no gap. Bounded by the
            // master-down interval for the case where nobody takes over.
            self.hold_until = Some(now + self.master_down_interval());
            self.sands = self.hold_until;
        } else {
            self.sands = None;
            self.finished = true;
        }
        self.transition(State::Stop, now, out);
    }

    /// End of the make-before-break hold: the VIPs go.
    fn release_hold(&mut self, out: &mut Vec<Action>) {
        self.hold_until = None;
        self.sands = None;
        self.finished = true;
        out.push(Action::RemoveVips);
    }

    /// True once a Shutdown has been fully carried out (the edge can exit).
    pub fn finished(&self) -> bool {
        self.finished
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::super::packet::{Advert, MCAST_GROUP};
    use super::*;
    use std::net::Ipv4Addr;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));

    fn params(version: u8, prio: u8, want_master: bool) -> Params {
        Params {
            name: "VI_1".into(),
            vrid: 51,
            version,
            priority: prio,
            adver_int_cs: 100,
            auth: Auth::None,
            vips: vec![VIP],
            src: ME,
            unicast_peers: vec![],
            want_master,
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            garp_delay: Duration::from_secs(5),
            garp_repeat: 5,
        }
    }

    fn rx(version: u8, prio: u8, adver_int_cs: u16) -> Event {
        Event::Advert(Received {
            src: PEER,
            dst: IpAddr::V4(MCAST_GROUP),
            ttl: 255,
            advert: Advert {
                version,
                vrid: 51,
                priority: prio,
                adver_int_cs,
                addrs: vec![VIP],
                auth_type: 0,
                auth_data: [0; 8],
            },
        })
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives timers up to `until`, returning every action emitted.
    fn run_until(f: &mut Fsm, until: Instant) -> Vec<Action> {
        let mut all = vec![];
        while let Some(d) = f.next_deadline() {
            if d > until {
                break;
            }
            all.extend(f.handle(Event::Timer, d));
        }
        all
    }

    #[test]
    fn backup_becomes_master_after_down_interval() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(2, 100, false));
        let a = f.handle(Event::Startup { fault: false }, t0);
        assert_eq!(f.state(), State::Backup);
        assert!(a.contains(&Action::Notify(State::Backup)));
        // 3 * 1 s + (256-100)/256 s = 3.609375 s
        assert_eq!(f.master_down_interval(), Duration::from_micros(3_609_375));
        assert!(f.handle(Event::Timer, t0 + ms(3600)).is_empty());
        let a = f.handle(Event::Timer, t0 + ms(3610));
        assert_eq!(f.state(), State::Master);
        assert_eq!(a[0], Action::SendAdvert { priority: 100 });
        assert!(a.contains(&Action::AddVips));
        assert!(a.contains(&Action::SendGarp { repeat: 5 }));
        assert!(a.contains(&Action::Notify(State::Master)));
        assert_eq!(f.stats.become_master, 1);
    }

    #[test]
    fn master_config_waits_one_interval_then_adverts() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 150, true));
        f.handle(Event::Startup { fault: false }, t0);
        assert_eq!(f.state(), State::Backup);
        // adver_int + skew(1) = 1 s + 3.906 ms
        let a = f.handle(Event::Timer, t0 + ms(1004));
        assert_eq!(f.state(), State::Master);
        assert!(a.contains(&Action::AddVips));
        // Adverts every second afterwards; delayed GARP at +5 s.
        let a = run_until(&mut f, t0 + ms(1004 + 5000));
        let sends = a.iter().filter(|x| matches!(x, Action::SendAdvert { .. })).count();
        assert_eq!(sends, 5);
        assert!(a.contains(&Action::SendGarp { repeat: 5 }));
    }

    #[test]
    fn owner_takes_over_immediately() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 255, true));
        f.handle(Event::Startup { fault: false }, t0);
        f.handle(Event::Timer, t0);
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn higher_priority_advert_keeps_backup_and_v3_adopts_interval() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 100, false));
        f.handle(Event::Startup { fault: false }, t0);
        // Master advertises every 10 cs: down interval becomes 3*0.1 + skew.
        f.handle(rx(3, 200, 10), t0 + ms(100));
        assert_eq!(f.master_adver_cs(), 10);
        // skew = 156 * 10 * 625 / 16 us = 60.9375 ms
        assert_eq!(f.master_down_interval(), Duration::from_micros(360_937));
        assert_eq!(f.master_addr(), Some(PEER));
        assert_eq!(f.next_deadline(), Some(t0 + ms(100) + Duration::from_micros(360_937)));
        f.handle(Event::Timer, t0 + ms(400));
        assert_eq!(f.state(), State::Backup);
        f.handle(Event::Timer, t0 + ms(461));
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn priority_zero_means_takeover_after_skew() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(2, 100, false));
        f.handle(Event::Startup { fault: false }, t0);
        f.handle(rx(2, 200, 100), t0);
        f.handle(rx(2, 0, 100), t0 + ms(500));
        assert_eq!(f.stats.pri_zero_rcvd, 1);
        // skew = 156/256 s = 609.375 ms
        assert_eq!(f.next_deadline(), Some(t0 + ms(500) + Duration::from_micros(609_375)));
        f.handle(Event::Timer, t0 + ms(1110));
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn preemption_by_higher_priority_backup() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(2, 200, false));
        f.handle(Event::Startup { fault: false }, t0);
        // Lower priority adverts are ignored: the down timer keeps running.
        f.handle(rx(2, 100, 100), t0 + ms(1000));
        f.handle(rx(2, 100, 100), t0 + ms(2000));
        f.handle(rx(2, 100, 100), t0 + ms(3000));
        // 3 s + 56/256 s = 3.21875 s after start.
        f.handle(Event::Timer, t0 + ms(3219));
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn nopreempt_stays_backup() {
        let t0 = Instant::now();
        let mut p = params(2, 200, false);
        p.nopreempt = true;
        let mut f = Fsm::new(p);
        f.handle(Event::Startup { fault: false }, t0);
        for i in 1..10 {
            f.handle(rx(2, 100, 100), t0 + ms(1000 * i));
            f.handle(Event::Timer, t0 + ms(1000 * i + 1));
        }
        assert_eq!(f.state(), State::Backup);
    }

    #[test]
    fn preempt_delay_postpones_preemption() {
        let t0 = Instant::now();
        let mut p = params(2, 200, false);
        p.preempt_delay = Duration::from_secs(5);
        let mut f = Fsm::new(p);
        f.handle(Event::Startup { fault: false }, t0);
        // Adverts accepted while the delay runs (from t0+1 s to t0+6 s).
        for i in 1..=6 {
            f.handle(rx(2, 100, 100), t0 + ms(1000 * i));
            f.handle(Event::Timer, t0 + ms(1000 * i + 1));
            assert_eq!(f.state(), State::Backup, "at {i} s");
        }
        // Then they are discarded and the down timer (3.22 s) runs out.
        f.handle(rx(2, 100, 100), t0 + ms(7000));
        f.handle(Event::Timer, t0 + ms(6000 + 3219));
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn master_yields_to_higher_priority_and_tie_break_on_ip() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 100, true));
        f.handle(Event::Startup { fault: false }, t0);
        f.handle(Event::Timer, t0 + ms(1010));
        assert_eq!(f.state(), State::Master);
        // Lower priority: we re-advertise and stay.
        let a = f.handle(rx(3, 50, 100), t0 + ms(1100));
        assert_eq!(a, vec![Action::SendAdvert { priority: 100 }]);
        // Equal priority from a higher IP (10.0.0.2 > 10.0.0.1): we yield.
        let a = f.handle(rx(3, 100, 100), t0 + ms(1200));
        assert_eq!(f.state(), State::Backup);
        assert!(a.contains(&Action::RemoveVips));
        assert!(a.contains(&Action::Notify(State::Backup)));
        assert_eq!(f.stats.release_master, 1);
    }

    #[test]
    fn equal_priority_lower_ip_loses() {
        let t0 = Instant::now();
        let mut p = params(3, 100, true);
        p.src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
        let mut f = Fsm::new(p);
        f.handle(Event::Startup { fault: false }, t0);
        f.handle(Event::Timer, t0 + ms(1010));
        f.handle(rx(3, 100, 100), t0 + ms(1200));
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn graceful_stop_sends_priority_zero() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 100, true));
        f.handle(Event::Startup { fault: false }, t0);
        f.handle(Event::Timer, t0 + ms(1010));
        let a = f.handle(Event::Shutdown, t0 + ms(1500));
        assert_eq!(a, vec![Action::SendAdvert { priority: 0 }, Action::Notify(State::Stop)]);
        assert_eq!(f.state(), State::Stop);
        assert_eq!(f.stats.pri_zero_sent, 1);
        assert!(!f.finished());
        // VIPs held until the new master's first advert, plus the grace...
        assert!(f.handle(rx(3, 90, 100), t0 + ms(1560)).is_empty());
        assert_eq!(f.next_deadline(), Some(t0 + ms(1560) + HANDOVER_GRACE));
        assert!(!f.finished());
        assert!(f.handle(rx(3, 90, 100), t0 + ms(1570)).is_empty());
        assert_eq!(f.handle(Event::Timer, t0 + ms(1580)), vec![Action::RemoveVips]);
        assert!(f.finished());
        assert_eq!(f.next_deadline(), None);
        // ...and a second Shutdown (channel closed) is a no-op.
        assert!(f.handle(Event::Shutdown, t0 + ms(1600)).is_empty());
    }

    #[test]
    fn graceful_stop_without_backup_releases_after_down_interval() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 100, true));
        f.handle(Event::Startup { fault: false }, t0);
        f.handle(Event::Timer, t0 + ms(1010));
        f.handle(Event::Shutdown, t0 + ms(1500));
        // Our own priority-0 advert looping back or a bad one does not release.
        let Event::Advert(mut r) = rx(3, 0, 100) else { unreachable!() };
        assert!(f.handle(Event::Advert(r.clone()), t0 + ms(1510)).is_empty());
        r.advert.priority = 90;
        r.ttl = 1;
        assert!(f.handle(Event::Advert(r), t0 + ms(1520)).is_empty());
        assert_eq!(f.next_deadline(), Some(t0 + ms(1500) + f.master_down_interval()));
        let a = f.handle(Event::Timer, t0 + ms(1500) + f.master_down_interval());
        assert_eq!(a, vec![Action::RemoveVips]);
        assert!(f.finished());
    }

    #[test]
    fn stop_from_backup_is_immediate() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 100, false));
        f.handle(Event::Startup { fault: false }, t0);
        assert_eq!(f.handle(Event::Shutdown, t0 + ms(10)), vec![Action::Notify(State::Stop)]);
        assert!(f.finished());
    }

    #[test]
    fn auth_and_ttl_and_vip_checks() {
        let t0 = Instant::now();
        let mut p = params(2, 100, false);
        p.auth = Auth::pass("secret");
        let mut f = Fsm::new(p);
        f.handle(Event::Startup { fault: false }, t0);
        let deadline = f.next_deadline();
        // Wrong password.
        let Event::Advert(mut r) = rx(2, 200, 100) else { unreachable!() };
        r.advert.auth_type = 1;
        r.advert.auth_data = *b"wrong\0\0\0";
        f.handle(Event::Advert(r.clone()), t0 + ms(10));
        assert_eq!(f.stats.auth_failure, 1);
        // No auth at all.
        let mut n = r.clone();
        n.advert.auth_type = 0;
        f.handle(Event::Advert(n), t0 + ms(10));
        assert_eq!(f.stats.authtype_mismatch, 1);
        // Right password but TTL 64.
        r.advert.auth_data = *b"secret\0\0";
        let mut t = r.clone();
        t.ttl = 64;
        f.handle(Event::Advert(t), t0 + ms(10));
        assert_eq!(f.stats.ip_ttl_err, 1);
        // Wrong VIP list.
        let mut v = r.clone();
        v.advert.addrs = vec![IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))];
        f.handle(Event::Advert(v), t0 + ms(10));
        assert_eq!(f.stats.addr_list_err, 1);
        // Interval mismatch (v2).
        let mut i = r.clone();
        i.advert.adver_int_cs = 200;
        f.handle(Event::Advert(i), t0 + ms(10));
        assert_eq!(f.stats.adver_int_err, 1);
        // None of those reset the down timer.
        assert_eq!(f.next_deadline(), deadline);
        // The right one does.
        f.handle(Event::Advert(r), t0 + ms(10));
        assert_ne!(f.next_deadline(), deadline);
        assert_eq!(f.master_addr(), Some(PEER));
    }

    #[test]
    fn unweighted_tracker_failure_means_fault() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 100, true));
        f.handle(Event::Startup { fault: false }, t0);
        f.handle(Event::Timer, t0 + ms(1010));
        let a = f.handle(Event::Track { delta: 0, fault: true }, t0 + ms(1100));
        assert_eq!(f.state(), State::Fault);
        assert!(a.contains(&Action::SendAdvert { priority: 0 }));
        assert!(a.contains(&Action::RemoveVips));
        assert!(a.contains(&Action::Notify(State::Fault)));
        assert_eq!(f.next_deadline(), None);
        f.handle(Event::Track { delta: 0, fault: false }, t0 + ms(2000));
        assert_eq!(f.state(), State::Backup);
        f.handle(Event::Timer, t0 + ms(2000 + 3610));
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn weighted_tracker_changes_advertised_priority() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 100, true));
        f.handle(Event::Startup { fault: false }, t0);
        f.handle(Event::Timer, t0 + ms(1010));
        let a = f.handle(Event::Track { delta: -60, fault: false }, t0 + ms(1100));
        assert_eq!(f.effective_priority(), 40);
        assert_eq!(a, vec![Action::SendAdvert { priority: 40 }]);
        // A backup at 90 now wins.
        f.handle(rx(3, 90, 100), t0 + ms(1200));
        assert_eq!(f.state(), State::Backup);
        // Clamped to 1..254.
        f.handle(Event::Track { delta: 500, fault: false }, t0 + ms(1300));
        assert_eq!(f.effective_priority(), 254);
    }

    #[test]
    fn other_vrid_and_own_packets_ignored() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 100, false));
        f.handle(Event::Startup { fault: false }, t0);
        let Event::Advert(mut r) = rx(3, 200, 100) else { unreachable!() };
        r.advert.vrid = 52;
        f.handle(Event::Advert(r.clone()), t0);
        r.advert.vrid = 51;
        r.src = ME;
        f.handle(Event::Advert(r), t0);
        assert_eq!(f.stats.advert_rcvd, 0);
    }

    #[test]
    fn unicast_mode_checks_peer_and_destination() {
        let t0 = Instant::now();
        let mut p = params(3, 100, false);
        p.unicast_peers = vec![PEER];
        let mut f = Fsm::new(p);
        f.handle(Event::Startup { fault: false }, t0);
        // Multicast in unicast mode is refused.
        f.handle(rx(3, 200, 100), t0);
        assert_eq!(f.stats.addr_list_err, 1);
        let Event::Advert(mut r) = rx(3, 200, 100) else { unreachable!() };
        r.dst = ME;
        r.ttl = 64; // TTL is not checked in unicast mode.
        f.handle(Event::Advert(r), t0);
        assert_eq!(f.stats.advert_rcvd, 1);
        assert_eq!(f.master_addr(), Some(PEER));
    }

    #[test]
    fn fault_at_startup() {
        let t0 = Instant::now();
        let mut f = Fsm::new(params(3, 100, true));
        let a = f.handle(Event::Startup { fault: true }, t0);
        assert_eq!(f.state(), State::Fault);
        assert_eq!(a, vec![Action::Notify(State::Fault)]);
    }
}
