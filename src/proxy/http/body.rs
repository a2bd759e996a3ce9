//! The body type the proxy sends either way: a client's request body streamed
//! from its connection (HTTP/1) or hyper (HTTP/2), a server's response body streamed from its connection, or bytes
//! the proxy produced (error pages, redirects,
//! buffered requests kept for L7 retries). An optional end hook runs once when
//! the body is finished or dropped: it returns the server connection to the
//! pool, releases the server's session count and writes the log line.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::client::ServerBody;
use super::server::ClientBody;

/// Errors of a body being relayed (the client's or the server's connection failed).
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// How a body ended: whether it was read to its end, and how many bytes passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyEnd {
    pub complete: bool,
    pub bytes: u64,
}

pub type EndHook = Box<dyn FnOnce(BodyEnd) + Send>;

pub struct ProxyBody {
    kind: Kind,
    bytes: u64,
    on_end: Option<EndHook>,
}

enum Kind {
    /// From an HTTP/2 client (hyper).
    Stream(Incoming),
    /// From an HTTP/1 client.
    Client(ClientBody),
    /// Boxed: it holds the server connection, and most bodies are not this.
    Server(Box<ServerBody>),
    Full(Option<Bytes>),
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Stream(_) => f.write_str("ProxyBody::Stream"),
            Kind::Client(_) => f.write_str("ProxyBody::Client"),
            Kind::Server(_) => f.write_str("ProxyBody::Server"),
            Kind::Full(b) => write!(f, "ProxyBody::Full({} bytes)", b.as_ref().map_or(0, Bytes::len)),
        }
    }
}

impl ProxyBody {
    pub fn empty() -> Self {
        ProxyBody { kind: Kind::Full(None), bytes: 0, on_end: None }
    }

    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let b = bytes.into();
        ProxyBody { kind: Kind::Full(if b.is_empty() { None } else { Some(b) }), bytes: 0, on_end: None }
    }

    pub fn stream(inner: Incoming) -> Self {
        ProxyBody { kind: Kind::Stream(inner), bytes: 0, on_end: None }
    }

    pub fn client(inner: ClientBody) -> Self {
        ProxyBody { kind: Kind::Client(inner), bytes: 0, on_end: None }
    }

    pub fn server(inner: ServerBody) -> Self {
        ProxyBody { kind: Kind::Server(Box::new(inner)), bytes: 0, on_end: None }
    }

    /// Adds a hook run once at the end; an existing hook runs first.
    pub fn on_end(mut self, hook: EndHook) -> Self {
        self.on_end = Some(match self.on_end.take() {
            Some(prev) => Box::new(move |end| {
                prev(end);
                hook(end);
            }),
            None => hook,
        });
        if self.is_end_stream() {
            self.finish(true);
        }
        self
    }

    fn finish(&mut self, complete: bool) {
        if let Some(hook) = self.on_end.take() {
            hook(BodyEnd { complete, bytes: self.bytes });
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        let complete = self.is_end_stream();
        self.finish(complete);
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = match &mut this.kind {
            Kind::Stream(inner) => Pin::new(inner).poll_frame(cx).map_err(BodyError::from),
            Kind::Client(inner) => Pin::new(inner).poll_frame(cx).map_err(BodyError::from),
            Kind::Server(inner) => Pin::new(inner.as_mut()).poll_frame(cx).map_err(BodyError::from),
            Kind::Full(data) => Poll::Ready(data.take().map(|b| Ok(Frame::data(b)))),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.bytes += d.len() as u64;
                }
                if this.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Stream(inner) => inner.is_end_stream(),
            Kind::Client(inner) => inner.is_end_stream(),
            Kind::Server(inner) => inner.is_end_stream(),
            Kind::Full(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Stream(inner) => inner.size_hint(),
            Kind::Client(inner) => inner.size_hint(),
            Kind::Server(inner) => inner.size_hint(),
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
        }
    }
}
