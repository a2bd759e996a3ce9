//! The running data plane: listening sockets kept across reloads, the compiled
//! tables swapped atomically, signals, graceful stop.
//!
//! Reload: parse and check the file, compile new tables (errorfiles, certs,
//! resolution), bind only the addresses that are new — if anything fails the
//! old configuration keeps running untouched. Then swap the tables, start
//! accepting on new sockets and close the ones no longer configured. Sockets
//! whose `bind` did not change are never closed, so no connection is refused;
//! requests in flight finish on the tables they started with.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use super::fd_limit;
use super::health::{self, CheckTarget, HealthTasks, LogSink};
use super::http::body::ProxyBody;
use super::http::samples::ConnInfo;
use super::http::server::ClientIo;
use super::http::{serve as http_serve, RequestEnv};
use super::relay::{relay_tcp, RelayOptions, RelayStats};
use super::runtime::{self, ReloadRequest, RuntimeContext, RuntimeServer};
use super::state::StateRegistry;
use super::stats::{StatsContext, StatsRequest};
use super::tables::{self, Backend, BackendServer, Frontend, Tables, TlsBuilder};
use super::{proxy_protocol, tls};
use crate::conf::haproxy::{self, Config, Level, Mode};
use crate::conf::{has_errors, Diagnostic};
use http_body_util::BodyExt;

/// What every connection task shares.
pub struct Shared {
    pub tables: ArcSwap<Tables>,
    /// Global `maxconn`: a connection holds a permit for its whole life.
    conn_slots: Arc<tokio::sync::Semaphore>,
    conn_slots_total: AtomicUsize,
    pub registry: Arc<StateRegistry>,
    pub stopping: watch::Receiver<bool>,
    pub started: Instant,
    active: AtomicUsize,
    idle: Notify,
    /// Graceful stop (or the engine gone): connections still waiting for
    /// their first byte close. Cheaper to wait on than `stopping` (a
    /// `Notified` is half a watch `changed()` future, in every idle task).
    unused_close: Notify,
    unused_closing: std::sync::atomic::AtomicBool,
}

