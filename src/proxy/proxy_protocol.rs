//! PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's
//! `doc/proxy-protocol.txt` specifies them.
//!
//! * Sending (`server … send-proxy` / `send-proxy-v2`): [`encode_v1`],
//!   [`encode_v2`], [`encode_v2_local`] build the header written before any
//!   payload on the connection to the server.
//! * Receiving (`bind … accept-proxy`): [`read_header`] consumes exactly the
//!   header bytes, never any of the payload after it, so the stream can be
//!   handed on untouched (TLS, HTTP, or a server-speaks-first protocol).
//!
//! The receiver never trusts sizes from the wire beyond fixed caps: a v1 line is
//! at most 107 bytes, a v2 block at most [`MAX_V2_LEN`] bytes. v2 TLVs are
//! returned (authority, unique id, …) and a `PP2_TYPE_CRC32C` is verified, as
//! HAProxy does; [`read_header_tcp`] is the fast path for plain sockets.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

pub use crate::conf::haproxy::model::ProxyProtocolVersion;

/// The 12-byte signature that opens every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included (spec section 2.1).
pub const V1_MAX_LEN: usize = 107;
/// Largest v2 address+TLV block we accept. HAProxy refuses headers that do not
/// fit its buffer; real senders use a few hundred bytes at most.
pub const MAX_V2_LEN: usize = 4096;

/// What a PROXY header said about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    pub version: ProxyProtocolVersion,
    /// The original endpoints, when the header carried them. `None` for v1
    /// `UNKNOWN`, v2 `LOCAL` (health checks) and v2 families we do not map
    /// (UNSPEC, AF_UNIX): the receiver then uses the real socket addresses.
    pub addresses: Option<ProxyAddresses>,
    /// v2 TLVs after the addresses, in order (empty for v1).
    pub tlvs: Vec<Tlv>,
}

/// One v2 Type-Length-Value field (`PP2_TYPE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub kind: u8,
    pub value: Vec<u8>,
}

/// `PP2_TYPE_ALPN`.
pub const PP2_TYPE_ALPN: u8 = 0x01;
/// `PP2_TYPE_AUTHORITY`: the host name the client asked for (SNI).
pub const PP2_TYPE_AUTHORITY: u8 = 0x02;
/// `PP2_TYPE_CRC32C`: checksum of the whole header, verified on receipt.
pub const PP2_TYPE_CRC32C: u8 = 0x03;
/// `PP2_TYPE_UNIQUE_ID`.
pub const PP2_TYPE_UNIQUE_ID: u8 = 0x05;

impl ProxyHeader {
    /// The value of the first TLV of type `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs.iter().find(|t| t.kind == kind).map(|t| t.value.as_slice())
    }

    /// `PP2_TYPE_AUTHORITY` as text (HAProxy's `fc_pp_authority`).
    pub fn authority(&self) -> Option<&str> {
        self.tlv(PP2_TYPE_AUTHORITY).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// `PP2_TYPE_UNIQUE_ID` (HAProxy's `fc_pp_unique_id`).
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv(PP2_TYPE_UNIQUE_ID)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyAddresses {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyProtocolError {
    #[error("PROXY protocol: I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("PROXY protocol: no complete header within {0:?}")]
    Timeout(Duration),
    #[error("PROXY protocol: connection closed before the header was complete")]
    Truncated,
    #[error("PROXY protocol: connection does not start with a PROXY header")]
    NotProxy,
    #[error("PROXY protocol: v1 line longer than 107 bytes")]
    TooLong,
    #[error("PROXY protocol: v2 header announces {0} bytes (limit {MAX_V2_LEN})")]
    V2TooLong(usize),
    #[error("PROXY protocol: malformed header: {0}")]
    Malformed(&'static str),
}

// ------------------------------------------------------------------ encoding

/// Both addresses in the same family: v4 when both are v4, otherwise v6 with
/// any v4 address mapped (`::ffff:a.b.c.d`), as HAProxy does for mixed pairs.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    fn to_v6(a: SocketAddr) -> SocketAddr {
        match a.ip() {
            IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
            IpAddr::V6(_) => a,
        }
    }
    if src.is_ipv4() && dst.is_ipv4() {
        (src, dst)
    } else {
        (to_v6(src), to_v6(dst))
    }
}

/// `PROXY TCP4 src dst sport dport\r\n` (or `TCP6`).
pub fn encode_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(src, dst);
    let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!("PROXY {proto} {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port()).into_bytes()
}

/// `PROXY UNKNOWN\r\n`: the sender does not know (or will not tell) the endpoints.
pub fn encode_v1_unknown() -> Vec<u8> {
    b"PROXY UNKNOWN\r\n".to_vec()
}

/// A v2 `PROXY` header for a TCP connection, without TLVs.
pub fn encode_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(src, dst);
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x21); // version 2, command PROXY
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11); // AF_INET, STREAM
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            out.push(0x21); // AF_INET6, STREAM
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6_octets(s));
            out.extend_from_slice(&v6_octets(d));
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// A v2 `LOCAL` header (what HAProxy sends on health checks): no addresses.
pub fn encode_v2_local() -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x20); // version 2, command LOCAL
    out.push(0x00); // UNSPEC
    out.extend_from_slice(&0u16.to_be_bytes());
    out
}

