//! One check: connect (optionally over TLS), run the configured exchange,
//! classify the result the way HAProxy does. No state here: `run` is a pure
//! function of the spec and the remote end's behaviour.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::status::{CheckStatus, Outcome};
use crate::conf::haproxy::{HealthCheck, HttpCheck, HttpExpectKind, TcpCheckStep, TcpExpect};

/// Most bytes of a check response looked at (HAProxy's default `tune.chksize`).
const MAX_RESPONSE: usize = 16384;

/// What to check and how long to wait.
#[derive(Clone)]
pub struct ProbeSpec {
    pub addr: SocketAddr,
    pub kind: HealthCheck,
    /// TLS client setup and the name to present, for `check-ssl`.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    pub timeouts: Timeouts,
}

/// HAProxy's rule: without `timeout check`, `inter` bounds the whole check;
/// with it, the connect phase gets min(`timeout connect`, `inter`) and the
/// rest gets `timeout check`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// `None`: the rest of the check shares the `connect` budget (inter).
    pub read: Option<Duration>,
}

impl Timeouts {
    pub fn haproxy(inter: Duration, connect: Option<Duration>, check: Option<Duration>) -> Self {
        match check {
            Some(check) => Timeouts { connect: connect.unwrap_or(inter).min(inter), read: Some(check) },
            None => Timeouts { connect: inter, read: None },
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

/// Runs one check to completion.
pub async fn run(spec: &ProbeSpec) -> Outcome {
    let start = Instant::now();
    match &spec.kind {
        HealthCheck::Connect => match connect(spec, spec.addr, spec.tls.as_ref(), start).await {
            Ok((_, deadline)) => {
                let _ = deadline;
                Outcome::new(if spec.tls.is_some() { CheckStatus::L6Ok } else { CheckStatus::L4Ok }, "")
            }
            Err(o) => o,
        },
        HealthCheck::Http(http) => match connect(spec, spec.addr, spec.tls.as_ref(), start).await {
            Ok((stream, deadline)) => http_check(stream, http, deadline).await,
            Err(o) => o,
        },
        HealthCheck::TcpCheck(steps) => tcp_check(spec, steps, start).await,
    }
}

/// Connects and, with `tls`, completes the handshake. Returns the stream and
/// the deadline for the rest of the check.
async fn connect(
    spec: &ProbeSpec,
    addr: SocketAddr,
    tls: Option<&(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    start: Instant,
) -> Result<(Stream, Instant), Outcome> {
    let tcp = match timeout_at(start + spec.timeouts.connect, TcpStream::connect(addr)).await {
        Err(_) => return Err(Outcome::new(CheckStatus::L4Tout, "")),
        Ok(Err(e)) => return Err(Outcome::new(CheckStatus::L4Con, os_error_text(&e))),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let deadline = match spec.timeouts.read {
        Some(read) => Instant::now() + read,
        None => start + spec.timeouts.connect,
    };
    match tls {
        None => Ok((Box::new(tcp), deadline)),
        Some((config, name)) => {
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
            match timeout_at(deadline, connector.connect(name.clone(), tcp)).await {
                Err(_) => Err(Outcome::new(CheckStatus::L6Tout, "")),
                Ok(Err(e)) => Err(Outcome::new(CheckStatus::L6Rsp, e.to_string())),
                Ok(Ok(s)) => Ok((Box::new(s), deadline)),
            }
        }
    }
}

/// `Connection refused` rather than Rust's `Connection refused (os error 111)`:
/// HAProxy prints strerror().
fn os_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

enum ReadEnd {
    Timeout,
    Eof,
    Error(io::Error),
}

/// Appends what the peer sends next to `buf` (at most up to MAX_RESPONSE).
async fn read_more(stream: &mut Stream, buf: &mut Vec<u8>, deadline: Instant) -> Result<usize, ReadEnd> {
    let mut chunk = [0u8; 4096];
    let room = MAX_RESPONSE.saturating_sub(buf.len()).min(chunk.len());
    if room == 0 {
        return Err(ReadEnd::Eof);
    }
    match timeout_at(deadline, stream.read(&mut chunk[..room])).await {
        Err(_) => Err(ReadEnd::Timeout),
        Ok(Err(e)) => Err(ReadEnd::Error(e)),
        Ok(Ok(0)) => Err(ReadEnd::Eof),
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
    }
}

async fn write_all(stream: &mut Stream, data: &[u8], deadline: Instant) -> Result<(), ReadEnd> {
    match timeout_at(deadline, async {
        stream.write_all(data).await?;
        stream.flush().await
    })
    .await
    {
        Err(_) => Err(ReadEnd::Timeout),
        Ok(Err(e)) => Err(ReadEnd::Error(e)),
        Ok(Ok(())) => Ok(()),
    }
}

// ---------------------------------------------------------------- HTTP

fn http_request(http: &HttpCheck) -> Vec<u8> {
    let mut req = format!("{} {} {}\r\n", http.method, http.uri, http.version);
    for (name, value) in &http.headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    let has = |n: &str| http.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
    // We read until the server closes or the body is complete: ask HTTP/1.1
    // servers not to keep the connection open (HAProxy sends the same,
    // lower-case like all its HTX header names).
    if http.version.eq_ignore_ascii_case("HTTP/1.1") && !has("connection") {
        req.push_str("connection: close\r\n");
    }
    if let Some(body) = &http.body {
        if !has("content-length") {
            req.push_str(&format!("content-length: {}\r\n", body.len()));
        }
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(body) = &http.body {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

struct Head {
    code: u16,
    reason: String,
    content_length: Option<usize>,
    body_start: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses the status line and headers once they are complete. `Ok(None)`: need more.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() >= 5 && !buf.starts_with(b"HTTP/") {
            return Err(String::new());
        }
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    let (true, Some(code)) = (version.starts_with("HTTP/"), code) else {
        return Err(String::new());
    };
    let reason = parts.next().unwrap_or_default().trim().to_string();
    let content_length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    Ok(Some(Head { code, reason, content_length, body_start: end + 4 }))
}

async fn http_check(mut stream: Stream, http: &HttpCheck, deadline: Instant) -> Outcome {
    match write_all(&mut stream, &http_request(http), deadline).await {
        Ok(()) => {}
        Err(ReadEnd::Timeout) => return Outcome::new(CheckStatus::L7Tout, ""),
        Err(ReadEnd::Error(e)) => return Outcome::new(CheckStatus::L7Rsp, os_error_text(&e)),
        Err(ReadEnd::Eof) => return Outcome::new(CheckStatus::L7Rsp, ""),
    }
    let mut buf = Vec::new();
    let head = loop {
        match parse_head(&buf) {
            Err(info) => return Outcome::new(CheckStatus::L7Rsp, info),
            Ok(Some(head)) => break head,
            Ok(None) => {}
        }
        match read_more(&mut stream, &mut buf, deadline).await {
            Ok(_) => {}
            Err(ReadEnd::Timeout) => return Outcome::new(CheckStatus::L7Tout, ""),
            // HAProxy reports a truncated or missing response without info.
            Err(ReadEnd::Eof) => return Outcome::new(CheckStatus::L7Rsp, ""),
            Err(ReadEnd::Error(e)) => return Outcome::new(CheckStatus::L7Rsp, os_error_text(&e)),
        }
    };
    let Some(expect) = &http.expect else {
        // HAProxy's default: any 2xx or 3xx.
        return status_outcome((200..=399).contains(&head.code), &head);
    };
    match &expect.kind {
        HttpExpectKind::Status(ranges) => {
            let hit = ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&head.code));
            status_outcome(hit != expect.negated, &head)
        }
        HttpExpectKind::Rstatus(re) => {
            let hit = re.0.is_match(&head.code.to_string());
            status_outcome(hit != expect.negated, &head)
        }
        HttpExpectKind::String(_) | HttpExpectKind::Rstring(_) => {
            let matches = |body: &[u8]| match &expect.kind {
                HttpExpectKind::String(s) => find(body, s.as_bytes()).is_some(),
                HttpExpectKind::Rstring(re) => re.0.is_match(&String::from_utf8_lossy(body)),
                _ => false,
            };
            // Read the body until it matches, is complete, or the check times out.
            loop {
                let body = buf.get(head.body_start..).unwrap_or_default();
                let complete = head.content_length.is_some_and(|n| body.len() >= n);
                if matches(body) {
                    return body_outcome(true, expect.negated, &head);
                }
                if complete {
                    return body_outcome(false, expect.negated, &head);
                }
                match read_more(&mut stream, &mut buf, deadline).await {
                    Ok(_) => {}
                    Err(ReadEnd::Timeout) => return Outcome::new(CheckStatus::L7Tout, ""),
                    Err(_) => {
                        let body = buf.get(head.body_start..).unwrap_or_default();
                        return body_outcome(matches(body), expect.negated, &head);
                    }
                }
            }
        }
    }
}

fn status_outcome(ok: bool, head: &Head) -> Outcome {
    if ok {
        Outcome::with_code(CheckStatus::L7Ok, head.code, "")
    } else {
        Outcome::with_code(CheckStatus::L7Sts, head.code, head.reason.clone())
    }
}

fn body_outcome(matched: bool, negated: bool, head: &Head) -> Outcome {
    match (matched, negated) {
        (true, false) | (false, true) => Outcome::with_code(CheckStatus::L7Ok, head.code, ""),
        (false, false) => {
            Outcome::with_code(CheckStatus::L7Rsp, head.code, "HTTP content check did not match")
        }
        (true, true) => {
            Outcome::with_code(CheckStatus::L7Rsp, head.code, "HTTP check matched unwanted content")
        }
    }
}

// ---------------------------------------------------------------- tcp-check

fn expect_label(kind: &TcpExpect) -> String {
    match kind {
        TcpExpect::String(s) => format!("expect string '{s}'"),
        TcpExpect::Rstring(re) => format!("expect rstring '{}'", re.0.as_str()),
        TcpExpect::Binary(b) => format!("expect binary '{}'", hex(b)),
    }
}

fn content_label(kind: &TcpExpect) -> String {
    match kind {
        TcpExpect::String(s) => format!("'{s}'"),
        TcpExpect::Rstring(_) => "(regex)".into(),
        TcpExpect::Binary(_) => "(binary)".into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn expect_matches(kind: &TcpExpect, buf: &[u8]) -> bool {
    match kind {
        TcpExpect::String(s) => find(buf, s.as_bytes()).is_some(),
        TcpExpect::Rstring(re) => re.0.is_match(&String::from_utf8_lossy(buf)),
        TcpExpect::Binary(b) => find(buf, b).is_some(),
    }
}

async fn tcp_check(spec: &ProbeSpec, steps: &[TcpCheckStep], start: Instant) -> Outcome {
    let rules: Vec<&TcpCheckStep> = steps.iter().filter(|s| !matches!(s, TcpCheckStep::Comment(_))).collect();
    let mut stream: Option<(Stream, Instant)> = None;
    let mut tls_used = false;
    let mut expected = false;
    let explicit = !rules.is_empty();
    // HAProxy adds an implicit connect (not numbered) when the first rule is not one.
    if !matches!(rules.first(), Some(TcpCheckStep::Connect { .. })) {
        match connect(spec, spec.addr, spec.tls.as_ref(), start).await {
            Ok(s) => stream = Some(s),
            Err(o) => return o,
        }
        tls_used = spec.tls.is_some();
    }
    let mut buf = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let step = i + 1;
        match rule {
            TcpCheckStep::Comment(_) => {}
            TcpCheckStep::Connect { port, ssl, send_proxy } => {
                let mut addr = spec.addr;
                if let Some(p) = port {
                    addr.set_port(*p);
                }
                let tls = if *ssl { spec.tls.as_ref() } else { None };
                if *ssl && tls.is_none() {
                    return Outcome::new(
                        CheckStatus::SockErr,
                        format!("no TLS setup for step {step} of tcp-check"),
                    );
                }
                let label = match port {
                    Some(p) => format!("connect port {p}"),
                    None => "connect".to_string(),
                };
                let step_start = Instant::now();
                match connect(spec, addr, tls, step_start).await {
                    Ok((mut s, deadline)) => {
                        if *send_proxy {
                            let line = proxy_v1_line(addr);
                            if write_all(&mut s, line.as_bytes(), deadline).await.is_err() {
                                return Outcome::new(
                                    CheckStatus::L4Con,
                                    format!("send-proxy failed at step {step}"),
                                );
                            }
                        }
                        stream = Some((s, deadline));
                        tls_used = tls.is_some();
                        buf.clear();
                    }
                    Err(mut o) => {
                        o.info = if o.info.is_empty() {
                            format!(" at step {step} of tcp-check ({label})")
                        } else {
                            format!("{} at step {step} of tcp-check ({label})", o.info)
                        };
                        return o;
                    }
                }
            }
            TcpCheckStep::Send(data) | TcpCheckStep::SendBinary(data) => {
                let Some((s, deadline)) = stream.as_mut() else {
                    return Outcome::new(CheckStatus::SockErr, format!("no connection at step {step}"));
                };
                buf.clear();
                match write_all(s, data, *deadline).await {
                    Ok(()) => {}
                    Err(ReadEnd::Timeout) => {
                        return Outcome::new(
                            CheckStatus::L7Tout,
                            format!(" at step {step} of tcp-check (send)"),
                        )
                    }
                    Err(_) => {
                        return Outcome::new(
                            CheckStatus::L7Rsp,
                            format!("Send failed at step {step} of tcp-check"),
                        )
                    }
                }
            }
            TcpCheckStep::Expect { negated, kind } => {
                expected = true;
                let Some((s, deadline)) = stream.as_mut() else {
                    return Outcome::new(CheckStatus::SockErr, format!("no connection at step {step}"));
                };
                let deadline = *deadline;
                loop {
                    let hit = !buf.is_empty() && expect_matches(kind, &buf);
                    if hit && *negated {
                        return Outcome::new(
                            CheckStatus::L7Rsp,
                            format!("TCPCHK matched unwanted content {} at step {step}", content_label(kind)),
                        );
                    }
                    if hit || (*negated && !buf.is_empty()) {
                        buf.clear();
                        break;
                    }
                    match read_more(s, &mut buf, deadline).await {
                        Ok(_) => {}
                        Err(ReadEnd::Timeout) => {
                            return Outcome::new(
                                CheckStatus::L7Tout,
                                format!(" at step {step} of tcp-check ({})", expect_label(kind)),
                            )
                        }
                        Err(_) if *negated => {
                            buf.clear();
                            break;
                        }
                        Err(_) => {
                            return Outcome::new(
                                CheckStatus::L7Rsp,
                                format!(
                                    "TCPCHK did not match content {} at step {step}",
                                    content_label(kind)
                                ),
                            )
                        }
                    }
                }
            }
        }
    }
    if expected {
        Outcome::with_code(CheckStatus::L7Ok, 0, "(tcp-check)")
    } else {
        // Connect-only rule sets pass at layer 4 (6 with TLS); HAProxy tags
        // the result "(tcp-check)" when explicit rules ran.
        let status = if tls_used { CheckStatus::L6Ok } else { CheckStatus::L4Ok };
        Outcome::new(status, if explicit { "(tcp-check)" } else { "" })
    }
}

/// A PROXY protocol v1 header for a check connection (addresses are ours:
/// the check has no client).
fn proxy_v1_line(dst: SocketAddr) -> String {
    match dst {
        SocketAddr::V4(d) => format!("PROXY TCP4 127.0.0.1 {} 0 {}\r\n", d.ip(), d.port()),
        SocketAddr::V6(d) => format!("PROXY TCP6 ::1 {} 0 {}\r\n", d.ip(), d.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_follow_haproxy_rule() {
        let s = Duration::from_secs;
        let t = Timeouts::haproxy(s(2), Some(s(5)), None);
        assert_eq!((t.connect, t.read), (s(2), None));
        let t = Timeouts::haproxy(s(2), Some(s(1)), Some(s(3)));
        assert_eq!((t.connect, t.read), (s(1), Some(s(3))));
        let t = Timeouts::haproxy(s(2), Some(s(5)), Some(s(3)));
        assert_eq!((t.connect, t.read), (s(2), Some(s(3))));
    }

    #[test]
    fn parses_status_line_and_length() {
        let head = parse_head(b"HTTP/1.0 404 File not found\r\nContent-Length: 3\r\n\r\nabc").ok().flatten();
        let head = head.expect("complete head");
        assert_eq!((head.code, head.reason.as_str(), head.content_length), (404, "File not found", Some(3)));
        assert!(parse_head(b"HTTP/1.0 200 OK\r\n").ok().flatten().is_none());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn request_has_configured_headers() {
        let http = HttpCheck {
            method: "GET".into(),
            uri: "/health".into(),
            version: "HTTP/1.1".into(),
            headers: vec![("Host".into(), "example.com".into())],
            ..HttpCheck::default()
        };
        let req = String::from_utf8(http_request(&http)).unwrap_or_default();
        assert_eq!(req, "GET /health HTTP/1.1\r\nHost: example.com\r\nconnection: close\r\n\r\n");
    }
}
