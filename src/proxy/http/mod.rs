//! HTTP mode: serving client connections (HTTP/1.1, and HTTP/2 over TLS with
//! ALPN) and running each request through the frontend's rules, backend choice
//! and the server.

pub mod body;
pub mod client;
pub mod cookie;
pub mod deadline;
pub mod errors;
pub mod forward;
pub mod pool;
pub mod rules;
pub mod samples;
pub mod serve;
pub mod server;
pub mod wire;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response};

use self::body::ProxyBody;
use self::forward::{ForwardOptions, ForwardReport};
use self::rules::{apply_request_rules, apply_response_rules, RequestFlags, RequestVerdict};
use self::samples::{ConnInfo, HttpSamples};
use super::tables::{Backend, Frontend};

/// Everything a request needs to know about its connection and the engine.
pub struct RequestEnv {
    pub conn: ConnInfo,
    /// Frontend the connection was accepted by (used if a reload removed it).
    pub frontend: Arc<Frontend>,
    pub listener: std::net::SocketAddr,
    pub engine: Arc<super::engine::Shared>,
    /// `Tables::generation` `frontend` was taken from: while it is still the
    /// live one, `frontend` is current and needs no lookup.
    pub generation: u64,
}

/// The data a log line needs about one request. Built for every request, so
/// it holds no owned strings: names are looked up when a line is written.
pub struct RequestLog {
    pub fe: Arc<Frontend>,
    pub conn: ConnInfo,
    /// Size of the response head sent to the client (HAProxy's %B counts it).
    pub head_bytes: u64,
    /// The backend chosen; none: the frontend's name is logged.
    pub backend: Option<Arc<Backend>>,
    pub server: LogServer,
    pub status: u16,
    pub request_line: String,
    pub report: ForwardReport,
    pub started: Instant,
}

/// The server field of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogServer {
    NoServer,
    Stats,
    Prometheus,
    /// Index in the backend's servers.
    Server(usize),
}

impl RequestLog {
    pub fn backend_name(&self) -> &str {
        self.backend.as_ref().map_or(self.fe.cfg.name.as_str(), |b| b.cfg.name.as_str())
    }

    pub fn server_name(&self) -> &str {
        match self.server {
            LogServer::NoServer => "<NOSRV>",
            LogServer::Stats => "<STATS>",
            LogServer::Prometheus => "<PROMEX>",
            LogServer::Server(i) => self
                .backend
                .as_ref()
                .and_then(|b| b.servers.get(i))
                .map_or("<NOSRV>", |s| s.cfg.name.as_str()),
        }
    }
}