/// The header for `send-proxy` / `send-proxy-v2`.
pub fn encode(version: ProxyProtocolVersion, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    match version {
        ProxyProtocolVersion::V1 => encode_v1(src, dst),
        ProxyProtocolVersion::V2 => encode_v2(src, dst),
    }
}

// ------------------------------------------------------------------ decoding

/// Reads one PROXY header (v1 or v2, detected from the first byte) from
/// `stream`, consuming exactly its bytes. Fails after `timeout` if the header is
/// not complete by then (HAProxy bounds this wait by `timeout client`).
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<ProxyHeader, ProxyProtocolError> {
    match tokio::time::timeout(timeout, read_header_inner(stream)).await {
        Ok(res) => res,
        Err(_) => Err(ProxyProtocolError::Timeout(timeout)),
    }
}

/// [`read_header`] for a TCP socket: peeks first, so a header that arrived in
/// one segment (the usual case) costs one `peek` and one `read` instead of a
/// read per byte. Falls back to [`read_header`]'s way when the header is still
/// incomplete.
pub async fn read_header_tcp(
    stream: &mut tokio::net::TcpStream,
    timeout: Duration,
) -> Result<ProxyHeader, ProxyProtocolError> {
    let fast = async {
        let mut buf = vec![0u8; 16 + MAX_V2_LEN];
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(ProxyProtocolError::Truncated);
        }
        match complete_len(&buf[..n])? {
            Some(len) => {
                let header = buf.get_mut(..len).ok_or(ProxyProtocolError::Malformed("header length"))?;
                read_exact(stream, header).await?;
                parse_complete(header)
            }
            None => read_header_inner(stream).await,
        }
    };
    match tokio::time::timeout(timeout, fast).await {
        Ok(res) => res,
        Err(_) => Err(ProxyProtocolError::Timeout(timeout)),
    }
}

/// The length of the header at the start of `bytes` if it is all there,
/// `None` if more bytes are needed, an error if it cannot be a header.
fn complete_len(bytes: &[u8]) -> Result<Option<usize>, ProxyProtocolError> {
    match bytes.first() {
        Some(b'P') => {
            let prefix = &b"PROXY "[..bytes.len().min(6)];
            if !bytes.starts_with(prefix) {
                return Err(ProxyProtocolError::NotProxy);
            }
            let window = &bytes[..bytes.len().min(V1_MAX_LEN)];
            match window.windows(2).position(|w| w == b"\r\n") {
                Some(pos) => Ok(Some(pos + 2)),
                None if bytes.len() >= V1_MAX_LEN => Err(ProxyProtocolError::TooLong),
                None => Ok(None),
            }
        }
        Some(b'\r') => {
            let Some(head) = bytes.get(..16) else { return Ok(None) };
            let mut fixed = [0u8; 16];
            fixed.copy_from_slice(head);
            let total = 16 + v2_payload_len(&fixed)?;
            Ok((bytes.len() >= total).then_some(total))
        }
        _ => Err(ProxyProtocolError::NotProxy),
    }
}

/// Parses a whole header (v1 line or v2 block) held in one buffer.
fn parse_complete(header: &[u8]) -> Result<ProxyHeader, ProxyProtocolError> {
    if header.first() == Some(&b'P') {
        return parse_v1(header);
    }
    let head: [u8; 16] = header
        .get(..16)
        .and_then(|h| h.try_into().ok())
        .ok_or(ProxyProtocolError::Malformed("short v2 header"))?;
    parse_v2(&head, &header[16..])
}

