//! The ring provider, narrowed to the configured cipher suites, and the
//! protocol versions from `min`/`max` settings.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::SupportedProtocolVersion;

use super::TlsError;
use crate::conf::haproxy::model::TlsVersion;

/// The ring provider with only `suites` (rustls names; empty = all of ring's
/// defaults). OpenSSL's TLS 1.3 names (`TLS_AES_128_GCM_SHA256`) are accepted
/// too, since HAProxy configs use them in `ciphersuites`.
pub(super) fn provider(suites: &[String]) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !suites.is_empty() {
        let mut chosen = Vec::with_capacity(suites.len());
        for wanted in suites {
            let norm = normalize(wanted);
            let suite = provider
                .cipher_suites
                .iter()
                .find(|s| s.suite().as_str().is_some_and(|n| n.eq_ignore_ascii_case(&norm)))
                .ok_or_else(|| TlsError::UnknownCipher(wanted.clone()))?;
            chosen.push(*suite);
        }
        provider.cipher_suites = chosen;
    }
    Ok(Arc::new(provider))
}

fn normalize(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("TLS_") {
        Some(rest) if rest.starts_with("AES_") || rest.starts_with("CHACHA20_") => format!("TLS13_{rest}"),
        _ => upper,
    }
}

/// The versions between `min` and `max` (each defaulting to what rustls offers).
pub(super) fn versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let min = min.unwrap_or(TlsVersion::Tls12);
    let max = max.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(TlsError::VersionRange);
    }
    let mut out = Vec::with_capacity(2);
    if (min..=max).contains(&TlsVersion::Tls13) {
        out.push(&rustls::version::TLS13);
    }
    if (min..=max).contains(&TlsVersion::Tls12) {
        out.push(&rustls::version::TLS12);
    }
    Ok(out)
}

/// Fails unless some suite of `provider` serves one of `versions` (rustls
/// would refuse the builder with a less precise message).
pub(super) fn check_suites(
    provider: &CryptoProvider,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<(), TlsError> {
    if provider.cipher_suites.iter().any(|s| versions.contains(&s.version())) {
        Ok(())
    } else {
        Err(TlsError::NoUsableSuite)
    }
}
