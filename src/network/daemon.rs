//! `lanai network -f config.rc --control PATH`: the process.
//!
//! Start: parse the file (errors: `FILE:LINE: message` on stderr, exit 1),
//! apply every `auto on` interface. SIGHUP or `reload`: re-read; when valid,
//! reconcile (add what is new, remove what we added that is gone); when not,
//! keep everything as is. SIGTERM, SIGINT or `stop`: undo everything we
//! applied and exit 0.
//!
//! Control socket (line based, one reply per command; the connection closes
//! when the client shuts its write side, as `lanai vrrp`'s):
//! - `reload` -> `ok` when the file is valid (it is then in force), followed
//!   by one `warning: FILE:LINE: message` per item the kernel refused (a
//!   missing interface, an unreachable gateway: the others are applied and the
//!   next reload retries); one `error: FILE:LINE: message` per line when the
//!   file is invalid (nothing changed);
//! - `show` -> one line of JSON: the interfaces, what we applied on each,
//!   their DHCP client and lease, their errors;
//! - `stop` -> undoes everything, replies `ok` (or the errors), exits.
//!
//! Everything runs on one thread (current-thread runtime): netlink requests
//! are short, and the DHCP clients' parent-death signal is tied to the thread
//! that spawned them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::apply::Applier;
use super::plan::{desired, Desired};
use crate::conf::rc::{self, Interface};

/// Default control socket: `$LANAI_RUN_DIR/network.sock`, else /run/lanai/network.sock.
pub fn default_control_path() -> PathBuf {
    match std::env::var_os("LANAI_RUN_DIR") {
        Some(d) => PathBuf::from(d).join("network.sock"),
        None => PathBuf::from("/run/lanai/network.sock"),
    }
}

/// The network part of config.rc, or its errors as `FILE:LINE: message`.
fn load(file: &Path) -> Result<Vec<Interface>, Vec<String>> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| vec![format!("{name}:0: cannot read file: {e}")])?;
    let (cfg, diags) = rc::parse(&name, &text);
    for d in diags.iter().filter(|d| !d.is_error()) {
        warn!("{d}");
    }
    match cfg {
        Some(cfg) => Ok(cfg.interfaces().cloned().collect()),
        None => Err(diags.iter().filter(|d| d.is_error()).map(ToString::to_string).collect()),
    }
}

/// Entry point of `lanai network`.
pub fn run(file: &Path, control: Option<PathBuf>) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LANAI_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    let config = match load(file) {
        Ok(c) => c,
        Err(errs) => {
            for e in errs {
                eprintln!("{e}");
            }
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let control = control.unwrap_or_else(default_control_path);
    rt.block_on(daemon(file.to_path_buf(), config, control))
}

enum Ctl {
    Reload(oneshot::Sender<String>),
    Show(oneshot::Sender<String>),
    /// The reply, and a channel the connection fires once it is written.
    Stop(oneshot::Sender<(String, oneshot::Sender<()>)>),
}

struct Daemon {
    file: PathBuf,
    config: Vec<Interface>,
    applier: Applier,
}

impl Daemon {
    fn name(&self) -> String {
        self.file.display().to_string()
    }

    /// Config lines of the interfaces of the current config, and of `old`
    /// (what is being removed is reported at its old line).
    fn lines(&self, old: &[Interface]) -> BTreeMap<String, usize> {
        old.iter().chain(&self.config).map(|i| (i.name.clone(), i.line)).collect()
    }

    async fn apply(&mut self, old: &[Interface]) -> Vec<String> {
        let want: Vec<Desired> = desired(self.config.iter());
        let lines = self.lines(old);
        let name = self.name();
        self.applier.reconcile(&name, &want, &lines).await
    }

    /// Re-reads the file; reply in the control socket's dialect.
    async fn reload(&mut self) -> String {
        info!("reloading {}", self.file.display());
        match load(&self.file) {
            Ok(config) => {
                let old = std::mem::replace(&mut self.config, config);
                let refused = self.apply(&old).await;
                std::iter::once("ok".to_string())
                    .chain(refused.iter().map(|w| format!("warning: {w}")))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            Err(errors) => {
                for e in &errors {
                    error!("{e}");
                }
                warn!("configuration not reloaded: the previous one stays applied");
                reply(&errors)
            }
        }
    }

    /// Undoes everything.
    async fn stop(&mut self) -> String {
        info!("stopping: removing everything this service applied");
        let old = std::mem::take(&mut self.config);
        let lines = self.lines(&old);
        let name = self.name();
        let errors = self.applier.reconcile(&name, &[], &lines).await;
        self.applier.forget_if_clean();
        reply(&errors)
    }

    fn show(&mut self) -> String {
        let name = self.name();
        self.applier.show(&name, &self.config).to_string()
    }
}

fn reply(errors: &[String]) -> String {
    if errors.is_empty() {
        "ok".to_string()
    } else {
        errors.iter().map(|e| format!("error: {e}")).collect::<Vec<_>>().join("\n")
    }
}

async fn daemon(file: PathBuf, config: Vec<Interface>, control: PathBuf) -> ExitCode {
    info!("starting network service, pid={}, config {}", std::process::id(), file.display());
    // First: a SIGTERM or SIGHUP sent while the first apply runs is queued
    // for the loop below, not the default action (death, leaving addresses behind).
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        error!("cannot install signal handlers");
        return ExitCode::from(1);
    };
    if let Some(dir) = control.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let applier = match Applier::new(&control) {
        Ok(a) => a,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut d = Daemon { file, config, applier };
    let errors = d.apply(&[]).await;
    if !errors.is_empty() {
        // Each was logged as it happened; `show` and `reload` report them too.
        warn!("{} item(s) of the configuration could not be applied", errors.len());
    }

    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Ctl>();
    let _ = std::fs::remove_file(&control);
    match tokio::net::UnixListener::bind(&control) {
        Ok(l) => {
            tokio::spawn(control_server(l, ctl_tx));
        }
        Err(e) => error!("cannot bind control socket {}: {e}", control.display()),
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut stop_reply = None;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let answer = d.reload().await;
                let n = answer.lines().filter(|l| l.starts_with("error: ") || l.starts_with("warning: ")).count();
                info!("reload done: {}", if n == 0 { "ok".to_string() } else { format!("{n} problem(s)") });
            }
            _ = tick.tick() => d.applier.tick(),
            Some(c) = ctl_rx.recv() => match c {
                Ctl::Reload(r) => { let _ = r.send(d.reload().await); }
                Ctl::Show(r) => { let _ = r.send(d.show()); }
                Ctl::Stop(r) => { stop_reply = Some(r); break; }
            },
        }
    }
    let result = d.stop().await;
    let _ = std::fs::remove_file(&control);
    if let Some(r) = stop_reply {
        let (done_tx, done_rx) = oneshot::channel();
        if r.send((result.clone(), done_tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), done_rx).await;
        }
    }
    info!("network service stopped ({})", result.replace('\n', "; "));
    ExitCode::SUCCESS
}

async fn control_server(l: tokio::net::UnixListener, ctl: mpsc::UnboundedSender<Ctl>) {
    loop {
        let Ok((stream, _)) = l.accept().await else { continue };
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match line.trim() {
                    "reload" => {
                        let (tx, rx) = oneshot::channel();
                        let _ = ctl.send(Ctl::Reload(tx));
                        rx.await.unwrap_or_else(|_| "error: daemon stopping".into())
                    }
                    "show" => {
                        let (tx, rx) = oneshot::channel();
                        let _ = ctl.send(Ctl::Show(tx));
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
                    other => format!("error: unknown command '{other}' (show, reload, stop)"),
                };
                if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}
