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
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Method, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::body::ProxyBody;

/// Largest response head accepted from a server (beyond it: invalid response).
const MAX_HEAD: usize = 64 * 1024;
/// Most header lines in a response head.
const MAX_HEADERS: usize = 128;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4096;
/// Room asked for before each read from the server.
const READ_CHUNK: usize = 16 * 1024;

/// The byte stream to a server: plain TCP or TLS.
pub enum ServerIo {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for ServerIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One connection to a server, with what has been read from it and not used yet.
pub struct ServerConn {
    io: ServerIo,
    buf: BytesMut,
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

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes: the connection cannot be reused.
    UntilClose,
}

/// A response head read from a server, and the connection its body comes from.
pub struct ResponseStart {
    pub parts: http::response::Parts,
    /// The connection may carry another request once the body is read.
    pub reusable: bool,
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
        ServerConn { io, buf: BytesMut::new() }
    }

    /// Whether an idle connection is still usable: the server has not closed
    /// it and sent nothing unasked. Never blocks.
    pub fn is_alive(&self) -> bool {
        use std::os::fd::AsRawFd;
        let (fd, tls) = match &self.io {
            ServerIo::Plain(s) => (s.as_raw_fd(), false),
            ServerIo::Tls(s) => (s.get_ref().0.as_raw_fd(), true),
        };
        if !self.buf.is_empty() {
            return false;
        }
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
    /// other than 101 are skipped). The body, if any, streams through
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
    ) -> Result<ResponseStart, SendError> {
        let mut out = Vec::with_capacity(512);
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
        if let Err(error) = self.io.write_all(&out).await {
            // A request head fits the socket buffer: a failure here means none
            // of it left.
            return Err(SendError::Write { error, unsent: true });
        }
        let mut complete = true;
        if let RequestBody::Once(stream) = body {
            if let Some(stream) = stream.take() {
                complete = self.stream_body(stream, chunked).await?;
            }
        }
        let mut start = self.read_head(method).await?;
        if !complete {
            // The server answered before the whole request body was sent.
            start.reusable = false;
        }
        Ok(start)
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
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    async fn read_head(mut self, method: &Method) -> Result<ResponseStart, SendError> {
        loop {
            match parse_head(&self.buf, method) {
                Err(why) => return Err(SendError::Invalid(why)),
                Ok(Some((head, used))) => {
                    self.buf.advance(used);
                    if head.parts.status.is_informational()
                        && head.parts.status != StatusCode::SWITCHING_PROTOCOLS
                    {
                        continue;
                    }
                    return Ok(ResponseStart {
                        parts: head.parts,
                        reusable: head.reusable,
                        framing: head.framing,
                        conn: self,
                    });
                }
                Ok(None) if self.buf.len() > MAX_HEAD => {
                    return Err(SendError::Invalid("response head too large".into()))
                }
                Ok(None) => {}
            }
            match std::future::poll_fn(|cx| poll_fill(&mut self.io, cx, &mut self.buf)).await {
                Ok(0) => return Err(SendError::Closed),
                Ok(_) => {}
                Err(e) => return Err(SendError::Read(e)),
            }
        }
    }
}

impl ResponseStart {
    /// The response body; `on_reusable` gets the connection back when the body
    /// was read to its end and the connection can carry another request.
    pub fn into_body(self, on_reusable: Option<PoolReturn>) -> (http::response::Parts, ServerBody) {
        let state = match self.framing {
            Framing::Empty | Framing::Length(0) => Decode::Done,
            Framing::Length(n) => Decode::Length(n),
            Framing::Chunked => Decode::Chunked(Chunk::Size),
            Framing::UntilClose => Decode::UntilClose,
        };
        let on_reusable = on_reusable.filter(|_| self.reusable);
        let mut body = ServerBody { conn: Some(self.conn), state, on_reusable };
        if body.state == Decode::Done {
            body.finish();
        }
        (self.parts, body)
    }

