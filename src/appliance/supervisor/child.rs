//! One task per service: spawns, watches, stops, reloads and restarts its
//! child process. Commands and process events are handled one at a time, in
//! order, so a crash racing a stop cannot resurrect a stopped service.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot};

use super::adopt::{self, PidRecord, Verdict};
use super::logs::{append_event, open_append};
use super::{control, lock, Context, ExitInfo, ServiceSpec, ServiceState, ServiceStatus};

/// What the [`super::Supervisor`] asks of a service task.
#[derive(Debug)]
pub(super) enum Cmd {
    Start(oneshot::Sender<Result<(), String>>),
    Stop(oneshot::Sender<()>),
    Reload(oneshot::Sender<Result<Vec<String>, Vec<String>>>),
    Adopt(oneshot::Sender<bool>),
    Shutdown { stop_children: bool, reply: oneshot::Sender<()> },
}

/// The running process: spawned by us (we get its exit status) or adopted
/// from a previous supervisor (only /proc tells us it is gone).
#[derive(Debug)]
enum Proc {
    Own { child: tokio::process::Child, rec: PidRecord },
    Adopted { rec: PidRecord },
}

impl Proc {
    fn rec(&self) -> PidRecord {
        match self {
            Proc::Own { rec, .. } | Proc::Adopted { rec } => *rec,
        }
    }

    /// Signals the process, unless an adopted pid no longer is our child
    /// (never signal a stranger that reused the pid).
    fn signal(&self, sig: Signal) -> nix::Result<()> {
        let rec = self.rec();
        if let Proc::Adopted { .. } = self {
            if !adopt::is_alive(rec) {
                return Err(nix::errno::Errno::ESRCH);
            }
        }
        let pid = i32::try_from(rec.pid).map_err(|_| nix::errno::Errno::EINVAL)?;
        kill(Pid::from_raw(pid), sig)
    }

