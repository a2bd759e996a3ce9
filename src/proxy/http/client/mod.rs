//! HTTP/1.1 to servers, driven from the client connection's own task.
//!
//! A request is written and its response read on the server connection
//! directly, with no connection task and no channel in between (hyper's client
//! runs one task per connection and hands every request, response and body
//! chunk across): on a keep-alive proxy those hand-overs were a large share of
//! the per-request CPU. The response body streams from the server socket as
//! the client side asks for it; when it has been read to its end the
//! connection goes back to the pool.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, CONTENT_LENGTH};
use http::{Method, StatusCode, Uri};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::body::ProxyBody;
use super::deadline::LazyDeadline;
use super::wire::lean_tcp::Stream;

mod body;
mod head;
#[cfg(test)]
mod tests;

use super::wire::Framing;
pub use body::{ServerBody, Upgraded};
use head::{encode_head, has_final_head, parse_head, ParsedHead};

/// Largest response head accepted from a server (beyond it: invalid response).
const MAX_HEAD: usize = 64 * 1024;
/// Room asked for before each read from the server.
const READ_CHUNK: usize = 16 * 1024;

/// The byte stream to a server: plain TCP or TLS.
pub type ServerIo = Stream<tokio_rustls::client::TlsStream<TcpStream>>;

/// One connection to a server, with what has been read from it and not used yet.
pub struct ServerConn {
    io: ServerIo,
    buf: BytesMut,
    /// Where request heads are encoded, kept from one request to the next.
    out: Vec<u8>,
    /// `timeout server` for each exchange, kept armed across requests.
    deadline: LazyDeadline,
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// Writing the request failed (`unsent`: not one byte of it was written).
    Write { error: io::Error, unsent: bool },
    /// The server closed the connection before a whole response head.
    Closed,
    /// Reading failed before a whole response head.
    Read(io::Error),
    /// The response is not valid HTTP/1.x.
    Invalid(String),
    /// Reading the client's request body failed.
    ClientBody,
    /// No response head within `timeout server`.
    Timeout,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Write { error, .. } => write!(f, "writing the request: {error}"),
            SendError::Closed => f.write_str("closed before a response"),
            SendError::Read(error) => write!(f, "reading the response: {error}"),
            SendError::Invalid(why) => f.write_str(why),
            SendError::ClientBody => f.write_str("reading the client's request body"),
            SendError::Timeout => f.write_str("no response within timeout server"),
        }
    }
}

/// The request body across attempts: kept whole when small (it can be sent
/// again), else streamed from the client once.
pub enum RequestBody {
    Replayable(Bytes),
    Once(Option<ProxyBody>),
}

impl RequestBody {
    /// Whether a (further) attempt can send the body.
    pub fn replayable(&self) -> bool {
        match self {
            RequestBody::Replayable(_) => true,
            RequestBody::Once(b) => b.is_some(),
        }
    }
}

/// A response head read from a server, and the connection its body comes from.
pub struct ResponseStart {
    pub parts: http::response::Parts,
    /// The connection may carry another request once the body is read.
    pub reusable: bool,
    /// The hop-by-hop headers were left out of `parts` already.
    pub hop_by_hop_dropped: bool,
    framing: Framing,
    conn: ServerConn,
}

impl std::fmt::Debug for ServerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.io {
            ServerIo::Plain(_) => "plain",
            ServerIo::Tls(_) => "tls",
        };
        write!(f, "ServerConn({kind}, {} bytes buffered)", self.buf.len())
    }
}

impl ServerConn {
    pub fn new(io: ServerIo) -> Self {
        ServerConn { io, buf: BytesMut::new(), out: Vec::new(), deadline: LazyDeadline::default() }
    }

