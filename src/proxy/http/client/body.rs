//! A server's response body, read from its connection as hyper's server side
//! polls it (length, chunked or until close), and the raw connection of an
//! upgraded (101) exchange.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::head::Framing;
use super::{poll_fill, PoolReturn, ServerConn, ServerIo, MAX_LINE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailers,
}

/// A response body read from the server connection as it is polled.
pub struct ServerBody {
    conn: Option<ServerConn>,
    state: Decode,
    on_reusable: Option<PoolReturn>,
    /// `timeout server`: the longest wait for the server's next bytes.
    timeout: Option<Duration>,
    /// Armed the first time the body waits for the server (most bodies
    /// arrive with their head and never need it).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ServerBody {
    pub(super) fn new(
        conn: ServerConn,
        framing: Framing,
        on_reusable: Option<PoolReturn>,
        timeout: Option<Duration>,
    ) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => Decode::Done,
            Framing::Length(n) => Decode::Length(n),
            Framing::Chunked => Decode::Chunked(Chunk::Size),
            Framing::UntilClose => Decode::UntilClose,
        };
        let mut body = ServerBody { conn: Some(conn), state, on_reusable, timeout, timer: None };
        if body.state == Decode::Done {
            body.finish();
        }
        body
    }

    /// The body was read to its end: the connection goes back to the pool
    /// when it can carry another request and the server sent nothing more.
    fn finish(&mut self) {
        self.state = Decode::Done;
        let conn = self.conn.take();
        if let (Some(conn), Some(give_back)) = (conn, self.on_reusable.take()) {
            if conn.buf.is_empty() {
                give_back(conn);
            }
        }
    }

    fn fail(&mut self, why: impl Into<String>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.state = Decode::Done;
        self.conn = None;
        self.on_reusable = None;
        Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::InvalidData, why.into()))))
    }

    /// Reads more from the server: Ready(false) at EOF; an error when the
    /// server sent nothing for `timeout server` (HAProxy's "sD").
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let Some(conn) = self.conn.as_mut() else { return Poll::Ready(Ok(false)) };
        match poll_fill(&mut conn.io, cx, &mut conn.buf) {
            Poll::Ready(read) => {
                if let (Some(timer), Some(limit)) = (self.timer.as_mut(), self.timeout) {
                    timer.as_mut().reset(tokio::time::Instant::now() + limit);
                }
                Poll::Ready(read.map(|n| n > 0))
            }
            Poll::Pending => {
                let Some(limit) = self.timeout else { return Poll::Pending };
                let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timeout server during the response body",
                )))
            }
        }
    }
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            let buf = &mut conn.buf;
            match this.state {
                Decode::Done => return Poll::Ready(None),
                Decode::Length(left) if !buf.is_empty() => {
                    let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    this.state = Decode::Length(left);
                    if left == 0 {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decode::UntilClose if !buf.is_empty() => {
                    let data = buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decode::Chunked(Chunk::Data(left)) if !buf.is_empty() => {
                    let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    this.state = Decode::Chunked(if left == 0 { Chunk::DataEnd } else { Chunk::Data(left) });
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decode::Chunked(Chunk::DataEnd) if buf.len() >= 2 => {
                    if &buf[..2] != b"\r\n" {
                        return this.fail("chunk not followed by CRLF");
                    }
                    buf.advance(2);
                    this.state = Decode::Chunked(Chunk::Size);
                    continue;
                }
                Decode::Chunked(Chunk::Size) => {
                    if let Some(line) = take_line(buf) {
                        match parse_chunk_size(&line) {
                            Some(0) => this.state = Decode::Chunked(Chunk::Trailers),
                            Some(n) => this.state = Decode::Chunked(Chunk::Data(n)),
                            None => return this.fail("invalid chunk size"),
                        }
                        continue;
                    }
                    if buf.len() > MAX_LINE {
                        return this.fail("chunk-size line too long");
                    }
                }
                Decode::Chunked(Chunk::Trailers) => {
                    if let Some(line) = take_line(buf) {
                        if line.is_empty() {
                            this.finish();
                            return Poll::Ready(None);
                        }
                        continue;
                    }
                    if buf.len() > MAX_LINE {
                        return this.fail("trailer line too long");
                    }
                }
                _ => {}
            }
            // More bytes are needed.
            match ready!(this.poll_more(cx)) {
                Ok(true) => {}
                Ok(false) if this.state == Decode::UntilClose => {
                    this.state = Decode::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(false) => return this.fail("server closed the connection in the middle of the body"),
                Err(e) => {
                    this.state = Decode::Done;
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == Decode::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            Decode::Length(n) => SizeHint::with_exact(n),
            Decode::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// A line ending in CRLF (or a bare LF) at the start of `buf`, without its end.
fn take_line(buf: &mut BytesMut) -> Option<BytesMut> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let mut line = buf.split_to(end + 1);
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Some(line)
}

/// `1a3f[;ext…]` → its value.
pub(super) fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?;
    let digits = std::str::from_utf8(digits).ok()?.trim_matches(|c| c == ' ' || c == '\t');
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// The server side of an upgraded connection (WebSocket…): bytes the server
/// sent after its 101 head first, then the connection itself.
pub struct Upgraded {
    io: ServerIo,
    prefix: Bytes,
}

impl Upgraded {
    pub(super) fn new(io: ServerIo, prefix: Bytes) -> Self {
        Upgraded { io, prefix }
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
