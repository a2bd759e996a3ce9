//! HAProxy's Runtime API on the `stats socket` Unix socket (also how Lanai's
//! supervisor drives the proxy): `show info`, `show stat`, `show servers
//! state`, server state and weight changes, and `reload`.

pub mod commands;
pub mod info;

#[cfg(test)]
mod tests;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::conf::haproxy::{Config, RuntimeLevel};
use crate::proxy::health::LogSink;
use crate::proxy::state::StateRegistry;
use crate::proxy::stats::StatsContext;
use commands::{execute_line, Flow, Session};

/// Longest command line accepted (HAProxy's default buffer size).
pub const MAX_LINE: usize = 16384;

/// Asks the engine to reload; it answers `Ok(warnings)` or `Err(errors)`.
#[derive(Debug)]
pub struct ReloadRequest {
    pub reply: oneshot::Sender<Result<Vec<String>, Vec<String>>>,
}

/// What the runtime API reads and acts on. The engine stores each new
/// configuration into `config` on reload; state lives in `registry`.
pub struct RuntimeContext {
    pub config: Arc<ArcSwap<Config>>,
    pub registry: Arc<StateRegistry>,
    pub started: Instant,
    pub pid: u32,
    pub node: String,
    pub version: &'static str,
    pub reload: mpsc::Sender<ReloadRequest>,
    /// Where server state changes are logged (HAProxy logs them like health
    /// transitions); `None` = not logged.
    pub log: Option<LogSink>,
}

impl RuntimeContext {
    /// A stats view of the current configuration.
    pub fn stats(&self) -> StatsContext {
        StatsContext {
            config: self.config.load_full(),
            registry: Arc::clone(&self.registry),
            started: self.started,
            pid: self.pid,
            node: self.node.clone(),
            version: self.version,
        }
    }
}

/// A listening runtime socket; dropping it stops the listener and every open
/// session, and removes the socket file.
#[derive(Debug)]
pub struct RuntimeServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl RuntimeServer {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RuntimeServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` (replacing a stale socket file; refusing if a live process
/// answers on it), applies `mode`, and serves sessions at `level`.
pub async fn serve(
    path: &Path,
    mode: Option<u32>,
    level: RuntimeLevel,
    ctx: Arc<RuntimeContext>,
) -> io::Result<RuntimeServer> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: another process is serving this socket", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    let task = tokio::spawn(accept_loop(listener, level, ctx));
    Ok(RuntimeServer { path: path.to_path_buf(), task })
}

async fn accept_loop(listener: UnixListener, level: RuntimeLevel, ctx: Arc<RuntimeContext>) {
    // Sessions live in the set so that aborting this task ends them too.
    let mut sessions = JoinSet::new();
    loop {
        while sessions.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                let ctx = Arc::clone(&ctx);
                sessions.spawn(async move {
                    if let Err(e) = session(stream, level, ctx).await {
                        tracing::debug!("runtime API session ended: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("runtime API accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads lines and answers them. Without `prompt`, HAProxy answers one line
/// and closes; with it, the session stays open until `quit` or idle timeout.
async fn session(mut stream: UnixStream, level: RuntimeLevel, ctx: Arc<RuntimeContext>) -> io::Result<()> {
    let mut sess = Session { level, interactive: false };
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let line = loop {
            if let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = pending.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                break Some(line);
            }
            if pending.len() > MAX_LINE {
                stream.write_all(b"Command line too long.\n\n").await?;
                return Ok(());
            }
            let idle = ctx.config.load().global.stats_timeout;
            // `stats timeout` bounds every wait for input, as in HAProxy.
            let read = match tokio::time::timeout(idle, stream.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            };
            if read == 0 {
                // A last line without newline still counts (e.g. `echo -n`).
                break if pending.is_empty() { None } else { Some(std::mem::take(&mut pending)) };
            }
            pending.extend_from_slice(&chunk[..read]);
        };
        let Some(line) = line else { return Ok(()) };
        // Binary garbage becomes replacement characters: an unknown command.
        let text = String::from_utf8_lossy(&line);
        let was_interactive = sess.interactive;
        let (out, flow) = execute_line(&ctx, &mut sess, &text).await;
        stream.write_all(out.as_bytes()).await?;
        if flow == Flow::Quit {
            return Ok(());
        }
        if sess.interactive {
            stream.write_all(b"> ").await?;
        } else if !was_interactive {
            return Ok(());
        }
        if !sess.interactive && was_interactive {
            // `prompt` toggled off: HAProxy keeps the session without prompt.
            continue;
        }
    }
}
