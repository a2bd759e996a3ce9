//! Differential test: `haproxy -c -f F` (HAProxy 2.6, the reference) and
//! `lanai check -f F` agree on which configurations are valid. Where Lanai
//! differs on purpose, the config is in `INTENTIONAL_DIFFERENCES` and the test
//! asserts that they do differ, so the list stays true.

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// HAProxy's verdict: exit 0 (valid) or 2 (valid but nothing to listen on)
/// versus 1 (errors).
fn haproxy_accepts(path: &Path) -> bool {
    let output = Command::new("haproxy")
        .args(["-c", "-q", "-f"])
        .arg(path)
        .current_dir(manifest_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run haproxy ({e}): this test needs it, run `apt-get install haproxy`")
        });
    match output.status.code() {
        Some(0) | Some(2) => true,
        Some(1) => false,
        other => panic!("haproxy -c exited with {other:?} on {}", path.display()),
    }
}

fn lanai_accepts(path: &Path) -> bool {
    let output = Command::new(env!("CARGO_BIN_EXE_lanai"))
        .args(["check", "-f"])
        .arg(path)
        .current_dir(manifest_dir())
        .output()
        .expect("lanai binary runs");
    match output.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("lanai check exited with {other:?} on {}", path.display()),
    }
}

const TIMEOUTS: &str = "defaults\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n";

