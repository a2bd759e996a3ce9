//! A server's response body, read from its connection as the client side
//! polls it (length, chunked or until close), and the raw connection of an
//! upgraded (101) exchange.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::{poll_fill, PoolReturn, ServerConn, ServerIo};
use crate::proxy::http::wire::{Decoder, Framing, Prefixed, Step};

/// A response body read from the server connection as it is polled.
pub struct ServerBody {
    conn: Option<ServerConn>,
    decoder: Decoder,
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
        let decoder = Decoder::new(framing);
        let mut body = ServerBody { conn: Some(conn), decoder, on_reusable, timeout, timer: None };
        if decoder.is_done() {
            body.finish();
        }
        body
    }

    /// The body was read to its end: the connection goes back to the pool
    /// when it can carry another request and the server sent nothing more.
    fn finish(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some(give_back)) = (conn, self.on_reusable.take()) {
            if conn.buf.is_empty() {
                give_back(conn);
            }
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.conn = None;
        self.on_reusable = None;
        Poll::Ready(Some(Err(error)))
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
            match this.decoder.step(&mut conn.buf) {
                Step::Data(data) => {
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Step::End => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Step::Invalid(why) => return this.fail(io::Error::new(io::ErrorKind::InvalidData, why)),
                Step::NeedMore => {}
            }
            match ready!(this.poll_more(cx)) {
                Ok(true) => {}
                Ok(false) => {
                    // The connection ended: it cannot go back to the pool.
                    this.conn = None;
                    if let Err(why) = this.decoder.at_eof() {
                        return this.fail(io::Error::new(io::ErrorKind::UnexpectedEof, why));
                    }
                    return Poll::Ready(None);
                }
                Err(e) => {
                    this.decoder = Decoder::new(Framing::Empty);
                    return this.fail(e);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder.size_hint()
    }
}

/// The server side of an upgraded connection (WebSocket…): bytes the server
/// sent after its 101 head first, then the connection itself.
pub type Upgraded = Prefixed<ServerIo>;
