//! Traffic log lines (HAProxy's httplog, tcplog and "Connect from" formats)
//! written through each frontend's `log` targets.

use std::time::Instant;

use super::engine::Shared;
use super::http::samples::ConnInfo;
use super::http::RequestLog;
use super::log::{
    format_connect, format_httplog, format_httplog_clf, format_tcplog, HttpLogRecord, TcpLogRecord,
};
use super::state::Counters;
use super::tables::Frontend;
use crate::conf::haproxy::{Level, Mode};

/// What a tcp-mode session reports to its log line.
#[derive(Clone)]
pub struct TcpSession<'a> {
    pub conn: &'a ConnInfo,
    pub accept_date: std::time::SystemTime,
    pub accepted: Instant,
    pub backend: &'a str,
    pub server: &'a str,
    pub connect_ms: i64,
    pub retries: u32,
    pub bytes_from_client: u64,
    pub bytes_to_client: u64,
    pub termination: [u8; 2],
}

impl Shared {
    /// Writes the log line of an HTTP request (`option httplog`, HAProxy's format).
    pub fn log_http(&self, log: &RequestLog, bytes: u64) {
        let fe = &log.fe;
        let opts = &fe.cfg.options;
        if fe.logger.is_empty() || !opts.httplog {
            return;
        }
        let conn_count = |c: &Counters| c.current() as u32;
        let (backend, server) = (log.backend_name(), log.server_name());
        let (beconn, srv_conn) = self
            .tables
            .load()
            .backends
            .get(backend)
            .map(|be| {
                let srv = be.servers.iter().find(|s| s.cfg.name == server);
                (conn_count(&be.counters), srv.map_or(0, |s| conn_count(&s.state.counters)))
            })
            .unwrap_or((0, 0));
        let r = &log.report;
        let tr_server = if r.response_ms >= 0 { (r.response_ms - r.connect_ms.max(0)).max(0) } else { -1 };
        let t = r.termination;
        let record = HttpLogRecord {
            client: log.conn.client,
            // When the request started (the clock now, less the time since).
            accept_date: std::time::SystemTime::now() - log.started.elapsed(),
            frontend: fe.cfg.name.clone(),
            frontend_tls: log.conn.tls,
            backend: backend.to_string(),
            server: server.to_string(),
            tr: 0,
            tw: if r.connect_ms >= 0 || server != "<NOSRV>" { 0 } else { -1 },
            tc: r.connect_ms,
            tr_server,
            ta: log.started.elapsed().as_millis() as i64,
            status: log.status,
            bytes_read: bytes + log.head_bytes,
            captured_request_cookie: None,
            captured_response_cookie: None,
            termination_state: [t[0], t[1], b'-', b'-'],
            actconn: self.active_connections() as u32,
            feconn: conn_count(&fe.counters),
            beconn,
            srv_conn,
            retries: r.retries,
            redispatched: r.redispatched,
            srv_queue: 0,
            backend_queue: 0,
            request_line: log.request_line.clone(),
        };
        let line = if opts.httplog_clf { format_httplog_clf(&record) } else { format_httplog(&record) };
        fe.logger.log(Level::Info, None, &line);
    }

    /// Writes the log line of a tcp-mode session (`option tcplog`).
    pub fn log_tcp(&self, fe: &Frontend, session: &TcpSession<'_>) {
        let opts = &fe.cfg.options;
        if fe.logger.is_empty() || !opts.tcplog || (opts.dontlognull && session.bytes_from_client == 0) {
            return;
        }
        let record = TcpLogRecord {
            client: session.conn.client,
            accept_date: session.accept_date,
            frontend: fe.cfg.name.clone(),
            frontend_tls: session.conn.tls,
            backend: session.backend.to_string(),
            server: session.server.to_string(),
            tw: if session.connect_ms >= 0 { 0 } else { -1 },
            tc: session.connect_ms,
            tt: session.accepted.elapsed().as_millis() as i64,
            bytes_read: session.bytes_to_client,
            termination_state: session.termination,
            actconn: self.active_connections() as u32,
            feconn: fe.counters.current() as u32,
            beconn: 0,
            srv_conn: 0,
            retries: session.retries,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
        };
        fe.logger.log(Level::Info, None, &format_tcplog(&record));
    }

    /// HAProxy's "Connect from" line, for proxies that log without httplog/tcplog.
    pub(super) fn log_connect(&self, fe: &Frontend, conn: &ConnInfo) {
        if !self.logs_connect(fe) {
            return;
        }
        let line = format_connect(conn.client, conn.local, &fe.cfg.name, fe.cfg.mode == Mode::Http);
        fe.logger.log(Level::Info, None, &line);
    }

    /// Whether `log_connect` writes a line for this frontend.
    pub(super) fn logs_connect(&self, fe: &Frontend) -> bool {
        let opts = &fe.cfg.options;
        !(fe.logger.is_empty() || opts.httplog || opts.tcplog || opts.dontlognull)
    }
}