/// Small configurations, each probing one rule: (name, body after a
/// `defaults` section with timeouts).
const CRAFTED: &[(&str, &str)] = &[
    ("open_file_limits", "global\n  maxconn 1000\n  ulimit-n 5000\n  no strict-limits\n  strict-limits\n"),
    ("strict_limits_takes_no_argument", "global\n  strict-limits yes\n"),
    ("minimal_http", "frontend f\n  mode http\n  bind 127.0.0.1:18080\n  default_backend b\nbackend b\n  mode http\n  server s 127.0.0.1:18001\n"),
    ("unknown_keyword", "frontend f\n  bind 127.0.0.1:18080\n  frobnicate 1\n"),
    ("server_in_frontend", "frontend f\n  bind 127.0.0.1:18080\n  server s 127.0.0.1:18001\n"),
    ("duplicate_frontends", "frontend f\n  bind 127.0.0.1:18080\nfrontend f\n  bind 127.0.0.1:18081\n"),
    ("frontend_and_backend_share_name", "frontend x\n  bind 127.0.0.1:18080\n  default_backend x\nbackend x\n  server s 127.0.0.1:18001\n"),
    ("listen_clashes_with_backend", "listen x\n  bind 127.0.0.1:18080\n  server s 127.0.0.1:18001\nbackend x\n  server s 127.0.0.1:18001\n"),
    ("missing_default_backend", "frontend f\n  bind 127.0.0.1:18080\n  default_backend nope\n"),
    ("missing_use_backend", "frontend f\n  bind 127.0.0.1:18080\n  use_backend nope if TRUE\n"),
    ("undeclared_acl", "frontend f\n  bind 127.0.0.1:18080\n  use_backend b if is_api\nbackend b\n  server s 127.0.0.1:18001\n"),
    ("acl_declared_after_use", "frontend f\n  bind 127.0.0.1:18080\n  use_backend b if is_api\n  acl is_api path_beg /api\nbackend b\n  server s 127.0.0.1:18001\n"),
    ("acls_named_anonymous_predefined", "frontend f\n  mode http\n  bind 127.0.0.1:18080\n  acl api path_beg /api /v2\n  acl api hdr_dom(host) -i api.example.com\n  acl net src 10.0.0.0/8 192.168.0.0/16 ::1\n  acl hi dst_port 1024:65535 gt 9000\n  use_backend b if api !net || { method POST } METH_GET or LOCALHOST HTTP_1.1\n  use_backend b unless hi\n  default_backend b\nbackend b\n  mode http\n  server s 127.0.0.1:18001\n"),
    ("http_frontend_tcp_backend", "frontend f\n  mode http\n  bind 127.0.0.1:18080\n  default_backend b\nbackend b\n  mode tcp\n  server s 127.0.0.1:18001\n"),
    ("tcp_frontend_http_backend", "frontend f\n  mode tcp\n  bind 127.0.0.1:18080\n  default_backend b\nbackend b\n  mode http\n  server s 127.0.0.1:18001\n"),
    ("legacy_contimeout", "backend b\n  contimeout 5000\n  server s 127.0.0.1:18001\n"),
    ("ssl_bind_without_crt", "frontend f\n  bind 127.0.0.1:18443 ssl\n"),
    ("ssl_bind_full", "frontend f\n  mode http\n  bind 127.0.0.1:18443 ssl crt tests/fixtures/certs/site.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2 ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256 ciphersuites TLS_AES_128_GCM_SHA256 name https accept-proxy\n  default_backend b\nbackend b\n  mode http\n  server s 127.0.0.1:18001\n"),
    ("server_ssl_verify_none", "backend b\n  server s 127.0.0.1:18443 ssl verify none sni str(example.com) alpn h2\n"),
    ("server_ssl_without_ca", "backend b\n  server s 127.0.0.1:18443 ssl\n"),
    ("server_ssl_with_ca", "backend b\n  server s 127.0.0.1:18443 ssl verify required ca-file tests/fixtures/certs/ca.pem check-ssl check\n"),
    ("duplicate_servers", "backend b\n  server s 127.0.0.1:18001\n  server s 127.0.0.1:18002\n"),
    ("nbsrv_missing_backend", "frontend f\n  bind 127.0.0.1:18080\n  use_backend b if { nbsrv(nope) gt 0 }\nbackend b\n  server s 127.0.0.1:18001\n"),
    ("http_rules", "frontend f\n  mode http\n  bind 127.0.0.1:18080\n  acl blocked src 192.0.2.0/24\n  http-request deny deny_status 429 if blocked\n  http-request redirect location /new code 301 if { path /old }\n  http-request redirect prefix https://example.com drop-query if { path_beg /p }\n  http-request set-header X-Client %[src]\n  http-request add-header X-Via lanai\n  http-request del-header X-Debug\n  http-request replace-header Cookie (.*) \\1\n  http-request replace-value Host (.*):8080 \\1:8443\n  http-request set-path /index.html if { path / }\n  http-request return status 200 content-type text/plain string ok hdr X-A b if { path /ok }\n  http-request use-service prometheus-exporter if { path /metrics }\n  http-request allow\n  http-response set-header X-Frame-Options DENY\n  http-response del-header Server\n  redirect scheme https code 302 if !{ ssl_fc }\n  default_backend b\nbackend b\n  mode http\n  retry-on conn-failure empty-response 503\n  http-request disable-l7-retry if METH_POST\n  server s 127.0.0.1:18001\n"),
    ("converter_in_log_format", "frontend f\n  mode http\n  bind 127.0.0.1:18080\n  http-request set-header X-A %[src,nosuchconv]\n"),
    ("tcp_rules", "frontend f\n  mode tcp\n  bind 127.0.0.1:18443\n  tcp-request inspect-delay 5s\n  tcp-request connection reject if { src 192.0.2.1 }\n  tcp-request content accept if { req_ssl_hello_type 1 }\n  use_backend b if { req.ssl_sni -i example.com }\n  default_backend b\nbackend b\n  mode tcp\n  server s 127.0.0.1:18001\n"),
    ("backend_features", "backend b\n  mode http\n  balance uri whole len 10 depth 2\n  cookie SRV insert indirect nocache httponly secure domain .example.com attr SameSite=Lax\n  option redispatch\n  option allbackups\n  retries 2\n  http-reuse aggressive\n  fullconn 100\n  default-server inter 3s fall 2 rise 4 weight 10 maxconn 50\n  server a 127.0.0.1:18001 check cookie a id 5\n  server b localhost:18002 check cookie b backup send-proxy-v2\n  server c 127.0.0.1:18003 disabled weight 0\n"),
    ("balance_variants", "backend b1\n  balance url_param userid\n  server s 127.0.0.1:18001\nbackend b2\n  balance hdr(host)\n  server s 127.0.0.1:18001\nbackend b3\n  balance random(3)\n  server s 127.0.0.1:18001\nbackend b4\n  balance leastconn\n  server s 127.0.0.1:18001\n"),
    ("bad_balance", "backend b\n  balance fastest\n  server s 127.0.0.1:18001\n"),
    ("http_checks", "backend b\n  mode http\n  option httpchk\n  http-check send meth GET uri /health ver HTTP/1.1 hdr Host example.com\n  http-check expect ! status 500-599\n  option log-health-checks\n  server s 127.0.0.1:18001 check inter 5s fastinter 1s downinter 10s port 18100 addr 127.0.0.2\n"),
    ("tcp_checks", "backend b\n  mode tcp\n  option tcp-check\n  tcp-check comment redis\n  tcp-check connect port 6379\n  tcp-check send PING\\r\\n\n  tcp-check expect string +PONG\n  tcp-check send-binary 50494e470d0a\n  tcp-check expect ! rstring ^-ERR\n  server s 127.0.0.1:18001 check\n"),
    ("placeholder_address", "backend b\n  server s <srv1_ip>:<srv1_port>\n"),
    ("unterminated_quote", "frontend f\n  bind 127.0.0.1:18080\n  http-request set-header X-A \"abc\n"),
    ("stats_page", "listen stats\n  mode http\n  bind 127.0.0.1:18404\n  stats enable\n  stats uri /stats\n  stats realm Lanai\\ Statistics\n  stats auth admin:secret\n  stats refresh 10s\n  stats hide-version\n  stats show-legends\n  stats show-node lb1\n  stats admin if LOCALHOST\n"),
    ("logs", "global\n  log stdout format raw local0 info\n  log 127.0.0.1 local2\n  log 127.0.0.1:514 local1 notice\n  log /dev/log local0 notice warning\nfrontend f\n  log global\n  option httplog clf\n  bind 127.0.0.1:18080\nbackend b\n  no log\n  server s 127.0.0.1:18001\n"),
    ("bad_retry_on", "backend b\n  retry-on sometimes\n  server s 127.0.0.1:18001\n"),
    ("options", "frontend f\n  mode http\n  bind 127.0.0.1:18080\n  option forwardfor except 127.0.0.0/8 header X-Real-IP if-none\n  option http-server-close\n  option dontlognull\n  no option dontlognull\n  monitor-uri /alive\n  maxconn 1000\n  timeout http-request 10s\n  timeout http-keep-alive 2s\n  errorfile 503 tests/fixtures/errors/503.http\n  default_backend b\nbackend b\n  mode http\n  option abortonclose\n  option splice-auto\n  timeout queue 5s\n  timeout tunnel 1h\n  timeout check 2s\n  server s 127.0.0.1:18001\n"),
    ("global_section", "global\n  maxconn 2000\n  nbthread 2\n  user haproxy\n  group haproxy\n  pidfile /run/lanai.pid\n  hard-stop-after 30s\n  node lb1\n  description main balancer\n  stats socket /run/lanai.sock mode 600 level admin expose-fd listeners\n  stats timeout 2m\n  ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384\n  ssl-default-bind-options no-sslv3 no-tlsv10 no-tlsv11 no-tls-tickets ssl-min-ver TLSv1.2\n  tune.bufsize 32768\n  daemon\n"),
    ("weight_out_of_range", "backend b\n  server s 127.0.0.1:18001 weight 300\n"),
    ("invalid_regex", "frontend f\n  mode http\n  bind 127.0.0.1:18080\n  acl x path_reg ([a-z\n"),
    ("crt_directory_with_keyless_cert", "frontend f\n  bind 127.0.0.1:18443 ssl crt tests/fixtures/certs/\n"),
    ("crt_without_key", "frontend f\n  bind 127.0.0.1:18443 ssl crt tests/fixtures/certs/ca.pem\n"),
    ("crt_key_mismatch", "frontend f\n  bind 127.0.0.1:18443 ssl crt tests/fixtures/certs/mismatch.pem\n"),
    ("server_bare_ipv6_with_port", "backend b\n  server s ::1:18001\n"),
    ("check_interval_zero", "backend b\n  server s 127.0.0.1:18001 check inter 0\n"),
    ("named_defaults_from", "defaults web\n  mode http\n  timeout client 1s\ndefaults\n  mode tcp\nfrontend f from web\n  bind 127.0.0.1:18080\n  http-request deny\n"),
    ("from_unknown_defaults", "frontend f from nope\n  bind 127.0.0.1:18080\n"),
    ("timer_overflow", "backend b\n  timeout server 30d\n  server s 127.0.0.1:18001\n"),
    ("errorfile_bad_code", "defaults\n  errorfile 302 tests/fixtures/errors/503.http\n"),
];

