//! Sending a request to a backend server: server choice (persistence, balance),
//! connection reuse, retries and redispatch, timeouts, and the error the client
//! gets when it all fails (503 no server / connect failure, 502 broken
//! response, 504 server timeout), as HAProxy answers.

use super::wire::lean_tcp::LeanTcp;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::server::ClientUpgrade;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST};
use http::{Request, Response, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::net::TcpStream;

use super::body::{BodyEnd, ProxyBody};
use super::client::{RequestBody, ResponseStart, SendError, ServerConn, ServerIo, Upgraded};
use super::cookie;
use super::samples::ConnInfo;
use super::wire::{connection_has, hop_bit, names_no_header, KEEP_ALIVE, PROXY_CONNECTION};
use crate::conf::haproxy::{Balance, ForwardFor};
use crate::proxy::balance::{self, Key};
use crate::proxy::relay::{self, RelayOptions};
use crate::proxy::tables::{Backend, BackendServer};
use crate::proxy::{proxy_protocol, tls};

/// Largest request body kept in memory so that it can be re-sent (L7 retries);
/// larger ones stream and are not retried at L7, as with HAProxy's buffer.
const MAX_RETRY_BODY: u64 = 16 * 1024;

/// What happened to a forwarded request, for logs and counters.
#[derive(Debug, Clone, Default)]
pub struct ForwardReport {
    /// Index in the backend's servers of the last server tried.
    pub server: Option<usize>,
    pub retries: u32,
    pub redispatched: bool,
    /// HAProxy's two first termination-state characters, e.g. "SC", "sH", "--".
    pub termination: [u8; 2],
    pub connect_ms: i64,
    pub response_ms: i64,
}

enum SendFailure {
    /// Could not connect (refused, unreachable, connect timeout).
    Connect(String),
    /// Connected, but the server closed without answering.
    Empty,
    /// The server answered something that is not HTTP.
    Junk(String),
    /// No response headers within `timeout server`.
    Timeout,
    /// The client's request body broke off while it was being sent.
    ClientAbort,
}

/// Request options decided upstream (rules, frontend).
pub struct ForwardOptions<'a> {
    pub forwardfor: Option<&'a ForwardFor>,
    pub l7_retry_disabled: bool,
    /// Close the server connection after the response (`http-server-close`/`httpclose`).
    pub close_server: bool,
}

/// Removes the hop-by-hop headers and those the `Connection` header lists.
/// One pass over the names first: most messages carry none of them, or only
/// `Connection`.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    use http::header::{TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
    let present = headers.keys().fold(0u8, |mask, name| mask | hop_bit(name));
    if present & 1 != 0 {
        // Headers the Connection header names (without allocating unless one
        // of them is really there).
        let mut listed: Vec<HeaderName> = Vec::new();
        for token in
            headers.get_all(CONNECTION).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','))
        {
            let token = token.trim();
            if names_no_header(token) || !headers.contains_key(token) {
                continue;
            }
            if let Ok(name) = HeaderName::try_from(token) {
                if !(keep_upgrade && name == UPGRADE) {
                    listed.push(name);
                }
            }
        }
        for name in listed {
            headers.remove(name);
        }
    }
    let removable = [(2, KEEP_ALIVE), (4, PROXY_CONNECTION), (8, TE), (16, TRAILER), (32, TRANSFER_ENCODING)];
    for (bit, name) in removable {
        if present & bit != 0 {
            headers.remove(name);
        }
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        if present & 1 != 0 {
            headers.remove(CONNECTION);
        }
        if present & 64 != 0 {
            headers.remove(UPGRADE);
        }
    }
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::UPGRADE) && connection_has(headers, "upgrade")
}

/// The request head as it goes to the server, for each attempt.
struct Head<'a> {
    method: &'a http::Method,
    uri: &'a http::Uri,
    headers: &'a HeaderMap,
}

fn balance_key(be: &Backend, head: &Head<'_>, conn: &ConnInfo) -> Key {
    match be.balancer.algo() {
        Balance::Source => Key::Hash(balance::source_hash(conn.client.ip())),
        Balance::Uri { whole, len, depth } => {
            let s = head.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            Key::Hash(balance::uri_key(s, *whole, *len, *depth))
        }
        Balance::UrlParam(name) => match head.uri.query().and_then(|q| super::samples::url_param(q, name)) {
            Some(v) => Key::Hash(balance::sdbm(v.as_bytes())),
            None => Key::None,
        },
        Balance::Hdr(name) => match head.headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            Some(v) => Key::Hash(balance::sdbm(v.as_bytes())),
            None => Key::None,
        },
        _ => Key::None,
    }
}

