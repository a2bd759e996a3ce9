//! The configuration compiled for the data plane: frontends, backends, servers
//! with their live state and connection pools. A reload builds new `Tables`
//! and swaps them in atomically; requests already running keep the old ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::acl::{self, Samples};
use super::balance::{Balancer, Candidate};
use super::http::errors::{CannedResponse, ErrorPages};
use super::http::pool::Pool;
use super::http::rules::ReturnFiles;
use super::log::Logger;
use super::state::{Admin, Counters, ServerState, StateRegistry};
use crate::conf::haproxy::{Config, HttpRequestAction, Proxy, ReturnBody, Server};

pub struct Tables {
    pub config: Arc<Config>,
    pub frontends: Vec<Arc<Frontend>>,
    pub backends: HashMap<String, Arc<Backend>>,
    /// Listening address → (index in `frontends`, index of the bind).
    pub binds: HashMap<SocketAddr, (usize, usize)>,
    /// Distinct for every `build`: a connection that saw this generation at
    /// accept time can keep using its frontend without looking it up again.
    pub generation: u64,
}

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub struct Frontend {
    pub cfg: Proxy,
    pub logger: Arc<Logger>,
    pub counters: Arc<Counters>,
    pub errors: ErrorPages,
    pub files: FileCache,
    /// TLS acceptor configuration per bind (same order as `cfg.binds`).
    pub tls: Vec<Option<Arc<rustls::ServerConfig>>>,
}

pub struct Backend {
    pub cfg: Proxy,
    pub logger: Arc<Logger>,
    /// Woken when a server session ends, for requests queued on `maxconn`.
    pub slot_freed: tokio::sync::Notify,
    /// Some server has a `maxconn`: requests may queue, `slot_freed` matters.
    pub queueable: bool,
    pub servers: Vec<BackendServer>,
    pub balancer: Balancer,
    pub counters: Arc<Counters>,
    pub errors: ErrorPages,
    pub files: FileCache,
}

pub struct BackendServer {
    pub cfg: Server,
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    pub pool: Pool,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Files served by `http-request return file|errorfile`, read at load time.
#[derive(Debug, Default, Clone)]
pub struct FileCache(HashMap<PathBuf, Bytes>);

impl ReturnFiles for FileCache {
    fn file(&self, path: &Path) -> Option<Bytes> {
        self.0.get(path).cloned()
    }
}

impl Backend {
    pub fn candidates(&self) -> Vec<Candidate<'_>> {
        self.servers
            .iter()
            .map(|s| Candidate {
                state: &s.state,
                config_weight: s.cfg.weight,
                backup: s.cfg.backup,
                maxconn: s.cfg.maxconn,
                id: s.cfg.id,
            })
            .collect()
    }

    /// HAProxy waits this long before retrying the same server after a failed
    /// connection: one second, or `timeout connect` if shorter.
    pub fn retry_turnaround(&self) -> std::time::Duration {
        let turnaround = std::time::Duration::from_secs(1);
        self.cfg.timeouts.connect.map_or(turnaround, |c| c.min(turnaround))
    }

    /// Some usable server is only full (at `maxconn`): worth queueing for.
    pub fn only_full(&self) -> bool {
        self.servers.iter().any(|s| s.state.is_usable() && s.cfg.maxconn.is_some_and(|m| m > 0))
    }

    /// Servers able to take traffic now (`nbsrv`).
    pub fn usable_count(&self) -> usize {
        self.servers.iter().filter(|s| s.state.is_usable()).count()
    }

    pub fn active_and_backup_usable(&self) -> (usize, usize) {
        let usable = |backup: bool| {
            self.servers.iter().filter(|s| s.cfg.backup == backup && s.state.is_usable()).count()
        };
        (usable(false), usable(true))
    }
}

impl Frontend {
    /// The backend a request or connection goes to: the first `use_backend`
    /// whose condition holds, else `default_backend`, else the section itself
    /// when it is a `listen`.
    pub fn backend_for<'t>(&self, tables: &'t Tables, samples: &dyn Samples) -> Option<&'t Arc<Backend>> {
        let name = self
            .cfg
            .use_backends
            .iter()
            .find(|u| acl::eval(u.cond.as_ref(), samples))
            .map(|u| u.backend.as_str())
            .or(self.cfg.default_backend.as_deref())
            .or_else(|| self.cfg.cap.backend.then_some(self.cfg.name.as_str()))?;
        tables.backends.get(name)
    }
}

impl Tables {
    pub fn frontend_for(&self, listener: SocketAddr) -> Option<(&Arc<Frontend>, usize)> {
        self.binds.get(&listener).and_then(|&(f, b)| self.frontends.get(f).map(|fe| (fe, b)))
    }
}