/// Counts a live client connection; wakes the stopper when the last one ends.
pub struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Shared {
    fn enter(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(Arc::clone(self))
    }

    fn resize_conn_slots(&self, total: usize) {
        let old = self.conn_slots_total.swap(total, Ordering::AcqRel);
        if total > old {
            self.conn_slots.add_permits(total - old);
        } else {
            // Only free permits can be withdrawn; busy ones come back later.
            self.conn_slots.forget_permits(old - total);
        }
    }

    /// Closes the connections that never sent anything, now and from now on.
    fn close_unused(&self) {
        self.unused_closing.store(true, Ordering::Release);
        self.unused_close.notify_waiters();
    }

    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    fn stats_context(&self) -> StatsContext {
        let config = Arc::clone(&self.tables.load().config);
        let node = config.global.node.clone().unwrap_or_else(hostname);
        StatsContext {
            config,
            registry: Arc::clone(&self.registry),
            started: self.started,
            pid: std::process::id(),
            node,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// Relays a tcp-mode session with splice(2); counts bytes both ways.
    pub async fn relay(
        &self,
        client: TcpStream,
        server: TcpStream,
        fe: &Frontend,
        be: &Backend,
        srv: &BackendServer,
    ) -> RelayStats {
        let opts = RelayOptions::for_proxies(&fe.cfg, &be.cfg);
        let stats = relay_tcp(client, server, opts).await;
        for c in [&fe.counters, &be.counters, &srv.state.counters] {
            c.bytes_in.fetch_add(stats.bytes_from_client, Ordering::Relaxed);
            c.bytes_out.fetch_add(stats.bytes_from_server, Ordering::Relaxed);
        }
        stats
    }

    /// Serves the stats page when the request is for a backend's `stats uri`.
    pub async fn serve_stats(
        &self,
        be: &Arc<Backend>,
        req: &mut http::Request<ProxyBody>,
        conn: &ConnInfo,
        nbsrv: &(dyn Fn(&str) -> usize + Sync),
    ) -> Option<http::Response<ProxyBody>> {
        let page = be.cfg.stats.as_ref()?;
        let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
        if !path_and_query.starts_with(&page.uri) {
            return None;
        }
        let admin_allowed = page.admin.as_ref().is_some_and(|cond| {
            let samples = super::http::samples::HttpSamples::of_request(req, conn, nbsrv);
            super::acl::eval(Some(cond), &samples)
        });
        // Admin forms are small; anything larger is not a stats request.
        let body = std::mem::replace(req.body_mut(), ProxyBody::empty());
        let body = match http_body_util::Limited::new(body, 64 * 1024).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return Some(be.errors.response(400)),
        };
        let stats_req = StatsRequest {
            method: req.method().clone(),
            path_and_query,
            authorization: req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body,
            admin_allowed,
        };
        let logger = Arc::clone(&be.logger);
        let sink: LogSink = Arc::new(move |level, line: String| {
            tracing::info!("{line}");
            logger.log(level, None, &line);
        });
        let resp = super::stats::html::serve_logged(page, &stats_req, &self.stats_context(), Some(&sink));
        Some(resp.map(ProxyBody::full))
    }

    /// The Prometheus exporter's answer.
    pub fn prometheus(&self) -> http::Response<ProxyBody> {
        let text = super::stats::prometheus(&self.stats_context());
        let mut resp = http::Response::new(ProxyBody::full(text));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        resp
    }
}

/// Builds TLS contexts from the configuration.
struct ConfigTls;

impl TlsBuilder for ConfigTls {
    fn server(
        &self,
        cfg: &Config,
        bind: &haproxy::Bind,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        match &bind.tls {
            None => Ok(None),
            Some(t) => {
                tls::server_config(t, &cfg.global.ssl_default_bind).map(Some).map_err(|e| e.to_string())
            }
        }
    }

    fn client(
        &self,
        cfg: &Config,
        server: &haproxy::Server,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        match &server.tls {
            None => Ok(None),
            Some(t) => {
                tls::client_config(t, &cfg.global.ssl_default_server).map(Some).map_err(|e| e.to_string())
            }
        }
    }
}

/// The data plane of one configuration file.
pub struct Engine {
    pub shared: Arc<Shared>,
    path: PathBuf,
    listeners: Mutex<HashMap<SocketAddr, JoinHandle<()>>>,
    stop_tx: watch::Sender<bool>,
    /// Serialises reloads (SIGHUP and the control socket may race).
    reload_lock: tokio::sync::Mutex<()>,
    /// Health checks of the live configuration; replaced on reload (state
    /// stays in the registry, so health carries over).
    health: Mutex<Vec<HealthTasks>>,
    /// The configuration model the runtime API reads, kept in step with `tables`.
    runtime_config: Arc<ArcSwap<Config>>,
    /// Runtime API sockets (`stats socket`), opened at start.
    runtime_sockets: Mutex<Vec<RuntimeServer>>,
}

impl Drop for Engine {
    /// As with a graceful stop, connections waiting for their first byte
    /// close when the engine goes away (they would never be served).
    fn drop(&mut self) {
        self.shared.close_unused();
    }
}

/// Process settings a running proxy cannot change in place (it is already
/// jailed, unprivileged, sized): named in the reload's warnings.
fn restart_only_changes(old: &haproxy::Global, new: &haproxy::Global) -> Vec<String> {
    let mut changed = Vec::new();
    if old.chroot != new.chroot {
        changed.push("chroot");
    }
    if old.user != new.user || old.group != new.group {
        changed.push("user/group");
    }
    if old.nbthread != new.nbthread {
        changed.push("nbthread");
    }
    if old.pidfile != new.pidfile {
        changed.push("pidfile");
    }
    changed
        .into_iter()
        .map(|what| format!("'{what}' changed: takes effect when the proxy restarts"))
        .collect()
}

/// Reads, parses and checks a configuration file.
pub fn load(path: &Path) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = crate::conf::source::read_to_string(path)
        .map_err(|e| vec![Diagnostic::error(&name, 0, format!("cannot read file: {e}"))])?;
    let (config, mut diags) = haproxy::parse(&name, &text);
    match config {
        Some(cfg) if !has_errors(&diags) => {
            diags.extend(haproxy::check_files(&cfg, &name));
            if has_errors(&diags) {
                Err(diags)
            } else {
                Ok((cfg, diags))
            }
        }
        _ => Err(diags),
    }
}

