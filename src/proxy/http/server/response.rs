//! Responses to clients on the wire: the head with the framing this
//! connection needs, then the body as it streams (coalesced into few writes
//! while it is ready, so a small response leaves in one system call).

use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Response, StatusCode, Version};
use http_body::Body;

use super::conn::SharedConn;
use crate::proxy::http::body::ProxyBody;

/// Bytes gathered before they are written, when more of the body is ready.
const COALESCE: usize = 16 * 1024;

/// What the request said about the response it gets.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub head_request: bool,
    pub client_version: Version,
    /// The connection closes after this response.
    pub close: bool,
}

/// How the body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// As is: its length is in the head.
    Sized,
    Chunked,
    /// As is, the end marked by closing the connection (HTTP/1.0 clients).
    UntilClose,
}

/// The head as written: how the body follows, and whether the connection
/// closes after it (asked by the exchange, the response's own `Connection:
/// close`, or a body delimited by the close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadOut {
    pub encoding: Encoding,
    pub close: bool,
}

/// Writes the status line and headers, in one pass over the headers, and
/// decides the body's encoding.
pub fn encode_head(out: &mut Vec<u8>, resp: &Response<ProxyBody>, ex: Exchange) -> HeadOut {
    let status = resp.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    match resp.extensions().get::<hyper::ext::ReasonPhrase>() {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        None => out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes()),
    }
    out.extend_from_slice(b"\r\n");
    let bodiless = ex.head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let (mut has_length, mut has_connection, mut close) = (false, false, ex.close);
    for (name, value) in resp.headers() {
        if name == TRANSFER_ENCODING && !bodiless {
            // The body was de-chunked on the way in: the framing is ours to write.
            continue;
        }
        if name == CONTENT_LENGTH {
            has_length = true;
        } else if name == CONNECTION {
            has_connection = true;
            close |=
                value.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let encoding = if bodiless {
        Encoding::None
    } else if has_length {
        Encoding::Sized
    } else if let Some(n) = resp.body().size_hint().exact() {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(n.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        Encoding::Sized
    } else if ex.client_version == Version::HTTP_11 {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Encoding::Chunked
    } else {
        Encoding::UntilClose
    };
    let close = close || encoding == Encoding::UntilClose;
    if !has_connection {
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        } else if ex.client_version == Version::HTTP_10 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    HeadOut { encoding, close }
}

/// Writes `out` (the head) and then the body. Ok(true): the whole response
/// went out and the connection may carry another request.
pub async fn write_response(
    conn: &SharedConn,
    out: &mut Vec<u8>,
    mut body: ProxyBody,
    encoding: Encoding,
) -> bool {
    let mut written = 0;
    let mut body_done = encoding == Encoding::None;
    let mut failed = false;
    std::future::poll_fn(|cx: &mut Context<'_>| loop {
        // Gather what the body has ready, up to COALESCE bytes.
        let mut body_pending = false;
        while !body_done && out.len() - written < COALESCE {
            match std::pin::Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        encode_data(out, &data, encoding);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    // The response cannot be finished: what went out stays
                    // cut, and closing tells the client.
                    tracing::debug!("response body: {e}");
                    failed = true;
                    body_done = true;
                }
                Poll::Ready(None) => {
                    if encoding == Encoding::Chunked {
                        out.extend_from_slice(b"0\r\n\r\n");
                    }
                    body_done = true;
                }
                Poll::Pending => {
                    body_pending = true;
                    break;
                }
            }
        }
        let mut c = conn.lock();
        if written < out.len() {
            match c.poll_write_all(cx, out, &mut written) {
                Poll::Ready(Ok(())) => {
                    out.clear();
                    written = 0;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(false),
                Poll::Pending => return Poll::Pending,
            }
        }
        if body_done {
            return match c.poll_flush(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(!failed && encoding != Encoding::UntilClose),
                Poll::Ready(Err(_)) => Poll::Ready(false),
                Poll::Pending => Poll::Pending,
            };
        }
        if body_pending {
            // Everything gathered is out; flush it (TLS) and wait for the body.
            return match c.poll_flush(cx) {
                Poll::Ready(Err(_)) => Poll::Ready(false),
                _ => Poll::Pending,
            };
        }
    })
    .await
}

fn encode_data(out: &mut Vec<u8>, data: &Bytes, encoding: Encoding) {
    if data.is_empty() {
        return;
    }
    match encoding {
        Encoding::None => {}
        Encoding::Chunked => {
            out.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Encoding::Sized | Encoding::UntilClose => out.extend_from_slice(data),
    }
}
