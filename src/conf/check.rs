//! `lanai check`: validate a configuration file of a given kind.

use std::path::Path;

use super::{haproxy, has_errors, Diagnostic};

/// The configuration formats `lanai check --kind` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigKind {
    /// haproxy.cfg (LB Layer7).
    Haproxy,
}

/// Reads and validates `path`: parse, then (when parsing succeeded) check the
/// files it names. Returns every diagnostic and whether the file is valid.
pub fn check_file(path: &Path, kind: ConfigKind) -> (Vec<Diagnostic>, bool) {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return (vec![Diagnostic::error(&name, 0, format!("cannot read file: {e}"))], false),
    };
    match kind {
        ConfigKind::Haproxy => {
            let (config, mut diags) = haproxy::parse(&name, &text);
            if let Some(config) = config {
                diags.extend(haproxy::check_files(&config, &name));
                diags.sort_by_key(|d| d.line);
            }
            let valid = !has_errors(&diags);
            (diags, valid)
        }
    }
}
