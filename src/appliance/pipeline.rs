//! The single apply/save pipeline (ARCHITECTURE.md, "One path for every change"):
//!
//! ```text
//! apply(service, text, origin, author)
//!   1. check: parse + validate, no side effect          -> Invalid(diagnostics)
//!   2. store: new revision (not yet running)
//!   3. hand it to the service: write its file, reload it
//!      failure -> previous file restored and re-applied  -> Failed { restored }
//!   4. running := revision (+ audit line)
//! save(author)  : saved := running for every service
//! boot          : running := saved, applied service by service
//! ```
//!
//! Every caller (console, JSON API, file manager, csyncd, boot) goes through
//! here; changes are serialised so that two applies never interleave.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::services::{self, ServiceKind};
use super::supervisor::{ServiceState, ServiceStatus, Supervisor, SupervisorError};
use crate::conf::Diagnostic;
use crate::store::{Origin, RevisionId, RevisionMeta, Store, StoreError};

/// Why an apply did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("unknown service '{0}'")]
    UnknownService(String),
    /// The text does not validate: nothing changed.
    #[error("invalid configuration")]
    Invalid(Vec<Diagnostic>),
    /// The service refused or failed with the new text; the previous one was
    /// put back (`restored`) and is what runs.
    #[error("apply failed: {error}")]
    Failed { error: String, restored: bool },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A service as the Services tab and `GET /api/services` show it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceInfo {
    pub name: String,
    pub status: String,
    pub pid: Option<u32>,
    pub autostart: bool,
    pub running_revision: Option<i64>,
    pub saved_revision: Option<i64>,
}

/// Which stored text to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Running,
    Saved,
}

/// How `lanai run` was started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--manage-network`: run the network service (it changes the host's
    /// interfaces, so only the appliance image asks for it).
    pub manage_network: bool,
}

pub struct Appliance {
    pub store: Store,
    pub supervisor: Supervisor,
    options: Options,
    data_dir: PathBuf,
    run_dir: PathBuf,
    /// Serialises applies, saves and restores.
    change_lock: tokio::sync::Mutex<()>,
}

impl Appliance {
    /// Opens the store (creating it and the admin account on first start),
    /// registers the services, adopts children left by a previous `lanai run`,
    /// then boots: running := saved for every service, applied to it.
    /// Returns the appliance and, on first start, the generated admin password.
    pub async fn open(data_dir: &Path, exe: PathBuf) -> Result<(Arc<Appliance>, Option<String>), String> {
        Self::open_with(data_dir, exe, Options::default()).await
    }

    pub async fn open_with(
        data_dir: &Path,
        exe: PathBuf,
        options: Options,
    ) -> Result<(Arc<Appliance>, Option<String>), String> {
        let store = Store::open(data_dir).await.map_err(|e| format!("store: {e}"))?;
        for kind in services::ALL {
            store.ensure_service(kind.name, kind.default_text).await.map_err(|e| format!("store: {e}"))?;
        }
        let initial_password =
            store.ensure_admin(data_dir).await.map_err(|e| format!("admin account: {e}"))?;
        let run_dir = data_dir.join("run");
        std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
        let supervisor = Supervisor::new(&run_dir, exe);
        let rows = store.services().await.map_err(|e| format!("store: {e}"))?;
        for kind in services::ALL {
            if !options.manage_network && kind == services::NETWORK {
                continue;
            }
            let autostart = rows.iter().find(|r| r.name == kind.name).is_none_or(|r| r.autostart);
            supervisor.add(kind.spec(&run_dir, autostart)).map_err(|e| e.to_string())?;
        }
        for warning in supervisor.adopt().await {
            tracing::warn!("{warning}");
        }
        let appliance = Arc::new(Appliance {
            store,
            supervisor,
            options,
            data_dir: data_dir.to_path_buf(),
            run_dir,
            change_lock: tokio::sync::Mutex::new(()),
        });
        appliance.boot().await;
        Ok((appliance, initial_password))
    }

    /// Autostart of every service follows config.rc (`no autostart`): the
    /// running text decides the flag, so Save makes it the boot one.
    async fn sync_autostart(&self, rc_text: &str) {
        let (Some(rc), _) = crate::conf::rc::parse(services::NETWORK.file, rc_text) else {
            tracing::error!("config.rc does not parse; autostart flags unchanged");
            return;
        };
        for kind in services::ALL {
            let on = rc.autostart(kind.name);
            if let Err(e) = self.store.set_autostart(kind.name, on).await {
                tracing::error!("autostart of {}: {e}", kind.name);
            }
            if self.supervisor.spec(kind.name).is_some() {
                if let Err(e) = self.supervisor.set_autostart(kind.name, on) {
                    tracing::error!("autostart of {}: {e}", kind.name);
                }
            }
        }
    }

