//! `lanai proxy -f FILE` as a process: runtime, signals, pidfile and
//! privilege drop around the engine.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::engine::{load, Engine};
use super::runtime::ReloadRequest;
use crate::conf::haproxy;

/// `lanai proxy -f FILE`: runs until SIGTERM/SIGUSR1 (graceful) or SIGINT.
pub fn run(path: &Path, control: Option<&Path>) -> std::process::ExitCode {
    let threads = match load(path) {
        Ok((cfg, _)) => cfg.global.nbthread.unwrap_or(1).max(1),
        Err(diags) => {
            for d in diags {
                eprintln!("{d}");
            }
            return std::process::ExitCode::from(1);
        }
    };
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        // Before any socket is bound: a SIGHUP or SIGTERM sent as soon as the
        // port answers must be queued for the loop, not kill the process.
        let Some(signals) = Signals::install() else {
            eprintln!("cannot install signal handlers");
            return std::process::ExitCode::from(1);
        };
        let engine = match Engine::start(path).await {
            Ok(e) => e,
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                return std::process::ExitCode::from(1);
            }
        };
        let reloads = match engine.open_runtime_sockets(control).await {
            Ok(rx) => rx,
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                engine.stop().await;
                return std::process::ExitCode::from(1);
            }
        };
        let global = engine.shared.tables.load().config.global.clone();
        if let Err(e) = process_setup(&global, path) {
            eprintln!("{e}");
            engine.stop().await;
            return std::process::ExitCode::from(1);
        }
        tracing::info!("lanai proxy started with {}", path.display());
        let code = signal_loop(engine, signals, reloads).await;
        if let Some(pidfile) = &global.pidfile {
            let _ = std::fs::remove_file(pidfile);
        }
        code
    })
}

/// The signals `lanai proxy` answers: SIGHUP reloads; SIGTERM, SIGUSR1 and
/// SIGINT stop gracefully.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Option<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Some(Signals {
            hup: signal(SignalKind::hangup()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
            usr1: signal(SignalKind::user_defined1()).ok()?,
            int: signal(SignalKind::interrupt()).ok()?,
        })
    }
}

async fn signal_loop(
    engine: Arc<Engine>,
    signals: Signals,
    mut reloads: mpsc::Receiver<ReloadRequest>,
) -> std::process::ExitCode {
    let Signals { mut hup, mut term, mut usr1, mut int } = signals;
    loop {
        tokio::select! {
            _ = hup.recv() => match engine.reload().await {
                Ok(warnings) => {
                    for w in warnings { tracing::warn!("{w}"); }
                    tracing::info!("configuration reloaded");
                }
                Err(errors) => {
                    for e in errors { tracing::error!("reload refused: {e}"); }
                }
            },
            Some(request) = reloads.recv() => {
                let result = engine.reload().await;
                match &result {
                    Ok(_) => tracing::info!("configuration reloaded (runtime API)"),
                    Err(errors) => for e in errors { tracing::error!("reload refused: {e}"); },
                }
                let _ = request.reply.send(result);
            }
            _ = term.recv() => break,
            _ = usr1.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(
        "stopping: no new connections, waiting for {} to finish",
        engine.shared.active_connections()
    );
    engine.stop().await;
    std::process::ExitCode::SUCCESS
}

/// `pidfile`, `chroot`, then `group`/`user`: the jail is entered and
/// privileges are dropped once every socket is bound, as HAProxy does.
fn process_setup(global: &haproxy::Global, config: &Path) -> Result<(), String> {
    use nix::unistd::{setgid, setgroups, setuid, Group, User};
    if let Some(pidfile) = &global.pidfile {
        std::fs::write(pidfile, format!("{}\n", std::process::id()))
            .map_err(|e| format!("pidfile {}: {e}", pidfile.display()))?;
    }
    let group = match &global.group {
        Some(name) => Some(
            Group::from_name(name)
                .map_err(|e| format!("group '{name}': {e}"))?
                .ok_or(format!("no group '{name}'"))?,
        ),
        None => None,
    };
    let user = match &global.user {
        Some(name) => Some(
            User::from_name(name)
                .map_err(|e| format!("user '{name}': {e}"))?
                .ok_or(format!("no user '{name}'"))?,
        ),
        None => None,
    };
    if let Some(dir) = &global.chroot {
        // The broker starts outside the jail, before it exists for us.
        let broker = super::jail::spawn_broker(config)?;
        super::jail::enter(dir)?;
        crate::conf::source::use_broker(broker)?;
        tracing::info!("chrooted to {}", dir.display());
    }
    let gid = group.map(|g| g.gid).or(user.as_ref().map(|u| u.gid));
    if let Some(gid) = gid {
        if nix::unistd::getegid() != gid {
            setgroups(&[gid]).map_err(|e| format!("cannot set groups: {e}"))?;
            setgid(gid).map_err(|e| format!("cannot set gid {gid}: {e}"))?;
        }
    }
    if let Some(user) = user {
        if nix::unistd::geteuid() != user.uid {
            setuid(user.uid).map_err(|e| format!("cannot set uid to '{}': {e}", user.name))?;
        }
    }
    Ok(())
}
