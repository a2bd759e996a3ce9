//! Idle keep-alive connections to one server, reused across client connections
//! (`http-reuse safe`, HAProxy's default).

use std::sync::Mutex;

use hyper::client::conn::http1::SendRequest;

use super::body::ProxyBody;

/// At most this many idle connections are kept per server.
const MAX_IDLE: usize = 256;

#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<Vec<SendRequest<ProxyBody>>>,
}

impl Pool {
    /// An idle connection that is still open and ready for a request.
    pub fn take(&self) -> Option<SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(conn) = idle.pop() {
            if conn.is_ready() && !conn.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection whose last response was fully read.
    pub fn put(&self, conn: SendRequest<ProxyBody>) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }
}
