//! `lanai check`: validate a configuration of a given kind.

use std::path::Path;

use super::{haproxy, has_errors, keepalived, rc, Diagnostic};

/// The configuration formats `lanai check --kind` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigKind {
    /// haproxy.cfg (LB Layer7).
    Haproxy,
    /// keepalived.conf (VRRP).
    Keepalived,
    /// config.rc (`service NAME [instance]` blocks: network, autostart).
    Rc,
}

/// Validates `text` (named `name` in diagnostics): parse, then, when parsing
/// succeeded, check the files it names. Returns every diagnostic in line
/// order and whether the configuration is valid.
pub fn check_text(name: &str, text: &str, kind: ConfigKind) -> (Vec<Diagnostic>, bool) {
    match kind {
        ConfigKind::Haproxy => {
            let (config, mut diags) = haproxy::parse(name, text);
            if let Some(config) = config {
                diags.extend(haproxy::check_files(&config, name));
                diags.sort_by_key(|d| d.line);
            }
            let valid = !has_errors(&diags);
            (diags, valid)
        }
        ConfigKind::Keepalived => {
            let (config, mut diags) = keepalived::parse(name, text);
            diags.sort_by_key(|d| d.line);
            let valid = config.is_some() && !has_errors(&diags);
            (diags, valid)
        }
        ConfigKind::Rc => {
            let (config, diags) = rc::parse(name, text);
            let valid = config.is_some() && !has_errors(&diags);
            (diags, valid)
        }
    }
}

/// Reads `path` and validates it like [`check_text`].
pub fn check_file(path: &Path, kind: ConfigKind) -> (Vec<Diagnostic>, bool) {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => check_text(&name, &text, kind),
        Err(e) => (vec![Diagnostic::error(&name, 0, format!("cannot read file: {e}"))], false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_with_warnings_is_valid() {
        let (diags, valid) = check_text("x.cfg", "global\n  daemon\n", ConfigKind::Haproxy);
        assert!(valid);
        assert_eq!(diags.len(), 1);
    }

    #[test]
    fn keepalived_kind_reports_lines() {
        let good = "vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 101\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n";
        let (diags, valid) = check_text("k.conf", good, ConfigKind::Keepalived);
        assert!(valid, "{diags:#?}");
        let (diags, valid) = check_text(
            "k.conf",
            &good.replace("  priority 101\n", "  frobnicate 1\n"),
            ConfigKind::Keepalived,
        );
        assert!(!valid);
        assert!(diags.iter().any(|d| d.line == 5 && d.message.contains("frobnicate")), "{diags:#?}");
    }

    #[test]
    fn file_checks_run_only_after_a_clean_parse() {
        let text = "frontend f\n  bind :443 ssl crt /nonexistent/site.pem\n  frobnicate\n";
        let (diags, valid) = check_text("x.cfg", text, ConfigKind::Haproxy);
        assert!(!valid);
        assert!(diags.iter().all(|d| !d.message.contains("site.pem")), "{diags:#?}");
        let (diags, valid) = check_text("x.cfg", &text.replace("  frobnicate\n", ""), ConfigKind::Haproxy);
        assert!(!valid);
        assert!(diags.iter().any(|d| d.line == 2 && d.message.contains("site.pem")), "{diags:#?}");
    }
}
