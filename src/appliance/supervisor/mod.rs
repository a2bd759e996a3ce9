//! The service supervisor of `lanai run`: each service (`lanai proxy`, `lanai
//! vrrp`, …) is a child process of its own, so that the data plane keeps
//! running whatever happens to the console, the store or the supervisor.
//!
//! - start / stop (SIGTERM, then SIGKILL after a grace period) / restart /
//!   reload (through the child's control socket when it has one, so errors
//!   come back; else SIGHUP), status for the Services tab;
//! - a child that exits without being asked is restarted with exponential
//!   back-off ([`BackoffPolicy`]);
//! - stdout and stderr go to `run_dir/NAME.log`, tailed into a ring buffer
//!   for the console (why a file and not a pipe: see [`logs`]);
//! - children run in their own session and are recorded in `run_dir/NAME.pid`,
//!   so `lanai run` can be killed (even SIGKILL) without stopping the data
//!   plane, and the next supervisor adopts them ([`adopt`]).
//!
//! Each registered service is owned by one task (an actor, `child.rs`): every
//! command and every process event for that service goes through it in
//! order, so a crash racing a `stop` cannot restart what was just stopped.
//! Status and logs are shared snapshots read without talking to the task.

pub mod adopt;
pub mod backoff;
mod child;
pub mod control;
pub mod logs;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use backoff::BackoffPolicy;
pub use logs::LogLine;

use child::{Cmd, ServiceTask};
use logs::LogRing;

/// One supervised service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Also the name of its files in the run directory: `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// Arguments given to the supervisor's executable, e.g.
    /// `["proxy", "-f", "/etc/haproxy/haproxy.cfg"]`.
    pub args: Vec<OsString>,
    /// The configuration file the service reads (for the apply pipeline and
    /// the console; the supervisor only passes `args`).
    pub config_path: PathBuf,
    /// Where the child answers `reload` (the proxy's `stats socket`, vrrp's
    /// `--control`); `None`: reload by SIGHUP, without an error report.
    pub control_socket: Option<PathBuf>,
    /// Started by [`Supervisor::start_autostart`] (at boot).
    pub autostart: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Stopped,
    /// Spawned; its control socket does not answer yet.
    Starting,
    Running,
    /// Exited without being asked; waiting to be restarted.
    Backoff,
    /// Exited too often in a row ([`BackoffPolicy::give_up_after`]), or could
    /// not be started: left down until someone starts it.
    Crashed,
}

