//! Serving one client connection in HTTP mode: HTTP/1.1 by the proxy's own
//! server side, HTTP/2 (TLS with `h2` negotiated by ALPN) by hyper. On
//! graceful stop, idle keep-alive connections close and in-flight requests finish.

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::body::ProxyBody;
use super::server::{self, ClientIo};
use super::{handle, RequestEnv};

pub async fn serve(io: ClientIo, env: Arc<RequestEnv>, h2: bool) {
    match io {
        ClientIo::Tls(tls) if h2 => serve_h2(*tls, env).await,
        io => server::serve(io, env).await,
    }
}

async fn serve_h2(io: tokio_rustls::server::TlsStream<TcpStream>, env: Arc<RequestEnv>) {
    let mut stopping = env.engine.stopping.clone();
    let svc_env = Arc::clone(&env);
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let env = Arc::clone(&svc_env);
        async move {
            let mut req = req.map(ProxyBody::stream);
            Ok::<_, std::convert::Infallible>(handle(&mut req, &env).await)
        }
    });
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => if let Err(e) = res { tracing::debug!("h2 connection: {e}") },
        _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