impl Engine {
    /// Loads the file and starts serving it.
    pub async fn start(path: &Path) -> Result<Arc<Engine>, Vec<String>> {
        let (config, warnings) =
            load(path).map_err(|d| d.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        let registry = Arc::new(StateRegistry::new());
        let tables = tables::build(Arc::new(config), &registry, &ConfigTls)?;
        let file = path.display().to_string();
        if let Some(w) =
            fd_limit::raise(&tables.config.global, tables.binds.len(), &file).map_err(|e| vec![e])?
        {
            tracing::warn!("{w}");
        }
        let current_config = Arc::clone(&tables.config);
        let (stop_tx, stopping) = watch::channel(false);
        let maxconn = tables.config.global.maxconn as usize;
        let shared = Arc::new(Shared {
            conn_slots: Arc::new(tokio::sync::Semaphore::new(maxconn)),
            conn_slots_total: AtomicUsize::new(maxconn),
            tables: ArcSwap::from_pointee(tables),
            registry,
            stopping,
            started: Instant::now(),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
            unused_close: Notify::new(),
            unused_closing: std::sync::atomic::AtomicBool::new(false),
        });
        let engine = Arc::new(Engine {
            shared,
            path: path.to_path_buf(),
            listeners: Mutex::new(HashMap::new()),
            stop_tx,
            reload_lock: tokio::sync::Mutex::new(()),
            health: Mutex::new(Vec::new()),
            runtime_config: Arc::new(ArcSwap::from(Arc::clone(&current_config))),
            runtime_sockets: Mutex::new(Vec::new()),
        });
        let current = engine.shared.tables.load_full();
        let fresh = engine.bind_new(&current)?;
        engine.activate(fresh, &current)?;
        engine.start_health_checks(&current);
        Ok(engine)
    }

    /// Binds the addresses of `tables` that have no socket yet. On any error
    /// the sockets bound so far are dropped and nothing changes.
    fn bind_new(&self, tables: &Tables) -> Result<Vec<(SocketAddr, std::net::TcpListener)>, Vec<String>> {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let mut fresh = Vec::new();
        let mut errors = Vec::new();
        for (&addr, &(fi, bi)) in &tables.binds {
            if listeners.contains_key(&addr) {
                continue;
            }
            let bind = &tables.frontends[fi].cfg.binds[bi];
            match bind_socket(addr, bind.v6only, tables.config.global.maxconn) {
                Ok(l) => fresh.push((addr, l)),
                Err(e) => errors.push(format!("line {}: cannot bind {addr}: {e}", bind.line)),
            }
        }
        if errors.is_empty() {
            Ok(fresh)
        } else {
            Err(errors)
        }
    }

    /// Starts accepting on the sockets `bind_new` made and closes the ones
    /// `tables` no longer has; unchanged binds keep their sockets.
    fn activate(
        &self,
        fresh: Vec<(SocketAddr, std::net::TcpListener)>,
        tables: &Tables,
    ) -> Result<(), Vec<String>> {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        for (addr, std_listener) in fresh {
            let listener = TcpListener::from_std(std_listener).map_err(|e| vec![format!("{addr}: {e}")])?;
            let shared = Arc::clone(&self.shared);
            listeners.insert(addr, tokio::spawn(accept_loop(listener, addr, shared)));
        }
        listeners.retain(|addr, task| {
            let keep = tables.binds.contains_key(addr);
            if !keep {
                task.abort();
            }
            keep
        });
        Ok(())
    }

    /// Re-reads the file. `Ok(warnings)` when the new configuration is live;
    /// `Err(errors)` when it was refused and the old one keeps running.
    pub async fn reload(&self) -> Result<Vec<String>, Vec<String>> {
        let _serial = self.reload_lock.lock().await;
        let (config, warnings) =
            load(&self.path).map_err(|d| d.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let new = Arc::new(tables::build(Arc::new(config), &self.shared.registry, &ConfigTls)?);
        let mut warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        let file = self.path.display().to_string();
        // Raising the soft limit up to the hard one needs no privilege, so a
        // larger maxconn takes effect on reload too.
        warnings.extend(fd_limit::raise(&new.config.global, new.binds.len(), &file).map_err(|e| vec![e])?);
        // Bind before swapping so that a failed bind leaves everything as it was;
        // the sockets bound here are the ones that go live.
        let fresh = self.bind_new(&new)?;
        warnings.extend(restart_only_changes(&self.shared.tables.load().config.global, &new.config.global));
        self.shared.resize_conn_slots(new.config.global.maxconn as usize);
        self.shared.tables.store(Arc::clone(&new));
        self.runtime_config.store(Arc::clone(&new.config));
        self.activate(fresh, &new)?;
        self.start_health_checks(&new);
        for w in &warnings {
            tracing::warn!("{w}");
        }
        Ok(warnings)
    }

    /// Opens the `stats socket`s, plus `control` (admin level: the
    /// appliance's own socket, whatever the configuration says); `reload`
    /// requests arrive on the returned channel.
    pub async fn open_runtime_sockets(
        &self,
        control: Option<&Path>,
    ) -> Result<mpsc::Receiver<ReloadRequest>, Vec<String>> {
        let (tx, rx) = mpsc::channel(4);
        let config = self.shared.tables.load().config.clone();
        let ctx = Arc::new(RuntimeContext {
            config: Arc::clone(&self.runtime_config),
            registry: Arc::clone(&self.shared.registry),
            started: self.shared.started,
            pid: std::process::id(),
            node: config.global.node.clone().unwrap_or_else(hostname),
            version: env!("CARGO_PKG_VERSION"),
            reload: tx,
            log: Some(global_log_sink(&config)),
        });
        let mut servers = Vec::new();
        let mut errors = Vec::new();
        let control = control.map(|path| (path.to_path_buf(), Some(0o600), haproxy::RuntimeLevel::Admin, 0));
        let configured =
            config.global.stats_sockets.iter().map(|s| (s.path.clone(), s.mode, s.level, s.line));
        for (path, mode, level, line) in control.into_iter().chain(configured) {
            match runtime::serve(&path, mode, level, Arc::clone(&ctx)).await {
                Ok(server) => servers.push(server),
                Err(e) => errors.push(format!("line {line}: stats socket {}: {e}", path.display())),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        *self.runtime_sockets.lock().unwrap_or_else(|e| e.into_inner()) = servers;
        Ok(rx)
    }

    fn start_health_checks(&self, tables: &Tables) {
        let mut tasks = Vec::new();
        // Every backend, checked or not: a server whose `check` a reload
        // removed must go back to "no check" rather than stay DOWN.
        for be in tables.backends.values() {
            let targets = be
                .servers
                .iter()
                .map(|s| CheckTarget {
                    server: s.cfg.clone(),
                    state: Arc::clone(&s.state),
                    tls: s.tls.clone(),
                })
                .collect();
            let logger = Arc::clone(&be.logger);
            let sink: LogSink = Arc::new(move |level, line: String| {
                if level <= Level::Warning {
                    tracing::warn!("{line}");
                } else {
                    tracing::info!("{line}");
                }
                logger.log(level, None, &line);
            });
            let proxy_state = Some(self.shared.registry.proxy(&be.cfg.name));
            tasks.push(health::spawn_checks_tracked(&be.cfg, targets, sink, proxy_state));
        }
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
    }

    /// Stops accepting, lets connections finish, gives up after `hard_stop_after`.
    pub async fn stop(&self) {
        let hard = self.shared.tables.load().config.global.hard_stop_after;
        {
            let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
            for (_, task) in listeners.drain() {
                task.abort();
            }
        }
        self.health.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.runtime_sockets.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let _ = self.stop_tx.send(true);
        self.shared.close_unused();
        let drained = async {
            loop {
                let notified = self.shared.idle.notified();
                if self.shared.active_connections() == 0 {
                    break;
                }
                notified.await;
            }
        };
        match hard {
            Some(limit) => {
                if tokio::time::timeout(limit, drained).await.is_err() {
                    tracing::warn!(
                        "hard-stop-after reached with {} connections left",
                        self.shared.active_connections()
                    );
                }
            }
            None => drained.await,
        }
    }
}

fn bind_socket(addr: SocketAddr, v6only: bool, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6only)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.clamp(128, 65535) as i32)?;
    Ok(socket.into())
}

async fn accept_loop(listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) {
    loop {
        // Global maxconn: stop accepting (the kernel queues) until a slot frees.
        let Ok(slot) = Arc::clone(&shared.conn_slots).acquire_owned().await else { return };
        // Frontend maxconn: likewise, per frontend.
        loop {
            let tables = shared.tables.load();
            let full = tables
                .frontend_for(addr)
                .is_some_and(|(fe, _)| fe.cfg.maxconn.is_some_and(|m| fe.counters.current() >= u64::from(m)));
            if !full {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept on {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        super::scheduler::account_cpu_time(Instant::now());
        let tables = shared.tables.load();
        let Some((fe, bind_idx)) = tables.frontend_for(addr) else { continue };
        let conn = Accepted {
            fe: Arc::clone(fe),
            generation: tables.generation,
            bind_idx: bind_idx as u32,
            _slot: slot,
            _guard: shared.enter(),
            shared: Arc::clone(&shared),
        };
        tokio::spawn(serve_connection(stream, peer, conn));
    }
}

/// What a connection task keeps from its accept. Everything a connection
/// holds while it waits for its first byte lives in its task, so this stays
/// small; the rest is boxed once the client has sent something.
struct Accepted {
    fe: Arc<Frontend>,
    /// `Tables::generation` `fe` was found in.
    generation: u64,
    bind_idx: u32,
    shared: Arc<Shared>,
    /// Global `maxconn` slot and active-connection count, held to the end.
    _slot: tokio::sync::OwnedSemaphorePermit,
    _guard: ActiveGuard,
}

/// Not an `async fn`: its arguments would be stored twice in the task (as
/// arguments and as the locals they are moved to); an `async move` block uses
/// its captures in place (392 bytes against 576, in release).
#[allow(clippy::manual_async_fn)]
fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    accepted: Accepted,
) -> impl Future<Output = ()> + Send {
    async move {
        let _session = accepted.fe.counters.open_session();
        let fe = &accepted.fe;
        let accept_proxy = fe.cfg.binds.get(accepted.bind_idx as usize).is_some_and(|b| b.accept_proxy);
        if fe.cfg.mode == Mode::Http && !accept_proxy {
            // Nothing but the socket is kept until the client sends a byte: idle
            // connections stay small (HAProxy allocates nothing for them either).
            let _ = stream.set_nodelay(true);
            if accepted.shared.logs_connect(fe) {
                let listener = fe.cfg.binds.get(accepted.bind_idx as usize).map_or(peer, |b| b.addr);
                let local = stream.local_addr().unwrap_or(listener);
                let conn = ConnInfo { client: peer, local, tls: false, sni: None };
                accepted.shared.log_connect(fe, &conn);
            }
            let limit = fe.cfg.timeouts.http_request.or(fe.cfg.timeouts.client);
            if !wait_for_data(&stream, limit, &accepted.shared).await {
                return;
            }
            Box::pin(serve_started(stream, peer, &accepted, true)).await
        } else {
            Box::pin(serve_started(stream, peer, &accepted, false)).await
        }
    }
}

/// The connection once it has data (HTTP) or from the start (tcp mode, PROXY
/// protocol). `waited`: the first byte is there and the "Connect" line logged.
async fn serve_started(mut stream: TcpStream, peer: SocketAddr, accepted: &Accepted, waited: bool) {
    let fe = Arc::clone(&accepted.fe);
    let shared = Arc::clone(&accepted.shared);
    let bind_idx = accepted.bind_idx as usize;
    let listener = fe.cfg.binds.get(bind_idx).map_or(peer, |b| b.addr);
    if !waited {
        let _ = stream.set_nodelay(true);
    }
    let local = stream.local_addr().unwrap_or(listener);
    let mut conn = ConnInfo { client: peer, local, tls: false, sni: None };
    if !waited {
        if fe.cfg.binds.get(bind_idx).is_some_and(|b| b.accept_proxy) {
            let wait = fe.cfg.timeouts.client.unwrap_or(Duration::from_secs(5));
            match proxy_protocol::read_header(&mut stream, wait).await {
                Ok(header) => {
                    if let Some(addrs) = header.addresses {
                        conn.client = addrs.source;
                        conn.local = addrs.destination;
                    }
                }
                Err(e) => {
                    tracing::debug!("{peer}: bad PROXY header: {e}");
                    return;
                }
            }
        }
        shared.log_connect(&fe, &conn);
        let limit = fe.cfg.timeouts.http_request.or(fe.cfg.timeouts.client);
        if fe.cfg.mode == Mode::Http && !wait_for_data(&stream, limit, &shared).await {
            return;
        }
    }
    let generation = accepted.generation;
    match fe.cfg.mode {
        Mode::Tcp => super::tcp::serve(stream, conn, fe, shared).await,
        Mode::Http => match fe.tls.get(bind_idx).cloned().flatten() {
            None => {
                let stream = match crate::proxy::http::wire::lean_tcp::LeanTcp::new(stream) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!("client connection: {e}");
                        return;
                    }
                };
                let env = Arc::new(RequestEnv { conn, frontend: fe, listener, engine: shared, generation });
                http_serve::serve(ClientIo::Plain(stream), env, false).await;
            }
            Some(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                let handshake = acceptor.accept(stream);
                let timeout = fe.cfg.timeouts.client.unwrap_or(Duration::from_secs(30));
                let Ok(Ok(tls_stream)) = tokio::time::timeout(timeout, handshake).await else {
                    return;
                };
                let (_, session) = tls_stream.get_ref();
                let h2 = session.alpn_protocol() == Some(b"h2");
                let sni = session.server_name().map(str::to_string);
                let conn = ConnInfo { tls: true, sni, ..conn };
                let env = Arc::new(RequestEnv { conn, frontend: fe, listener, engine: shared, generation });
                http_serve::serve(ClientIo::Tls(Box::new(tls_stream)), env, h2).await;
            }
        },
    }
}

/// Waits until the client sends its first byte, `limit` at most, or a
/// graceful stop. False: close silently, as HAProxy does with a connection
/// that never sent anything. The socket is polled by hand (no waiter node of
/// its own): an idle connection's task holds its socket, a timer and a
/// `Notified`.
async fn wait_for_data(stream: &TcpStream, limit: Option<Duration>, shared: &Shared) -> bool {
    let sleep = limit.map(tokio::time::sleep);
    tokio::pin!(sleep);
    // Created before the flag is read: a stop after the read still wakes it.
    let stop = shared.unused_close.notified();
    tokio::pin!(stop);
    if shared.unused_closing.load(Ordering::Acquire) {
        return false;
    }
    std::future::poll_fn(|cx| {
        use std::task::Poll;
        // `peek` waits for a real byte (or EOF); readiness alone may be spurious.
        let mut byte = [std::mem::MaybeUninit::uninit(); 1];
        let mut buf = tokio::io::ReadBuf::uninit(&mut byte);
        match stream.poll_peek(cx, &mut buf) {
            Poll::Ready(Ok(n)) => return Poll::Ready(n > 0),
            Poll::Ready(Err(_)) => return Poll::Ready(false),
            Poll::Pending => {}
        }
        let timed_out = sleep.as_mut().as_pin_mut().is_some_and(|s| s.poll(cx).is_ready());
        if timed_out || stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        Poll::Pending
    })
    .await
}

/// Runtime-API state changes go to the global `log` targets and our own log.
fn global_log_sink(config: &Config) -> LogSink {
    let logger = Arc::new(super::log::Logger::lanai(&config.global.logs));
    Arc::new(move |level, line: String| {
        tracing::info!("{line}");
        logger.log(level, None, &line);
    })
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "lanai".into())
}
