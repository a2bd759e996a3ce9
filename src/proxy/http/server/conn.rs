//! The client connection as both the serving loop and a request body being
//! read see it: the socket (plain or TLS) and the bytes read from it not yet used.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::proxy::http::wire::lean_tcp::Stream;

/// Room asked for before each read from the client.
const READ_CHUNK: usize = 8 * 1024;

/// The byte stream from a client: plain TCP or TLS.
pub type ClientIo = Stream<tokio_rustls::server::TlsStream<TcpStream>>;

pub struct Conn {
    /// None once handed over to an upgrade tunnel.
    pub io: Option<ClientIo>,
    pub buf: BytesMut,
    /// A request body is being read and has not reached its end: the
    /// connection cannot carry another request (its bytes would be read as one).
    pub body_open: bool,
}

/// Shared by the serving loop and the request body of the current exchange,
/// which never run at the same time (both are polled by the connection's
/// task), so the lock is never contended.
#[derive(Clone)]
pub struct SharedConn(Arc<Mutex<Conn>>);

impl SharedConn {
    pub fn new(io: ClientIo) -> Self {
        SharedConn(Arc::new(Mutex::new(Conn { io: Some(io), buf: BytesMut::new(), body_open: false })))
    }

    pub fn lock(&self) -> MutexGuard<'_, Conn> {
        // A panic elsewhere cannot leave `Conn` half-updated in a way that
        // matters more than closing the connection would.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection handed over")
}

impl Conn {
    /// Reads what the client sends into the buffer: Ready(0) at EOF.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(io) = self.io.as_mut() else { return Poll::Ready(Err(gone())) };
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let mut read = ReadBuf::uninit(self.buf.spare_capacity_mut());
        ready!(Pin::new(io).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
        unsafe { self.buf.set_len(self.buf.len() + n) };
        Poll::Ready(Ok(n))
    }

    /// Writes `out[*written..]`, advancing `written`.
    pub fn poll_write_all(
        &mut self,
        cx: &mut Context<'_>,
        out: &[u8],
        written: &mut usize,
    ) -> Poll<io::Result<()>> {
        let Some(io) = self.io.as_mut() else { return Poll::Ready(Err(gone())) };
        while *written < out.len() {
            match ready!(Pin::new(&mut *io).poll_write(cx, &out[*written..]))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => *written += n,
            }
        }
        Poll::Ready(Ok(()))
    }

    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_flush(cx),
            None => Poll::Ready(Err(gone())),
        }
    }

    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}
