//! The console's HTTPS identity: a self-signed certificate generated on first
//! start (rcgen, ring) and reused afterwards, so a browser exception or a
//! pinned certificate stays valid across restarts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// `DATA_DIR/tls/cert.pem` and `DATA_DIR/tls/key.pem`.
pub fn paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Loads the console certificate, generating it first if it does not exist.
pub fn load_or_create(data_dir: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let (cert_path, key_path) = paths(data_dir);
    if !cert_path.exists() || !key_path.exists() {
        generate(&cert_path, &key_path)?;
    }
    server_config(&cert_path, &key_path)
}

/// The names the certificate is valid for: this host, localhost and 127.0.0.1.
fn names() -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Ok(host) = nix::unistd::gethostname() {
        if let Some(host) = host.to_str() {
            if !host.is_empty() && !names.iter().any(|n| n == host) {
                names.insert(0, host.to_string());
            }
        }
    }
    names
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<(), String> {
    let dir = cert_path.parent().ok_or("certificate path has no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let certified =
        rcgen::generate_simple_self_signed(names()).map_err(|e| format!("generating a certificate: {e}"))?;
    // The key first, private from its creation (mode at open, not a chmod
    // after the fact, so it is never readable by others even for a moment).
    write_file(key_path, certified.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, certified.cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed console certificate");
    Ok(())
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(data).and_then(|()| file.sync_all()).map_err(|e| format!("{}: {e}", path.display()))
}

/// rustls server configuration with ring as the one crypto provider.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| format!("{}: {e}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("TLS: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_key_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        load_or_create(dir.path()).expect("first start");
        let (cert, key) = paths(dir.path());
        let first = std::fs::read(&cert).expect("cert");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        load_or_create(dir.path()).expect("second start");
        assert_eq!(first, std::fs::read(&cert).expect("cert"), "certificate must be reused");
    }
}
