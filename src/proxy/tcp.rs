//! `mode tcp`: content inspection (`tcp-request` rules, SNI from a buffered
//! ClientHello), backend choice, connection to a server with retries, then a
//! byte-exact relay.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;

use super::acl::{self, Sample, Samples};
use super::balance::{self, Key};
use super::clienthello;
use super::engine::Shared;
use super::http::samples::ConnInfo;
use super::proxy_protocol;
use super::tables::{Backend, Frontend, Tables};
use super::traffic_log::TcpSession;
use crate::conf::haproxy::{Balance, Fetch};

/// Bytes peeked at most while inspecting (one TLS ClientHello fits).
const PEEK_MAX: usize = 16 * 1024;

struct TcpSamples<'a> {
    conn: &'a ConnInfo,
    peeked: &'a [u8],
    tables: &'a Tables,
}

impl Samples for TcpSamples<'_> {
    fn fetch(&self, fetch: &Fetch) -> Sample<'_> {
        match fetch {
            Fetch::Src => Sample::Ip(self.conn.client.ip()),
            Fetch::SrcPort => Sample::Int(i64::from(self.conn.client.port())),
            Fetch::Dst => Sample::Ip(self.conn.local.ip()),
            Fetch::DstPort => Sample::Int(i64::from(self.conn.local.port())),
            Fetch::ReqLen => Sample::Int(self.peeked.len() as i64),
            Fetch::ReqSslHelloType => match clienthello::hello_type(self.peeked) {
                Some(t) => Sample::Int(i64::from(t)),
                None => Sample::Missing,
            },
            Fetch::ReqSslSni => match clienthello::sni(self.peeked) {
                Some(s) => Sample::Str(s.into()),
                None => Sample::Missing,
            },
            Fetch::SslFc => Sample::Bool(self.conn.tls),
            Fetch::NbSrv(b) => {
                Sample::Int(self.tables.backends.get(b).map_or(0, |b| b.usable_count()) as i64)
            }
            Fetch::Always(b) => Sample::Bool(*b),
            _ => Sample::Missing,
        }
    }
}

/// Whether a rule or condition needs buffered content to decide.
fn needs_content(fe: &Frontend) -> bool {
    fe.cfg.inspect_delay.is_some() && fe.cfg.tcp_request.iter().any(|r| r.content)
}

/// Serves one client connection in tcp mode.
pub async fn serve(client: TcpStream, conn: ConnInfo, fe: Arc<Frontend>, shared: Arc<Shared>) {
    let tables = shared.tables.load_full();
    let accepted = Instant::now();
    let mut peeked: Vec<u8> = Vec::new();

    // Connection rules decide on addresses alone.
    for rule in fe.cfg.tcp_request.iter().filter(|r| !r.content) {
        let s = TcpSamples { conn: &conn, peeked: &[], tables: &tables };
        if acl::eval(rule.cond.as_ref(), &s) {
            if !rule.accept {
                fe.counters.denied_req.fetch_add(1, Ordering::Relaxed);
                return;
            }
            break;
        }
    }

    // Content rules: wait for data until a rule matches or inspect-delay ends.
    if needs_content(&fe) {
        let deadline = accepted + fe.cfg.inspect_delay.unwrap_or_default();
        let mut buf = vec![0u8; PEEK_MAX];
        loop {
            let n = match tokio::time::timeout_at(deadline.into(), client.peek(&mut buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(_)) => return,
                Err(_) => break,
            };
            peeked = buf[..n].to_vec();
            let s = TcpSamples { conn: &conn, peeked: &peeked, tables: &tables };
            let complete = clienthello::is_complete(&peeked) || n == PEEK_MAX;
            let decided =
                fe.cfg.tcp_request.iter().filter(|r| r.content).find(|r| acl::eval(r.cond.as_ref(), &s));
            if let Some(rule) = decided {
                if !rule.accept {
                    fe.counters.denied_req.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                break;
            }
            if complete {
                break;
            }
            if n == 0 {
                return;
            }
            // More bytes may complete the hello: wait for them, not spin.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    let be = {
        let s = TcpSamples { conn: &conn, peeked: &peeked, tables: &tables };
        fe.backend_for(&tables, &s).cloned()
    };
    let accept_date = SystemTime::now() - accepted.elapsed();
    let base = TcpSession {
        conn: &conn,
        accept_date,
        accepted,
        backend: &fe.cfg.name,
        server: "<NOSRV>",
        connect_ms: -1,
        retries: 0,
        bytes_from_client: peeked.len() as u64,
        bytes_to_client: 0,
        termination: *b"SC",
    };
    let Some(be) = be else {
        shared.log_tcp(&fe, &base);
        return;
    };
    let _be_session = be.counters.open_session();
    let connect_start = Instant::now();
    let Some((server, idx, retries)) = connect_with_retries(&be, &conn).await else {
        shared.log_tcp(&fe, &TcpSession { retries: be.cfg.retries, backend: &be.cfg.name, ..base });
        return;
    };
    let connect_ms = connect_start.elapsed().as_millis() as i64;
    let srv = &be.servers[idx];
    let _srv_session = srv.state.counters.open_session();
    let stats = shared.relay(client, server, &fe, &be, srv).await;
    shared.log_tcp(
        &fe,
        &TcpSession {
            server: &srv.cfg.name,
            connect_ms,
            retries,
            bytes_from_client: stats.bytes_from_client,
            bytes_to_client: stats.bytes_from_server,
            termination: stats.end.termination_state(),
            backend: &be.cfg.name,
            ..base
        },
    );
}

async fn connect_with_retries(be: &Arc<Backend>, conn: &ConnInfo) -> Option<(TcpStream, usize, u32)> {
    let key = match be.balancer.algo() {
        Balance::Source => Key::Hash(balance::source_hash(conn.client.ip())),
        _ => Key::None,
    };
    let candidates = be.candidates();
    let mut last = None;
    for attempt in 0..=be.cfg.retries {
        let redispatch = attempt > 0 && be.cfg.options.redispatch;
        let idx = if attempt > 0 && !redispatch {
            last
        } else {
            be.balancer.pick_excluding(&candidates, key, if redispatch { last } else { None })
        }?;
        let srv = &be.servers[idx];
        let attempt_conn = async {
            let mut stream = TcpStream::connect(srv.addr).await?;
            if let Some(version) = srv.cfg.send_proxy {
                use tokio::io::AsyncWriteExt;
                stream.write_all(&proxy_protocol::encode(version, conn.client, conn.local)).await?;
            }
            Ok::<_, std::io::Error>(stream)
        };
        let result = match be.cfg.timeouts.connect {
            Some(t) => tokio::time::timeout(t, attempt_conn).await.ok(),
            None => Some(attempt_conn.await),
        };
        match result {
            Some(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, idx, attempt));
            }
            _ => {
                srv.state.counters.errors_conn.fetch_add(1, Ordering::Relaxed);
                if attempt < be.cfg.retries {
                    srv.state.counters.retries.fetch_add(1, Ordering::Relaxed);
                    if !be.cfg.options.redispatch {
                        tokio::time::sleep(be.retry_turnaround()).await;
                    }
                }
                last = Some(idx);
            }
        }
    }
    None
}
