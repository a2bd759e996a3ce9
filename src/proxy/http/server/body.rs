//! A client's request body, read from its connection as the server side
//! asks for it (sized or chunked). "100 Continue" goes out on the first read
//! when the client asked for it: a request answered without reading its body
//! (denied, redirected) never makes the client send it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::conn::SharedConn;
use crate::proxy::http::wire::{Decoder, Framing, Step};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

pub struct ClientBody {
    conn: SharedConn,
    decoder: Decoder,
    /// Bytes of "100 Continue" written so far; None: none to send.
    continue_written: Option<usize>,
    /// `timeout client`: the longest wait for the client's next bytes.
    timeout: Option<Duration>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ClientBody {
    pub fn new(conn: SharedConn, framing: Framing, expect_continue: bool, timeout: Option<Duration>) -> Self {
        let decoder = Decoder::new(framing);
        conn.lock().body_open = !decoder.is_done();
        ClientBody { conn, decoder, continue_written: expect_continue.then_some(0), timeout, timer: None }
    }
}

/// Ends the body with `error`; the connection stays marked as having an
/// unread body, so it closes after the response.
fn fail(decoder: &mut Decoder, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
    *decoder = Decoder::new(Framing::Empty);
    Poll::Ready(Some(Err(error)))
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let ClientBody { conn, decoder, continue_written, timeout, timer } = self.get_mut();
        if decoder.is_done() {
            return Poll::Ready(None);
        }
        let mut conn = conn.lock();
        if let Some(written) = continue_written.as_mut() {
            if let Err(e) = ready!(conn.poll_write_all(cx, CONTINUE, written)) {
                return fail(decoder, e);
            }
            *continue_written = None;
        }
        loop {
            match decoder.step(&mut conn.buf) {
                Step::Data(data) => {
                    if decoder.is_done() {
                        conn.body_open = false;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Step::End => {
                    conn.body_open = false;
                    return Poll::Ready(None);
                }
                Step::Invalid(why) => return fail(decoder, io::Error::new(io::ErrorKind::InvalidData, why)),
                Step::NeedMore => {}
            }
            match conn.poll_fill(cx) {
                Poll::Ready(Ok(0)) => {
                    let why = decoder.at_eof().err().unwrap_or("client closed during the body");
                    return fail(decoder, io::Error::new(io::ErrorKind::UnexpectedEof, why));
                }
                Poll::Ready(Ok(_)) => {
                    if let (Some(timer), Some(limit)) = (timer.as_mut(), *timeout) {
                        timer.as_mut().reset(tokio::time::Instant::now() + limit);
                    }
                }
                Poll::Ready(Err(e)) => return fail(decoder, e),
                Poll::Pending => {
                    let Some(limit) = *timeout else { return Poll::Pending };
                    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    ready!(timer.as_mut().poll(cx));
                    let error =
                        io::Error::new(io::ErrorKind::TimedOut, "timeout client during the request body");
                    return fail(decoder, error);
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