/// How TLS contexts are built; supplied by the caller so that this module stays
/// free of certificate handling.
pub trait TlsBuilder {
    fn server(
        &self,
        cfg: &Config,
        bind: &crate::conf::haproxy::Bind,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, String>;
    fn client(&self, cfg: &Config, server: &Server) -> Result<Option<Arc<rustls::ClientConfig>>, String>;
}

/// Compiles a configuration. Reads errorfiles, return files, certificates and
/// resolves server host names: any failure is an error and nothing changes.
pub fn build(
    config: Arc<Config>,
    registry: &StateRegistry,
    tls: &dyn TlsBuilder,
) -> Result<Tables, Vec<String>> {
    let mut errors = Vec::new();
    let mut frontends = Vec::new();
    let mut backends = HashMap::new();
    let mut binds = HashMap::new();

    for proxy in &config.proxies {
        let pages = load_error_pages(proxy, &mut errors);
        let files = load_return_files(proxy, &mut errors);
        let pstate = registry.proxy(&proxy.name);
        let logger = Arc::new(Logger::lanai(&proxy.logs));
        if proxy.cap.frontend {
            let mut tls_per_bind = Vec::new();
            for (bi, bind) in proxy.binds.iter().enumerate() {
                match tls.server(&config, bind) {
                    Ok(t) => tls_per_bind.push(t),
                    Err(e) => {
                        errors.push(format!("line {}: bind {}: {e}", bind.line, bind.addr));
                        tls_per_bind.push(None);
                    }
                }
                if binds.insert(bind.addr, (frontends.len(), bi)).is_some() {
                    errors.push(format!("line {}: address {} is bound twice", bind.line, bind.addr));
                }
            }
            frontends.push(Arc::new(Frontend {
                cfg: proxy.clone(),
                logger: Arc::clone(&logger),
                counters: Arc::clone(&pstate.frontend),
                errors: pages.clone(),
                files: files.clone(),
                tls: tls_per_bind,
            }));
        }
        if proxy.cap.backend {
            let mut servers = Vec::new();
            for server in &proxy.servers {
                let addr = match resolve(server) {
                    Ok(a) => a,
                    Err(e) => {
                        errors.push(format!(
                            "line {}: server {}/{}: {e}",
                            server.line, proxy.name, server.name
                        ));
                        continue;
                    }
                };
                let is_new = registry.find_server(&proxy.name, &server.name).is_none();
                let state = registry.server(&proxy.name, &server.name, server.weight, server.check.is_some());
                if is_new && server.disabled {
                    state.set_admin(Admin::Maint);
                }
                state.reconfigure_weight(server.weight);
                let client_tls = match tls.client(&config, server) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(format!(
                            "line {}: server {}/{}: {e}",
                            server.line, proxy.name, server.name
                        ));
                        None
                    }
                };
                servers.push(BackendServer {
                    cfg: server.clone(),
                    addr,
                    state,
                    pool: Pool::default(),
                    tls: client_tls,
                });
            }
            backends.insert(
                proxy.name.clone(),
                Arc::new(Backend {
                    cfg: proxy.clone(),
                    logger: Arc::clone(&logger),
                    slot_freed: tokio::sync::Notify::new(),
                    queueable: proxy.servers.iter().any(|s| s.maxconn.is_some_and(|m| m > 0)),
                    servers,
                    balancer: Balancer::new(proxy.balance.clone(), proxy.options.allbackups),
                    counters: Arc::clone(&pstate.backend),
                    errors: pages,
                    files,
                }),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let keep_servers =
        |b: &str, s: &str| config.proxy(b).is_some_and(|p| p.servers.iter().any(|x| x.name == s));
    registry.retain_servers(&keep_servers);
    registry.retain_proxies(&|p| config.proxy(p).is_some());
    let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Tables { config, frontends, backends, binds, generation })
}

fn resolve(server: &Server) -> Result<SocketAddr, String> {
    match &server.host {
        None => Ok(server.addr),
        Some(host) => crate::conf::source::resolve(host, server.addr.port())
            .map_err(|e| format!("cannot resolve '{host}': {e}"))?
            .into_iter()
            .next()
            .ok_or_else(|| format!("'{host}' has no address")),
    }
}

fn load_error_pages(proxy: &Proxy, errors: &mut Vec<String>) -> ErrorPages {
    let mut custom = HashMap::new();
    for (code, path) in &proxy.errorfiles {
        match crate::conf::source::read(path)
            .map_err(|e| e.to_string())
            .and_then(|raw| CannedResponse::parse(&raw))
        {
            Ok(c) => {
                custom.insert(*code, c);
            }
            Err(e) => errors.push(format!("{}: errorfile {code} '{}': {e}", proxy.name, path.display())),
        }
    }
    ErrorPages::new(custom)
}

fn load_return_files(proxy: &Proxy, errors: &mut Vec<String>) -> FileCache {
    let mut files = HashMap::new();
    for rule in &proxy.http_request {
        if let HttpRequestAction::Return(ret) = &rule.action {
            if let ReturnBody::File(p) | ReturnBody::ErrorFile(p) = &ret.body {
                match crate::conf::source::read(p) {
                    Ok(b) => {
                        files.insert(p.clone(), Bytes::from(b));
                    }
                    Err(e) => errors.push(format!("line {}: cannot read '{}': {e}", rule.line, p.display())),
                }
            }
        }
    }
    FileCache(files)
}