    /// After `101 Switching Protocols`: the raw connection, with any bytes the
    /// server already sent past the head.
    pub fn into_upgraded(self) -> (http::response::Parts, Upgraded) {
        let ServerConn { io, buf } = self.conn;
        (self.parts, Upgraded { io, prefix: buf.freeze() })
    }
}

/// Where a connection goes once its response has been read whole.
pub type PoolReturn = Box<dyn FnOnce(ServerConn) + Send>;

/// Writes the request line and headers. `length`: the body's size when known;
/// without a Content-Length the body is chunked, or absent when empty.
fn encode_head(out: &mut Vec<u8>, method: &Method, uri: &Uri, headers: &HeaderMap, length: Option<usize>) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    match uri.path_and_query() {
        Some(pq) => out.extend_from_slice(pq.as_str().as_bytes()),
        None => out.push(b'/'),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(CONTENT_LENGTH) {
        match length {
            Some(0) => {}
            Some(n) => {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(itoa_usize(n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            None => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn itoa_usize(n: usize) -> String {
    n.to_string()
}

struct ParsedHead {
    parts: http::response::Parts,
    reusable: bool,
    framing: Framing,
}

/// Whether `buf` starts with a whole response head that is not an interim
/// (1xx other than 101) one.
fn has_final_head(buf: &[u8]) -> bool {
    let mut rest = buf;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(rest) {
            Ok(httparse::Status::Complete(used)) => {
                let code = resp.code.unwrap_or(0);
                if (100..200).contains(&code) && code != 101 {
                    rest = &rest[used..];
                    continue;
                }
                return true;
            }
            // Invalid: let `read_head` report it.
            Err(_) => return true,
            Ok(httparse::Status::Partial) => return false,
        }
    }
}

/// Parses a response head at the start of `buf`: None while incomplete.
fn parse_head(buf: &[u8], method: &Method) -> Result<Option<(ParsedHead, usize)>, String> {
    // Uninitialised: zeroing 128 header slots for every response costs more
    // than parsing a typical head.
    let mut raw = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let used = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut raw)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("response head: {e}")),
    };
    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| format!("status {code}"))?;
    let version = if resp.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| format!("header name {:?}", h.name))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| format!("value of header {}", h.name))?;
        headers.append(name, value);
    }
    let framing = framing(&headers, status, method)?;
    let reusable = framing != Framing::UntilClose && keeps_alive(&headers, version);
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = status;
    parts.version = version;
    if let Some(reason) = resp.reason.filter(|r| Some(*r) != status.canonical_reason() && !r.is_empty()) {
        if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason.as_bytes().to_vec()) {
            parts.extensions.insert(reason);
        }
    }
    parts.headers = headers;
    Ok(Some((ParsedHead { parts, reusable, framing }, used)))
}

