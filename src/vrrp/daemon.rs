//! `lanai vrrp -f keepalived.conf`: the I/O edge around the state machine.
//!
//! One tokio task per vrrp_instance owns its `Fsm`, socket and timers; one tracker
//! task per instance runs its scripts and watches its interfaces; the main task
//! handles signals (SIGTERM/SIGINT: graceful stop, SIGHUP: reload) and the control
//! socket.
//!
//! Control socket (line based, one reply per command):
//! - `show instances` -> one line holding a JSON array, one object per instance:
//!   `name, interface, virtual_router_id, version, state, base_priority,
//!   effective_priority, master_address, last_transition` (Unix time, seconds),
//!   `vips`, `stats` (counters named as in keepalived's stats dump).
//! - `reload` -> re-reads the file; unchanged instances keep their state. Replies
//!   `ok` or `error: FILE:LINE: message` lines.
//! - `stop` -> graceful stop, replies `ok`.
//!
//! Graceful stop (SIGTERM, `stop`): a master sends a priority 0 advert and keeps
//! its VIPs until 20 ms after the new master's first advert (the new master adds
//! the VIPs and sends its GARPs right after that advert), at most one
//! master-down interval when nobody takes over; then it removes them and exits.
//! Make-before-break: clients see no gap, where keepalived, which removes them at
//! once, leaves a gap of one skew time. A backup stops at once.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::addr;
use super::fsm::{Action, Event, Fsm, Params, State, Stats};
use super::net::{if_info, VrrpSocket};
use super::packet::{self, Advert, Auth, MCAST_GROUP, MCAST_GROUP6};
use super::track::{self, Script, Tracked};
use crate::conf::keepalived::{self, GlobalDefs, InitialState, KeepalivedConfig, VrrpInstance, VrrpScript};

#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub virtual_router_id: u8,
    pub version: u8,
    pub state: State,
    pub base_priority: u8,
    pub effective_priority: u8,
    pub master_address: Option<IpAddr>,
    pub last_transition: Option<f64>,
    pub vips: Vec<String>,
    pub stats: Stats,
}

type Shared = Arc<Mutex<InstanceStatus>>;

enum Cmd {
    Track { delta: i32, fault: bool },
    Shutdown,
}

/// What must be equal for an instance to survive a reload untouched.
#[derive(PartialEq)]
struct Key {
    inst: VrrpInstance,
    scripts: Vec<VrrpScript>,
    script_user: Option<String>,
    script_security: bool,
}

struct Running {
    key: Key,
    tx: mpsc::UnboundedSender<Cmd>,
    status: Shared,
    task: tokio::task::JoinHandle<()>,
    tracker: tokio::task::JoinHandle<()>,
}

enum Ctl {
    Reload(oneshot::Sender<String>),
    /// The reply, and a channel the connection fires once the reply is written
    /// (so that the process does not exit before the client has its answer).
    Stop(oneshot::Sender<(String, oneshot::Sender<()>)>),
}

/// Default control socket: `$LANAI_RUN_DIR/vrrp.sock`, else /run/lanai/vrrp.sock.
pub fn default_control_path() -> PathBuf {
    match std::env::var_os("LANAI_RUN_DIR") {
        Some(d) => PathBuf::from(d).join("vrrp.sock"),
        None => PathBuf::from("/run/lanai/vrrp.sock"),
    }
}

fn load(file: &Path) -> Result<KeepalivedConfig, Vec<String>> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| vec![format!("{name}:0: cannot read file: {e}")])?;
    let (cfg, diags) = keepalived::parse(&name, &text);
    for d in diags.iter().filter(|d| !d.is_error()) {
        warn!("{d}");
    }
    cfg.ok_or_else(|| diags.iter().filter(|d| d.is_error()).map(ToString::to_string).collect())
}

