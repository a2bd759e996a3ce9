//! Checks that the files a configuration names exist and can be read. The
//! only part of the haproxy module that does I/O.

use std::path::Path;

use super::model::*;
use crate::conf::Diagnostic;

/// Why `path` cannot be used as a `what` file, if it cannot.
fn unreadable(path: &Path, what: &str, directory_ok: bool) -> Option<String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Err(e) => Some(format!("unable to stat {what} '{shown}': {e}")),
        Ok(meta) if meta.is_dir() => {
            if !directory_ok {
                return Some(format!("{what} '{shown}' is a directory"));
            }
            std::fs::read_dir(path).err().map(|e| format!("cannot read {what} directory '{shown}': {e}"))
        }
        Ok(_) => std::fs::File::open(path).err().map(|e| format!("cannot read {what} '{shown}': {e}")),
    }
}

/// Verifies that certificate, CA, errorfile and `return file` paths exist and
/// are readable; each problem is an error at the line of its directive.
pub fn check_files(config: &Config, file: &str) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut check = |line: usize, path: &Path, what: &str, directory_ok: bool| {
        if let Some(message) = unreadable(path, what, directory_ok) {
            diags.push(Diagnostic::error(file, line, message));
        }
    };
    for proxy in &config.proxies {
        for bind in &proxy.binds {
            if let Some(tls) = &bind.tls {
                for cert in &tls.certs {
                    check(bind.line, cert, "SSL certificate", true);
                }
                if let Some(ca) = &tls.ca_file {
                    check(bind.line, ca, "CA file", false);
                }
            }
        }
        for server in &proxy.servers {
            if let Some(tls) = &server.tls {
                if let Some(ca) = &tls.ca_file {
                    check(server.line, ca, "CA file", false);
                }
                if let Some(crt) = &tls.crt {
                    check(server.line, crt, "client certificate", false);
                }
            }
        }
        for (code, path) in &proxy.errorfiles {
            let line = proxy.errorfile_lines.get(code).copied().unwrap_or(proxy.line);
            check(line, path, "errorfile", false);
        }
        for rule in &proxy.http_request {
            if let HttpRequestAction::Return(ret) = &rule.action {
                match &ret.body {
                    ReturnBody::File(path) => check(rule.line, path, "return file", false),
                    ReturnBody::ErrorFile(path) => check(rule.line, path, "errorfile", false),
                    _ => {}
                }
            }
        }
    }
    // Addresses of one `bind` share a line, and every proxy after a `defaults`
    // shares its errorfiles: report each problem once.
    let mut seen = std::collections::HashSet::new();
    diags.retain(|d| seen.insert((d.line, d.message.clone())));
    diags.sort_by_key(|d| d.line);
    diags
}
