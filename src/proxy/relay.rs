//! Bidirectional byte relay for `mode tcp` and for tunnels (HTTP `CONNECT`,
//! upgraded connections).
//!
//! * [`relay_tcp`] moves bytes between two plain TCP sockets with `splice(2)`
//!   through one pipe per direction, so payload never crosses into user space
//!   (HAProxy's `option splice-*`). Readiness comes from tokio
//!   (`readable()`/`writable()` + `try_io`), so the task never blocks a thread.
//! * [`relay_generic`] does the same with 32 KiB buffers for anything that is
//!   `AsyncRead + AsyncWrite` (TLS streams).
//!
//! Both keep HAProxy's semantics:
//! * half-close: EOF read from one side becomes `shutdown(SHUT_WR)` on the
//!   other, and the opposite direction keeps running until it ends too;
//! * idle timeout: the relay ends when no byte moved in either direction for
//!   the timeout. `timeout tunnel`, when set, supersedes `timeout client` and
//!   `timeout server` (HAProxy: once the stream is a tunnel). Without it the
//!   smaller of the two applies, since in a relay every byte read on one side
//!   is activity on the other side too;
//! * half-closed connections: `timeout client-fin`/`server-fin`, when set,
//!   replace the other timeouts once one direction has ended;
//! * an error on either side aborts both directions (HAProxy closes both);
//! * `option nolinger`: both sockets are closed with SO_LINGER 0 (RST).
//!
//! Byte counters are `Arc<AtomicU64>`s from the caller, updated as data moves,
//! so stats pages see long-lived tunnels grow.
//!
//! Client bytes the engine already pulled into user space (tcp-request content
//! inspection) go in [`RelayOptions::client_preamble`]; peeking instead
//! (`TcpStream::peek`) avoids the copy altogether.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::conf::haproxy::model::Proxy;

/// How to run one relay.
#[derive(Debug, Clone, Default)]
pub struct RelayOptions {
    pub client_timeout: Option<Duration>,
    pub server_timeout: Option<Duration>,
    /// `timeout tunnel`: when set, the only idle timeout while both
    /// directions are open.
    pub tunnel_timeout: Option<Duration>,
    /// `timeout client-fin` / `timeout server-fin`: once one direction has
    /// ended (half-closed connection), the smaller of those set replaces the
    /// other timeouts, `timeout tunnel` included (HAProxy: avoids piling up
    /// FIN_WAIT connections from clients that vanish).
    pub client_fin_timeout: Option<Duration>,
    pub server_fin_timeout: Option<Duration>,
    /// `option nolinger`: reset instead of a graceful close.
    pub nolinger: bool,
    /// Incremented by every byte read from the client.
    pub bytes_from_client: Arc<AtomicU64>,
    /// Incremented by every byte read from the server.
    pub bytes_from_server: Arc<AtomicU64>,
    /// Client bytes the engine already read (e.g. buffered while evaluating
    /// `tcp-request content` rules): sent to the server before anything else
    /// and counted in `bytes_from_client`.
    pub client_preamble: bytes::Bytes,
}

impl RelayOptions {
    /// The timeouts HAProxy applies to a session from `frontend` to
    /// `backend` (the same proxy for a `listen`): `client`, `client-fin` from
    /// the frontend; `server`, `server-fin`, `tunnel` from the backend;
    /// `option nolinger` from either. Counters start at zero.
    pub fn for_proxies(frontend: &Proxy, backend: &Proxy) -> Self {
        RelayOptions {
            client_timeout: frontend.timeouts.client,
            server_timeout: backend.timeouts.server,
            tunnel_timeout: backend.timeouts.tunnel,
            client_fin_timeout: frontend.timeouts.client_fin,
            server_fin_timeout: backend.timeouts.server_fin,
            nolinger: frontend.options.nolinger || backend.options.nolinger,
            ..RelayOptions::default()
        }
    }

    /// The idle limit in force and what to report when it expires.
    fn idle_limit(&self, half_closed: bool) -> Option<(Duration, RelayEnd)> {
        if half_closed {
            match (self.client_fin_timeout, self.server_fin_timeout) {
                (Some(c), Some(s)) if s < c => return Some((s, RelayEnd::ServerTimeout)),
                (Some(c), _) => return Some((c, RelayEnd::ClientTimeout)),
                (None, Some(s)) => return Some((s, RelayEnd::ServerTimeout)),
                (None, None) => {}
            }
        }
        if let Some(t) = self.tunnel_timeout {
            return Some((t, RelayEnd::TunnelTimeout));
        }
        match (self.client_timeout, self.server_timeout) {
            (Some(c), Some(s)) if s < c => Some((s, RelayEnd::ServerTimeout)),
            (Some(c), _) => Some((c, RelayEnd::ClientTimeout)),
            (None, Some(s)) => Some((s, RelayEnd::ServerTimeout)),
            (None, None) => None,
        }
    }
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// Both directions reached EOF and were shut down.
    Closed,
    ClientTimeout,
    ServerTimeout,
    TunnelTimeout,
    /// Reading from or writing to the client failed (reset, broken pipe…).
    ClientError(io::ErrorKind),
    ServerError(io::ErrorKind),
}