/// Entry point of `lanai vrrp`.
pub fn run(file: &Path, control: Option<PathBuf>) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    let cfg = match load(file) {
        Ok(c) => c,
        Err(errs) => {
            for e in errs {
                eprintln!("{e}");
            }
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let control = control.unwrap_or_else(default_control_path);
    rt.block_on(daemon(file.to_path_buf(), cfg, control))
}

async fn daemon(file: PathBuf, cfg: KeepalivedConfig, control: PathBuf) -> ExitCode {
    info!("Starting VRRP child process, pid={}", std::process::id());
    // First: a SIGTERM or SIGHUP sent while the first apply runs is queued
    // for the loop below, not the default action (death, leaving addresses behind).
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        error!("cannot install signal handlers");
        return ExitCode::from(1);
    };
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    let table: Arc<Mutex<Vec<Shared>>> = Arc::default();
    apply(&cfg, &mut running, &table).await;

    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Ctl>();
    if let Some(dir) = control.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(&control);
    match tokio::net::UnixListener::bind(&control) {
        Ok(l) => {
            tokio::spawn(control_server(l, table.clone(), ctl_tx));
        }
        Err(e) => error!("cannot bind control socket {}: {e}", control.display()),
    }

    let mut stop_reply = None;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => { reload(&file, &mut running, &table).await; }
            Some(c) = ctl_rx.recv() => match c {
                Ctl::Reload(r) => { let _ = r.send(reload(&file, &mut running, &table).await); }
                Ctl::Stop(r) => { stop_reply = Some(r); break; }
            },
        }
    }
    info!("Stopping");
    // All at once: a master's stop may hold its VIPs until a backup takes over.
    let stops: Vec<_> =
        std::mem::take(&mut running).into_values().map(|r| tokio::spawn(stop_instance(r))).collect();
    for s in stops {
        let _ = s.await;
    }
    let _ = std::fs::remove_file(&control);
    if let Some(r) = stop_reply {
        let (done_tx, done_rx) = oneshot::channel();
        if r.send(("ok".into(), done_tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), done_rx).await;
        }
    }
    info!("Stopped");
    ExitCode::SUCCESS
}

async fn reload(
    file: &Path,
    running: &mut BTreeMap<String, Running>,
    table: &Arc<Mutex<Vec<Shared>>>,
) -> String {
    info!("Reloading");
    match load(file) {
        Ok(cfg) => {
            apply(&cfg, running, table).await;
            "ok".into()
        }
        Err(errs) => {
            for e in &errs {
                error!("reload refused: {e}");
            }
            errs.iter().map(|e| format!("error: {e}")).collect::<Vec<_>>().join("\n")
        }
    }
}

async fn stop_instance(r: Running) {
    let _ = r.tx.send(Cmd::Shutdown);
    r.tracker.abort();
    if tokio::time::timeout(Duration::from_secs(5), r.task).await.is_err() {
        warn!("instance did not stop in time");
    }
}

/// Starts, keeps or replaces instances so that `running` matches `cfg`.
async fn apply(
    cfg: &KeepalivedConfig,
    running: &mut BTreeMap<String, Running>,
    table: &Arc<Mutex<Vec<Shared>>>,
) {
    let mut next = BTreeMap::new();
    for inst in &cfg.instances {
        let scripts: Vec<VrrpScript> = inst
            .track_script
            .iter()
            .filter_map(|t| cfg.scripts.iter().find(|s| s.name == t.name).cloned())
            .collect();
        let key = Key {
            inst: inst.clone(),
            scripts,
            script_user: cfg.global.script_user.clone(),
            script_security: cfg.global.enable_script_security,
        };
        match running.remove(&inst.name) {
            Some(r) if r.key == key => {
                next.insert(inst.name.clone(), r);
            }
            old => {
                if let Some(o) = old {
                    info!("({}) configuration changed, restarting instance", inst.name);
                    stop_instance(o).await;
                }
                next.insert(inst.name.clone(), start_instance(key, &cfg.global));
            }
        }
    }
    for (name, r) in std::mem::take(running) {
        info!("({name}) removed from configuration");
        stop_instance(r).await;
    }
    *running = next;
    if let Ok(mut t) = table.lock() {
        *t = running.values().map(|r| r.status.clone()).collect();
    }
}

