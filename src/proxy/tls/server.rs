//! `bind … ssl crt …`: the rustls server side.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use super::{der, pem, provider, TlsError};
use crate::conf::haproxy::model::{BindTls, TlsDefaults, Verify};

/// HAProxy's default `tune.ssl.cachesize`.
const SESSION_CACHE_SIZE: usize = 20_000;

/// Builds the rustls config for a TLS `bind`. Settings on the bind line win
/// over `ssl-default-bind-*` (`defaults`), field by field.
pub fn server_config(bind: &BindTls, defaults: &TlsDefaults) -> Result<Arc<ServerConfig>, TlsError> {
    let suites = if bind.ciphersuites.is_empty() { &defaults.ciphersuites } else { &bind.ciphersuites };
    let provider = provider::provider(suites)?;
    let versions = provider::versions(
        bind.min_version.or(defaults.min_version),
        bind.max_version.or(defaults.max_version),
    )?;
    provider::check_suites(&provider, &versions)?;
    let resolver = SniResolver::load(&bind.certs, &provider)?;

    let builder = ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match (bind.verify, &bind.ca_file) {
        (Verify::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err(TlsError::VerifyWithoutCa),
        (verify, Some(ca)) => {
            let roots = Arc::new(pem::load_roots(ca)?);
            let mut v = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            if verify == Verify::Optional {
                v = v.allow_unauthenticated();
            }
            let v = v.build().map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = bind.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    // Resumption as HAProxy offers it: a session cache the size of its
    // default `tune.ssl.cachesize`, and stateless tickets (keys rotated by
    // rustls), so reconnecting clients skip the full handshake.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}

/// Picks the certificate for a ClientHello as HAProxy does: the SNI matched
/// against the certificates' SAN DNS names and subject CNs, exactly first,
/// then by wildcard (`*.example.com` covers one label), and the first
/// certificate loaded when nothing matches or no SNI was sent.
///
/// When several certificates match a name (an RSA and an ECDSA one, like
/// HAProxy's multi-cert bundles), the first one whose key can sign with a
/// scheme the client offered wins.
#[derive(Debug)]
pub(super) struct SniResolver {
    exact: HashMap<String, Vec<Arc<CertifiedKey>>>,
    /// Keyed by the part after `*.`.
    wildcard: HashMap<String, Vec<Arc<CertifiedKey>>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    fn load(
        crts: &[std::path::PathBuf],
        provider: &rustls::crypto::CryptoProvider,
    ) -> Result<Self, TlsError> {
        let mut exact: HashMap<String, Vec<Arc<CertifiedKey>>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<Arc<CertifiedKey>>> = HashMap::new();
        let mut default = None;
        for crt in crts {
            for file in pem::expand_crt(crt)? {
                let (key, names) = certified_key(&file, provider)?;
                for name in names {
                    let name = name.to_ascii_lowercase();
                    match name.strip_prefix("*.") {
                        Some(suffix) => wildcard.entry(suffix.to_string()).or_default().push(key.clone()),
                        None => exact.entry(name).or_default().push(key.clone()),
                    }
                }
                default.get_or_insert(key);
            }
        }
        let default = default.ok_or(TlsError::NoCrt)?;
        Ok(SniResolver { exact, wildcard, default })
    }

    fn pick(&self, sni: Option<&str>, schemes: &[rustls::SignatureScheme]) -> Arc<CertifiedKey> {
        let choose = |keys: &Vec<Arc<CertifiedKey>>| {
            keys.iter().find(|k| k.key.choose_scheme(schemes).is_some()).or(keys.first()).cloned()
        };
        if let Some(sni) = sni {
            let sni = sni.trim_end_matches('.').to_ascii_lowercase();
            if let Some(k) = self.exact.get(&sni).and_then(choose) {
                return k;
            }
            if let Some((_, parent)) = sni.split_once('.') {
                if let Some(k) = self.wildcard.get(parent).and_then(choose) {
                    return k;
                }
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name(), hello.signature_schemes()))
    }
}

/// One `crt` file as a rustls CertifiedKey, with the DNS names it serves.
fn certified_key(
    file: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<(Arc<CertifiedKey>, Vec<String>), TlsError> {
    let bundle = pem::load_bundle(file)?;
    let names = {
        let leaf =
            bundle.chain.first().ok_or_else(|| TlsError::NoCertificate { path: file.to_path_buf() })?;
        let ee = webpki::EndEntityCert::try_from(leaf)
            .map_err(|e| TlsError::BadCertificate { path: file.to_path_buf(), reason: format!("{e:?}") })?;
        // HAProxy indexes the subject CNs too, not only the SAN DNS names.
        let mut names: Vec<String> = ee.valid_dns_names().map(str::to_string).collect();
        for cn in der::common_names(ee.subject()) {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&cn)) {
                names.push(cn);
            }
        }
        names
    };
    let signing = provider
        .key_provider
        .load_private_key(bundle.key)
        .map_err(|e| TlsError::BadKey { path: file.to_path_buf(), reason: e.to_string() })?;
    let mut key = CertifiedKey::new(bundle.chain, signing);
    key.ocsp = pem::load_ocsp(file)?;
    match key.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(TlsError::KeyMismatch { path: file.to_path_buf() })
        }
        Err(e) => return Err(TlsError::BadCertificate { path: file.to_path_buf(), reason: e.to_string() }),
    }
    if names.is_empty() {
        tracing::debug!(file = %file.display(), "certificate has no DNS name: only usable as the default");
    }
    Ok((Arc::new(key), names))
}
