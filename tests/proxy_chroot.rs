//! `chroot` in `lanai proxy`: the process runs locked in an empty directory,
//! and reloads still read the configuration, certificates and errorfiles
//! from their real paths and resolve server names, through the file broker
//! it left outside the jail. Needs root (chroot) and openssl + curl.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

/// The body curl gets over TLS for `name`, trusting only `ca`.
fn https(port: u16, name: &str, ca: &Path) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1"), &format!("https://{name}:{port}/")])
        .output()
        .expect("curl");
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn config(jail: &Path, plain: u16, tls: u16, crt_dir: &Path, errorfile: &Path, server: &str) -> String {
    format!(
        "global\n    chroot {}\n    stats socket {}/admin.sock level admin\n\
defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
frontend fe\n    bind 127.0.0.1:{plain}\n    bind 127.0.0.1:{tls} ssl crt {}\n    default_backend be\n\
backend be\n    errorfile 503 {}\n{server}",
        jail.display(),
        crt_dir.parent().unwrap().display(),
        crt_dir.display(),
        errorfile.display()
    )
}

fn errorpage(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn reload(p: &Proc, port: u16, want: &str) -> bool {
    p.signal(nix::sys::signal::Signal::SIGHUP);
    for _ in 0..100 {
        if get(port, "/").await.text() == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chrooted_proxy_reloads_files_through_the_broker() {
    let jail = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let crt_dir = files.path().join("certs");
    std::fs::create_dir(&crt_dir).unwrap();
    let first = self_signed_pem(&crt_dir, "one.test", "one.pem");
    let errorfile = write_file(files.path(), "503.http", &errorpage("first page"));
    let (plain, tls) = (free_port(), free_port());
    let cfg = write_config(&config(jail.path(), plain, tls, &crt_dir, &errorfile, ""));
    let proxy = start_lanai(&cfg.path, plain);

    // Locked in the (empty) jail.
    let root = std::fs::read_link(format!("/proc/{}/root", proxy.child.id())).unwrap();
    assert_eq!(root, jail.path().canonicalize().unwrap(), "{}", proxy.log_text());
    assert_eq!(get(plain, "/").await.text(), "first page");
    assert!(https(tls, "one.test", &first).is_some(), "TLS before reload: {}", proxy.log_text());

    // Reload: a changed errorfile and a new certificate in the crt directory
    // are read from outside the jail.
    std::fs::write(&errorfile, errorpage("second page")).unwrap();
    let second = self_signed_pem(&crt_dir, "two.test", "two.pem");
    assert!(reload(&proxy, plain, "second page").await, "{}", proxy.log_text());
    assert!(https(tls, "two.test", &second).is_some(), "new certificate after reload: {}", proxy.log_text());

    // A server named by host name is resolved outside the jail too.
    let backend = Backend::named("from-backend").await;
    let server = format!("    server s localhost:{}\n", backend.port);
    std::fs::write(&cfg.path, config(jail.path(), plain, tls, &crt_dir, &errorfile, &server)).unwrap();
    assert!(reload(&proxy, plain, "from-backend").await, "{}", proxy.log_text());

    // A new jail takes effect at the next start; the reload says so.
    let sock = files.path().join("admin.sock");
    let other_jail = tempfile::tempdir().unwrap();
    std::fs::write(&cfg.path, config(other_jail.path(), plain, tls, &crt_dir, &errorfile, &server)).unwrap();
    let answer = runtime_cmd(&sock, "reload").await;
    assert!(
        answer.starts_with("Success=1")
            && answer.contains("'chroot' changed: takes effect when the proxy restarts"),
        "{answer}"
    );

    // A file the configuration names that does not exist: the reload is
    // refused with the reason, the running configuration stays.
    let missing = files.path().join("missing.http");
    std::fs::write(&cfg.path, config(jail.path(), plain, tls, &crt_dir, &missing, &server)).unwrap();
    let answer = runtime_cmd(&sock, "reload").await;
    assert!(answer.contains("Success=0") && answer.contains("missing.http"), "{answer}");
    assert_eq!(get(plain, "/").await.text(), "from-backend");
}