/// Runs one request through the frontend and backend; always answers. The
/// request is borrowed (and left changed, its body taken) rather than moved,
/// so that it is not copied into this function's future.
pub async fn handle(req: &mut Request<ProxyBody>, env: &Arc<RequestEnv>) -> Response<ProxyBody> {
    let started = Instant::now();
    super::scheduler::account_cpu_time(started);
    let tables = env.engine.tables.load_full();
    let fe = if tables.generation == env.generation {
        Arc::clone(&env.frontend)
    } else {
        tables
            .frontend_for(env.listener)
            .map(|(f, _)| Arc::clone(f))
            .unwrap_or_else(|| Arc::clone(&env.frontend))
    };
    fe.counters.http_requests.fetch_add(1, Ordering::Relaxed);
    let logging = fe.cfg.options.httplog && !fe.logger.is_empty();
    // Built only when a log line will use it: it allocates.
    let request_line =
        if logging { format!("{} {} {:?}", req.method(), req.uri(), req.version()) } else { String::new() };

    // The frontend's and backend's rules, the backend's choice and the
    // server: a block in this function, not a function of its own, so that
    // its state is not copied into this one's for every request.
    let (resp, mut log) = 'route: {
        let nbsrv = |name: &str| tables.backends.get(name).map_or(0, |b| b.usable_count());
        let mut log = RequestLog {
            fe: Arc::clone(&fe),
            conn: env.conn.clone(),
            head_bytes: 0,
            backend: None,
            server: LogServer::NoServer,
            status: 0,
            request_line,
            report: ForwardReport {
                termination: *b"--",
                connect_ms: -1,
                response_ms: -1,
                ..Default::default()
            },
            started,
        };
        let mut flags = RequestFlags::default();
        let verdict = apply_request_rules(
            &fe.cfg.http_request,
            req,
            &env.conn,
            &nbsrv,
            &fe.errors,
            &fe.files,
            &mut flags,
        );
        if let Some(resp) = local_answer(verdict, fe.as_ref(), &env.engine, &mut log, &flags) {
            break 'route (resp, log);
        }
        if fe.cfg.monitor_uri.as_deref().is_some_and(|m| m == req.uri().path()) {
            log.report.termination = *b"PR";
            break 'route (errors::default_page(200).to_response(), log);
        }

        let be = {
            let samples = HttpSamples::of_request(req, &env.conn, &nbsrv);
            fe.backend_for(&tables, &samples).cloned()
        };
        let Some(be) = be else {
            log.report.termination = *b"SC";
            break 'route (fe.errors.response(503), log);
        };
        log.backend = Some(Arc::clone(&be));

        if be.cfg.name != fe.cfg.name {
            let verdict = apply_request_rules(
                &be.cfg.http_request,
                req,
                &env.conn,
                &nbsrv,
                &be.errors,
                &be.files,
                &mut flags,
            );
            if let Some(resp) = local_answer(verdict, fe.as_ref(), &env.engine, &mut log, &flags) {
                break 'route (resp, log);
            }
        }
        if be.cfg.stats.is_some() {
            // Boxed: its state would otherwise be in every request's.
            if let Some(resp) = Box::pin(env.engine.serve_stats(&be, req, &env.conn, &nbsrv)).await {
                log.report.termination = *b"PR";
                log.server = LogServer::Stats;
                break 'route (resp, log);
            }
        }

        let close_server =
            be.cfg.options.http_server_close || be.cfg.options.httpclose || fe.cfg.options.httpclose;
        let forwardfor = be.cfg.options.forwardfor.as_ref().or(fe.cfg.options.forwardfor.as_ref());
        let opts = ForwardOptions { forwardfor, l7_retry_disabled: flags.l7_retry_disabled, close_server };
        let has_response_rules = !be.cfg.http_response.is_empty() || !fe.cfg.http_response.is_empty();
        // Response rules may test the request: keep a copy of its head only then.
        let head_for_rules = has_response_rules.then(|| Box::new(copy_head(req)));
        let (mut resp, report) = forward::forward(&be, req, &env.conn, opts).await;
        log.server = report.server.map_or(LogServer::NoServer, LogServer::Server);
        log.report = report;
        let Some(head_for_rules) = head_for_rules else {
            if fe.cfg.options.httpclose {
                resp.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            }
            log.status = resp.status().as_u16();
            break 'route (resp, log);
        };

        // Response rules: backend's, then frontend's (HAProxy's order).
        let samples = HttpSamples::of_parts(&head_for_rules, &env.conn, &nbsrv);
        if let Some(denied) = apply_response_rules(&be.cfg.http_response, &mut resp, &samples, &be.errors) {
            be.counters.denied_resp.fetch_add(1, Ordering::Relaxed);
            resp = denied;
        }
        if be.cfg.name != fe.cfg.name {
            if let Some(denied) = apply_response_rules(&fe.cfg.http_response, &mut resp, &samples, &fe.errors)
            {
                fe.counters.denied_resp.fetch_add(1, Ordering::Relaxed);
                resp = denied;
            }
        }
        if fe.cfg.options.httpclose {
            resp.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        }
        log.status = resp.status().as_u16();
        (resp, log)
    };
    fe.counters.count_response(resp.status().as_u16());
    if !logging {
        return resp;
    }
    log.status = resp.status().as_u16();
    log.head_bytes = head_size(&resp);
    let engine = Arc::clone(&env.engine);
    resp.map(|b| {
        b.on_end(Box::new(move |end| {
            engine.log_http(&log, end.bytes);
        }))
    })
}

/// A copy of the request head for response rules (which may test the request).
fn copy_head(req: &Request<ProxyBody>) -> http::request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy.into_parts().0
}

fn local_answer(
    verdict: RequestVerdict,
    fe: &Frontend,
    engine: &super::engine::Shared,
    log: &mut RequestLog,
    flags: &RequestFlags,
) -> Option<Response<ProxyBody>> {
    match verdict {
        RequestVerdict::Continue => None,
        RequestVerdict::Respond(resp) => {
            if flags.denied {
                fe.counters.denied_req.fetch_add(1, Ordering::Relaxed);
            }
            log.report.termination = *b"PR";
            log.status = resp.status().as_u16();
            Some(resp)
        }
        RequestVerdict::Prometheus => {
            log.report.termination = *b"PR";
            log.server = LogServer::Prometheus;
            let resp = engine.prometheus();
            log.status = resp.status().as_u16();
            Some(resp)
        }
    }
}

/// Bytes of an HTTP/1.1 response head as it goes on the wire.
fn head_size<B>(resp: &Response<B>) -> u64 {
    let status_line = 15 + resp.status().canonical_reason().map_or(0, str::len);
    let headers: usize = resp.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    (status_line + headers + 2) as u64
}
