//! `lanai check -f FILE` as a user runs it: exit codes and exact output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/haproxy/{name}")
}

/// Runs `lanai check` from the package root, so fixture paths stay relative.
fn lanai_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanai"))
        .arg("check")
        .args(args)
        .current_dir(manifest_dir())
        .output()
        .expect("lanai binary runs")
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr).lines().map(String::from).collect()
}

#[test]
fn valid_seed_prints_valid_and_exits_zero() {
    let file = fixture("seed003_failover.cfg");
    let output = lanai_check(&["-f", &file]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "Configuration file is valid\n");
    assert!(output.stderr.is_empty());
}

#[test]
fn warnings_do_not_fail_the_check() {
    let file = fixture("seed001_keepalived_ssl.cfg");
    let output = lanai_check(&["-f", &file, "--kind", "haproxy"]);
    assert_eq!(output.status.code(), Some(0));
    let lines = stderr_lines(&output);
    assert_eq!(
        lines[0],
        format!("{file}:12: warning: 'daemon' ignored: lanai proxy always runs in the foreground (the appliance supervises it)")
    );
    assert!(lines[1].starts_with(&format!("{file}:19: warning: cipher list 'ECDH+AESGCM")), "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn every_error_is_reported_with_its_line() {
    let file = fixture("invalid_mixed.cfg");
    let output = lanai_check(&["-f", &file]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let expected = [
        format!("{file}:3: warning: 'daemon' ignored: lanai proxy always runs in the foreground (the appliance supervises it)"),
        format!("{file}:4: unknown keyword 'frobnicate' in 'global' section"),
        format!("{file}:8: the 'contimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout connect'."),
        format!("{file}:15: error detected while parsing switching rule : no such ACL : 'is_api'"),
        format!("{file}:16: Proxy 'web': unable to find required default_backend: 'missing'"),
        format!(
            "{file}:20: backend 'api', another server named 'a' was already defined at line 19, please use distinct names"
        ),
    ];
    assert_eq!(stderr_lines(&output), expected);
}

#[test]
fn placeholders_in_seed_are_explained() {
    let file = fixture("invalid_seed002_placeholders.cfg");
    let output = lanai_check(&["-f", &file]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&output),
        [
            format!("{file}:14: 'server app/srv1' : '<srv1_ip>:<srv1_port>' is a placeholder, not an address: replace it with IP:PORT"),
            format!("{file}:15: 'server app/srv2' : '<srv2_ip>:<srv2_port>' is a placeholder, not an address: replace it with IP:PORT"),
        ]
    );
}

#[test]
fn missing_files_are_errors_at_the_directive_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("haproxy.cfg");
    let text = "\
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
    errorfile 503 /nonexistent/lanai/503.http

frontend web
    bind 127.0.0.1:18443 ssl crt /nonexistent/lanai/site.pem
    default_backend app

backend app
    server a 127.0.0.1:18001 ssl verify required ca-file /nonexistent/lanai/ca.pem
";
    std::fs::write(&config, text).expect("write config");
    let name = config.display().to_string();
    let output = lanai_check(&["-f", &name]);
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 3, "{lines:?}");
    // Sorted by line; the errorfile comes from defaults and is reported once.
    assert!(lines[0].starts_with(&format!("{name}:6: unable to stat errorfile")), "{lines:?}");
    assert!(
        lines[1]
            .starts_with(&format!("{name}:9: unable to stat SSL certificate '/nonexistent/lanai/site.pem'")),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with(&format!("{name}:13: unable to stat CA file '/nonexistent/lanai/ca.pem'")),
        "{lines:?}"
    );
}

#[test]
fn unreadable_config_file() {
    let missing = PathBuf::from("/nonexistent/lanai.cfg");
    let output = lanai_check(&["-f", missing.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    assert!(lines[0].starts_with("/nonexistent/lanai.cfg:0: cannot read file:"), "{lines:?}");
}

#[test]
fn only_known_kinds_are_accepted() {
    let file = fixture("seed003_failover.cfg");
    let output = lanai_check(&["-f", &file, "--kind", "lvs"]);
    assert_eq!(output.status.code(), Some(2), "clap rejects unknown kinds");
    assert!(String::from_utf8_lossy(&output.stderr).contains("haproxy"));
}
