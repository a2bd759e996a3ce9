//! Request heads from clients: parsed from the connection's read buffer into
//! `http` types (header values share the buffer), with the body's framing
//! (RFC 9112 §6.3) and what the client asked of the connection.

use bytes::BytesMut;
use http::header::{HeaderMap, CONTENT_LENGTH};
use http::{Method, Uri, Version};

use crate::proxy::http::wire::{build_headers, offset_in, Framing, HeadFacts, SpanSlots, MAX_HEADERS};

/// Largest request head accepted; beyond it the answer is 431, as HAProxy
/// gives when a request does not fit its buffer.
pub const MAX_HEAD: usize = 64 * 1024;

pub struct RequestHead {
    pub parts: http::request::Parts,
    pub framing: Framing,
    /// The client wants the connection kept after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for "100 Continue" before its body.
    pub expect_continue: bool,
}

/// Why a head cannot be served; the status to answer with.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// 431: too large or too many header lines.
    TooLarge,
    /// 400, with what was wrong.
    Bad(String),
}

impl HeadError {
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge => 431,
            HeadError::Bad(_) => 400,
        }
    }
}

/// Parses a request head at the start of `buf` and takes it off the buffer:
/// None while incomplete.
pub fn parse_request(buf: &mut BytesMut) -> Result<Option<RequestHead>, HeadError> {
    // Uninitialised: zeroing 128 header slots costs more than parsing a typical head.
    let mut raw = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let used =
        match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, &mut raw) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(e) => return Err(HeadError::Bad(format!("request head: {e}"))),
        };
    if used > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let bad = |why: &str| HeadError::Bad(why.to_string());
    let method =
        Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| bad("invalid method"))?;
    let version = if req.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let path = req.path.unwrap_or("");
    let path_at = offset_in(buf, path.as_bytes());
    let path_len = path.len();
    let mut slots = SpanSlots::new();
    let spans = slots.record(buf, req.headers);
    let head = buf.split_to(used).freeze();
    let uri = Uri::from_maybe_shared(head.slice(path_at..path_at + path_len))
        .map_err(|e| HeadError::Bad(format!("request target: {e}")))?;
    let (mut headers, facts) = build_headers(&head, spans, false).map_err(HeadError::Bad)?;
    let framing = request_framing(&facts, &mut headers)?;
    let keep_alive = facts.keeps_alive(version);
    let expect_continue = version == Version::HTTP_11 && facts.expect_continue;
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(RequestHead { parts, framing, keep_alive, expect_continue }))
}

/// RFC 9112 §6.3 for requests: chunked when Transfer-Encoding ends with it
/// (Content-Length then dropped: it must not reach the server beside the
/// de-chunked body), refused with any other coding (the length is unknowable),
/// else Content-Length, else no body.
fn request_framing(facts: &HeadFacts, headers: &mut HeaderMap) -> Result<Framing, HeadError> {
    match facts.chunked_last {
        Some(true) => {
            headers.remove(CONTENT_LENGTH);
            Ok(Framing::Chunked)
        }
        Some(false) => Err(HeadError::Bad("Transfer-Encoding without chunked last".into())),
        None => match facts.length().map_err(HeadError::Bad)? {
            Some(n) => Ok(Framing::Length(n)),
            None => Ok(Framing::Empty),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<RequestHead>, HeadError> {
        parse_request(&mut BytesMut::from(text))
    }

    fn head(text: &str) -> RequestHead {
        match parse(text) {
            Ok(Some(h)) => h,
            Ok(None) => panic!("{text:?}: incomplete"),
            Err(e) => panic!("{text:?}: {e:?}"),
        }
    }

    #[test]
    fn head_parts_and_what_follows_it() {
        let mut buf = BytesMut::from("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\nGET /next");
        let Ok(Some(h)) = parse_request(&mut buf) else { panic!("not parsed") };
        assert_eq!((h.parts.method, h.parts.uri.to_string()), (Method::GET, "/a?b=1".to_string()));
        assert_eq!(h.parts.headers.get_all("x-a").iter().count(), 2);
        assert_eq!((h.framing, h.keep_alive, h.expect_continue), (Framing::Empty, true, false));
        assert_eq!(&buf[..], b"GET /next");
        assert!(matches!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None)));
    }

    #[test]
    fn framing_and_smuggling_guards() {
        assert_eq!(head("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").framing, Framing::Length(5));
        let h = head("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.parts.headers.contains_key(CONTENT_LENGTH));
        let err = |t: &str| parse(t).err().map(|e| e.status());
        assert_eq!(err("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), Some(400));
        assert_eq!(err("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), Some(400));
        assert_eq!(err("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), Some(400));
        assert_eq!(err("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), Some(400));
        assert_eq!(err("GET / HTTP/1.1\r\n\x01: x\r\n\r\n"), Some(400));
    }

    #[test]
    fn oversized_heads_are_431() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD + 1));
        assert_eq!(parse(&big).err(), Some(HeadError::TooLarge));
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")).err(), Some(HeadError::TooLarge));
    }

    #[test]
    fn keep_alive_and_expect_by_version() {
        assert!(!head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(head("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").expect_continue);
        assert!(!head("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expect_continue);
    }

    #[test]
    fn mangled_requests_are_parsed_or_refused_never_a_panic() {
        use crate::proxy::http::wire::mangle::Mangler;
        let seeds: [&[u8]; 3] = [
            b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nCookie: a=1; b=2\r\n\r\n",
            b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\
              Expect: 100-continue\r\nConnection: keep-alive, Upgrade\r\n\r\nhello",
            b"GET / HTTP/1.0\r\nHost: x\r\nX-Obs: caf\xe9\tok\r\nContent-Length: 0, 0\r\n\r\n",
        ];
        let mut m = Mangler::new(0x5eed);
        let (mut parsed, mut refused) = (0, 0);
        for i in 0..20_000 {
            let input = m.mangle(seeds[i % seeds.len()]);
            // In two reads, as from a socket.
            let cut = m.below(input.len() + 1);
            let mut buf = BytesMut::from(&input[..cut]);
            let mut result = parse_request(&mut buf);
            if matches!(result, Ok(None)) {
                buf.extend_from_slice(&input[cut..]);
                result = parse_request(&mut buf);
            }
            match result {
                Ok(Some(h)) => {
                    parsed += 1;
                    assert!(buf.len() < input.len(), "a head was taken off the buffer");
                    for value in h.parts.headers.values() {
                        assert!(http::HeaderValue::from_bytes(value.as_bytes()).is_ok(), "{input:?}");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    refused += 1;
                    assert!(matches!(e.status(), 400 | 431));
                }
            }
        }
        assert!(parsed > 1_000 && refused > 1_000, "{parsed} parsed, {refused} refused");
    }
}
