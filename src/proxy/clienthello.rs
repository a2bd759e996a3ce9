//! Reads the SNI out of a TLS ClientHello without terminating TLS, for
//! `req.ssl_sni` / `req.ssl_hello_type` in `mode tcp`. Every length is checked:
//! the bytes come straight from the network.

/// The first handshake message, if the bytes start a TLS handshake record.
fn handshake(buf: &[u8]) -> Option<&[u8]> {
    // Record: type 22 (handshake), version 3.x, 2-byte length.
    if buf.len() < 5 || buf[0] != 22 || buf[1] != 3 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    buf.get(5..5 + len)
}

/// True when the whole first record has arrived (or the bytes are not TLS).
pub fn is_complete(buf: &[u8]) -> bool {
    if buf.len() < 5 {
        return false;
    }
    if buf[0] != 22 {
        return true;
    }
    handshake(buf).is_some()
}

/// HAProxy's `req.ssl_hello_type`: 1 for a ClientHello, 2 for a ServerHello.
pub fn hello_type(buf: &[u8]) -> Option<u8> {
    let hs = handshake(buf)?;
    match hs.first()? {
        1 => Some(1),
        2 => Some(2),
        _ => None,
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3).map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
}

/// The server name a ClientHello asks for.
pub fn sni(buf: &[u8]) -> Option<String> {
    let hs = handshake(buf)?;
    let mut r = Reader { buf: hs, pos: 0 };
    if r.u8()? != 1 {
        return None;
    }
    let body_len = r.u24()?;
    let body = r.take(body_len)?;
    let mut r = Reader { buf: body, pos: 0 };
    r.take(2 + 32)?; // client version + random
    let sid = r.u8()?;
    r.take(sid)?;
    let suites = r.u16()?;
    r.take(suites)?;
    let comp = r.u8()?;
    r.take(comp)?;
    let ext_len = r.u16()?;
    let exts = r.take(ext_len)?;
    let mut r = Reader { buf: exts, pos: 0 };
    while r.pos < exts.len() {
        let kind = r.u16()?;
        let len = r.u16()?;
        let data = r.take(len)?;
        if kind != 0 {
            continue;
        }
        let mut s = Reader { buf: data, pos: 0 };
        let list_len = s.u16()?;
        let list = s.take(list_len)?;
        let mut l = Reader { buf: list, pos: 0 };
        while l.pos < list.len() {
            let name_type = l.u8()?;
            let n = l.u16()?;
            let name = l.take(n)?;
            if name_type == 0 {
                return std::str::from_utf8(name).ok().map(|s| s.to_ascii_lowercase());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ClientHello made by rustls for "example.com".
    fn hello(name: &str) -> Vec<u8> {
        use std::sync::Arc;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let server_name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), server_name).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn finds_sni_in_real_client_hello() {
        let h = hello("Example.com");
        assert!(is_complete(&h));
        assert_eq!(hello_type(&h), Some(1));
        assert_eq!(sni(&h).as_deref(), Some("example.com"));
    }

    #[test]
    fn truncated_and_garbage_input_are_safe() {
        let h = hello("a.example.org");
        for cut in 0..h.len() {
            let _ = sni(&h[..cut]);
            let _ = is_complete(&h[..cut]);
        }
        assert!(!is_complete(&h[..h.len() - 1]));
        assert_eq!(sni(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert!(is_complete(b"GET / HTTP/1.1\r\n\r\n"));
        let mut junk = h.clone();
        for b in junk.iter_mut().skip(5) {
            *b = 0xff;
        }
        assert_eq!(sni(&junk), None);
    }
}