async fn read_header_inner<S: AsyncRead + Unpin>(stream: &mut S) -> Result<ProxyHeader, ProxyProtocolError> {
    let mut first = [0u8; 1];
    read_exact(stream, &mut first).await?;
    match first[0] {
        b'P' => read_v1(stream).await,
        b'\r' => read_v2(stream).await,
        _ => Err(ProxyProtocolError::NotProxy),
    }
}

async fn read_exact<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> Result<(), ProxyProtocolError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ProxyProtocolError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// The shortest v1 line, `PROXY UNKNOWN\r\n`: reading that many bytes at once
/// can never swallow payload.
const V1_MIN_LEN: usize = 15;

async fn read_v1<S: AsyncRead + Unpin>(stream: &mut S) -> Result<ProxyHeader, ProxyProtocolError> {
    let mut line = Vec::with_capacity(V1_MAX_LEN);
    line.push(b'P');
    line.resize(V1_MIN_LEN, 0);
    read_exact(stream, &mut line[1..]).await?;
    if !line.starts_with(b"PROXY ") {
        return Err(ProxyProtocolError::NotProxy);
    }
    // The rest byte by byte: the line has no length prefix, and we must stop
    // right after its LF (a generic AsyncRead cannot be peeked).
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX_LEN {
            return Err(ProxyProtocolError::TooLong);
        }
        let mut b = [0u8; 1];
        read_exact(stream, &mut b).await?;
        line.push(b[0]);
    }
    parse_v1(&line)
}

