//! Checks that the files a configuration names exist and can be used. The
//! only part of the haproxy module that does I/O, through `conf::source`
//! (the file system, or the chroot's file broker).

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::model::*;
use crate::conf::source::{self, Kind};
use crate::conf::Diagnostic;

/// What a file named by the configuration must contain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Any readable file (errorfiles, `return file`).
    Readable,
    /// PEM certificates (CA files).
    Certificates,
    /// A PEM certificate and its private key (in the file or in `FILE.key`).
    CertAndKey,
}

/// Files HAProxy skips when `crt` names a directory: companions of a certificate.
fn is_companion(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.starts_with('.') || [".key", ".ocsp", ".issuer", ".sctl"].iter().any(|ext| name.ends_with(ext))
}

fn check_content(path: &Path, expect: Expect) -> Result<(), String> {
    let shown = path.display();
    let bytes = source::read(path).map_err(|e| format!("cannot read '{shown}': {e}"))?;
    if expect == Expect::Readable {
        return Ok(());
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid PEM in '{shown}': {e}"))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in '{shown}' (PEM expected)"));
    }
    if expect == Expect::Certificates {
        return Ok(());
    }
    // The key is in the file, or beside it as `FILE.key` (as HAProxy loads it).
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".key");
    let sidecar = PathBuf::from(sidecar);
    let key = match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => key,
        Err(_) => source::read(&sidecar)
            .ok()
            .and_then(|key_bytes| PrivateKeyDer::from_pem_slice(&key_bytes).ok())
            .ok_or_else(|| format!("no private key found in '{shown}' nor in '{}'", sidecar.display()))?,
    };
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key in '{shown}': {e}"))?;
    // Only a proven mismatch is reported: certificates webpki cannot parse
    // are the TLS layer's business when it loads them.
    let certified = rustls::sign::CertifiedKey::new(certs, signing_key);
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        certified.keys_match()
    {
        return Err(format!("the private key does not match the certificate in '{shown}'"));
    }
    Ok(())
}

/// Why `path` cannot be used as a `what`, if it cannot. Directories are
/// accepted for certificates (`crt DIR` loads every certificate in it).
fn problem(path: &Path, what: &str, expect: Expect) -> Option<String> {
    let shown = path.display();
    let kind = match source::kind(path) {
        Ok(kind) => kind,
        Err(e) => return Some(format!("unable to stat {what} '{shown}': {e}")),
    };
    if kind != Kind::Dir {
        return check_content(path, expect).err().map(|e| format!("{what}: {e}"));
    }
    if expect != Expect::CertAndKey {
        return Some(format!("{what} '{shown}' is a directory"));
    }
    let entries = match source::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => return Some(format!("cannot read {what} directory '{shown}': {e}")),
    };
    let files: Vec<PathBuf> = entries
        .into_iter()
        .filter(|(p, kind)| *kind == Kind::File && !is_companion(p))
        .map(|(p, _)| p)
        .collect();
    if files.is_empty() {
        return Some(format!("{what} directory '{shown}' holds no certificate"));
    }
    files.iter().find_map(|file| check_content(file, expect).err()).map(|e| format!("{what}: {e}"))
}

/// Verifies that certificate, CA, errorfile and `return file` paths exist and
/// hold what they should; each problem is an error at the line of its directive.
pub fn check_files(config: &Config, file: &str) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    // The proxy could not start in a jail that is not there (HAProxy's
    // `-c` does not look; its start fails the same way).
    if let Some(dir) = &config.global.chroot {
        if source::kind(dir).ok() != Some(Kind::Dir) {
            diags.push(Diagnostic::error(
                file,
                config.global.chroot_line,
                format!("chroot directory '{}' does not exist", dir.display()),
            ));
        }
    }
    each_file(config, |line, path, what, expect| {
        if let Some(message) = problem(path, what, expect) {
            diags.push(Diagnostic::error(file, line, message));
        }
    });
    // Addresses of one `bind` share a line, and every proxy after a `defaults`
    // shares its errorfiles: report each problem once.
    let mut seen = std::collections::HashSet::new();
    diags.retain(|d| seen.insert((d.line, d.message.clone())));
    diags.sort_by_key(|d| d.line);
    diags
}

/// Every file or directory the configuration names, the chroot directory
/// included (what the chroot's file broker may hand out, with the companions
/// and entries of these).
pub fn referenced_files(config: &Config) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = config.global.chroot.iter().cloned().collect();
    each_file(config, |_, path, _, _| paths.push(path.to_path_buf()));
    paths.sort();
    paths.dedup();
    paths
}

