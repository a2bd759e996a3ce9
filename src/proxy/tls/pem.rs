//! Reading certificates and keys the way HAProxy's `crt` and `ca-file` take
//! them.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;
use crate::conf::source::{self, Kind};

/// Siblings HAProxy reads next to a `crt` file (key, OCSP response, issuer,
/// SCT list); in a `crt` directory they are not certificates of their own.
const SIBLING_EXTENSIONS: [&str; 4] = ["key", "ocsp", "issuer", "sctl"];

/// A certificate chain (leaf first) and its private key, from one file.
#[derive(Debug)]
pub(super) struct PemBundle {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    source::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn bad_pem(path: &Path, e: pem::Error) -> TlsError {
    TlsError::BadPem { path: path.to_path_buf(), reason: e.to_string() }
}

/// Every certificate in `bytes`, in file order.
fn certs(path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(bytes).collect::<Result<Vec<_>, _>>().map_err(|e| bad_pem(path, e))
}

/// The first private key in `bytes`: PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) or
/// SEC1 (`EC PRIVATE KEY`).
fn key(path: &Path, bytes: &[u8]) -> Result<Option<PrivateKeyDer<'static>>, TlsError> {
    match PrivateKeyDer::from_pem_slice(bytes) {
        Ok(k) => Ok(Some(k)),
        Err(pem::Error::NoItemsFound) => Ok(None),
        Err(e) => Err(bad_pem(path, e)),
    }
}

/// The files a `crt` argument stands for: the file itself, or every regular
/// file of a directory, sorted by name, without sibling files.
pub(super) fn expand_crt(path: &Path) -> Result<Vec<PathBuf>, TlsError> {
    let kind = source::kind(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })?;
    if kind != Kind::Dir {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries =
        source::read_dir(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })?;
    let mut files = Vec::new();
    for (p, kind) in entries {
        let is_sibling =
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| SIBLING_EXTENSIONS.contains(&e));
        // Symlinks are followed (certbot-style layouts); anything not a file is skipped.
        if !is_sibling && kind == Kind::File {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(TlsError::EmptyDirectory { path: path.to_path_buf() });
    }
    Ok(files)
}

/// Loads a `crt` file: its certificates, and its key, or else the key of the
/// `<file>.key` sibling as HAProxy does.
pub(super) fn load_bundle(path: &Path) -> Result<PemBundle, TlsError> {
    let bytes = read(path)?;
    let chain = certs(path, &bytes)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    let key = match key(path, &bytes)? {
        Some(k) => k,
        None => {
            let mut sibling = path.as_os_str().to_owned();
            sibling.push(".key");
            let sibling = PathBuf::from(sibling);
            match source::read(&sibling) {
                Ok(kb) => key(&sibling, &kb)?.ok_or(TlsError::NoKey { path: path.to_path_buf() })?,
                Err(_) => return Err(TlsError::NoKey { path: path.to_path_buf() }),
            }
        }
    };
    Ok(PemBundle { chain, key })
}

/// The certificates of a `ca-file`, as written (to recognise a pinned
/// self-signed server certificate).
pub(super) fn load_ca_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    certs(path, &bytes)
}

/// The OCSP response HAProxy staples for `crt`: the DER file `<crt>.ocsp`,
/// when there is one (kept fresh by an external updater, as with HAProxy).
pub(super) fn load_ocsp(crt: &Path) -> Result<Option<Vec<u8>>, TlsError> {
    let mut sibling = crt.as_os_str().to_owned();
    sibling.push(".ocsp");
    let sibling = PathBuf::from(sibling);
    match source::read(&sibling) {
        Ok(bytes) if bytes.is_empty() => Ok(None),
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Read { path: sibling, source }),
    }
}

/// Loads a `ca-file` into a root store.
pub(super) fn load_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let bytes = read(path)?;
    let found = certs(path, &bytes)?;
    if found.is_empty() {
        return Err(TlsError::CaFile { path: path.to_path_buf(), reason: "no certificate in file".into() });
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found);
    if added == 0 {
        return Err(TlsError::CaFile {
            path: path.to_path_buf(),
            reason: format!("none of its {ignored} certificates could be parsed"),
        });
    }
    if ignored > 0 {
        tracing::warn!(path = %path.display(), ignored, "ca-file: some certificates were not usable");
    }
    Ok(roots)
}