/// RFC 9112 §6.3: how the body of this response is delimited.
fn framing(headers: &HeaderMap, status: StatusCode, method: &Method) -> Result<Framing, String> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        let last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|t| !t.is_empty());
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        });
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.to_str().map_err(|_| "invalid Content-Length".to_string())?.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("invalid Content-Length {part:?}"));
            }
            let n: u64 = part.parse().map_err(|_| format!("invalid Content-Length {part:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length values".into());
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 only
/// with `Connection: keep-alive`.
fn keeps_alive(headers: &HeaderMap, version: Version) -> bool {
    let has = |token: &str| {
        headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if version == Version::HTTP_10 {
        has("keep-alive")
    } else {
        !has("close")
    }
}

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
}

impl ServerBody {
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

    /// Reads more from the server: Ready(false) at EOF.
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let Some(conn) = self.conn.as_mut() else { return Poll::Ready(Ok(false)) };
        poll_fill(&mut conn.io, cx, &mut conn.buf).map_ok(|n| n > 0)
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
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(head: &str, method: Method) -> (ParsedHead, usize) {
        match parse_head(head.as_bytes(), &method) {
            Ok(Some(p)) => p,
            other => panic!("{head:?}: {:?}", other.map(|o| o.map(|(_, n)| n))),
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (h, _) = parts("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::GET);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.reusable);
        let (h, _) = parts(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
            Method::GET,
        );
        assert_eq!(h.framing, Framing::Chunked);
        let (h, _) = parts("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", Method::GET);
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.reusable);
        let (h, _) = parts("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD);
        assert_eq!(h.framing, Framing::Empty);
        let (h, _) = parts("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", Method::GET);
        assert_eq!(h.framing, Framing::Empty);
        let (h, _) = parts("HTTP/1.1 200 OK\r\n\r\n", Method::GET);
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            &Method::GET
        )
        .is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", &Method::GET).is_err());
        let (h, _) = parts("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", Method::GET);
        assert_eq!(h.framing, Framing::Length(5));
    }

    #[test]
    fn keep_alive_by_version_and_connection() {
        let (h, _) = parts("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", Method::GET);
        assert!(!h.reusable);
        let (h, _) = parts("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Method::GET);
        assert!(!h.reusable);
        let (h, _) =
            parts("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", Method::GET);
        assert!(h.reusable);
    }

    #[test]
    fn reason_phrase_kept_when_not_canonical() {
        let (h, used) = parts("HTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\nrest", Method::GET);
        assert_eq!(used, 40);
        let reason = h.parts.extensions.get::<hyper::ext::ReasonPhrase>().map(|r| r.as_bytes().to_vec());
        assert_eq!(reason.as_deref(), Some(&b"Fine"[..]));
        let (h, _) = parts("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Method::GET);
        assert!(h.parts.extensions.get::<hyper::ext::ReasonPhrase>().is_none());
    }

    #[test]
    fn interim_heads_are_not_final() {
        assert!(!has_final_head(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(!has_final_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
        assert!(has_final_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Too Large\r\n\r\n"));
        assert!(has_final_head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"));
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a"), Some(26));
        assert_eq!(parse_chunk_size(b"1A;name=value"), Some(26));
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_chunk_size(b"xyz"), None);
        assert_eq!(parse_chunk_size(b"ffffffffffffffffff"), None);
    }

    #[test]
    fn request_head_framing() {
        let headers = HeaderMap::new();
        let uri: Uri = "/a?b".parse().unwrap_or_default();
        let mut out = Vec::new();
        encode_head(&mut out, &Method::POST, &uri, &headers, Some(3));
        assert_eq!(out, b"POST /a?b HTTP/1.1\r\ncontent-length: 3\r\n\r\n");
        out.clear();
        encode_head(&mut out, &Method::POST, &uri, &headers, None);
        assert_eq!(out, b"POST /a?b HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
        out.clear();
        encode_head(&mut out, &Method::GET, &uri, &headers, Some(0));
        assert_eq!(out, b"GET /a?b HTTP/1.1\r\n\r\n");
    }

    /// A chunked body split across reads, with extensions and trailers, then
    /// the connection handed back for reuse.
    #[tokio::test]
    async fn chunked_body_across_reads_returns_the_connection() {
        use http_body_util::BodyExt;
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req).await;
            let parts: [&[u8]; 4] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                b"lo\r\n6;x=y\r\n world\r",
                b"\n0\r\nX-Trailer: 1\r\n",
                b"\r\n",
            ];
            for p in parts {
                s.write_all(p).await.expect("write");
                s.flush().await.expect("flush");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            s
        });
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let conn = ServerConn::new(ServerIo::Plain(tcp));
        let mut body = RequestBody::Replayable(Bytes::new());
        let start =
            match conn.send(&Method::GET, &"/".parse().expect("uri"), &HeaderMap::new(), &mut body).await {
                Ok(s) => s,
                Err(e) => panic!("send: {e:?}"),
            };
        let (tx, rx) = std::sync::mpsc::channel();
        let (parts, body) = start.into_body(Some(Box::new(move |c| {
            let _ = tx.send(c.is_alive());
        })));
        assert_eq!(parts.status, 200);
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"hello world");
        assert_eq!(rx.try_recv().ok(), Some(true), "connection handed back alive");
        drop(server.await);
    }
}