    pub fn options(&self) -> Options {
        self.options
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// running := saved for every service; adopted services are reloaded in
    /// place (no dropped connection), the others started if autostart.
    async fn boot(&self) {
        let _serial = self.change_lock.lock().await;
        for kind in services::ALL {
            let saved = match self.store.saved(kind.name).await {
                Ok(Some(rev)) => rev,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!("boot: {}: {e}", kind.name);
                    continue;
                }
            };
            if let Err(e) = write_atomic(&kind.config_path(&self.run_dir), &saved.text) {
                tracing::error!("boot: {}: {e}", kind.name);
                continue;
            }
            if let Err(e) = self.store.set_running(kind.name, saved.id).await {
                tracing::error!("boot: {}: {e}", kind.name);
            }
            if kind == services::NETWORK {
                self.sync_autostart(&saved.text).await;
            }
            let status = self.supervisor.status(kind.name).ok();
            if status.as_ref().is_some_and(is_up) {
                if let Err(errors) = self.supervisor.reload(kind.name).await {
                    tracing::error!("boot: reloading {}: {}", kind.name, errors.join("; "));
                }
            } else if status.is_some_and(|s| s.autostart) {
                if let Err(e) = self.supervisor.start(kind.name).await {
                    tracing::error!("boot: starting {}: {e}", kind.name);
                }
            }
        }
    }

    fn kind(&self, service: &str) -> Result<ServiceKind, ApplyError> {
        services::by_name(service).ok_or_else(|| ApplyError::UnknownService(service.to_string()))
    }

    /// Validates without changing anything.
    pub fn check(&self, service: &str, text: &str) -> Result<Vec<Diagnostic>, ApplyError> {
        Ok(self.kind(service)?.check(text).0)
    }

    /// The pipeline: check, store, hand to the service, running := revision.
    pub async fn apply(
        &self,
        service: &str,
        text: &str,
        origin: Origin,
        author: &str,
    ) -> Result<RevisionId, ApplyError> {
        self.apply_reporting(service, text, origin, author).await.map(|(rev, _)| rev)
    }

    /// As [`apply`](Self::apply), also returning what the service reported
    /// while taking the text (e.g. an interface config.rc names that does not
    /// exist yet: the text is in force, that item waits for the next reload).
    pub async fn apply_reporting(
        &self,
        service: &str,
        text: &str,
        origin: Origin,
        author: &str,
    ) -> Result<(RevisionId, Vec<String>), ApplyError> {
        let kind = self.kind(service)?;
        let (diags, valid) = kind.check(text);
        if !valid {
            return Err(ApplyError::Invalid(diags));
        }
        let _serial = self.change_lock.lock().await;
        let rev = self.store.add_revision(kind.name, text, origin, author).await?;
        let path = kind.config_path(&self.run_dir);
        let previous = std::fs::read_to_string(&path).ok();
        write_atomic(&path, text).map_err(|e| ApplyError::Failed { error: e, restored: false })?;
        let up = self.supervisor.status(kind.name).is_ok_and(|s| is_up(&s));
        let mut warnings = Vec::new();
        if up {
            match self.supervisor.reload(kind.name).await {
                // Services name their file by its run-directory path; the
                // operator knows it by its name.
                Ok(reported) => {
                    let long = path.display().to_string();
                    warnings = reported.into_iter().map(|w| w.replace(&long, kind.file)).collect();
                }
                Err(errors) => {
                    let restored = match &previous {
                        // The service refused the new file and kept its old
                        // configuration; put the old file back so that a later
                        // restart runs what is actually running.
                        Some(old) => write_atomic(&path, old).is_ok(),
                        None => false,
                    };
                    let _ = self
                        .store
                        .audit(
                            author,
                            "apply-failed",
                            &format!("{service}: revision {rev}: {}", errors.join("; ")),
                        )
                        .await;
                    return Err(ApplyError::Failed { error: errors.join("\n"), restored });
                }
            }
        }
        self.store.set_running(kind.name, rev).await?;
        if kind == services::NETWORK {
            self.sync_autostart(text).await;
        }
        self.store
            .audit(author, "apply", &format!("{service}: revision {rev} ({})", origin.as_str()))
            .await?;
        for w in &warnings {
            tracing::warn!("{service}: {w}");
        }
        Ok((rev, warnings))
    }

