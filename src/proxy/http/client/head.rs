//! Request heads as they go to a server, and response heads as they come
//! back: parsing, framing of the body (RFC 9112 §6.3), keep-alive.

use bytes::BytesMut;
use http::header::{HeaderMap, CONTENT_LENGTH};
use http::{Method, StatusCode, Uri, Version};

use crate::proxy::http::wire::{build_headers, offset_in, Framing, HeadFacts, SpanSlots, MAX_HEADERS};

/// Writes the request line and headers. `length`: the body's size when known;
/// without a Content-Length the body is chunked, or absent when empty.
pub(super) fn encode_head(
    out: &mut Vec<u8>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    length: Option<usize>,
) {
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
                out.extend_from_slice(n.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            None => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
    }
    out.extend_from_slice(b"\r\n");
}

pub(super) struct ParsedHead {
    pub(super) parts: http::response::Parts,
    pub(super) reusable: bool,
    pub(super) framing: Framing,
    pub(super) hop_by_hop_dropped: bool,
}

/// Whether `buf` starts with a whole response head that is not an interim
/// (1xx other than 101) one.
pub(super) fn has_final_head(buf: &[u8]) -> bool {
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

/// Parses a response head at the start of `buf` and takes it off the
/// buffer (the header values keep sharing its memory): None while incomplete.
pub(super) fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<ParsedHead>, String> {
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
    let mut slots = SpanSlots::new();
    let spans = slots.record(buf, resp.headers);
    let reason = resp
        .reason
        .filter(|r| Some(*r) != status.canonical_reason() && !r.is_empty())
        .map(|r| (offset_in(buf, r.as_bytes()), r.len()));
    let head = buf.split_to(used).freeze();
    // The hop-by-hop headers go no further than here (`forward` strips
    // them), except the Upgrade and Connection of a 101.
    let mut drop_hop_by_hop = status != StatusCode::SWITCHING_PROTOCOLS;
    let (mut headers, mut facts) = build_headers(&head, spans, drop_hop_by_hop)?;
    if drop_hop_by_hop && facts.connection_lists_others {
        drop_hop_by_hop = false;
        (headers, facts) = build_headers(&head, spans, false)?;
    }
    let framing = framing(&facts, status, method)?;
    if framing == Framing::Chunked {
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, which
        // must not reach the client with the de-chunked body.
        headers.remove(CONTENT_LENGTH);
    }
    let reusable = framing != Framing::UntilClose && facts.keeps_alive(version);
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = status;
    parts.version = version;
    if let Some((at, len)) = reason {
        if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(head.slice(at..at + len)) {
            parts.extensions.insert(reason);
        }
    }
    parts.headers = headers;
    Ok(Some(ParsedHead { parts, reusable, framing, hop_by_hop_dropped: drop_hop_by_hop }))
}

/// RFC 9112 §6.3: how the body of this response is delimited.
pub(super) fn framing(facts: &HeadFacts, status: StatusCode, method: &Method) -> Result<Framing, String> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    match facts.chunked_last {
        Some(true) => return Ok(Framing::Chunked),
        Some(false) => return Ok(Framing::UntilClose),
        None => {}
    }
    Ok(facts.length()?.map_or(Framing::UntilClose, Framing::Length))
}