    /// Whether an idle connection is still usable: the server has not closed
    /// it and sent nothing unasked. Never blocks, and costs no system call
    /// unless the reactor saw the socket become readable while it was idle.
    pub fn is_alive(&self) -> bool {
        use std::os::fd::AsRawFd;
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let (pending, fd, tls) = match &self.io {
            ServerIo::Plain(s) => (s.poll_read_ready(&mut cx).is_pending(), s.as_std().as_raw_fd(), false),
            ServerIo::Tls(s) => {
                let tcp = s.get_ref().0;
                (tcp.poll_read_ready(&mut cx).is_pending(), tcp.as_raw_fd(), true)
            }
        };
        if pending {
            return true;
        }
        // Readable: data, EOF, or readiness left over from the last response.
        let mut byte = [0u8; 1];
        let flags = nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT;
        match nix::sys::socket::recv(fd, &mut byte, flags) {
            Err(nix::errno::Errno::EAGAIN) => true,
            // A TLS server may send records of its own (session tickets); a
            // close_notify among them shows up as the end of the next response.
            Ok(n) => n > 0 && tls,
            Err(_) => false,
        }
    }

    /// Sends one request and reads the response head (interim 1xx responses
    /// other than 101 are skipped), all within `limit` (`timeout server`;
    /// none: no limit). The body, if any, streams through
    /// [`ResponseStart::into_body`].
    /// A streamed body is taken from `body` only once the request head has
    /// been written, so that a connection that fails at once leaves it for
    /// another attempt.
    pub async fn send(
        mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &mut RequestBody,
        limit: Option<std::time::Duration>,
    ) -> Result<ResponseStart, SendError> {
        match limit {
            Some(limit) => self.deadline.arm(tokio::time::Instant::now(), limit),
            None => self.deadline.disarm(),
        }
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let chunked = match body {
            RequestBody::Replayable(b) => {
                encode_head(&mut out, method, uri, headers, Some(b.len()));
                out.extend_from_slice(b);
                false
            }
            RequestBody::Once(None) => return Err(SendError::ClientBody),
            RequestBody::Once(Some(b)) => {
                let length = b.size_hint().exact().and_then(|n| usize::try_from(n).ok());
                encode_head(&mut out, method, uri, headers, length);
                length.is_none() && !headers.contains_key(CONTENT_LENGTH)
            }
        };
        let mut written = 0;
        std::future::poll_fn(|cx| {
            while written < out.len() {
                match Pin::new(&mut self.io).poll_write(cx, &out[written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => written += n,
                    Poll::Ready(Ok(_)) => {
                        let error = io::Error::from(io::ErrorKind::WriteZero);
                        return Poll::Ready(Err(SendError::Write { error, unsent: written == 0 }));
                    }
                    // A request head fits the socket buffer: a failure here
                    // means none of it left.
                    Poll::Ready(Err(error)) => {
                        return Poll::Ready(Err(SendError::Write { error, unsent: true }))
                    }
                    Poll::Pending => return self.deadline.poll_expired(cx).map(|()| Err(SendError::Timeout)),
                }
            }
            Poll::Ready(Ok(()))
        })
        .await?;
        // A replayed body may have grown it: keep only a head's worth.
        if out.capacity() <= 4096 {
            self.out = out;
        }
        let mut complete = true;
        if let RequestBody::Once(stream) = body {
            if let Some(stream) = stream.take() {
                // Boxed: most requests have no body to stream, and the
                // state of this wait would otherwise be in every exchange.
                complete = Box::pin(self.stream_body(stream, chunked)).await?;
            }
        }
        let head = std::future::poll_fn(|cx| self.poll_head(cx, method)).await?;
        Ok(ResponseStart {
            parts: head.parts,
            // Not when the server answered before the whole request body was sent.
            reusable: head.reusable && complete,
            hop_by_hop_dropped: head.hop_by_hop_dropped,
            framing: head.framing,
            conn: self,
        })
    }

    /// Streams a request body. Returns early (false) when the server answers
    /// before the body is done (e.g. 413 to a large upload it will not read).
    async fn stream_body(&mut self, mut body: ProxyBody, chunked: bool) -> Result<bool, SendError> {
        let mut pending = BytesMut::new();
        let mut body_done = false;
        std::future::poll_fn(|cx| loop {
            while !pending.is_empty() {
                match Pin::new(&mut self.io).poll_write(cx, &pending) {
                    Poll::Ready(Ok(0)) => {
                        let error = io::Error::from(io::ErrorKind::WriteZero);
                        return Poll::Ready(Err(SendError::Write { error, unsent: false }));
                    }
                    Poll::Ready(Ok(n)) => pending.advance(n),
                    Poll::Ready(Err(error)) => {
                        return Poll::Ready(Err(SendError::Write { error, unsent: false }))
                    }
                    Poll::Pending => return self.poll_early_answer(cx),
                }
            }
            if body_done {
                return Pin::new(&mut self.io)
                    .poll_flush(cx)
                    .map_ok(|()| true)
                    .map_err(|error| SendError::Write { error, unsent: false });
            }
            match Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are not forwarded (hop-by-hop in practice).
                    if let Ok(data) = frame.into_data() {
                        if data.is_empty() {
                            continue;
                        }
                        if chunked {
                            pending.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
                            pending.extend_from_slice(&data);
                            pending.extend_from_slice(b"\r\n");
                        } else {
                            pending.extend_from_slice(&data);
                        }
                    }
                }
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(SendError::ClientBody)),
                Poll::Ready(None) => {
                    if chunked {
                        pending.extend_from_slice(b"0\r\n\r\n");
                    }
                    body_done = true;
                }
                Poll::Pending => return self.poll_early_answer(cx),
            }
        })
        .await
    }

    /// While the request body is being sent: Ready(false) once the server has
    /// sent a final response head, Pending otherwise (interim responses are
    /// left in the buffer for `read_head`).
    fn poll_early_answer(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, SendError>> {
        loop {
            if has_final_head(&self.buf) {
                return Poll::Ready(Ok(false));
            }
            if self.buf.len() > MAX_HEAD {
                return Poll::Ready(Err(SendError::Invalid("response head too large".into())));
            }
            match poll_fill(&mut self.io, cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(SendError::Closed)),
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(SendError::Read(e))),
                Poll::Pending => return self.deadline.poll_expired(cx).map(|()| Err(SendError::Timeout)),
            }
        }
    }

    /// Reads the response head (interim 1xx heads other than 101 skipped).
    fn poll_head(&mut self, cx: &mut Context<'_>, method: &Method) -> Poll<Result<ParsedHead, SendError>> {
        loop {
            match parse_head(&mut self.buf, method) {
                Err(why) => return Poll::Ready(Err(SendError::Invalid(why))),
                Ok(Some(head)) => {
                    if head.parts.status.is_informational()
                        && head.parts.status != StatusCode::SWITCHING_PROTOCOLS
                    {
                        continue;
                    }
                    return Poll::Ready(Ok(head));
                }
                Ok(None) if self.buf.len() > MAX_HEAD => {
                    return Poll::Ready(Err(SendError::Invalid("response head too large".into())))
                }
                Ok(None) => {}
            }
            match poll_fill(&mut self.io, cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(SendError::Closed)),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(SendError::Read(e))),
                Poll::Pending => return self.deadline.poll_expired(cx).map(|()| Err(SendError::Timeout)),
            }
        }
    }
}

