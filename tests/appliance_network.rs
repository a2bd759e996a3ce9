//! `lanai run --manage-network` inside a network namespace: the network
//! service is config.rc's, changed through the setup editor's API, refused
//! items reported as warnings, Save + restart brings the saved interfaces
//! back, Stop/Start undo and redo them. The API is reached with curl run in
//! the namespace (the console listens on the namespace's 127.0.0.1).
//!
//! Needs root and iproute2 + curl (scripts/test.sh installs them). `Drop`
//! stops lanai and deletes the namespace, also when the test panics.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PASSWORD: &str = "test-password-1";
const PORT: u16 = 4444;

struct Lab {
    ns: String,
    dir: tempfile::TempDir,
    lanai: Option<Child>,
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

impl Lab {
    fn new() -> Lab {
        let ns = format!("lanai-app-{}", std::process::id());
        let lab = Lab { ns, dir: tempfile::tempdir().expect("tempdir"), lanai: None };
        for args in [
            vec!["ip", "netns", "add", lab.ns.as_str()],
            vec!["ip", "-n", lab.ns.as_str(), "link", "set", "lo", "up"],
            vec![
                "ip",
                "-n",
                lab.ns.as_str(),
                "link",
                "add",
                "veth0",
                "type",
                "veth",
                "peer",
                "name",
                "veth1",
            ],
            vec!["ip", "-n", lab.ns.as_str(), "link", "set", "veth1", "up"],
        ] {
            let o = run(&args);
            assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        lab
    }

    fn start(&mut self) {
        let data = self.dir.path().join("data");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, env!("CARGO_BIN_EXE_lanai"), "run", "--manage-network"])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{PORT}")])
            .env("LANAI_ADMIN_PASSWORD", PASSWORD)
            .env("LANAI_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn lanai run");
        self.lanai = Some(child);
        let t0 = Instant::now();
        while self.call("GET", "/api/services", None).0 != 200 {
            assert!(t0.elapsed() < Duration::from_secs(30), "console did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, as init or an operator stops it: the services stop too.
    fn stop(&mut self) {
        if let Some(mut child) = self.lanai.take() {
            // `ip netns exec` execs lanai: the child's pid is lanai's.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let t0 = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if t0.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// (status, body) of an API call through curl inside the namespace.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let url = format!("https://127.0.0.1:{PORT}{path}");
        let auth = format!("admin:{PASSWORD}");
        let mut args = vec![
            "ip",
            "netns",
            "exec",
            &self.ns,
            "curl",
            "-ks",
            "--max-time",
            "20",
            "-u",
            &auth,
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ];
        if let Some(b) = body {
            args.extend(["-H", "Content-Type: text/plain", "--data-binary", b]);
        }
        args.push(&url);
        let out = String::from_utf8_lossy(&run(&args).stdout).into_owned();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn json(&self, method: &str, path: &str, body: Option<&str>, want: u16) -> Value {
        let (code, text) = self.call(method, path, body);
        assert_eq!(code, want, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    }

    fn addrs(&self) -> String {
        String::from_utf8_lossy(&run(&["ip", "-n", &self.ns, "-o", "addr", "show", "dev", "veth0"]).stdout)
            .into_owned()
    }

    fn routes(&self) -> String {
        String::from_utf8_lossy(&run(&["ip", "-n", &self.ns, "route", "show"]).stdout).into_owned()
    }

    fn eventually(&self, what: &str, f: impl Fn(&Lab) -> bool) {
        let t0 = Instant::now();
        while !f(self) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{what}: addrs {} routes {}",
                self.addrs(),
                self.routes()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn status(&self, service: &str) -> String {
        let list = self.json("GET", "/api/services", None, 200);
        list.as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == service))
            .and_then(|s| s["status"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop();
        let _ = run(&["ip", "netns", "del", &self.ns]);
    }
}

#[test]
fn manage_network_applies_config_rc_through_the_pipeline() {
    let mut lab = Lab::new();
    lab.start();
    // The default config.rc asks for DHCP on eth0, which this namespace does
    // not have: the service runs anyway.
    let t0 = Instant::now();
    while lab.status("network") != "running" {
        assert!(t0.elapsed() < Duration::from_secs(15), "network: {}", lab.status("network"));
        std::thread::sleep(Duration::from_millis(100));
    }

    let setup = "service network veth0\n  ip address 10.77.0.1/24\n  ip route 10.78.0.0/16 10.77.0.254\n\
service network eth9\n  ip address 10.79.0.1/24\n";
    let r = lab.json("POST", "/api/services/network/setup/apply", Some(setup), 200);
    let warnings = r["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.starts_with("config.rc:") && w.ends_with(": eth9: interface not found"))),
        "{r}"
    );
    lab.eventually("address applied", |l| l.addrs().contains("10.77.0.1/24"));
    lab.eventually("route applied", |l| l.routes().contains("10.78.0.0/16 via 10.77.0.254"));

    // Invalid: 422 at the setup text's line, nothing changes.
    let bad = lab.json(
        "POST",
        "/api/services/network/setup/apply",
        Some("service network veth0\n  ip address 10.77.0.2\n"),
        422,
    );
    assert_eq!(bad["diagnostics"][0]["line"], 2, "{bad}");
    assert!(lab.addrs().contains("10.77.0.1/24") && !lab.addrs().contains("10.77.0.2/"));

    // Stop and start from the Services actions.
    lab.json("POST", "/api/services/network/stop", None, 200);
    lab.eventually("stop removes what the service added", |l| !l.addrs().contains("10.77.0.1/24"));
    lab.json("POST", "/api/services/network/start", None, 200);
    lab.eventually("start applies it again", |l| l.addrs().contains("10.77.0.1/24"));

    // Saved, then a change that is not saved; after a restart of lanai run
    // (whose SIGTERM stops the services and so removes their addresses) the
    // saved interfaces are back, the unsaved one is not.
    lab.json("POST", "/api/config/save", None, 200);
    let r = lab.json(
        "POST",
        "/api/services/network/setup/apply",
        Some("service network veth0\n  ip address 10.77.0.9/24\n"),
        200,
    );
    assert_eq!(r["warnings"], Value::Array(vec![]), "{r}");
    lab.eventually("changed address", |l| {
        l.addrs().contains("10.77.0.9/24") && !l.addrs().contains("10.77.0.1/")
    });
    lab.stop();
    assert!(!lab.addrs().contains("10.77.0."), "stopped: {}", lab.addrs());
    lab.start();
    lab.eventually("saved address after restart", |l| l.addrs().contains("10.77.0.1/24"));
    assert!(!lab.addrs().contains("10.77.0.9"), "{}", lab.addrs());
    assert!(lab.routes().contains("10.78.0.0/16 via 10.77.0.254"), "{}", lab.routes());
}
