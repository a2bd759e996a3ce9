//! The browser console and the JSON API (`lanai run`): axum over HTTPS
//! (tokio-rustls + hyper-util), every change through `Appliance::apply`.
//!
//! Layout: `auth` (sessions, Basic, CSRF/Origin, login rate limit), `api`
//! (JSON), `pages` + one module per tab (askama templates in `web/templates`),
//! `assets` (CSS/JS embedded in the binary), `tls` (generated certificate).

pub mod admin;
pub mod api;
pub mod assets;
pub mod auth;
pub mod diff;
pub mod pages;
pub mod setup_api;
pub mod stat;
pub mod tabs;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::appliance::Appliance;

/// Largest configuration text or form accepted (1 MiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// Shared by every handler.
#[derive(Clone)]
pub struct Web {
    pub app: Arc<Appliance>,
    pub limiter: Arc<auth::LoginLimiter>,
}

/// The client's address, put in each request's extensions by the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// An error as the API returns it: `{"error": "..."}` with a status.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError(status, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// The whole application: login and static files are public, everything
/// else behind `auth::require_login`.
pub fn router(web: Web) -> Router {
    let protected = Router::new()
        .merge(pages::routes())
        .nest("/api", api::routes())
        .layer(middleware::from_fn_with_state(web.clone(), auth::require_login));
    Router::new()
        .merge(auth::public_routes())
        .merge(assets::routes())
        .merge(protected)
        // Outside the login check so that its refusals are JSON under /api too.
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(security_headers))
        .with_state(web)
}

/// Headers every response carries. No inline script anywhere (JS is in
/// static files), so the CSP can forbid it.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Under `/api`, every error is JSON: axum's own rejections (no route,
/// wrong method, bad path) are rewritten to `{"error": reason}`.
async fn json_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path == "/api" || path.starts_with("/api/");
    let res = next.run(req).await;
    if !api {
        return res;
    }
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (parts, body) = res.into_parts();
        let detail = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        let detail = String::from_utf8_lossy(&detail).trim().to_string();
        let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
        let message = if detail.is_empty() { reason } else { format!("{reason}: {detail}") };
        let mut out = ApiError(status, message).into_response();
        for (name, value) in parts.headers.iter() {
            if name == header::WWW_AUTHENTICATE || name == header::ALLOW {
                out.headers_mut().insert(name.clone(), value.clone());
            }
        }
        return out;
    }
    res
}

/// Binds `listen` and serves until `stop` turns true.
pub async fn serve(
    app: Arc<Appliance>,
    listen: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    serve_on(app, listener, tls, stop).await
}

/// Serves on an already bound listener (so the caller can report the
/// address only once it accepts connections).
pub async fn serve_on(
    app: Arc<Appliance>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let web = Web { app: app.clone(), limiter: Arc::new(auth::LoginLimiter::default()) };
    let router = router(web);
    let purge = tokio::spawn(purge_sessions(app));
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    // On stop, connections finish the request they are serving (an apply in
    // flight completes) and close, instead of being cut mid-change.
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("console accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        if *stop.borrow() {
            break;
        }
        let acceptor = acceptor.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        let mut stopping = stop.clone();
        tokio::spawn(async move {
            // A client that never finishes its handshake must not hold a task
            // forever, nor delay a stop.
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "console TLS handshake: {e}");
                        return;
                    }
                    Err(_) => return,
                },
                _ = stopping.changed() => return,
            };
            let service =
                hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    router.clone().oneshot(req)
                });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // A client that trickles its headers must not hold the connection forever.
            builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
            if let Err(e) = watcher.watch(builder.serve_connection(TokioIo::new(tls), service)).await {
                tracing::debug!(%peer, "console connection: {e}");
            }
        });
    }
    purge.abort();
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("console: connections still busy after 10 s; closing them");
    }
    Ok(())
}

/// Expired sessions are refused on lookup already; this only keeps the table small.
async fn purge_sessions(app: Arc<Appliance>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        if let Err(e) = app.store.purge_expired().await {
            tracing::warn!("purging expired sessions: {e}");
        }
    }
}