/// Configurations where Lanai disagrees with HAProxy on purpose.
const INTENTIONAL_DIFFERENCES: &[(&str, &str)] = &[
    // rustls speaks TLS 1.2 and 1.3 only: refusing a TLS 1.0 floor is honest.
    ("tls10_floor", "frontend f\n  bind 127.0.0.1:18443 ssl crt tests/fixtures/certs/site.pem ssl-min-ver TLSv1.0\n"),
    // No cipher in this list exists in rustls: HAProxy/OpenSSL accepts it.
    ("cbc_only_ciphers", "frontend f\n  bind 127.0.0.1:18443 ssl crt tests/fixtures/certs/site.pem ciphers DHE-RSA-AES128-SHA\n"),
    // HAProxy warns and ignores a bind in a backend; Lanai refuses directives it would ignore.
    ("bind_in_backend", "backend b\n  bind 127.0.0.1:18080\n  server s 127.0.0.1:18001\n"),
    // A server without port reuses the client's destination port in HAProxy; Lanai wants it explicit.
    ("server_without_port", "backend b\n  server s 127.0.0.1\n"),
    // HAProxy's passive cookie mode (no insert/rewrite/prefix) is not implemented.
    ("passive_cookie", "backend b\n  mode http\n  cookie SRV\n  server s 127.0.0.1:18001 cookie s\n"),
    // "${NAME}" would make the configuration depend on the proxy's environment.
    ("environment_variable", "frontend f\n  bind \"${LANAI_TEST_UNSET}127.0.0.1:18080\"\n"),
    // Features the data plane does not implement are errors naming them, never ignored.
    ("unsupported_converter", "frontend f\n  mode http\n  bind 127.0.0.1:18080\n  http-request set-header X %[req.hdr(host),lower]\n"),
    ("unsupported_action", "frontend f\n  mode http\n  bind 127.0.0.1:18080\n  http-request tarpit\n"),
    ("unsupported_server_option", "backend b\n  server s 127.0.0.1:18001 slowstart 10s\n"),
    // ACL pattern files (`-f`) are not supported: patterns go on the line.
    ("acl_pattern_file", "frontend f\n  bind 127.0.0.1:18080\n  acl x src -f tests/fixtures/acl/nets.lst\n"),
];