/// Forwards `req` to a server of `be`; always returns a response for the
/// client. The request is made ready for the server in place (hop-by-hop
/// headers, X-Forwarded-For, origin form) and its body taken: borrowed, not
/// moved, so that the request is not copied from one future to the next.
pub async fn forward(
    be: &Arc<Backend>,
    req: &mut Request<ProxyBody>,
    conn: &ConnInfo,
    opts: ForwardOptions<'_>,
) -> (Response<ProxyBody>, ForwardReport) {
    let mut report =
        ForwardReport { termination: *b"--", connect_ms: -1, response_ms: -1, ..Default::default() };
    let client_upgrade = req.extensions_mut().remove::<ClientUpgrade>();
    let upgrade = is_upgrade(req.headers()) && client_upgrade.is_some();

    // Persistence first: the cookie names the server a client is stuck to.
    let mut persistent: Option<usize> = None;
    let mut client_cookie: Option<cookie::ClientCookie> = None;
    let now = if be.cfg.cookie.is_some() { cookie::now_secs() } else { 0 };
    if let Some(ck) = &be.cfg.cookie {
        if let Some(value) = cookie::take_request_cookie(ck, req.headers_mut(), now) {
            persistent = be.servers.iter().position(|s| {
                s.cfg.cookie.as_deref() == Some(value.server.as_str()) && s.state.accepts_persistent()
            });
            client_cookie = Some(value);
        }
    }

    strip_hop_by_hop(req.headers_mut(), upgrade);
    if !req.headers().contains_key(HOST) {
        if let Some(auth) = req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            req.headers_mut().insert(HOST, auth);
        }
    }
    if let Some(ff) = opts.forwardfor {
        add_forwarded_for(req.headers_mut(), ff, conn);
    }
    // Servers get the origin form: a request in that form already is kept as is.
    let uri = req.uri();
    if uri.scheme().is_some() || uri.authority().is_some() || uri.path_and_query().is_none() {
        let origin = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").parse().unwrap_or_default();
        *req.uri_mut() = origin;
    }
    let body = std::mem::replace(req.body_mut(), ProxyBody::empty());
    let head = Head { method: req.method(), uri: req.uri(), headers: req.headers() };

    let retry_on = &be.cfg.retry_on;
    let l7 = retry_on.needs_l7_buffer() && !opts.l7_retry_disabled && !upgrade;
    let mut body_slot = if body.is_end_stream() {
        // No body: the request can always be sent again.
        RequestBody::Replayable(Bytes::new())
    } else if l7 && body.size_hint().upper().is_some_and(|n| n <= MAX_RETRY_BODY) {
        // Boxed, as the other rare waits below: a future is copied whole at
        // every await that nests it, and the common path should not carry them.
        match Box::pin(body.collect()).await {
            Ok(collected) => RequestBody::Replayable(collected.to_bytes()),
            Err(_) => return (be.errors.response(400), report_with(report, *b"CR")),
        }
    } else {
        RequestBody::Once(Some(body))
    };

    let key = balance_key(be, &head, conn);
    let candidates = be.candidates();
    let mut last: Option<usize> = None;
    let mut attempt: u32 = 0;
    loop {
        let redispatch = attempt > 0 && be.cfg.options.redispatch;
        let idx = match (attempt, persistent) {
            (0, Some(i)) => Some(i),
            _ if attempt > 0 && !redispatch => last,
            _ => be.balancer.pick_excluding(&candidates, key, if redispatch { last } else { None }),
        };
        let idx = match idx {
            None if be.only_full() => Box::pin(wait_in_queue(be, &candidates, key)).await,
            found => found,
        };
        let Some(idx) = idx else {
            // HAProxy: no server available → 503, termination "SC".
            be.counters.errors_conn.fetch_add(1, Ordering::Relaxed);
            return (be.errors.response(503), report_with(report, *b"SC"));
        };
        if redispatch && last != Some(idx) {
            report.redispatched = true;
            be.counters.redispatches.fetch_add(1, Ordering::Relaxed);
        }
        let srv = &be.servers[idx];
        report.server = Some(idx);
        let session = srv.state.counters.open_session();
        let started = std::time::Instant::now();
        // Connect before touching the body, so a connection failure leaves a
        // streamed body unread and the request can still be retried.
        let target = Target { conn, headers: head.headers };
        let outcome = match acquire(srv, be, &target).await {
            Err(failure) => Err(failure),
            Ok((server, _, _)) if !body_slot.replayable() => {
                // The body went out with an earlier attempt: nothing to send.
                if poolable(be, srv) {
                    srv.pool.put(server);
                }
                return (be.errors.response(503), report_with(report, *b"SC"));
            }
            Ok((server, reused, connect_ms)) => {
                srv.state.counters.http_requests.fetch_add(1, Ordering::Relaxed);
                let idempotent =
                    matches!(*head.method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
                let attempt =
                    Attempt { srv, be, target: &target, reused, connect_ms, replayable: idempotent };
                send(attempt, server, &head, &mut body_slot).await
            }
        };
        match outcome {
            Ok((mut start, connect_ms)) => {
                report.connect_ms = connect_ms;
                report.response_ms = started.elapsed().as_millis() as i64;
                let status = start.parts.status.as_u16();
                if l7
                    && retry_on.statuses.contains(&status)
                    && attempt < be.cfg.retries
                    && body_slot.replayable()
                {
                    attempt += 1;
                    last = Some(idx);
                    report.retries = attempt;
                    srv.state.counters.retries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                srv.state.counters.count_response(status);
                be.counters.count_response(status);
                if !start.hop_by_hop_dropped {
                    strip_hop_by_hop(&mut start.parts.headers, status == 101);
                }
                // The server's own keep-alive decision (Connection: close,
                // HTTP/1.0, close-delimited body) is in `start.reusable`.
                let keep = !opts.close_server && status != 101 && poolable(be, srv);
                let (mut rparts, rbody, server_upgrade) =
                    respond_with(start, be, idx, keep, client_upgrade.is_some());
                // Our side of the connection speaks HTTP/1.1 (or h2) whatever the server spoke.
                rparts.version = Version::HTTP_11;
                if let Some(ck) =
                    be.cfg.cookie.as_ref().filter(|ck| !ck.postonly || *head.method == http::Method::POST)
                {
                    cookie::apply_to_response(
                        ck,
                        &mut rparts.headers,
                        srv.cfg.cookie.as_deref(),
                        client_cookie.as_ref(),
                        now,
                    );
                }
                let queue_be = Arc::clone(be);
                let body = rbody.on_end(Box::new(move |_: BodyEnd| {
                    drop(session);
                    if queue_be.queueable {
                        queue_be.slot_freed.notify_waiters();
                    }
                }));
                if let (Some(client), Some(server)) = (client_upgrade, server_upgrade) {
                    // Timeouts of the backend's side; the frontend's client
                    // timeouts are the same proxy's in practice (tunnel wins).
                    let opts = RelayOptions::for_proxies(&be.cfg, &be.cfg);
                    tunnel(client, server, opts);
                }
                return (Response::from_parts(rparts, body), report);
            }
            Err(failure) => {
                let retryable = match &failure {
                    SendFailure::Connect(_) => retry_on.conn_failure,
                    SendFailure::Empty => l7 && retry_on.empty_response,
                    SendFailure::Junk(_) => l7 && retry_on.junk_response,
                    SendFailure::Timeout => l7 && retry_on.response_timeout,
                    SendFailure::ClientAbort => false,
                };
                if let SendFailure::Junk(why) = &failure {
                    tracing::debug!(backend = %be.cfg.name, server = %srv.cfg.name, "invalid response: {why}");
                }
                let counter = match failure {
                    SendFailure::Connect(_) => &srv.state.counters.errors_conn,
                    _ => &srv.state.counters.errors_resp,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if let SendFailure::Connect(e) = &failure {
                    tracing::debug!(backend = %be.cfg.name, server = %srv.cfg.name, "connect failed: {e}");
                }
                if retryable && attempt < be.cfg.retries && body_slot.replayable() {
                    attempt += 1;
                    last = Some(idx);
                    report.retries = attempt;
                    srv.state.counters.retries.fetch_add(1, Ordering::Relaxed);
                    be.counters.retries.fetch_add(1, Ordering::Relaxed);
                    let next_redispatch = be.cfg.options.redispatch;
                    if !next_redispatch {
                        Box::pin(tokio::time::sleep(be.retry_turnaround())).await;
                    }
                    continue;
                }
                let (status, term) = match failure {
                    SendFailure::Connect(_) => (503, *b"SC"),
                    SendFailure::Empty => (502, *b"SH"),
                    SendFailure::Junk(_) => (502, *b"SH"),
                    SendFailure::Timeout => (504, *b"sH"),
                    // HAProxy: the client aborted during the data phase.
                    SendFailure::ClientAbort => (400, *b"CD"),
                };
                be.counters.count_response(status);
                return (be.errors.response(status), report_with(report, term));
            }
        }
    }
}

/// All usable servers are at `maxconn`: wait for a slot up to `timeout queue`
/// (HAProxy falls back to `timeout connect`), as HAProxy's queue does.
async fn wait_in_queue(be: &Backend, candidates: &[balance::Candidate<'_>], key: Key) -> Option<usize> {
    let limit = be.cfg.timeouts.queue.or(be.cfg.timeouts.connect).unwrap_or(Duration::from_secs(5));
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let freed = be.slot_freed.notified();
        if let Some(i) = be.balancer.pick(candidates, key) {
            return Some(i);
        }
        if tokio::time::timeout_at(deadline, freed).await.is_err() {
            return be.balancer.pick(candidates, key);
        }
    }
}

fn report_with(mut report: ForwardReport, termination: [u8; 2]) -> ForwardReport {
    report.termination = termination;
    report
}

fn add_forwarded_for(headers: &mut HeaderMap, ff: &ForwardFor, conn: &ConnInfo) {
    let ip = conn.client.ip();
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    if ff.except.is_some_and(|net| net.contains(ip)) {
        return;
    }
    let Ok(name) = HeaderName::try_from(ff.header.as_str()) else { return };
    if ff.if_none && headers.contains_key(&name) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&ip.to_string()) {
        // HAProxy adds a header line of its own, after any the client sent.
        headers.append(name, v);
    }
}

/// Who a server connection is made for: the PROXY header carries the client's
/// addresses, and `sni req.hdr(host)` the request's Host.
struct Target<'a> {
    conn: &'a ConnInfo,
    headers: &'a HeaderMap,
}

