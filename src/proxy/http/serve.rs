//! Serving one client connection in HTTP mode with hyper: HTTP/1.1 keep-alive,
//! or HTTP/2 when TLS negotiated `h2` by ALPN. On graceful stop, idle
//! keep-alive connections close and in-flight requests finish.

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{handle, RequestEnv};

/// Largest request head accepted; beyond it hyper answers 431 as HAProxy does
/// when a request does not fit its buffer.
const MAX_HEAD: usize = 64 * 1024;

pub async fn serve<IO>(io: IO, env: Arc<RequestEnv>, h2: bool)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut stopping = env.engine.stopping.clone();
    let timeouts = env.frontend.cfg.timeouts.clone();
    let svc_env = Arc::clone(&env);
    let svc = service_fn(move |req| handle(req, Arc::clone(&svc_env)));
    let io = TokioIo::new(io);
    if h2 {
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let conn = builder.serve_connection_with_upgrades(io, svc);
        tokio::pin!(conn);
        tokio::select! {
            res = conn.as_mut() => if let Err(e) = res { tracing::debug!("h2 connection: {e}") },
            _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
        return;
    }
    let mut builder = hyper::server::conn::http1::Builder::new();
    // One write per response instead of writev: small heads and bodies are
    // cheaper copied into one buffer (measured in bench/RESULTS.md).
    builder.timer(TokioTimer::new()).keep_alive(true).max_buf_size(MAX_HEAD).writev(false);
    // `timeout http-request` bounds the wait for a whole request head; HAProxy
    // falls back to `timeout client`.
    if let Some(t) = timeouts.http_request.or(timeouts.client) {
        builder.header_read_timeout(t);
    }
    let conn = builder.serve_connection(io, svc).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => if let Err(e) = res { tracing::debug!("http/1.1 connection: {e}") },
        _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