fn start_instance(key: Key, global: &GlobalDefs) -> Running {
    let inst = key.inst.clone();
    let status = Arc::new(Mutex::new(InstanceStatus {
        name: inst.name.clone(),
        interface: inst.interface.clone(),
        virtual_router_id: inst.virtual_router_id,
        version: inst.version,
        state: State::Init,
        base_priority: inst.priority,
        effective_priority: inst.priority,
        master_address: None,
        last_transition: None,
        vips: inst.virtual_ipaddress.iter().map(|v| format!("{}/{}", v.addr, v.prefix)).collect(),
        stats: Stats::default(),
    }));
    let (tx, rx) = mpsc::unbounded_channel();
    let uid_gid = global.script_user.as_deref().and_then(|u| match nix::unistd::User::from_name(u) {
        Ok(Some(u)) => Some((u.uid.as_raw(), u.gid.as_raw())),
        _ => {
            warn!("script_user {u} not found, running scripts as the current user");
            None
        }
    });
    if !key.script_security
        && !key.scripts.is_empty()
        && nix::unistd::geteuid().is_root()
        && uid_gid.is_none()
    {
        warn!("SECURITY VIOLATION - scripts are being executed but script_security not enabled.");
    }
    let scripts: Vec<VrrpScript> = key
        .scripts
        .iter()
        .filter(|s| {
            let insecure = key
                .script_security
                .then(|| s.script.split_whitespace().next().and_then(track::insecure_reason))
                .flatten();
            if let Some(why) = &insecure {
                warn!("WARNING - script `{}` is not secure ({why}) - disabling", s.name);
            }
            insecure.is_none()
        })
        .cloned()
        .collect();
    let tracker = tokio::spawn(tracker_task(inst.clone(), scripts, uid_gid, tx.clone()));
    let task = tokio::spawn(instance_task(inst, rx, status.clone(), uid_gid));
    Running { key, tx, status, task, tracker }
}

