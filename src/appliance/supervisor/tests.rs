//! The supervisor with `/bin/sh` as its executable: fast, no `lanai` binary
//! needed. The real proxy is driven in tests/supervisor.rs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

fn options() -> SupervisorOptions {
    SupervisorOptions {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(80),
            reset_after: Duration::from_secs(30),
            give_up_after: None,
        },
        stop_grace: Duration::from_millis(300),
        poll_interval: Duration::from_millis(20),
        tail_interval: Duration::from_millis(20),
        ..Default::default()
    }
}

fn sh(dir: &Path) -> Supervisor {
    Supervisor::with_options(dir, PathBuf::from("/bin/sh"), options())
}

fn script(name: &str, text: &str) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        args: vec!["-c".into(), text.into()],
        config_path: PathBuf::new(),
        control_socket: None,
        autostart: false,
    }
}

async fn until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn text(sup: &Supervisor, name: &str) -> String {
    sup.logs(name, 100).unwrap().into_iter().map(|l| l.text + "\n").collect()
}

#[tokio::test]
async fn stdout_and_stderr_reach_the_log_and_a_crash_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let sup = sh(dir.path());
    sup.add(script("echo", "echo to-stdout; echo to-stderr >&2; exit 3")).unwrap();
    sup.start("echo").await.unwrap();
    let logged = until(Duration::from_secs(5), || {
        let t = text(&sup, "echo");
        t.contains("to-stdout") && t.contains("to-stderr") && t.contains("restarting in")
    })
    .await;
    assert!(logged, "{}", text(&sup, "echo"));
    assert!(until(Duration::from_secs(5), || sup.status("echo").unwrap().restarts >= 2).await);
    let st = sup.status("echo").unwrap();
    assert_eq!(st.last_exit.as_ref().and_then(|e| e.code), Some(3));
    sup.stop("echo").await.unwrap();
    let st = sup.status("echo").unwrap();
    assert_eq!((st.state, st.pid), (ServiceState::Stopped, None), "a stop cancels the pending restart");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sup.status("echo").unwrap().state, ServiceState::Stopped);
    sup.shutdown(true).await;
}

#[tokio::test]
async fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let sup = sh(dir.path());
    sup.add(script("stubborn", "trap '' TERM; echo armed; while :; do sleep 0.05; done")).unwrap();
    sup.start("stubborn").await.unwrap();
    assert!(until(Duration::from_secs(5), || text(&sup, "stubborn").contains("armed")).await);
    let started = Instant::now();
    sup.stop("stubborn").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "the grace period is given");
    let st = sup.status("stubborn").unwrap();
    assert_eq!(st.state, ServiceState::Stopped);
    assert_eq!(st.last_exit.as_ref().and_then(|e| e.signal), Some(9), "{st:?}");
    assert_eq!(st.last_exit.unwrap().to_string(), "killed by signal 9 (SIGKILL)");
    sup.shutdown(true).await;
}

#[tokio::test]
async fn one_supervisor_per_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let a = sh(dir.path());
    a.add(script("x", "exit 0")).unwrap();
    let b = sh(dir.path());
    assert_eq!(b.add(script("y", "exit 0")), Err(SupervisorError::RunDirBusy(dir.path().to_path_buf())));
    drop(a);
    b.add(script("y", "exit 0")).unwrap();
    b.shutdown(false).await;
    let c = sh(dir.path());
    c.add(script("z", "exit 0")).unwrap();
}

#[tokio::test]
async fn names_and_unknown_services() {
    let dir = tempfile::tempdir().unwrap();
    let sup = sh(dir.path());
    for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
        assert!(matches!(sup.add(script(bad, "")), Err(SupervisorError::InvalidName(_))), "{bad:?}");
    }
    sup.add(script("ok-name_1.2", "exit 0")).unwrap();
    assert_eq!(
        sup.add(script("ok-name_1.2", "")),
        Err(SupervisorError::AlreadyRegistered("ok-name_1.2".into()))
    );
    assert_eq!(sup.status("nope"), Err(SupervisorError::UnknownService("nope".into())));
    assert_eq!(sup.reload("nope").await, Err(vec!["unknown service 'nope'".to_string()]));
    assert_eq!(sup.statuses().len(), 1);
}

#[test]
fn registering_outside_a_runtime_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(sh(dir.path()).add(script("x", "")), Err(SupervisorError::NoRuntime));
}

#[test]
fn the_supervisor_and_its_futures_can_be_shared_between_tasks() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let dir = tempfile::tempdir().unwrap();
    let sup = sh(dir.path());
    send_sync(&sup);
    send(sup.start("x"));
    send(sup.stop("x"));
    send(sup.restart("x"));
    send(sup.reload("x"));
    send(sup.adopt());
    send(sup.start_autostart());
    send(sup.shutdown(true));
}

#[tokio::test]
async fn autostart_can_be_switched() {
    let dir = tempfile::tempdir().unwrap();
    let sup = sh(dir.path());
    sup.add(script("svc", "exec sleep 30")).unwrap();
    assert!(sup.start_autostart().await.is_empty());
    sup.set_autostart("svc", true).unwrap();
    assert!(sup.status("svc").unwrap().autostart && sup.spec("svc").unwrap().autostart);
    let started = sup.start_autostart().await;
    assert_eq!(started.len(), 1);
    assert!(started[0].1.is_ok());
    assert_eq!(sup.status("svc").unwrap().state, ServiceState::Running);
    sup.shutdown(true).await;
}