impl ResponseStart {
    /// The response body; `on_reusable` gets the connection back when the body
    /// was read to its end and the connection can carry another request.
    /// `timeout`: the longest wait for the server's next bytes (`timeout server`).
    pub fn into_body(
        self,
        on_reusable: Option<PoolReturn>,
        timeout: Option<std::time::Duration>,
    ) -> (http::response::Parts, ServerBody) {
        let on_reusable = on_reusable.filter(|_| self.reusable);
        (self.parts, ServerBody::new(self.conn, self.framing, on_reusable, timeout))
    }

    /// After `101 Switching Protocols`: the raw connection, with any bytes the
    /// server already sent past the head.
    pub fn into_upgraded(self) -> (http::response::Parts, Upgraded) {
        let ServerConn { io, buf, .. } = self.conn;
        (self.parts, Upgraded::new(io, buf.freeze()))
    }
}

/// Where a connection goes once its response has been read whole.
pub type PoolReturn = Box<dyn FnOnce(ServerConn) + Send>;

/// Reads what the server sends into `buf`'s spare room: Ready(0) at EOF.
fn poll_fill(io: &mut ServerIo, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    let spare = buf.spare_capacity_mut();
    let mut read = ReadBuf::uninit(spare);
    ready!(Pin::new(io).poll_read(cx, &mut read))?;
    let n = read.filled().len();
    // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Poll::Ready(Ok(n))
}