impl Target<'_> {
    fn host(&self) -> Option<&str> {
        self.headers.get(HOST).and_then(|h| h.to_str().ok())
    }
}

/// Connections carrying one client's PROXY header, or one Host's SNI, are
/// private to that request and never pooled.
fn poolable(be: &Backend, srv: &BackendServer) -> bool {
    be.cfg.http_reuse != crate::conf::haproxy::HttpReuse::Never
        && srv.cfg.send_proxy.is_none()
        && !srv
            .cfg
            .tls
            .as_ref()
            .is_some_and(|t| matches!(t.sni, Some(crate::conf::haproxy::ServerSni::RequestHost)))
}

/// The response for the client: its head, and a body streamed from the
/// server connection (pooled again after it when `keep`), or, after a 101 the
/// client asked for, the raw server connection for the tunnel.
fn respond_with(
    start: ResponseStart,
    be: &Arc<Backend>,
    idx: usize,
    keep: bool,
    client_upgrades: bool,
) -> (http::response::Parts, ProxyBody, Option<Upgraded>) {
    if start.parts.status == http::StatusCode::SWITCHING_PROTOCOLS && client_upgrades {
        let (parts, upgraded) = start.into_upgraded();
        return (parts, ProxyBody::empty(), Some(upgraded));
    }
    let pool_be = Arc::clone(be);
    let give_back = keep.then(|| {
        Box::new(move |conn: ServerConn| {
            if let Some(s) = pool_be.servers.get(idx) {
                s.pool.put(conn);
            }
        }) as super::client::PoolReturn
    });
    let (parts, body) = start.into_body(give_back, be.cfg.timeouts.server);
    (parts, ProxyBody::server(body), None)
}