    /// Save: the running configuration of every service becomes the boot one.
    pub async fn save(&self, author: &str) -> Result<Vec<String>, StoreError> {
        let _serial = self.change_lock.lock().await;
        self.store.save_all(author).await
    }

    pub async fn config(&self, service: &str, which: Which) -> Result<Option<String>, ApplyError> {
        let kind = self.kind(service)?;
        let rev = match which {
            Which::Running => self.store.running(kind.name).await?,
            Which::Saved => self.store.saved(kind.name).await?,
        };
        Ok(rev.map(|r| r.text))
    }

    pub async fn revisions(&self, service: &str, limit: u32) -> Result<Vec<RevisionMeta>, ApplyError> {
        let kind = self.kind(service)?;
        Ok(self.store.revisions(kind.name, limit).await?)
    }

    pub async fn services(&self) -> Result<Vec<ServiceInfo>, StoreError> {
        let rows = self.store.services().await?;
        Ok(rows
            .into_iter()
            .filter(|r| services::by_name(&r.name).is_some())
            .map(|r| {
                let status = self.supervisor.status(&r.name).ok();
                ServiceInfo {
                    status: match &status {
                        Some(s) => state_name(s.state).to_string(),
                        None if r.name == services::NETWORK.name => "unmanaged".into(),
                        None => "unknown".into(),
                    },
                    pid: status.as_ref().and_then(|s| s.pid),
                    autostart: r.autostart,
                    running_revision: r.running_revision.map(|id| id.0),
                    saved_revision: r.saved_revision.map(|id| id.0),
                    name: r.name,
                }
            })
            .collect())
    }

    /// Start/stop/restart/reload as asked by an operator; audited.
    pub async fn control(&self, service: &str, action: Action, author: &str) -> Result<(), String> {
        let kind = self.kind(service).map_err(|e| e.to_string())?;
        if kind == services::NETWORK && !self.options.manage_network {
            return Err("the network service is not managed here: lanai run was started without \
                        --manage-network (its config.rc is still checked, stored and saved)"
                .into());
        }
        let result = match action {
            Action::Start => self.supervisor.start(kind.name).await.map_err(|e| e.to_string()),
            Action::Stop => self.supervisor.stop(kind.name).await.map_err(|e| e.to_string()),
            Action::Restart => self.supervisor.restart(kind.name).await.map_err(|e| e.to_string()),
            Action::Reload => self.supervisor.reload(kind.name).await.map(|_| ()).map_err(|e| e.join("\n")),
        };
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        let _ = self.store.audit(author, action.as_str(), &format!("{service}: {outcome}")).await;
        result
    }

    /// One HAProxy runtime API command (`show stat`, `disable server b/s`, …)
    /// on the data plane's control socket; the answer as text.
    pub async fn runtime_command(&self, command: &str) -> Result<String, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if command.contains('\n') {
            return Err("one command per call".into());
        }
        let path = services::HAPROXY.control_socket(&self.run_dir);
        let talk = async {
            let mut sock = tokio::net::UnixStream::connect(&path).await?;
            sock.write_all(format!("{command}\n").as_bytes()).await?;
            let mut out = String::new();
            sock.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), talk).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(format!("data plane control socket: {e}")),
            Err(_) => Err("data plane control socket: no answer within 5 s".into()),
        }
    }

    /// Stops supervising; children are stopped unless `keep_children`.
    pub async fn shutdown(&self, keep_children: bool) {
        self.supervisor.shutdown(!keep_children).await;
        self.store.close().await;
    }
}

/// An operator's action on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Reload,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "start" => Some(Action::Start),
            "stop" => Some(Action::Stop),
            "restart" => Some(Action::Restart),
            "reload" => Some(Action::Reload),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Reload => "reload",
        }
    }
}

fn is_up(status: &ServiceStatus) -> bool {
    matches!(status.state, ServiceState::Running | ServiceState::Starting)
}

fn state_name(state: ServiceState) -> &'static str {
    match state {
        ServiceState::Stopped => "stopped",
        ServiceState::Starting => "starting",
        ServiceState::Running => "running",
        ServiceState::Backoff => "restarting",
        ServiceState::Crashed => "crashed",
    }
}

/// Writes a file so that readers see the old or the new text, never half.
fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

impl From<SupervisorError> for ApplyError {
    fn from(e: SupervisorError) -> Self {
        ApplyError::Failed { error: e.to_string(), restored: false }
    }
}