impl RelayEnd {
    /// The first two characters of HAProxy's termination state for a stream
    /// that ended this way during the data phase (`D`): `--` on a normal close,
    /// `cD`/`sD` on client/server timeouts, `CD`/`SD` on aborts. A tunnel
    /// timeout is reported on the client side, as HAProxy does.
    pub fn termination_state(&self) -> [u8; 2] {
        match self {
            RelayEnd::Closed => *b"--",
            RelayEnd::ClientTimeout | RelayEnd::TunnelTimeout => *b"cD",
            RelayEnd::ServerTimeout => *b"sD",
            RelayEnd::ClientError(_) => *b"CD",
            RelayEnd::ServerError(_) => *b"SD",
        }
    }
}

/// Totals of a finished relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    pub bytes_from_client: u64,
    pub bytes_from_server: u64,
    pub end: RelayEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// An I/O error and the side it happened on.
type SideError = (Side, io::Error);

/// Time of the last byte moved, as milliseconds since the relay started:
/// shared by both directions and the idle watchdog.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    /// One direction has ended: the `*-fin` timeouts apply.
    half_closed: AtomicBool,
    /// Wakes the watchdog when `half_closed` changes the limit.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            half_closed: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn set_half_closed(&self) {
        if !self.half_closed.swap(true, Ordering::Relaxed) {
            self.changed.notify_one();
        }
    }

    /// Resolves, with the matching end, when nothing moved for the limit in
    /// force; never when no timeout applies.
    async fn expired(&self, opts: &RelayOptions) -> RelayEnd {
        loop {
            let half_closed = self.half_closed.load(Ordering::Relaxed);
            let Some((limit, end)) = opts.idle_limit(half_closed) else {
                if half_closed {
                    return std::future::pending().await;
                }
                self.changed.notified().await;
                continue;
            };
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return end;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => {}
                _ = self.changed.notified(), if !half_closed => {}
            }
        }
    }
}

/// Runs both directions and the idle watchdog; returns how it ended.
async fn run<F>(both: F, activity: &Activity, opts: &RelayOptions) -> RelayEnd
where
    F: std::future::Future<Output = Result<((), ()), SideError>>,
{
    let watchdog = activity.expired(opts);
    tokio::select! {
        res = both => match res {
            Ok(_) => RelayEnd::Closed,
            Err((side, e)) => {
                tracing::debug!(?side, error = %e, "relay aborted");
                match side {
                    Side::Client => RelayEnd::ClientError(e.kind()),
                    Side::Server => RelayEnd::ServerError(e.kind()),
                }
            }
        },
        end = watchdog => end,
    }
}

fn stats(opts: &RelayOptions, end: RelayEnd) -> RelayStats {
    RelayStats {
        bytes_from_client: opts.bytes_from_client.load(Ordering::Relaxed),
        bytes_from_server: opts.bytes_from_server.load(Ordering::Relaxed),
        end,
    }
}

/// Sets SO_LINGER 0 so that closing the socket sends a reset (`option nolinger`).
pub fn set_nolinger(stream: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO))
}

/// `shutdown(SHUT_WR)`; a peer that is already gone is not an error here, the
/// other direction will see it.
fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    match socket2::SockRef::from(stream).shutdown(Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

// ------------------------------------------------------------------ splice

/// Bytes moved per splice call: the default pipe capacity on Linux.
const SPLICE_CHUNK: usize = 64 * 1024;

/// Relays between two TCP sockets with splice(2) until both directions end,
/// a side fails, or the idle timeout expires. Falls back to [`relay_generic`]
/// when pipes cannot be created (e.g. out of file descriptors).
pub async fn relay_tcp(client: TcpStream, server: TcpStream, opts: RelayOptions) -> RelayStats {
    let pipes = new_pipe().and_then(|a| new_pipe().map(|b| (a, b)));
    let ((c2s_r, c2s_w), (s2c_r, s2c_w)) = match pipes {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot create splice pipes, relaying through buffers");
            return relay_generic(client, server, opts).await;
        }
    };
    if opts.nolinger {
        for s in [&client, &server] {
            if let Err(e) = set_nolinger(s) {
                tracing::debug!(error = %e, "SO_LINGER");
            }
        }
    }
    let activity = Activity::new();
    let c2s = async {
        write_preamble(&server, &opts.client_preamble, &opts.bytes_from_client, &activity).await?;
        splice_direction(
            (&client, Side::Client),
            (&server, Side::Server),
            (&c2s_r, &c2s_w),
            &opts.bytes_from_client,
            &activity,
        )
        .await
    };
    let s2c = splice_direction(
        (&server, Side::Server),
        (&client, Side::Client),
        (&s2c_r, &s2c_w),
        &opts.bytes_from_server,
        &activity,
    );
    let end = run(async { tokio::try_join!(c2s, s2c) }, &activity, &opts).await;
    stats(&opts, end)
}

