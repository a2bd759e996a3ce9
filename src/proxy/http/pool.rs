//! Idle keep-alive connections to one server, reused across client connections
//! (`http-reuse safe`, HAProxy's default).

use std::sync::Mutex;

use super::client::ServerConn;

/// At most this many idle connections are kept per server.
const MAX_IDLE: usize = 256;

#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<Vec<ServerConn>>,
}

impl Pool {
    /// An idle connection that is still open and ready for a request.
    pub fn take(&self) -> Option<ServerConn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(conn) = idle.pop() {
            if conn.is_alive() {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection whose last response was fully read.
    pub fn put(&self, conn: ServerConn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }
}