    /// Waits up to `within` for the process to end.
    async fn wait_exit(&mut self, within: Duration) -> Option<ExitInfo> {
        match self {
            Proc::Own { child, .. } => match tokio::time::timeout(within, child.wait()).await {
                Ok(status) => Some(exit_info(status)),
                Err(_) => None,
            },
            Proc::Adopted { rec } => {
                let deadline = tokio::time::Instant::now() + within;
                loop {
                    if !adopt::is_alive(*rec) {
                        return Some(unknown_exit());
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }
}

fn exit_info(status: io::Result<ExitStatus>) -> ExitInfo {
    match status {
        Ok(s) => ExitInfo { time: SystemTime::now(), code: s.code(), signal: s.signal() },
        Err(_) => unknown_exit(),
    }
}

fn unknown_exit() -> ExitInfo {
    ExitInfo { time: SystemTime::now(), code: None, signal: None }
}

/// Resolves when our own child exits; never for an adopted one or none.
async fn wait_own(proc: &mut Option<Proc>) -> ExitInfo {
    match proc {
        Some(Proc::Own { child, .. }) => exit_info(child.wait().await),
        _ => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

pub(super) struct ServiceTask {
    spec: ServiceSpec,
    ctx: Arc<Context>,
    status: Arc<Mutex<ServiceStatus>>,
    proc: Option<Proc>,
    /// When the current process started (or was adopted).
    started: Instant,
    /// Crashes in a row (drives the back-off delay).
    failures: u32,
    restart_at: Option<tokio::time::Instant>,
    log_path: PathBuf,
    pid_path: PathBuf,
}

impl ServiceTask {
    pub(super) fn new(
        spec: ServiceSpec,
        ctx: Arc<Context>,
        status: Arc<Mutex<ServiceStatus>>,
    ) -> ServiceTask {
        let log_path = ctx.run_dir.join(format!("{}.log", spec.name));
        let pid_path = adopt::pid_path(&ctx.run_dir, &spec.name);
        ServiceTask {
            spec,
            ctx,
            status,
            proc: None,
            started: Instant::now(),
            failures: 0,
            restart_at: None,
            log_path,
            pid_path,
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let mut tick = tokio::time::interval(self.ctx.opts.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    // Every handle dropped: the supervisor is gone, as if
                    // killed. Children keep running for the next one.
                    None => return,
                    Some(Cmd::Shutdown { stop_children, reply }) => {
                        if stop_children {
                            self.stop().await;
                        }
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.handle(cmd).await,
                },
                exit = wait_own(&mut self.proc) => self.exited(exit),
                _ = sleep_until(self.restart_at) => self.restart_after_backoff(),
                _ = tick.tick() => self.poll().await,
            }
        }
    }

    async fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Start(reply) => {
                let _ = reply.send(self.start());
            }
            Cmd::Stop(reply) => {
                self.stop().await;
                let _ = reply.send(());
            }
            Cmd::Reload(reply) => {
                let _ = reply.send(self.reload().await);
            }
            Cmd::Adopt(reply) => {
                let _ = reply.send(self.proc.is_none() && self.adopt());
            }
            Cmd::Shutdown { reply, .. } => {
                let _ = reply.send(()); // handled in `run`
            }
        }
    }

    fn event(&self, text: &str) {
        tracing::info!(service = %self.spec.name, "{text}");
        append_event(&self.log_path, text);
    }

    fn set_state(&self, state: ServiceState) {
        let mut st = lock(&self.status);
        if st.state != state {
            st.state = state;
            st.since = SystemTime::now();
        }
        st.pid = self.proc.as_ref().map(|p| p.rec().pid);
        st.adopted = matches!(self.proc, Some(Proc::Adopted { .. }));
    }

    fn start(&mut self) -> Result<(), String> {
        if self.proc.is_some() {
            return Ok(());
        }
        // Asked by someone: a fresh series, no pending restart.
        self.restart_at = None;
        self.failures = 0;
        if self.adopt() {
            return Ok(());
        }
        self.spawn().inspect_err(|e| {
            self.event(&format!("cannot start: {e}"));
            self.set_state(ServiceState::Crashed);
        })
    }

    fn spawn(&mut self) -> Result<(), String> {
        let ctx = &self.ctx;
        std::fs::create_dir_all(&ctx.run_dir).map_err(|e| format!("{}: {e}", ctx.run_dir.display()))?;
        // One O_APPEND descriptor for stdout and stderr: lines from both
        // interleave whole, and the file outlives this supervisor (logs.rs).
        let out = open_append(&self.log_path).map_err(|e| format!("{}: {e}", self.log_path.display()))?;
        let err = out.try_clone().map_err(|e| format!("{}: {e}", self.log_path.display()))?;
        let mut cmd = std::process::Command::new(&ctx.exe);
        cmd.args(&self.spec.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Children that look for their run files (vrrp's default control
            // socket) find them next to ours.
            .env("LANAI_RUN_DIR", &ctx.run_dir);
        // SAFETY: setsid is async-signal-safe and touches no memory; it runs
        // in the forked child before exec. A session of its own means no
        // signal sent to `lanai run`'s process group or terminal (Ctrl-C,
        // SIGHUP on logout, a kill of the group) reaches the data plane.
        unsafe {
            cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
        }
        let mut cmd = tokio::process::Command::from(cmd);
        // Never kill on drop: dropping the supervisor must leave children up.
        cmd.kill_on_drop(false);
        let child = cmd.spawn().map_err(|e| format!("{}: {e}", ctx.exe.display()))?;
        let Some(pid) = child.id() else {
            return Err("the child exited before it could be recorded".into());
        };
        // Read right after fork: exec does not change the start time.
        let rec = PidRecord::of(pid).unwrap_or(PidRecord { pid, start_time: 0 });
        if rec.start_time != 0 {
            if let Err(e) = adopt::write_pid_file(&self.pid_path, rec) {
                // Supervision still works; only adoption after a crash of
                // `lanai run` would not.
                tracing::warn!("{}: {e}", self.pid_path.display());
            }
        }
        self.proc = Some(Proc::Own { child, rec });
        self.started = Instant::now();
        self.event(&format!("started (pid {pid})"));
        self.set_state(if self.spec.control_socket.is_some() {
            ServiceState::Starting
        } else {
            ServiceState::Running
        });
        Ok(())
    }

    /// Takes over the child recorded in the pid file if it is alive and ours.
    fn adopt(&mut self) -> bool {
        let rec = match adopt::read_pid_file(&self.pid_path) {
            Ok(Some(rec)) => rec,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!("{}: {e}", self.pid_path.display());
                return false;
            }
        };
        match adopt::verify(rec, &self.ctx.exe) {
            Verdict::Ours => {
                if adopt::args_of(rec.pid).is_some_and(|args| args != self.spec.args) {
                    self.event(&format!(
                        "warning: pid {} runs with other arguments than the service now has; restart it to apply",
                        rec.pid
                    ));
                }
                self.proc = Some(Proc::Adopted { rec });
                let now = Instant::now();
                self.started = adopt::age(rec).and_then(|age| now.checked_sub(age)).unwrap_or(now);
                self.event(&format!("adopted running process (pid {})", rec.pid));
                self.set_state(ServiceState::Running);
                true
            }
            Verdict::Gone => {
                adopt::remove_pid_file(&self.pid_path);
                self.event(&format!("pid {} recorded by a previous supervisor is gone", rec.pid));
                lock(&self.status).last_exit = Some(unknown_exit());
                false
            }
            Verdict::Foreign(exe) => {
                adopt::remove_pid_file(&self.pid_path);
                self.event(&format!("pid {} now runs {exe}: not ours, not adopted", rec.pid));
                false
            }
        }
    }

    /// The process ended without being asked: schedule a restart.
    fn exited(&mut self, exit: ExitInfo) {
        self.proc = None;
        adopt::remove_pid_file(&self.pid_path);
        let policy = &self.ctx.opts.backoff;
        self.failures = policy.next_failures(self.failures, self.started.elapsed());
        lock(&self.status).last_exit = Some(exit.clone());
        if policy.gives_up(self.failures) {
            self.event(&format!("exited ({exit}); {} crashes in a row, not restarting", self.failures));
            self.set_state(ServiceState::Crashed);
            return;
        }
        let delay = policy.delay(self.failures);
        self.event(&format!("exited ({exit}); restarting in {delay:?}"));
        self.restart_at = Some(tokio::time::Instant::now() + delay);
        self.set_state(ServiceState::Backoff);
    }

    fn restart_after_backoff(&mut self) {
        self.restart_at = None;
        lock(&self.status).restarts += 1;
        if let Err(e) = self.spawn() {
            // Counts as one more crash: back off further.
            self.event(&format!("cannot start: {e}"));
            self.exited(unknown_exit());
        }
    }

    /// Periodic checks: adopted children's life, `Starting` readiness.
    async fn poll(&mut self) {
        if let Some(Proc::Adopted { rec }) = &self.proc {
            if !adopt::is_alive(*rec) {
                self.exited(unknown_exit());
                return;
            }
        }
        let starting = lock(&self.status).state == ServiceState::Starting;
        if starting && self.proc.is_some() {
            let ready = match &self.spec.control_socket {
                Some(path) => control::answers(path).await,
                None => true,
            };
            if ready {
                self.set_state(ServiceState::Running);
            } else if self.started.elapsed() >= self.ctx.opts.ready_timeout {
                self.event("warning: control socket does not answer; considered running");
                self.set_state(ServiceState::Running);
            }
        }
    }

    /// SIGTERM, grace period, SIGKILL (to the whole session's group, so that
    /// helpers the child spawned go too). Leaves the service `Stopped`.
    async fn stop(&mut self) {
        self.restart_at = None;
        let Some(mut proc) = self.proc.take() else {
            if lock(&self.status).state != ServiceState::Stopped {
                self.event("stopped");
            }
            self.set_state(ServiceState::Stopped);
            return;
        };
        let pid = proc.rec().pid;
        self.event(&format!("stopping (pid {pid})"));
        let _ = proc.signal(Signal::SIGTERM);
        let grace = self.ctx.opts.stop_grace;
        let exit = match proc.wait_exit(grace).await {
            Some(exit) => exit,
            None => {
                self.event(&format!("pid {pid} still running after {grace:?}: SIGKILL"));
                if proc.signal(Signal::SIGKILL).is_ok() {
                    // The group id is the pid (setsid at spawn).
                    if let Ok(pgid) = i32::try_from(pid) {
                        let _ = kill(Pid::from_raw(-pgid), Signal::SIGKILL);
                    }
                }
                proc.wait_exit(Duration::from_secs(5)).await.unwrap_or_else(unknown_exit)
            }
        };
        adopt::remove_pid_file(&self.pid_path);
        self.event(&format!("stopped ({exit})"));
        lock(&self.status).last_exit = Some(exit);
        self.set_state(ServiceState::Stopped);
    }

    /// A reload right after a start (the apply pipeline does that) waits
    /// for the child to open its control socket, up to `ready_timeout`.
    async fn ready(&self, path: &std::path::Path) -> bool {
        if lock(&self.status).state != ServiceState::Starting {
            return true;
        }
        let deadline = self.started + self.ctx.opts.ready_timeout;
        while !control::answers(path).await {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        true
    }

    async fn reload(&mut self) -> Result<Vec<String>, Vec<String>> {
        let Some(proc) = &self.proc else {
            return Err(vec![format!("service '{}' is not running", self.spec.name)]);
        };
        let result = match &self.spec.control_socket {
            Some(path) if !self.ready(path).await => {
                Err(vec![format!("control socket {} does not answer yet", path.display())])
            }
            Some(path) => match control::command(path, "reload", self.ctx.opts.control_timeout).await {
                Ok(reply) => control::parse_reload(&reply),
                Err(e) => Err(vec![e]),
            },
            // No way to hear back: the child logs its own verdict.
            None => {
                proc.signal(Signal::SIGHUP).map(|()| Vec::new()).map_err(|e| vec![format!("SIGHUP: {e}")])
            }
        };
        match &result {
            Ok(_) => self.event("reloaded"),
            Err(errors) => self.event(&format!("reload refused: {}", errors.join("; "))),
        }
        result
    }
}