fn new_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn splice(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    use nix::fcntl::SpliceFFlags;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    nix::fcntl::splice(from, None, to, None, len, flags).map_err(io::Error::from)
}

/// One direction: socket -> pipe -> socket, until EOF on `src`, then
/// shutdown(SHUT_WR) on `dst`.
/// Sends `preamble` on `server` before the relay proper starts.
async fn write_preamble(
    server: &TcpStream,
    preamble: &[u8],
    counter: &AtomicU64,
    activity: &Activity,
) -> Result<(), SideError> {
    let mut rest = preamble;
    while !rest.is_empty() {
        server.writable().await.map_err(|e| (Side::Server, e))?;
        match server.try_write(rest) {
            Ok(n) => {
                rest = &rest[n..];
                counter.fetch_add(n as u64, Ordering::Relaxed);
                activity.touch();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err((Side::Server, e)),
        }
    }
    Ok(())
}

async fn splice_direction(
    (src, src_side): (&TcpStream, Side),
    (dst, dst_side): (&TcpStream, Side),
    (pipe_r, pipe_w): (&OwnedFd, &OwnedFd),
    counter: &AtomicU64,
    activity: &Activity,
) -> Result<(), SideError> {
    loop {
        // The pipe is empty here, so EAGAIN can only mean "socket not readable".
        src.readable().await.map_err(|e| (src_side, e))?;
        super::scheduler::account_cpu_time(Instant::now());
        let n = match src.try_io(Interest::READABLE, || splice(src, pipe_w, SPLICE_CHUNK)) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err((src_side, e)),
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
        let mut in_pipe = n;
        while in_pipe > 0 {
            dst.writable().await.map_err(|e| (dst_side, e))?;
            match dst.try_io(Interest::WRITABLE, || splice(pipe_r, dst, in_pipe)) {
                Ok(m) => {
                    in_pipe -= m;
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err((dst_side, e)),
            }
        }
    }
    shutdown_write(dst).map_err(|e| (dst_side, e))?;
    // The FIN is activity too: the fin timeout counts from it.
    activity.touch();
    activity.set_half_closed();
    Ok(())
}

// ------------------------------------------------------------------ generic

/// Buffer per direction for [`relay_generic`].
const COPY_BUF: usize = 32 * 1024;

/// Relays between any two byte streams (TLS on either side) with one buffer per
/// direction. Same half-close, timeout and counter semantics as [`relay_tcp`];
/// `nolinger` cannot reach the socket under a TLS stream, so callers set it
/// with [`set_nolinger`] before wrapping.
pub async fn relay_generic<A, B>(client: A, server: B, opts: RelayOptions) -> RelayStats
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    let activity = Activity::new();
    let c2s = async {
        if !opts.client_preamble.is_empty() {
            let p = &opts.client_preamble;
            sw.write_all(p).await.map_err(|e| (Side::Server, e))?;
            sw.flush().await.map_err(|e| (Side::Server, e))?;
            opts.bytes_from_client.fetch_add(p.len() as u64, Ordering::Relaxed);
            activity.touch();
        }
        copy_direction((&mut cr, Side::Client), (&mut sw, Side::Server), &opts.bytes_from_client, &activity)
            .await
    };
    let s2c =
        copy_direction((&mut sr, Side::Server), (&mut cw, Side::Client), &opts.bytes_from_server, &activity);
    let end = run(async { tokio::try_join!(c2s, s2c) }, &activity, &opts).await;
    stats(&opts, end)
}

async fn copy_direction<R, W>(
    (src, src_side): (&mut R, Side),
    (dst, dst_side): (&mut W, Side),
    counter: &AtomicU64,
    activity: &Activity,
) -> Result<(), SideError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = src.read(&mut buf).await.map_err(|e| (src_side, e))?;
        if n == 0 {
            break;
        }
        super::scheduler::account_cpu_time(Instant::now());
        counter.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
        dst.write_all(&buf[..n]).await.map_err(|e| (dst_side, e))?;
        // TLS writers may hold records back until flushed.
        dst.flush().await.map_err(|e| (dst_side, e))?;
        activity.touch();
    }
    match dst.shutdown().await {
        Err(e) if e.kind() != io::ErrorKind::NotConnected => return Err((dst_side, e)),
        _ => {}
    }
    // The FIN is activity too: the fin timeout counts from it.
    activity.touch();
    activity.set_half_closed();
    Ok(())
}

#[cfg(test)]
mod tests;
