//! `server … ssl`: the rustls client side, toward backend servers.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

use super::{pem, provider, TlsError};
use crate::conf::haproxy::model::{ServerSni, ServerTls, TlsDefaults, Verify};

/// Builds the rustls config for a TLS `server` line; versions and suites come
/// from `ssl-default-server-*` (`defaults`).
///
/// * `verify required` (and `optional`, which HAProxy does not distinguish on
///   servers): the chain must lead to a `ca-file` root, or to the Mozilla roots
///   (webpki-roots) when there is no `ca-file`. The host name is checked when
///   the connection has one (`sni`); without it only the chain is checked, as
///   HAProxy does without `sni`/`verifyhost`.
/// * `verify none`: any certificate is accepted (why: see `AcceptAnyServerCert`
///   in this module), though handshake signatures are still checked.
pub fn client_config(tls: &ServerTls, defaults: &TlsDefaults) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider::provider(&defaults.ciphersuites)?;
    let versions = provider::versions(defaults.min_version, defaults.max_version)?;
    provider::check_suites(&provider, &versions)?;
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let verifier: Arc<dyn ServerCertVerifier> = match tls.verify {
        Verify::None => Arc::new(AcceptAnyServerCert { provider: provider.clone() }),
        Verify::Optional | Verify::Required => {
            let (roots, pinned) = match &tls.ca_file {
                Some(ca) => (pem::load_roots(ca)?, pem::load_ca_certs(ca)?),
                None => {
                    (rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }, Vec::new())
                }
            };
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            Arc::new(ChainOnlyForAddresses { inner, pinned })
        }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match &tls.crt {
        Some(crt) => {
            let bundle = pem::load_bundle(crt)?;
            builder
                .with_client_auth_cert(bundle.chain, bundle.key)
                .map_err(|e| TlsError::BadKey { path: crt.clone(), reason: e.to_string() })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name to connect with: the `sni` literal, or the request's Host (port
/// stripped) for `sni req.hdr(host)`, else the server's IP address. rustls
/// sends no SNI for an IP address, which is what HAProxy does without `sni`.
pub fn server_name_for(
    tls: &ServerTls,
    server_addr: SocketAddr,
    request_host: Option<&str>,
) -> ServerName<'static> {
    let wanted = match &tls.sni {
        Some(ServerSni::Literal(name)) => Some(name.as_str()),
        Some(ServerSni::RequestHost) => request_host.map(strip_port),
        None => None,
    };
    wanted
        .and_then(|n| ServerName::try_from(n.trim_end_matches('.').to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(server_addr.ip().into()))
}

/// `example.com:8443` -> `example.com`, `[::1]:443` -> `::1`.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `verify none`: accepts whatever certificate the server shows.
///
/// This is what the operator asked for, and what HAProxy does: backends on a
/// private network commonly use self-signed certificates, and the TLS there is
/// for confidentiality against passive capture, not authentication. The
/// handshake signatures are still checked, so the server must at least hold
/// the key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// WebPKI verification, except that a connection named only by its IP address
/// (no `sni` configured) is not checked against the certificate's names:
/// HAProxy verifies the chain and checks a name only when `sni` or
/// `verifyhost` gives one, and backends are addressed by IP all the time.
///
/// A server presenting, as its own certificate, exactly one of the `ca-file`
/// certificates (the usual self-signed setup) is accepted when the name
/// matches: OpenSSL, hence HAProxy, accepts it, while WebPKI refuses a CA
/// certificate used as an end entity.
#[derive(Debug)]
struct ChainOnlyForAddresses {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ChainOnlyForAddresses {
    fn pinned_and_named(&self, end_entity: &CertificateDer<'_>, server_name: &ServerName<'_>) -> bool {
        if !self.pinned.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return false;
        }
        match server_name {
            ServerName::IpAddress(_) => true,
            name => webpki::EndEntityCert::try_from(end_entity)
                .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok()),
        }
    }
}

impl ServerCertVerifier for ChainOnlyForAddresses {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if matches!(server_name, ServerName::IpAddress(_)) => Ok(ServerCertVerified::assertion()),
            Err(_) if self.pinned_and_named(end_entity, server_name) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn tls(sni: Option<ServerSni>) -> ServerTls {
        ServerTls { verify: Verify::None, ca_file: None, crt: None, sni, alpn: Vec::new() }
    }

    #[test]
    fn server_names() {
        let addr: SocketAddr = "10.0.0.5:443".parse().expect("addr");
        let ip = ServerName::IpAddress("10.0.0.5".parse::<std::net::IpAddr>().expect("ip").into());
        assert_eq!(server_name_for(&tls(None), addr, Some("ignored.test")), ip);
        let lit = tls(Some(ServerSni::Literal("api.example.com".into())));
        assert_eq!(server_name_for(&lit, addr, None), ServerName::try_from("api.example.com").expect("dns"));
        let host = tls(Some(ServerSni::RequestHost));
        assert_eq!(
            server_name_for(&host, addr, Some("www.example.com:8443")),
            ServerName::try_from("www.example.com").expect("dns")
        );
        assert_eq!(
            server_name_for(&host, addr, Some("[::1]:443")),
            ServerName::IpAddress("::1".parse::<std::net::IpAddr>().expect("ip").into())
        );
        assert_eq!(server_name_for(&host, addr, None), ip);
        assert_eq!(server_name_for(&host, addr, Some("bad name!")), ip);
    }
}
