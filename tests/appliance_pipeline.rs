//! The apply/save pipeline with the real data plane as a supervised child:
//! check, apply (live, no restart), failed apply restored, save, boot from
//! saved, adoption of a data plane left running by a killed `lanai run`.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lanai::appliance::pipeline::Which;
use lanai::appliance::{Appliance, ApplyError};
use lanai::store::Origin;
use support::*;

fn exe() -> std::path::PathBuf {
    lanai_bin().into()
}

fn serving(port: u16, text: &str) -> String {
    format!(
        "global\n    log stdout format raw local0 info\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nfrontend web\n    bind 127.0.0.1:{port}\n    http-request return status 200 content-type text/plain string {text}\n"
    )
}

/// Stops the appliance (and its children) even when a test fails.
struct Running(Option<Arc<Appliance>>);

impl Running {
    fn app(&self) -> &Arc<Appliance> {
        self.0.as_ref().expect("appliance")
    }

    async fn close(mut self, keep_children: bool) {
        if let Some(app) = self.0.take() {
            app.shutdown(keep_children).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(app) = self.0.take() {
            // Best effort: kill the children recorded in the run directory.
            kill_children(app.run_dir());
        }
    }
}

fn kill_children(run_dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(run_dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "pid") {
                if let Some(pid) = std::fs::read_to_string(e.path())
                    .ok()
                    .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse::<i32>().ok()))
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

async fn open(dir: &Path) -> (Running, Option<String>) {
    let (app, pw) = Appliance::open(dir, exe()).await.expect("appliance opens");
    (Running(Some(app)), pw)
}

async fn wait_text(port: u16, want: &str) -> bool {
    for _ in 0..100 {
        if let Ok(got) = request(port, "GET", "/", &[], "").await {
            if got.text() == want {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_check_save_and_boot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::env::remove_var("LANAI_ADMIN_PASSWORD");
    let (running, password) = open(&data).await;
    let app = running.app().clone();

    // First start: a generated admin password, kept in a 0600 file.
    let password = password.expect("first start generates a password");
    let file = data.join("initial-admin-password");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), password);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let mut up = false;
    for _ in 0..100 {
        let services = app.services().await.unwrap();
        if services.iter().any(|s| s.name == "haproxy" && s.status == "running") {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "haproxy never reached running: {:?}", app.services().await);

    // Invalid: refused with the line, nothing changes.
    let before = app.services().await.unwrap();
    match app.apply("haproxy", "frontend f\n    frobnicate\n", Origin::Api, "admin").await {
        Err(ApplyError::Invalid(diags)) => {
            assert!(diags.iter().any(|d| d.line == 2 && d.message.contains("frobnicate")), "{diags:?}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(
        app.services().await.unwrap().iter().map(|s| s.running_revision).collect::<Vec<_>>(),
        before.iter().map(|s| s.running_revision).collect::<Vec<_>>()
    );

    // Valid: live in the running data plane, no restart.
    let pid_before = app.supervisor.status("haproxy").unwrap().pid;
    let port = free_port();
    app.apply("haproxy", &serving(port, "one"), Origin::Api, "admin").await.expect("apply");
    assert!(wait_text(port, "one").await, "applied config not served");
    assert_eq!(app.supervisor.status("haproxy").unwrap().pid, pid_before, "apply must reload, not restart");
    assert_eq!(app.store.unsaved_services().await.unwrap(), vec!["haproxy".to_string()]);

    // Passes the check but the data plane refuses it (port taken): restored.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let bad = serving(port, "one") + &format!("frontend clash\n    bind 127.0.0.1:{busy}\n    http-request return status 200 content-type text/plain string x\n");
    match app.apply("haproxy", &bad, Origin::Api, "admin").await {
        Err(ApplyError::Failed { error, restored }) => {
            assert!(restored);
            assert!(error.contains(&busy.to_string()), "{error}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(wait_text(port, "one").await, "previous config must keep running");
    assert_eq!(app.config("haproxy", Which::Running).await.unwrap().unwrap(), serving(port, "one"));

    // Save, then a restart of `lanai run` boots the saved configuration.
    app.save("admin").await.unwrap();
    assert!(app.store.unsaved_services().await.unwrap().is_empty());
    app.apply("haproxy", &serving(port, "unsaved"), Origin::Api, "admin").await.unwrap();
    assert!(wait_text(port, "unsaved").await);
    running.close(false).await;
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "children stop with lanai run");

    let (running, password) = open(&data).await;
    assert!(password.is_none(), "no new password on later starts");
    assert!(wait_text(port, "one").await, "boot must apply the saved configuration, not the unsaved one");
    running.close(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_survives_lanai_run_and_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (running, _) = open(&data).await;
    let app = running.app().clone();
    let port = free_port();
    app.apply("haproxy", &serving(port, "kept"), Origin::Api, "admin").await.unwrap();
    app.save("admin").await.unwrap();
    assert!(wait_text(port, "kept").await);
    let pid = app.supervisor.status("haproxy").unwrap().pid;
    drop(app);
    // `lanai run` goes away without stopping its children (as after SIGKILL).
    running.close(true).await;
    assert!(wait_text(port, "kept").await, "the data plane must keep serving without lanai run");

    let (running, _) = open(&data).await;
    let app = running.app().clone();
    let status = app.supervisor.status("haproxy").unwrap();
    assert_eq!(status.pid, pid, "the running data plane is adopted, not restarted");
    assert!(status.adopted);
    app.apply("haproxy", &serving(port, "adopted"), Origin::Api, "admin").await.unwrap();
    assert!(wait_text(port, "adopted").await);
    running.close(false).await;
}
