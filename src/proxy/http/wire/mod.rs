//! HTTP/1.x on the wire, shared by both sides of the proxy: heads parsed into
//! `http` types without copying each header (the values are slices of the
//! read buffer, as hyper does), body framing and keep-alive rules.

pub mod decode;
pub mod lean_tcp;
#[cfg(test)]
pub mod mangle;
pub mod prefixed;

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING,
};
use http::Version;

pub use decode::{Decoder, Framing, Step};
pub use prefixed::Prefixed;

/// Most header lines in a head.
pub const MAX_HEADERS: usize = 128;

/// Where a header line lies in its head: name offset, name length, value
/// offset, value length (heads are at most 64 KiB + a line: u32 is enough).
type Span = [u32; 4];

/// Room for the spans of one head, left uninitialised: zeroing (or moving)
/// 2 KiB for every head costs more than parsing a typical one.
pub struct SpanSlots([MaybeUninit<Span>; MAX_HEADERS]);

impl SpanSlots {
    pub fn new() -> Self {
        SpanSlots([const { MaybeUninit::uninit() }; MAX_HEADERS])
    }

    /// Records where `headers` (as parsed by httparse from `base`) lie, so the
    /// header map can be built from slices of the buffer once the head is split off it.
    pub fn record(&mut self, base: &[u8], headers: &[httparse::Header<'_>]) -> &[Span] {
        let n = headers.len().min(MAX_HEADERS);
        for (slot, h) in self.0.iter_mut().zip(&headers[..n]) {
            slot.write([
                offset_in(base, h.name.as_bytes()) as u32,
                h.name.len() as u32,
                offset_in(base, h.value) as u32,
                h.value.len() as u32,
            ]);
        }
        // SAFETY: the first `n` slots were written just above, and
        // MaybeUninit<Span> has the layout of Span.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<Span>(), n) }
    }
}

impl Default for SpanSlots {
    fn default() -> Self {
        Self::new()
    }
}

/// Offset of `part` inside `base` (`part` must be a slice of `base`).
pub fn offset_in(base: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - base.as_ptr() as usize
}

/// What the framing and connection headers of a head say, noted while the
/// header map is built (no lookups afterwards).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeadFacts {
    /// The Content-Length headers: none, one value (several equal ones count
    /// as one), or why they are invalid.
    pub content_length: Option<Result<u64, String>>,
    /// None without Transfer-Encoding; else whether its last coding is chunked.
    pub chunked_last: Option<bool>,
    pub connection_close: bool,
    pub connection_keep_alive: bool,
    /// `Connection` lists a header other than the usual tokens (close,
    /// keep-alive, upgrade): that header is hop-by-hop too.
    pub connection_lists_others: bool,
    pub expect_continue: bool,
}

impl HeadFacts {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) {
        if name == CONTENT_LENGTH {
            self.note_length(value);
        } else if name == TRANSFER_ENCODING {
            let last = value.to_str().ok().and_then(|v| v.split(',').map(str::trim).rfind(|t| !t.is_empty()));
            if let Some(last) = last {
                self.chunked_last = Some(last.eq_ignore_ascii_case("chunked"));
            } else if self.chunked_last.is_none() {
                self.chunked_last = Some(false);
            }
        } else if name == CONNECTION {
            for token in value.to_str().unwrap_or("").split(',') {
                let token = token.trim();
                let close = token.eq_ignore_ascii_case("close");
                let keep_alive = token.eq_ignore_ascii_case("keep-alive");
                self.connection_close |= close;
                self.connection_keep_alive |= keep_alive;
                self.connection_lists_others |= !names_no_header(token);
            }
        } else if name == EXPECT {
            self.expect_continue |= value.as_bytes().eq_ignore_ascii_case(b"100-continue");
        }
    }

    fn note_length(&mut self, value: &HeaderValue) {
        if matches!(self.content_length, Some(Err(_))) {
            return;
        }
        let Ok(text) = value.to_str() else {
            self.content_length = Some(Err("invalid Content-Length".into()));
            return;
        };
        for part in text.split(',') {
            let part = part.trim();
            let parsed = (!part.is_empty() && part.len() <= 19 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten();
            self.content_length = Some(match (parsed, &self.content_length) {
                (None, _) => Err(format!("invalid Content-Length {part:?}")),
                (Some(n), Some(Ok(l))) if *l != n => Err("conflicting Content-Length values".into()),
                (Some(n), _) => Ok(n),
            });
            if matches!(self.content_length, Some(Err(_))) {
                return;
            }
        }
    }

    /// The body length the Content-Length headers give; an error for invalid
    /// or conflicting values.
    pub fn length(&self) -> Result<Option<u64>, String> {
        self.content_length.clone().transpose()
    }

    /// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0
    /// only with `Connection: keep-alive`.
    pub fn keeps_alive(&self, version: Version) -> bool {
        if version == Version::HTTP_10 {
            self.connection_keep_alive
        } else {
            !self.connection_close
        }
    }
}