/// Fixtures where Lanai disagrees with HAProxy on purpose.
const FIXTURE_DIFFERENCES: &[&str] = &[
    // Seed 004 uses `listen NAME ADDR:PORT`, which HAProxy 2.6 refuses and
    // Lanai still accepts (with a warning) so that old configurations load.
    "seed004_mercurial.cfg",
];

fn write_crafted(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("{name}.cfg"));
    let text = if body.starts_with("global") || body.starts_with("defaults") {
        // Crafted bodies that bring their own sections keep the timeouts after them.
        format!("{body}{TIMEOUTS}")
    } else {
        format!("{TIMEOUTS}{body}")
    };
    std::fs::write(&path, text).expect("write crafted config");
    path
}

fn fixtures() -> Vec<PathBuf> {
    let dir = manifest_dir().join("tests/fixtures/haproxy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    files.sort();
    files
}

#[test]
fn haproxy_is_installed() {
    let status = Command::new("haproxy").arg("-v").output();
    assert!(
        status.is_ok(),
        "haproxy not found: this differential test needs it, run `apt-get install haproxy`"
    );
}

#[test]
fn fixtures_agree_with_haproxy() {
    let files = fixtures();
    assert!(files.len() >= 8, "fixtures missing: {files:?}");
    let mut disagreements = Vec::new();
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let (reference, ours) = (haproxy_accepts(&path), lanai_accepts(&path));
        let expected_same = !FIXTURE_DIFFERENCES.contains(&name.as_str());
        if (reference == ours) != expected_same {
            disagreements.push(format!("{name}: haproxy valid={reference}, lanai valid={ours}"));
        }
        // Fixture names say what they should be: `invalid_*` must fail in both.
        if name.starts_with("invalid_") && ours {
            disagreements.push(format!("{name}: lanai accepts an invalid fixture"));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn crafted_configs_agree_with_haproxy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut disagreements = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for (name, body) in CRAFTED {
        let path = write_crafted(dir.path(), name, body);
        let (reference, ours) = (haproxy_accepts(&path), lanai_accepts(&path));
        if reference != ours {
            disagreements.push(format!("{name}: haproxy valid={reference}, lanai valid={ours}"));
        }
        if reference {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    // Both verdicts must be exercised, or the comparison proves little.
    assert!(valid >= 10 && invalid >= 10, "valid={valid} invalid={invalid}");
}

#[test]
fn intentional_differences_still_differ() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut unexpected = Vec::new();
    for (name, body) in INTENTIONAL_DIFFERENCES {
        let path = write_crafted(dir.path(), name, body);
        let (reference, ours) = (haproxy_accepts(&path), lanai_accepts(&path));
        if reference == ours {
            unexpected.push(format!("{name}: now agrees (valid={ours}); move it to CRAFTED"));
        }
    }
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}