async fn tracker_task(
    inst: VrrpInstance,
    scripts: Vec<VrrpScript>,
    uid_gid: Option<(u32, u32)>,
    tx: mpsc::UnboundedSender<Cmd>,
) {
    let now = Instant::now();
    let mut scripts: Vec<Script> = scripts
        .iter()
        .map(|s| {
            let weight = inst.track_script.iter().find(|t| t.name == s.name).and_then(|t| t.weight);
            Script {
                t: Tracked::new(&s.name, weight.unwrap_or(s.weight), s.fall, s.rise),
                argv: s.script.split_whitespace().map(str::to_string).collect(),
                interval: s.interval,
                timeout: s.timeout.unwrap_or(s.interval),
                uid_gid,
                next: now,
            }
        })
        .collect();
    // The instance's own interface is tracked unweighted: down means FAULT.
    let mut ifaces: Vec<Tracked> = std::iter::once(Tracked::new(&inst.interface, 0, 1, 1))
        .chain(inst.track_interface.iter().map(|t| Tracked::new(&t.name, t.weight, 1, 1)))
        .collect();
    let mut last: Option<(i32, bool)> = None;
    loop {
        for t in &mut ifaces {
            let up = if_info(&t.name).is_some_and(|i| i.running);
            if t.result(up) {
                info!("Netlink reports {} {}", t.name, if up { "up" } else { "down" });
            }
        }
        let now = Instant::now();
        for s in &mut scripts {
            if now >= s.next {
                let ok = track::run_script(s).await;
                if s.t.result(ok) {
                    info!("Script `{}` now returning {}", s.t.name, if ok { 0 } else { 1 });
                    info!("VRRP_Script({}) {}", s.t.name, if ok { "succeeded" } else { "failed" });
                }
                s.next = Instant::now() + s.interval;
            }
        }
        let cur = track::combine(ifaces.iter().chain(scripts.iter().map(|s| &s.t)));
        if last != Some(cur) {
            last = Some(cur);
            if tx.send(Cmd::Track { delta: cur.0, fault: cur.1 }).is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Edge {
    inst: VrrpInstance,
    ifindex: u32,
    mac: Option<[u8; 6]>,
    src: IpAddr,
    sock: VrrpSocket,
    auth: Auth,
    /// (ifindex, address, prefix, label) for every VIP.
    vips: Vec<(u32, IpAddr, u8, Option<String>)>,
    /// `script_user`: notify scripts run as this user, like tracking scripts.
    uid_gid: Option<(u32, u32)>,
}

impl Edge {
    fn advert(&self, priority: u8) {
        let adv = Advert {
            version: self.inst.version,
            vrid: self.inst.virtual_router_id,
            priority,
            adver_int_cs: self.inst.advert_int_cs,
            addrs: self.inst.virtual_ipaddress.iter().map(|v| v.addr).collect(),
            auth_type: 0,
            auth_data: [0; 8],
        };
        let dsts = match (self.inst.unicast_peer.is_empty(), self.src) {
            (true, IpAddr::V4(_)) => vec![IpAddr::V4(MCAST_GROUP)],
            (true, IpAddr::V6(_)) => vec![IpAddr::V6(MCAST_GROUP6)],
            (false, _) => self.inst.unicast_peer.clone(),
        };
        for d in dsts {
            let pkt = match (self.src, d) {
                (IpAddr::V4(s), IpAddr::V4(d)) => packet::encode_ipv4(&adv, &self.auth, s, d),
                (IpAddr::V6(s), IpAddr::V6(d)) => packet::encode_vrrp6(&adv, s, d),
                _ => continue, // the parser refuses mixed families
            };
            if let Err(e) = self.sock.send_to(&pkt, d) {
                info!("({}): send advert error {e}", self.inst.name);
            }
        }
    }

    fn vips(&self, add: bool) {
        for (idx, a, p, l) in &self.vips {
            if let Err(e) = addr::change_addr(add, *idx, *a, *p, l.as_deref()) {
                error!("({}) cannot {} VIP {a}/{p}: {e}", self.inst.name, if add { "add" } else { "remove" });
            }
        }
        if add {
            info!("({}) Setting VIPs.", self.inst.name);
        }
    }

    fn garp(&self, repeat: u32) {
        let Some(mac) = self.mac else { return };
        let mut v4: Vec<Ipv4Addr> = vec![];
        let mut v6: Vec<Ipv6Addr> = vec![];
        let (name, ifname) = (&self.inst.name, &self.inst.interface);
        for (_, ip, _, _) in &self.vips {
            match ip {
                IpAddr::V4(a) => {
                    info!("({name}) Sending/queueing gratuitous ARPs on {ifname} for {a}");
                    v4.push(*a);
                }
                IpAddr::V6(a) => {
                    info!("({name}) Sending/queueing Unsolicited Neighbour Adverts on {ifname} for {a}");
                    v6.push(*a);
                }
            }
        }
        if !v4.is_empty() {
            if let Err(e) = addr::send_garp(self.ifindex, mac, &v4, repeat) {
                warn!("({name}) gratuitous ARP failed: {e}");
            }
        }
        if !v6.is_empty() {
            if let Err(e) = addr::send_na(self.ifindex, mac, &v6, repeat) {
                warn!("({name}) unsolicited neighbour advert failed: {e}");
            }
        }
    }

    /// keepalived's notify_* semantics: the state's own script with no extra
    /// arguments, then `notify` with `INSTANCE NAME STATE PRIORITY`.
    fn notify(&self, state: State, prio: u8) -> Vec<tokio::process::Child> {
        let own = match state {
            State::Master => &self.inst.notify_master,
            State::Backup => &self.inst.notify_backup,
            State::Fault => &self.inst.notify_fault,
            State::Stop => &self.inst.notify_stop,
            State::Init => &None,
        };
        let mut cmds: Vec<Vec<String>> = vec![];
        if let Some(c) = own {
            cmds.push(c.split_whitespace().map(str::to_string).collect());
        }
        if let Some(c) = &self.inst.notify {
            let mut v: Vec<String> = c.split_whitespace().map(str::to_string).collect();
            v.extend(["INSTANCE".into(), self.inst.name.clone(), state.as_str().into(), prio.to_string()]);
            cmds.push(v);
        }
        let mut children = vec![];
        for c in cmds {
            let Some((p, args)) = c.split_first() else { continue };
            let mut cmd = tokio::process::Command::new(p);
            cmd.args(args).stdin(std::process::Stdio::null());
            if let Some((u, g)) = self.uid_gid {
                cmd.uid(u).gid(g);
            }
            match cmd.spawn() {
                Ok(ch) => children.push(ch),
                Err(e) => warn!("({}) cannot run notify script {p}: {e}", self.inst.name),
            }
        }
        children
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn publish(status: &Shared, fsm: &Fsm) {
    if let Ok(mut s) = status.lock() {
        if s.state != fsm.state() {
            s.last_transition = Some(unix_now());
        }
        s.state = fsm.state();
        s.effective_priority = fsm.effective_priority();
        s.master_address = fsm.master_addr();
        s.stats = fsm.stats.clone();
    }
}

async fn instance_task(
    inst: VrrpInstance,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    status: Shared,
    uid_gid: Option<(u32, u32)>,
) {
    let name = inst.name.clone();
    let edge = match setup(&inst, uid_gid) {
        Ok(e) => e,
        Err(msg) => {
            error!("({name}) {msg}; instance in FAULT");
            if let Ok(mut s) = status.lock() {
                s.state = State::Fault;
                s.last_transition = Some(unix_now());
            }
            while let Some(c) = rx.recv().await {
                if matches!(c, Cmd::Shutdown) {
                    return;
                }
            }
            return;
        }
    };
    let params = Params {
        name: name.clone(),
        vrid: inst.virtual_router_id,
        version: inst.version,
        priority: inst.priority,
        adver_int_cs: inst.advert_int_cs,
        auth: edge.auth.clone(),
        vips: inst.virtual_ipaddress.iter().map(|v| v.addr).collect(),
        src: edge.src,
        unicast_peers: inst.unicast_peer.clone(),
        want_master: inst.state == InitialState::Master,
        nopreempt: inst.nopreempt,
        preempt_delay: inst.preempt_delay,
        garp_delay: inst.garp_master_delay,
        garp_repeat: inst.garp_master_repeat,
    };
    let mut fsm = Fsm::new(params);
    let running = if_info(&inst.interface).is_some_and(|i| i.running);
    let mut children = vec![];
    let acts = fsm.handle(Event::Startup { fault: !running }, Instant::now());
    // Publish first: whoever sees the VIP appear must also see the state
    // and counters that put it there.
    publish(&status, &fsm);
    execute(&edge, &fsm, acts, &mut children);
    let mut buf = vec![0u8; 2048];
    loop {
        let deadline = fsm.next_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        let ev = tokio::select! {
            biased;
            c = rx.recv() => match c {
                Some(Cmd::Track { delta, fault }) => Event::Track { delta, fault },
                Some(Cmd::Shutdown) | None => Event::Shutdown,
            },
            _ = sleep => Event::Timer,
            r = edge.sock.recv_advert(&mut buf) => match r {
                Ok(Ok(p)) => Event::Advert(p),
                Ok(Err(e)) => Event::Malformed(e),
                Err(e) => {
                    warn!("({name}) receive error: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let acts = fsm.handle(ev, Instant::now());
        publish(&status, &fsm);
        execute(&edge, &fsm, acts, &mut children);
        if fsm.finished() {
            break;
        }
        children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }
    // Let notify_stop scripts finish, as keepalived waits for them on exit.
    for mut c in children {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.wait()).await;
    }
}

fn execute(edge: &Edge, fsm: &Fsm, acts: Vec<Action>, children: &mut Vec<tokio::process::Child>) {
    for a in acts {
        match a {
            Action::SendAdvert { priority } => edge.advert(priority),
            Action::AddVips => edge.vips(true),
            Action::RemoveVips => edge.vips(false),
            Action::SendGarp { repeat } => edge.garp(repeat),
            Action::Notify(s) => children.extend(edge.notify(s, fsm.effective_priority())),
        }
    }
}

fn setup(inst: &VrrpInstance, uid_gid: Option<(u32, u32)>) -> Result<Edge, String> {
    let info = if_info(&inst.interface).ok_or_else(|| format!("interface {} not found", inst.interface))?;
    let vip_addrs: Vec<IpAddr> = inst.virtual_ipaddress.iter().map(|v| v.addr).collect();
    let v6 = vip_addrs.first().or(inst.unicast_peer.first()).is_some_and(IpAddr::is_ipv6);
    let src = match inst.unicast_src_ip {
        Some(s) => s,
        // IPv6 adverts come from the link-local address (RFC 5798 5.1.2.1).
        None if v6 => info
            .ll6
            .first()
            .map(|a| IpAddr::V6(*a))
            .ok_or_else(|| format!("no IPv6 link-local address on {}", inst.interface))?,
        None => info
            .addrs
            .iter()
            .map(|a| IpAddr::V4(*a))
            .find(|a| !vip_addrs.contains(a))
            .ok_or_else(|| format!("no IPv4 address on {}", inst.interface))?,
    };
    let sock = match src {
        IpAddr::V4(_) => VrrpSocket::open(&inst.interface, info.index),
        IpAddr::V6(s) => VrrpSocket::open6(&inst.interface, info.index, s),
    }
    .map_err(|e| format!("cannot open VRRP socket: {e}"))?;
    let mut vips = vec![];
    for v in &inst.virtual_ipaddress {
        let idx = match &v.dev {
            Some(d) => {
                nix::net::if_::if_nametoindex(d.as_str()).map_err(|e| format!("VIP device {d}: {e}"))?
            }
            None => info.index,
        };
        vips.push((idx, v.addr, v.prefix, v.label.clone()));
    }
    let auth = match (&inst.auth_pass, inst.version) {
        (Some(p), 2) => Auth::pass(p),
        _ => Auth::None,
    };
    Ok(Edge { inst: inst.clone(), ifindex: info.index, mac: info.mac, src, sock, auth, vips, uid_gid })
}

async fn control_server(
    l: tokio::net::UnixListener,
    table: Arc<Mutex<Vec<Shared>>>,
    ctl: mpsc::UnboundedSender<Ctl>,
) {
    loop {
        let Ok((stream, _)) = l.accept().await else { continue };
        let table = table.clone();
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match line.trim() {
                    "show instances" => {
                        let all: Vec<InstanceStatus> = table
                            .lock()
                            .map(|t| t.iter().filter_map(|s| s.lock().ok().map(|s| s.clone())).collect())
                            .unwrap_or_default();
                        serde_json::to_string(&all).unwrap_or_else(|e| format!("error: {e}"))
                    }
                    "reload" => {
                        let (tx, rx) = oneshot::channel();
                        let _ = ctl.send(Ctl::Reload(tx));
                        rx.await.unwrap_or_else(|_| "error: daemon stopping".into())
                    }
                    "stop" => {
                        let (tx, rx) = oneshot::channel();
                        let _ = ctl.send(Ctl::Stop(tx));
                        if let Ok((reply, done)) = rx.await {
                            let _ = w.write_all(format!("{reply}\n").as_bytes()).await;
                            let _ = w.flush().await;
                            let _ = done.send(());
                        }
                        return;
                    }
                    "" => continue,
                    other => format!("error: unknown command '{other}' (show instances, reload, stop)"),
                };
                if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}