/// How a child ended. Both fields `None`: not known (the child was adopted,
/// so its exit status went to its real parent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExitInfo {
    pub time: SystemTime,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit status {code}"),
            (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
                Ok(s) => write!(f, "killed by signal {sig} ({})", s.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
            (None, None) => f.write_str("exit status unknown"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    pub pid: Option<u32>,
    /// When `state` last changed.
    pub since: SystemTime,
    /// Restarts after crashes (not counting requested restarts).
    pub restarts: u32,
    pub last_exit: Option<ExitInfo>,
    /// Running process inherited from a previous supervisor.
    pub adopted: bool,
    pub autostart: bool,
}

/// Tunables; the defaults suit the appliance, tests shorten them.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    pub backoff: BackoffPolicy,
    /// How long a child gets to stop after SIGTERM before SIGKILL (the proxy
    /// drains connections in that time).
    pub stop_grace: Duration,
    /// How often adopted children are checked for life (they are not our
    /// children: no SIGCHLD), `Starting` children for their control socket.
    pub poll_interval: Duration,
    /// A child whose control socket stays silent this long is considered
    /// `Running` anyway (with a logged warning).
    pub ready_timeout: Duration,
    /// How long a control-socket command (`reload`) may take.
    pub control_timeout: Duration,
    /// How often the log files are read.
    pub tail_interval: Duration,
    /// Lines kept per service for [`Supervisor::logs`].
    pub log_lines: usize,
    /// Longer lines are cut (bytes).
    pub log_line_max: usize,
    /// `NAME.log` is rotated to `NAME.log.1` past this size (bytes).
    pub log_file_max: u64,
    /// Bytes of an existing log read into the ring at registration (history
    /// of an adopted child).
    pub log_history: u64,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            backoff: BackoffPolicy::default(),
            stop_grace: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            ready_timeout: Duration::from_secs(10),
            control_timeout: Duration::from_secs(150),
            tail_interval: Duration::from_millis(200),
            log_lines: 1000,
            log_line_max: 4096,
            log_file_max: 10 << 20,
            log_history: 256 << 10,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SupervisorError {
    #[error("unknown service '{0}'")]
    UnknownService(String),
    #[error("service '{0}' is already registered")]
    AlreadyRegistered(String),
    #[error("invalid service name '{0}' (letters, digits, '_', '-', '.')")]
    InvalidName(String),
    #[error("run directory {0}: {1}")]
    RunDir(PathBuf, String),
    #[error("run directory {0} is in use by another supervisor")]
    RunDirBusy(PathBuf),
    #[error("services can only be registered inside a tokio runtime")]
    NoRuntime,
    #[error("cannot start '{0}': {1}")]
    Start(String, String),
    #[error("the supervisor of '{0}' has shut down")]
    ShutDown(String),
}

/// What every service task shares.
#[derive(Debug)]
struct Context {
    run_dir: PathBuf,
    exe: PathBuf,
    opts: SupervisorOptions,
}

/// The caller's side of one service task.
#[derive(Debug)]
struct Service {
    name: String,
    /// The caller's copy (the task has its own): `autostart` changes here.
    spec: Mutex<ServiceSpec>,
    tx: mpsc::Sender<Cmd>,
    status: Arc<Mutex<ServiceStatus>>,
    logs: Arc<Mutex<LogRing>>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for Service {
    /// A supervisor dropped without [`Supervisor::shutdown`] behaves as if
    /// `lanai run` was killed: its tasks end, its children keep running.
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A poisoned lock only means a panic elsewhere; the data (a status snapshot,
/// log lines) is still consistent enough to show.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Supervises a set of named services. All methods take `&self`: share it
/// behind an `Arc` between the console and the boot sequence.
///
/// Boot of `lanai run`: register every service, adopt what a previous
/// supervisor left running, start the rest of the autostart ones.
///
/// ```no_run
/// # async fn boot() -> Result<(), lanai::appliance::supervisor::SupervisorError> {
/// use lanai::appliance::supervisor::{ServiceSpec, Supervisor};
/// let exe = std::env::current_exe().expect("own path");
/// let sup = Supervisor::new("/run/lanai".as_ref(), exe);
/// sup.add(ServiceSpec {
///     name: "haproxy".into(),
///     args: vec!["proxy".into(), "-f".into(), "/etc/haproxy/haproxy.cfg".into()],
///     config_path: "/etc/haproxy/haproxy.cfg".into(),
///     control_socket: Some("/run/lanai/haproxy.sock".into()),
///     autostart: true,
/// })?;
/// sup.adopt().await;
/// sup.start_autostart().await;
/// // … on SIGTERM: stop the data plane with the appliance.
/// sup.shutdown(true).await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Supervisor {
    ctx: Arc<Context>,
    services: RwLock<BTreeMap<String, Arc<Service>>>,
    /// `run_dir/supervisor.lock`, held while this supervisor is in charge:
    /// two supervisors on one run directory would both restart and adopt
    /// the same children. The kernel drops it when `lanai run` dies, even by
    /// SIGKILL; it is not inherited by children (opened close-on-exec).
    run_lock: Mutex<Option<Flock<File>>>,
}

impl Supervisor {
    /// `run_dir` holds `NAME.pid`, `NAME.log` (+ `.1`); `exe` is what
    /// children run (`lanai` itself, `std::env::current_exe()` in `lanai run`).
    pub fn new(run_dir: &Path, exe: PathBuf) -> Supervisor {
        Supervisor::with_options(run_dir, exe, SupervisorOptions::default())
    }

    pub fn with_options(run_dir: &Path, exe: PathBuf, opts: SupervisorOptions) -> Supervisor {
        Supervisor {
            ctx: Arc::new(Context { run_dir: run_dir.to_path_buf(), exe, opts }),
            services: RwLock::new(BTreeMap::new()),
            run_lock: Mutex::new(None),
        }
    }

    pub fn run_dir(&self) -> &Path {
        &self.ctx.run_dir
    }

    /// Registers a service (stopped; nothing is spawned) and starts tailing
    /// its log. Must be called inside a tokio runtime.
    pub fn add(&self, spec: ServiceSpec) -> Result<(), SupervisorError> {
        let name = spec.name.clone();
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(SupervisorError::InvalidName(name));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SupervisorError::NoRuntime)?;
        self.lock_run_dir()?;
        let mut services = self.services.write().unwrap_or_else(PoisonError::into_inner);
        if services.contains_key(&name) {
            return Err(SupervisorError::AlreadyRegistered(name));
        }
        let status = Arc::new(Mutex::new(ServiceStatus {
            name: name.clone(),
            state: ServiceState::Stopped,
            pid: None,
            since: SystemTime::now(),
            restarts: 0,
            last_exit: None,
            adopted: false,
            autostart: spec.autostart,
        }));
        let opts = &self.ctx.opts;
        let logs = Arc::new(Mutex::new(LogRing::new(opts.log_lines, opts.log_line_max)));
        let (tx, rx) = mpsc::channel(16);
        let task = ServiceTask::new(spec.clone(), Arc::clone(&self.ctx), Arc::clone(&status));
        let tasks = [
            runtime.spawn(task.run(rx)),
            runtime.spawn(logs::tail_loop(
                self.ctx.run_dir.join(format!("{name}.log")),
                Arc::clone(&logs),
                opts.clone(),
            )),
        ];
        let service = Service { name: name.clone(), spec: Mutex::new(spec), tx, status, logs, tasks };
        services.insert(name, Arc::new(service));
        Ok(())
    }

    fn lock_run_dir(&self) -> Result<(), SupervisorError> {
        let mut held = lock(&self.run_lock);
        if held.is_some() {
            return Ok(());
        }
        let dir = &self.ctx.run_dir;
        let failed = |e: &dyn std::fmt::Display| SupervisorError::RunDir(dir.clone(), e.to_string());
        std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("supervisor.lock"))
            .map_err(|e| failed(&e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => {
                *held = Some(flock);
                Ok(())
            }
            Err((_, Errno::EWOULDBLOCK)) => Err(SupervisorError::RunDirBusy(dir.clone())),
            Err((_, e)) => Err(failed(&e)),
        }
    }

    pub fn spec(&self, name: &str) -> Option<ServiceSpec> {
        self.service(name).ok().map(|s| lock(&s.spec).clone())
    }

    /// The Services tab's "start at boot" switch.
    pub fn set_autostart(&self, name: &str, on: bool) -> Result<(), SupervisorError> {
        let service = self.service(name)?;
        lock(&service.spec).autostart = on;
        lock(&service.status).autostart = on;
        Ok(())
    }

    fn service(&self, name: &str) -> Result<Arc<Service>, SupervisorError> {
        let services = self.services.read().unwrap_or_else(PoisonError::into_inner);
        services.get(name).cloned().ok_or_else(|| SupervisorError::UnknownService(name.to_string()))
    }

    fn all(&self) -> Vec<Arc<Service>> {
        self.services.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// Sends a command to the service's task and waits for its answer.
    async fn ask<T>(
        &self,
        name: &str,
        make: impl FnOnce(oneshot::Sender<T>) -> Cmd,
    ) -> Result<T, SupervisorError> {
        let service = self.service(name)?;
        let (tx, rx) = oneshot::channel();
        let gone = || SupervisorError::ShutDown(name.to_string());
        service.tx.send(make(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// Starts the service unless it runs already. If its pid file names a
    /// live child of a previous supervisor, that child is adopted instead of
    /// spawning a second one (which could not bind the same addresses).
    pub async fn start(&self, name: &str) -> Result<(), SupervisorError> {
        self.ask(name, Cmd::Start).await?.map_err(|e| SupervisorError::Start(name.to_string(), e))
    }

    /// SIGTERM, then SIGKILL after `stop_grace`; cancels a pending restart.
    pub async fn stop(&self, name: &str) -> Result<(), SupervisorError> {
        self.ask(name, Cmd::Stop).await
    }

    pub async fn restart(&self, name: &str) -> Result<(), SupervisorError> {
        self.stop(name).await?;
        self.start(name).await
    }

    /// Makes the service re-read its configuration: `Ok(warnings)` or
    /// `Err(errors)` (the old configuration then keeps running).
    pub async fn reload(&self, name: &str) -> Result<Vec<String>, Vec<String>> {
        match self.ask(name, Cmd::Reload).await {
            Ok(result) => result,
            Err(e) => Err(vec![e.to_string()]),
        }
    }

    pub fn status(&self, name: &str) -> Result<ServiceStatus, SupervisorError> {
        Ok(lock(&self.service(name)?.status).clone())
    }

    /// Every service, by name.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        self.all().iter().map(|s| lock(&s.status).clone()).collect()
    }

    /// The last `n` lines of the service's output, oldest first.
    pub fn logs(&self, name: &str, n: usize) -> Result<Vec<LogLine>, SupervisorError> {
        Ok(lock(&self.service(name)?.logs).last(n))
    }

    /// Adopts the live children of a previous supervisor recorded in the run
    /// directory; returns the names adopted. Stale pid files are removed.
    pub async fn adopt(&self) -> Vec<String> {
        let mut adopted = Vec::new();
        for service in self.all() {
            let name = service.name.clone();
            if let Ok(true) = self.ask(&name, Cmd::Adopt).await {
                adopted.push(name);
            }
        }
        adopted
    }

    /// Starts every `autostart` service that is not running (adopting where
    /// possible). Failures are reported per service; the others still start.
    pub async fn start_autostart(&self) -> Vec<(String, Result<(), SupervisorError>)> {
        let mut results = Vec::new();
        for service in self.all() {
            let autostart = lock(&service.spec).autostart;
            if autostart {
                let name = service.name.clone();
                let result = self.start(&name).await;
                if let Err(e) = &result {
                    tracing::error!("{e}");
                }
                results.push((name, result));
            }
        }
        results
    }

    /// Ends supervision. `stop_children`: stop every child first (`lanai run`
    /// stopping normally); otherwise leave them running for the next
    /// supervisor to adopt (an upgrade of `lanai run` itself). Afterwards no
    /// service is registered and the run directory is free for another
    /// supervisor.
    pub async fn shutdown(&self, stop_children: bool) {
        let services = std::mem::take(&mut *self.services.write().unwrap_or_else(PoisonError::into_inner));
        // Stopped in parallel: each may take up to `stop_grace`.
        let mut waits = Vec::new();
        for service in services.values() {
            let (tx, rx) = oneshot::channel();
            if service.tx.send(Cmd::Shutdown { stop_children, reply: tx }).await.is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
        // Drop the tasks (they have ended) before the lock: nothing of this
        // supervisor acts on the run directory once another may take it.
        drop(services);
        lock(&self.run_lock).take();
    }
}
