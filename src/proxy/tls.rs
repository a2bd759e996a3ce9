//! TLS with rustls, configured the way HAProxy's `ssl` keywords configure
//! OpenSSL.
//!
//! * [`server_config`] terminates TLS on a `bind … ssl crt …` line: every `crt`
//!   (a PEM bundle, or a directory of them; a `<crt>.key` sibling when the
//!   bundle has no key; a `<crt>.ocsp` sibling is stapled), certificate
//!   selection by SNI, ALPN, protocol versions, cipher suites, client
//!   certificates, session resumption (cache + tickets).
//! * [`client_config`] and [`server_name_for`] originate TLS toward a
//!   `server … ssl` line.
//!
//! One crypto provider for the whole project: every config is built from
//! `rustls::crypto::ring::default_provider()` explicitly, never from a process
//! default, so nothing depends on which crate installed one first.

mod client;
mod der;
mod pem;
mod provider;
mod server;

use std::path::PathBuf;

pub use client::{client_config, server_name_for};
pub use server::server_config;

/// Why a TLS configuration could not be built. File errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: no certificate found (expected a PEM \"CERTIFICATE\" block)")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no private key found (looked in the file and in {path}.key)")]
    NoKey { path: PathBuf },
    #[error("{path}: invalid PEM: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error("{path}: unusable private key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("{path}: private key does not match the certificate")]
    KeyMismatch { path: PathBuf },
    #[error("{path}: certificate is not valid X.509: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{path}: directory holds no certificate file")]
    EmptyDirectory { path: PathBuf },
    #[error("bind has `ssl` but no `crt`")]
    NoCrt,
    #[error("{path}: no usable CA certificate: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("`verify optional|required` needs a `ca-file`")]
    VerifyWithoutCa,
    #[error("unknown cipher suite `{0}` (rustls names, e.g. TLS13_AES_128_GCM_SHA256)")]
    UnknownCipher(String),
    #[error("minimum TLS version is above the maximum")]
    VersionRange,
    #[error("no cipher suite left for the allowed TLS versions")]
    NoUsableSuite,
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

#[cfg(test)]
mod tests;