/// Calls `check` for every file the configuration names, with its line.
fn each_file(config: &Config, mut check: impl FnMut(usize, &Path, &'static str, Expect)) {
    for proxy in &config.proxies {
        for bind in &proxy.binds {
            if let Some(tls) = &bind.tls {
                for cert in &tls.certs {
                    check(bind.line, cert, "SSL certificate", Expect::CertAndKey);
                }
                if let Some(ca) = &tls.ca_file {
                    check(bind.line, ca, "CA file", Expect::Certificates);
                }
            }
        }
        for server in &proxy.servers {
            if let Some(tls) = &server.tls {
                if let Some(ca) = &tls.ca_file {
                    check(server.line, ca, "CA file", Expect::Certificates);
                }
                if let Some(crt) = &tls.crt {
                    check(server.line, crt, "client certificate", Expect::CertAndKey);
                }
            }
        }
        for (code, path) in &proxy.errorfiles {
            let line = proxy.errorfile_lines.get(code).copied().unwrap_or(proxy.line);
            check(line, path, "errorfile", Expect::Readable);
        }
        for rule in &proxy.http_request {
            if let HttpRequestAction::Return(ret) = &rule.action {
                match &ret.body {
                    ReturnBody::File(path) => check(rule.line, path, "return file", Expect::Readable),
                    ReturnBody::ErrorFile(path) => check(rule.line, path, "errorfile", Expect::Readable),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroot_directory_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let text =
            format!("global\n  chroot {}\n  chroot {}/nope\n", dir.path().display(), dir.path().display());
        let (config, _) = super::super::parse("t.cfg", &text);
        let diags = check_files(&config.unwrap(), "t.cfg");
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert_eq!(diags[0].line, 3);
        assert!(diags[0].message.contains("chroot directory") && diags[0].message.contains("nope"));
        let (config, _) =
            super::super::parse("t.cfg", &format!("global\n  chroot {}\n", dir.path().display()));
        assert!(check_files(&config.unwrap(), "t.cfg").is_empty());
    }

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/certs").join(name);
        std::fs::read_to_string(path).expect("fixture certificate")
    }

    /// (certificate PEM, private key PEM) of the test site certificate, and the CA certificate.
    fn material() -> (String, String, String) {
        let site = fixture("site.pem");
        let key_at = site.find("-----BEGIN PRIVATE KEY-----").expect("key in site.pem");
        (site[..key_at].to_string(), site[key_at..].to_string(), fixture("ca.pem"))
    }

    fn config_with(dir: &Path, crt: &str, ca: &str) -> Config {
        let text = format!(
            "frontend f\n  bind :443 ssl crt {} ca-file {}\n  errorfile 503 {}\n",
            dir.join(crt).display(),
            dir.join(ca).display(),
            dir.join("503.http").display()
        );
        let (config, diags) = super::super::parse("t.cfg", &text);
        config.unwrap_or_else(|| panic!("{diags:#?}"))
    }

    #[test]
    fn certificates_keys_and_errorfiles() {
        let (cert, key, ca) = material();
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path();
        std::fs::write(p.join("both.pem"), format!("{cert}{key}")).expect("write");
        std::fs::write(p.join("ca.pem"), &ca).expect("write");
        std::fs::write(p.join("503.http"), "HTTP/1.0 503\r\n\r\n").expect("write");
        assert_eq!(check_files(&config_with(p, "both.pem", "ca.pem"), "t.cfg"), []);

        // A key beside the certificate, as `FILE.key`, is found too.
        std::fs::write(p.join("split.pem"), &cert).expect("write");
        std::fs::write(p.join("split.pem.key"), &key).expect("write");
        assert_eq!(check_files(&config_with(p, "split.pem", "ca.pem"), "t.cfg"), []);

        // A certificate without key, and a CA file without certificate.
        std::fs::write(p.join("nokey.pem"), &cert).expect("write");
        std::fs::write(p.join("empty.pem"), "").expect("write");
        let diags = check_files(&config_with(p, "nokey.pem", "empty.pem"), "t.cfg");
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(diags.iter().map(|d| d.line).collect::<Vec<_>>(), [2, 2]);
        assert!(messages[0].starts_with("SSL certificate: no private key found in"), "{messages:?}");
        assert!(messages[1].starts_with("CA file: no certificate found in"), "{messages:?}");

        // The CA's certificate with the site's key: a mismatch.
        std::fs::write(p.join("mismatch.pem"), format!("{ca}{key}")).expect("write");
        let diags = check_files(&config_with(p, "mismatch.pem", "ca.pem"), "t.cfg");
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert!(diags[0].message.contains("does not match"), "{diags:#?}");

        std::fs::remove_file(p.join("503.http")).expect("remove");
        let diags = check_files(&config_with(p, "both.pem", "ca.pem"), "t.cfg");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].line, 3);
        assert!(diags[0].message.starts_with("unable to stat errorfile"));
    }

    #[test]
    fn certificate_directories() {
        let (cert, key, ca) = material();
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).expect("mkdir");
        std::fs::write(dir.path().join("ca.pem"), &ca).expect("write");
        std::fs::write(dir.path().join("503.http"), "x").expect("write");
        std::fs::write(certs.join("a.pem"), format!("{cert}{key}")).expect("write");
        std::fs::write(certs.join("a.pem.ocsp"), "binary").expect("write");
        assert_eq!(check_files(&config_with(dir.path(), "certs", "ca.pem"), "t.cfg"), []);
        std::fs::write(certs.join("b.pem"), &cert).expect("write");
        let diags = check_files(&config_with(dir.path(), "certs", "ca.pem"), "t.cfg");
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert!(diags[0].message.contains("b.pem"));
    }
}