/// A connection to the server: an idle pooled one, else a new one.
async fn acquire(
    srv: &BackendServer,
    be: &Backend,
    target: &Target<'_>,
) -> Result<(ServerConn, bool, i64), SendFailure> {
    if let Some(server) = srv.pool.take() {
        return Ok((server, true, 0));
    }
    let started = std::time::Instant::now();
    let server = connect(srv, be, target).await?;
    Ok((server, false, started.elapsed().as_millis() as i64))
}

/// One try at one server.
struct Attempt<'a> {
    srv: &'a BackendServer,
    be: &'a Backend,
    target: &'a Target<'a>,
    /// The connection came from the pool.
    reused: bool,
    connect_ms: i64,
    /// The request may be sent twice (idempotent method, body kept).
    replayable: bool,
}

/// Sends the request and reads the response head within `timeout server`. A
/// pooled connection that fails before the request left is replaced by a new
/// one transparently; if it failed after the request left, a replayable
/// request counts as a connection failure (retryable).
async fn send(
    attempt: Attempt<'_>,
    server: ServerConn,
    head: &Head<'_>,
    body: &mut RequestBody,
) -> Result<(ResponseStart, i64), SendFailure> {
    let server_timeout = attempt.be.cfg.timeouts.server;
    let replayable = attempt.replayable && body.replayable();
    let error = match server.send(head.method, head.uri, head.headers, body, server_timeout).await {
        Ok(start) => return Ok((start, attempt.connect_ms)),
        Err(e) => e,
    };
    match error {
        SendError::Write { unsent: true, .. } if attempt.reused => {}
        SendError::Write { .. } | SendError::Closed | SendError::Read(_) if attempt.reused && replayable => {
            return Err(SendFailure::Connect(format!("reused connection failed: {error}")))
        }
        other => return Err(classify(other)),
    }
    let started = std::time::Instant::now();
    let server = connect(attempt.srv, attempt.be, attempt.target).await?;
    let connect_ms = started.elapsed().as_millis() as i64;
    match server.send(head.method, head.uri, head.headers, body, server_timeout).await {
        Ok(start) => Ok((start, connect_ms)),
        Err(e) => Err(classify(e)),
    }
}