/// Parses a complete v1 line (CRLF included).
pub fn parse_v1(line: &[u8]) -> Result<ProxyHeader, ProxyProtocolError> {
    use ProxyProtocolError::Malformed;
    if line.len() > V1_MAX_LEN {
        return Err(ProxyProtocolError::TooLong);
    }
    let body = line.strip_suffix(b"\r\n").ok_or(Malformed("v1 line does not end with CRLF"))?;
    let body = body.strip_prefix(b"PROXY ").ok_or(ProxyProtocolError::NotProxy)?;
    let text = std::str::from_utf8(body).map_err(|_| Malformed("v1 line is not ASCII"))?;
    let v1 = ProxyProtocolVersion::V1;
    if text == "UNKNOWN" || text.starts_with("UNKNOWN ") {
        // Whatever follows UNKNOWN is to be ignored (spec 2.1).
        return Ok(ProxyHeader { version: v1, addresses: None, tlvs: Vec::new() });
    }
    let fields: Vec<&str> = text.split(' ').collect();
    let [proto, src, dst, sport, dport] = fields[..] else {
        return Err(Malformed("v1 line needs protocol, 2 addresses and 2 ports"));
    };
    let (src, dst): (IpAddr, IpAddr) = match proto {
        "TCP4" => (
            src.parse::<Ipv4Addr>().map_err(|_| Malformed("bad TCP4 source address"))?.into(),
            dst.parse::<Ipv4Addr>().map_err(|_| Malformed("bad TCP4 destination address"))?.into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().map_err(|_| Malformed("bad TCP6 source address"))?.into(),
            dst.parse::<Ipv6Addr>().map_err(|_| Malformed("bad TCP6 destination address"))?.into(),
        ),
        _ => return Err(Malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let sport = parse_port(sport).ok_or(Malformed("bad v1 source port"))?;
    let dport = parse_port(dport).ok_or(Malformed("bad v1 destination port"))?;
    Ok(ProxyHeader {
        version: v1,
        addresses: Some(ProxyAddresses {
            source: SocketAddr::new(src, sport),
            destination: SocketAddr::new(dst, dport),
        }),
        tlvs: Vec::new(),
    })
}

/// Decimal port, digits only (no sign, no spaces), 0..=65535.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

async fn read_v2<S: AsyncRead + Unpin>(stream: &mut S) -> Result<ProxyHeader, ProxyProtocolError> {
    let mut head = [0u8; 16];
    head[0] = b'\r';
    read_exact(stream, &mut head[1..]).await?;
    let len = v2_payload_len(&head)?;
    let mut payload = vec![0u8; len];
    read_exact(stream, &mut payload).await?;
    parse_v2(&head, &payload)
}

/// Checks the fixed 16-byte part of a v2 header and returns the announced
/// length of what follows.
fn v2_payload_len(head: &[u8; 16]) -> Result<usize, ProxyProtocolError> {
    if head[..12] != V2_SIGNATURE {
        return Err(ProxyProtocolError::NotProxy);
    }
    if head[12] >> 4 != 2 {
        return Err(ProxyProtocolError::Malformed("v2 version nibble is not 2"));
    }
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    if len > MAX_V2_LEN {
        return Err(ProxyProtocolError::V2TooLong(len));
    }
    Ok(len)
}

/// Parses a v2 header from its 16-byte head and the `len` bytes after it.
/// TLVs after the addresses are returned; as HAProxy does, a TLV running past
/// the header or a wrong `PP2_TYPE_CRC32C` rejects the header.
pub fn parse_v2(head: &[u8; 16], payload: &[u8]) -> Result<ProxyHeader, ProxyProtocolError> {
    use ProxyProtocolError::Malformed;
    let len = v2_payload_len(head)?;
    if payload.len() != len {
        return Err(Malformed("v2 payload length differs from the header's"));
    }
    let v2 = ProxyProtocolVersion::V2;
    let command = head[12] & 0x0f;
    let family = head[13] >> 4;
    let transport = head[13] & 0x0f;
    if transport > 2 {
        return Err(Malformed("v2 transport is not UNSPEC, STREAM or DGRAM"));
    }
    match command {
        // LOCAL: the proxy's own connection (health check). The spec says to
        // discard the block whatever the family, so TLVs are read only when
        // the block parses as TLVs, and never make the header invalid.
        0x0 => {
            let tlvs = parse_tlvs(head, payload, 0).unwrap_or_default();
            return Ok(ProxyHeader { version: v2, addresses: None, tlvs });
        }
        0x1 => {}
        _ => return Err(Malformed("v2 command is not LOCAL or PROXY")),
    }
    // Where TLVs start: after the address block of the family.
    let (addresses, tlv_start) = match family {
        0x0 => (None, None),
        0x1 => {
            let a = payload.get(..12).ok_or(Malformed("v2 AF_INET block shorter than 12 bytes"))?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            let a = ProxyAddresses {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            };
            (Some(a), Some(12))
        }
        0x2 => {
            let a = payload.get(..36).ok_or(Malformed("v2 AF_INET6 block shorter than 36 bytes"))?;
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            let a = ProxyAddresses {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            };
            (Some(a), Some(36))
        }
        0x3 => {
            if payload.len() < 216 {
                return Err(Malformed("v2 AF_UNIX block shorter than 216 bytes"));
            }
            // Unix socket paths cannot be expressed as SocketAddr: treat like
            // UNSPEC, as the spec allows.
            (None, Some(216))
        }
        _ => return Err(Malformed("v2 address family is not UNSPEC, INET, INET6 or UNIX")),
    };
    // UNSPEC has no defined address length, so no defined TLV start.
    let tlvs = match tlv_start {
        Some(start) => parse_tlvs(head, payload, start)?,
        None => Vec::new(),
    };
    Ok(ProxyHeader { version: v2, addresses, tlvs })
}

/// The TLVs of `payload` from `start` on; checks a CRC32C TLV against the
/// whole header.
fn parse_tlvs(head: &[u8; 16], payload: &[u8], start: usize) -> Result<Vec<Tlv>, ProxyProtocolError> {
    use ProxyProtocolError::Malformed;
    let mut tlvs = Vec::new();
    let mut rest = payload.get(start..).unwrap_or_default();
    let mut offset = start;
    while !rest.is_empty() {
        let [kind, hi, lo, ..] = *rest else {
            return Err(Malformed("v2 TLV header cut short"));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let value = rest.get(3..3 + len).ok_or(Malformed("v2 TLV runs past the header"))?;
        if kind == PP2_TYPE_CRC32C {
            let expected: [u8; 4] =
                value.try_into().map_err(|_| Malformed("v2 CRC32C TLV is not 4 bytes"))?;
            // The checksum covers the whole header with its own field zeroed.
            let field = offset + 3..offset + 7;
            let bytes = head.iter().copied().chain(payload.iter().enumerate().map(|(i, &b)| {
                if field.contains(&i) {
                    0
                } else {
                    b
                }
            }));
            if crc32c(bytes) != u32::from_be_bytes(expected) {
                return Err(Malformed("v2 CRC32C mismatch"));
            }
        }
        tlvs.push(Tlv { kind, value: value.to_vec() });
        rest = &rest[3 + len..];
        offset += 3 + len;
    }
    Ok(tlvs)
}

/// CRC-32C (Castagnoli), bit by bit: headers are small and this runs once
/// per connection at most.
fn crc32c(bytes: impl Iterator<Item = u8>) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests;
