//! Responses the proxy generates itself: HAProxy's built-in error pages, or the
//! raw HTTP responses of `errorfile CODE PATH`.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

use super::body::ProxyBody;

/// A whole response: status, headers, body, parsed once from an errorfile or
/// built from HAProxy's defaults.
#[derive(Debug, Clone)]
pub struct CannedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl CannedResponse {
    pub fn to_response(&self) -> Response<ProxyBody> {
        let mut resp = Response::new(ProxyBody::full(self.body.clone()));
        *resp.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) =
                (http::HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str()))
            {
                resp.headers_mut().append(n, v);
            }
        }
        resp
    }

    /// Parses a raw HTTP/1.x response as errorfiles hold it.
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        let split = find(raw, b"\r\n\r\n").map(|p| (p, 4)).or_else(|| find(raw, b"\n\n").map(|p| (p, 2)));
        let (head_end, sep) = split.ok_or("no blank line after the headers")?;
        let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "headers are not UTF-8")?;
        let mut lines = head.lines();
        let status_line = lines.next().ok_or("empty file")?;
        let mut parts = status_line.split_whitespace();
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(format!("status line '{status_line}' does not start with HTTP/1.x"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line '{status_line}'"))?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| format!("bad header line '{line}'"))?;
            let name = name.trim().to_ascii_lowercase();
            // Framing is ours to decide: the body below is sent with its real length.
            if name == "content-length" || name == "transfer-encoding" || name == "connection" {
                continue;
            }
            headers.push((name, value.trim().to_string()));
        }
        Ok(CannedResponse { status, headers, body: Bytes::copy_from_slice(&raw[head_end + sep..]) })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// HAProxy's default error page for a status it generates.
pub fn default_page(status: u16) -> CannedResponse {
    let (reason, text) = match status {
        200 => ("OK", "Service ready."),
        400 => ("Bad request", "Your browser sent an invalid request."),
        401 => ("Unauthorized", "You need a valid user and password to access this content."),
        403 => ("Forbidden", "Request forbidden by administrative rules."),
        404 => ("Not Found", "The resource could not be found."),
        405 => (
            "Method Not Allowed",
            "A request was made of a resource using a request method not supported by that resource",
        ),
        407 => ("Unauthorized", "You need a valid user and password to access this content."),
        408 => ("Request Time-out", "Your browser didn't send a complete request in time."),
        410 => ("Gone", "The resource is no longer available and will not be available again."),
        413 => ("Payload Too Large", "The request entity exceeds the maximum allowed."),
        425 => ("Too Early", "Your browser sent early data."),
        429 => ("Too Many Requests", "You have sent too many requests in a given amount of time."),
        431 => {
            ("Request Header Fields Too Large", "Your browser sent a request whose headers are too large.")
        }
        500 => ("Internal Server Error", "An internal server error occurred."),
        501 => (
            "Not Implemented",
            "The server does not support the functionality required to fulfill the request.",
        ),
        502 => ("Bad Gateway", "The server returned an invalid or incomplete response."),
        503 => ("Service Unavailable", "No server is available to handle this request."),
        504 => ("Gateway Time-out", "The server didn't respond in time."),
        _ => ("Error", "An error occurred."),
    };
    let body = format!("<html><body><h1>{status} {reason}</h1>\n{text}\n</body></html>\n");
    CannedResponse {
        status,
        headers: vec![
            ("cache-control".into(), "no-cache".into()),
            ("content-type".into(), "text/html".into()),
        ],
        body: Bytes::from(body),
    }
}

/// The error pages of one proxy: its `errorfile`s over HAProxy's defaults.
#[derive(Debug, Clone, Default)]
pub struct ErrorPages {
    custom: HashMap<u16, CannedResponse>,
}

impl ErrorPages {
    pub fn new(custom: HashMap<u16, CannedResponse>) -> Self {
        ErrorPages { custom }
    }

    pub fn response(&self, status: u16) -> Response<ProxyBody> {
        match self.custom.get(&status) {
            Some(c) => c.to_response(),
            None => default_page(status).to_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_style_errorfile() {
        let raw = b"HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>503</h1></body></html>\n";
        let c = CannedResponse::parse(raw).unwrap();
        assert_eq!(c.status, 503);
        assert_eq!(
            c.headers,
            vec![("cache-control".into(), "no-cache".into()), ("content-type".into(), "text/html".into())]
        );
        assert!(c.body.starts_with(b"<html>"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(CannedResponse::parse(b"hello").is_err());
        assert!(CannedResponse::parse(b"FOO 200\r\n\r\n").is_err());
        assert!(CannedResponse::parse(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }

    #[test]
    fn default_503_matches_haproxy_text() {
        let c = default_page(503);
        assert_eq!(c.body, Bytes::from_static(b"<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"));
    }
}
