//! Sample fetches for HTTP requests (`path`, `hdr(host)`, `src`, `ssl_fc`, …).

use std::borrow::Cow;
use std::net::SocketAddr;

use http::request::Parts;
use http::{HeaderMap, Method, Request, Uri, Version};

use crate::conf::haproxy::{Fetch, FmtPart, FmtString};
use crate::proxy::acl::{Sample, Samples};

/// Facts about the client connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub client: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
    pub sni: Option<String>,
}

/// A request seen through HAProxy's sample fetches.
pub struct HttpSamples<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub version: Version,
    pub headers: &'a HeaderMap,
    pub conn: &'a ConnInfo,
    /// Usable servers of a backend, for `nbsrv(name)`.
    pub nbsrv: &'a (dyn Fn(&str) -> usize + Sync),
}

impl<'a> HttpSamples<'a> {
    pub fn of_parts(parts: &'a Parts, conn: &'a ConnInfo, nbsrv: &'a (dyn Fn(&str) -> usize + Sync)) -> Self {
        HttpSamples {
            method: &parts.method,
            uri: &parts.uri,
            version: parts.version,
            headers: &parts.headers,
            conn,
            nbsrv,
        }
    }

    pub fn of_request<B>(
        req: &'a Request<B>,
        conn: &'a ConnInfo,
        nbsrv: &'a (dyn Fn(&str) -> usize + Sync),
    ) -> Self {
        HttpSamples {
            method: req.method(),
            uri: req.uri(),
            version: req.version(),
            headers: req.headers(),
            conn,
            nbsrv,
        }
    }
}

impl HttpSamples<'_> {
    fn header_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        // HAProxy's hdr() treats comma-separated values as separate occurrences.
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| Cow::Borrowed(v.trim()))
            .collect()
    }

    fn cookie(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| Cow::Borrowed(v))
    }
}

impl Samples for HttpSamples<'_> {
    fn fetch(&self, fetch: &Fetch) -> Sample<'_> {
        let uri = self.uri;
        match fetch {
            Fetch::Src => Sample::Ip(self.conn.client.ip()),
            Fetch::SrcPort => Sample::Int(i64::from(self.conn.client.port())),
            Fetch::Dst => Sample::Ip(self.conn.local.ip()),
            Fetch::DstPort => Sample::Int(i64::from(self.conn.local.port())),
            Fetch::Path => Sample::Str(Cow::Borrowed(uri.path())),
            Fetch::Url => Sample::Str(Cow::Owned(uri.to_string())),
            Fetch::Query => match uri.query() {
                Some(q) => Sample::Str(Cow::Borrowed(q)),
                None => Sample::Missing,
            },
            Fetch::Hdr { name, occurrence } => {
                let values = self.header_values(name);
                if values.is_empty() {
                    return Sample::Missing;
                }
                match occurrence {
                    Some(occ) => {
                        let idx = if *occ < 0 {
                            values.len() as i64 + i64::from(*occ)
                        } else {
                            i64::from(*occ) - 1
                        };
                        match usize::try_from(idx).ok().and_then(|i| values.get(i)) {
                            Some(v) => Sample::Str(v.clone()),
                            None => Sample::Missing,
                        }
                    }
                    None => Sample::Strs(values),
                }
            }
            Fetch::HdrCnt(name) => Sample::Int(self.header_values(name).len() as i64),
            Fetch::Method => Sample::Str(Cow::Borrowed(self.method.as_str())),
            Fetch::HttpVersion => Sample::Str(Cow::Borrowed(match self.version {
                http::Version::HTTP_10 => "1.0",
                http::Version::HTTP_2 => "2.0",
                http::Version::HTTP_09 => "0.9",
                _ => "1.1",
            })),
            Fetch::SslFc => Sample::Bool(self.conn.tls),
            Fetch::SslFcSni => match &self.conn.sni {
                Some(s) => Sample::Str(Cow::Borrowed(s)),
                None => Sample::Missing,
            },
            Fetch::NbSrv(backend) => Sample::Int((self.nbsrv)(backend) as i64),
            Fetch::Always(b) => Sample::Bool(*b),
            Fetch::UrlParam(name) => match uri.query().and_then(|q| url_param(q, name)) {
                Some(v) => Sample::Str(Cow::Borrowed(v)),
                None => Sample::Missing,
            },
            Fetch::Cookie(name) => match self.cookie(name) {
                Some(v) => Sample::Str(v),
                None => Sample::Missing,
            },
            // Connection-level fetches of tcp mode mean nothing on a parsed request.
            Fetch::ReqSslSni | Fetch::ReqSslHelloType | Fetch::ReqLen => Sample::Missing,
        }
    }
}

/// Value of `name` in a query string (`a=1&b=2`).
pub fn url_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split(['&', ';']).filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// Renders a sample as text (for `%[fetch]` in log-format strings).
pub fn sample_text(sample: Sample<'_>) -> String {
    match sample {
        Sample::Missing => String::new(),
        Sample::Str(s) => s.into_owned(),
        Sample::Strs(v) => v.last().map(|s| s.to_string()).unwrap_or_default(),
        Sample::Int(i) => i.to_string(),
        Sample::Ip(ip) => ip.to_string(),
        Sample::Bool(b) => u8::from(b).to_string(),
    }
}

/// Expands a log-format string against samples.
pub fn render(fmt: &FmtString, samples: &dyn Samples) -> String {
    let mut out = String::new();
    for part in &fmt.parts {
        match part {
            FmtPart::Lit(s) => out.push_str(s),
            FmtPart::Sample(f) => out.push_str(&sample_text(samples.fetch(f))),
        }
    }
    out
}