/// The header map of a head split off its buffer, its values sharing
/// `head`'s memory, and what its framing headers say. With
/// `drop_hop_by_hop`, the hop-by-hop headers (RFC 9110 §7.6.1) are noted in
/// the facts but left out of the map, as a proxy must not forward them; the
/// caller builds the map again without it when
/// [`HeadFacts::connection_lists_others`] (the headers `Connection` names
/// are hop-by-hop too, and may come before it).
pub fn build_headers(
    head: &Bytes,
    spans: &[Span],
    drop_hop_by_hop: bool,
) -> Result<(HeaderMap, HeadFacts), String> {
    let mut map = HeaderMap::with_capacity(spans.len());
    let mut facts = HeadFacts::default();
    for &[name_at, name_len, value_at, value_len] in spans {
        let name = &head[name_at as usize..(name_at + name_len) as usize];
        let name = header_name(name)
            .map_err(|_| format!("invalid header name {:?}", String::from_utf8_lossy(name)))?;
        let value = head.slice(value_at as usize..(value_at + value_len) as usize);
        debug_assert!(HeaderValue::from_bytes(&value).is_ok());
        // SAFETY: httparse accepted these bytes as a header value, and it
        // refuses every byte a HeaderValue may not hold (controls other
        // than tab, DEL); hyper relies on the same.
        let value = unsafe { HeaderValue::from_maybe_shared_unchecked(value) };
        facts.note(&name, &value);
        if !(drop_hop_by_hop && is_hop_by_hop(&name)) {
            map.append(name, value);
        }
    }
    Ok((map, facts))
}

/// Hop-by-hop headers besides those of RFC 9110 §7.6.1, sent by older
/// clients and servers.
pub const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Whether a `Connection` token names no header of its own to remove
/// (empty, or close, keep-alive, upgrade, whose headers are hop-by-hop anyway).
pub fn names_no_header(token: &str) -> bool {
    token.is_empty() || ["close", "keep-alive", "upgrade"].iter().any(|t| token.eq_ignore_ascii_case(t))
}

/// The bit of a hop-by-hop header (0: not one) in the masks `strip_hop_by_hop`
/// builds: Connection 1, Keep-Alive 2, Proxy-Connection 4, TE 8, Trailer 16,
/// Transfer-Encoding 32, Upgrade 64.
pub fn hop_bit(name: &HeaderName) -> u8 {
    use http::header::{TE, TRAILER, UPGRADE};
    if name == CONNECTION {
        1
    } else if name == KEEP_ALIVE {
        2
    } else if name == PROXY_CONNECTION {
        4
    } else if name == TE {
        8
    } else if name == TRAILER {
        16
    } else if name == TRANSFER_ENCODING {
        32
    } else if name == UPGRADE {
        64
    } else {
        0
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    hop_bit(name) != 0
}

/// The name of a header line. The names servers and browsers send on every
/// request or response, spelt as they spell them, are matched directly:
/// `HeaderName::from_bytes` lower-cases each name into a buffer before its
/// lookup, which is a good part of what building a header map costs.
fn header_name(raw: &[u8]) -> Result<HeaderName, http::header::InvalidHeaderName> {
    use http::header::*;
    let known = match raw {
        b"Host" | b"host" => HOST,
        b"User-Agent" | b"user-agent" => USER_AGENT,
        b"Accept" | b"accept" => ACCEPT,
        b"Accept-Encoding" | b"accept-encoding" => ACCEPT_ENCODING,
        b"Accept-Language" | b"accept-language" => ACCEPT_LANGUAGE,
        b"Cookie" | b"cookie" => COOKIE,
        b"Referer" | b"referer" => REFERER,
        b"Server" | b"server" => SERVER,
        b"Date" | b"date" => DATE,
        b"Content-Type" | b"content-type" => CONTENT_TYPE,
        b"Content-Length" | b"content-length" => CONTENT_LENGTH,
        b"Connection" | b"connection" => CONNECTION,
        b"Transfer-Encoding" | b"transfer-encoding" => TRANSFER_ENCODING,
        b"Cache-Control" | b"cache-control" => CACHE_CONTROL,
        b"Last-Modified" | b"last-modified" => LAST_MODIFIED,
        b"ETag" | b"etag" => ETAG,
        b"Set-Cookie" | b"set-cookie" => SET_COOKIE,
        b"Location" | b"location" => LOCATION,
        b"Vary" | b"vary" => VARY,
        _ => return HeaderName::from_bytes(raw),
    };
    Ok(known)
}

/// Whether the `Connection` header lists `token` (case-insensitive).
pub fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(lines: &[(&str, &str)]) -> HeadFacts {
        let mut f = HeadFacts::default();
        for (n, v) in lines {
            f.note(&HeaderName::from_bytes(n.as_bytes()).unwrap(), &HeaderValue::from_str(v).unwrap());
        }
        f
    }

    #[test]
    fn known_names_match_the_general_parse() {
        for raw in ["Host", "host", "Content-Length", "ETag", "etag", "Set-Cookie", "X-Other", "x-other"] {
            assert_eq!(header_name(raw.as_bytes()).unwrap(), HeaderName::from_bytes(raw.as_bytes()).unwrap());
        }
        assert!(header_name(b"bad name").is_err());
        assert!(header_name(b"").is_err());
    }

    #[test]
    fn facts_of_framing_headers() {
        assert_eq!(facts(&[("content-length", "5, 5")]).length(), Ok(Some(5)));
        assert!(facts(&[("content-length", "5"), ("content-length", "6")]).length().is_err());
        assert!(facts(&[("content-length", "-5")]).length().is_err());
        assert!(facts(&[("content-length", "")]).length().is_err());
        assert_eq!(facts(&[]).length(), Ok(None));
        assert_eq!(facts(&[("transfer-encoding", "gzip, chunked")]).chunked_last, Some(true));
        assert_eq!(
            facts(&[("transfer-encoding", "chunked"), ("transfer-encoding", "gzip")]).chunked_last,
            Some(false)
        );
        let f = facts(&[("connection", "Keep-Alive, Upgrade")]);
        assert!(f.keeps_alive(Version::HTTP_10) && f.keeps_alive(Version::HTTP_11));
        assert!(!facts(&[("connection", "close")]).keeps_alive(Version::HTTP_11));
        assert!(!facts(&[]).keeps_alive(Version::HTTP_10));
        assert!(facts(&[("expect", "100-Continue")]).expect_continue);
    }
}