/// `fut` within `limit` (none: no limit). A combinator, not an `async fn`:
/// that would hold `fut` twice (argument and timer) and copy it once more.
fn with_timeout<F: std::future::Future>(
    limit: Option<Duration>,
    fut: F,
) -> impl std::future::Future<Output = Result<F::Output, ()>> {
    use futures_util::future::{Either, FutureExt};
    match limit {
        Some(d) => Either::Left(tokio::time::timeout(d, fut).map(|r| r.map_err(|_| ()))),
        None => Either::Right(fut.map(Ok)),
    }
}

fn classify(e: SendError) -> SendFailure {
    match e {
        SendError::Invalid(why) => SendFailure::Junk(why),
        SendError::ClientBody => SendFailure::ClientAbort,
        SendError::Timeout => SendFailure::Timeout,
        SendError::Write { .. } | SendError::Closed | SendError::Read(_) => SendFailure::Empty,
    }
}

async fn connect(srv: &BackendServer, be: &Backend, target: &Target<'_>) -> Result<ServerConn, SendFailure> {
    // Boxed: the TLS handshake's state is large, and only new connections need it.
    let connecting = Box::pin(async {
        let mut tcp = TcpStream::connect(srv.addr).await.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        if let Some(version) = srv.cfg.send_proxy {
            use tokio::io::AsyncWriteExt;
            let header = proxy_protocol::encode(version, target.conn.client, target.conn.local);
            tcp.write_all(&header).await.map_err(|e| format!("sending the PROXY header: {e}"))?;
        }
        match (&srv.tls, &srv.cfg.tls) {
            (Some(client_cfg), Some(tls)) => {
                let name = tls::server_name_for(tls, srv.addr, target.host());
                let stream = tokio_rustls::TlsConnector::from(Arc::clone(client_cfg))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                Ok::<_, String>(ServerConn::new(ServerIo::Tls(Box::new(stream))))
            }
            _ => {
                let tcp = LeanTcp::new(tcp).map_err(|e| e.to_string())?;
                Ok(ServerConn::new(ServerIo::Plain(tcp)))
            }
        }
    });
    match with_timeout(be.cfg.timeouts.connect, connecting).await {
        Ok(Ok(server)) => Ok(server),
        Ok(Err(e)) => Err(SendFailure::Connect(e)),
        Err(()) => Err(SendFailure::Connect("connect timeout".into())),
    }
}

/// After a 101 response, relays bytes both ways (WebSocket and other upgrades)
/// until either side closes or `timeout tunnel` passes without traffic.
fn tunnel(client: ClientUpgrade, server: Upgraded, opts: RelayOptions) {
    tokio::spawn(async move {
        let Some(client) = client.connection().await else { return };
        relay::relay_generic(client, server, opts).await;
    });
}
