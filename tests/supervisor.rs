//! The appliance supervisor driving the real `lanai proxy` on loopback:
//! start, reload through the runtime API, crash and restart, stop, logs, and
//! adoption by a new supervisor after the first one disappeared.

mod support;

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lanai::appliance::supervisor::adopt::{self, PidRecord};
use lanai::appliance::supervisor::{BackoffPolicy, ServiceSpec, ServiceState, Supervisor, SupervisorOptions};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{free_port, request};

/// A run directory whose children are SIGKILLed on drop, even when a test
/// panics (declared first in a test, so it drops after the supervisors).
/// Processes are remembered with their start time: a pid reused by someone
/// else's process on this shared machine is never signalled.
struct RunDir {
    dir: tempfile::TempDir,
    procs: std::sync::Mutex<Vec<PidRecord>>,
}

impl RunDir {
    fn new() -> RunDir {
        RunDir { dir: tempfile::tempdir().unwrap(), procs: Default::default() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn track(&self, pid: u32) {
        self.procs.lock().unwrap().extend(PidRecord::of(pid));
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let mut procs = self.procs.lock().unwrap().clone();
        for entry in std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "pid") {
                procs.extend(adopt::read_pid_file(&entry.path()).ok().flatten());
            }
        }
        for rec in procs {
            if adopt::is_alive(rec) {
                let _ = kill(Pid::from_raw(rec.pid as i32), Signal::SIGKILL);
            }
        }
    }
}

fn proxy_config(dir: &Path, port: u16, body: &str, extra: &str) -> String {
    format!(
        "global\n    stats socket {} level admin\n    hard-stop-after 2s\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\nfrontend fe\n    bind 127.0.0.1:{port}\n{extra}    http-request return status 200 content-type text/plain string {body}\n",
        dir.join("proxy.sock").display()
    )
}

fn proxy_spec(dir: &Path, cfg: &Path) -> ServiceSpec {
    ServiceSpec {
        name: "haproxy".into(),
        args: vec![OsString::from("proxy"), OsString::from("-f"), cfg.as_os_str().to_owned()],
        config_path: cfg.to_path_buf(),
        control_socket: Some(dir.join("proxy.sock")),
        autostart: true,
    }
}

fn fast_options() -> SupervisorOptions {
    SupervisorOptions {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            reset_after: Duration::from_secs(30),
            give_up_after: None,
        },
        stop_grace: Duration::from_secs(3),
        poll_interval: Duration::from_millis(50),
        ready_timeout: Duration::from_secs(5),
        control_timeout: Duration::from_secs(5),
        tail_interval: Duration::from_millis(50),
        ..Default::default()
    }
}

fn supervisor(dir: &Path) -> Supervisor {
    Supervisor::with_options(dir, PathBuf::from(env!("CARGO_BIN_EXE_lanai")), fast_options())
}

/// Polls the async `cond` every 50 ms until it holds or `within` passes.
async fn until<F: Future<Output = bool>>(within: Duration, mut cond: impl FnMut() -> F) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The body answered on `port`, or `None` if nothing answers.
async fn body(port: u16) -> Option<String> {
    request(port, "GET", "/", &[], "").await.ok().filter(|g| g.status == 200).map(|g| g.text())
}

async fn running(sup: &Supervisor, name: &str) -> bool {
    sup.status(name).is_ok_and(|s| s.state == ServiceState::Running)
}

fn log_text(sup: &Supervisor, name: &str) -> String {
    sup.logs(name, 1000).unwrap().into_iter().map(|l| l.text + "\n").collect()
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_start_reload_crash_restart_stop() {
    let run = RunDir::new();
    let port = free_port();
    let cfg = run.path().join("haproxy.cfg");
    std::fs::write(&cfg, proxy_config(run.path(), port, "one", "")).unwrap();
    let sup = supervisor(run.path());
    sup.add(proxy_spec(run.path(), &cfg)).unwrap();
    assert_eq!(sup.status("haproxy").unwrap().state, ServiceState::Stopped);

    sup.start("haproxy").await.unwrap();
    let pid = sup.status("haproxy").unwrap().pid.expect("a pid once started");
    run.track(pid);
    // A reload right after the start waits for the runtime socket.
    assert_eq!(sup.reload("haproxy").await, Ok(vec![]));
    assert!(until(WAIT, || running(&sup, "haproxy")).await, "{:?}", sup.status("haproxy"));
    assert_eq!(body(port).await.as_deref(), Some("one"));
    let st = sup.status("haproxy").unwrap();
    assert_eq!((st.pid, st.restarts, st.adopted), (Some(pid), 0, false));
    assert_eq!(sup.statuses().len(), 1);

    // Reload through the runtime API with a new answer.
    std::fs::write(&cfg, proxy_config(run.path(), port, "two", "")).unwrap();
    assert_eq!(sup.reload("haproxy").await, Ok(vec![]));
    assert_eq!(body(port).await.as_deref(), Some("two"));

    // An invalid configuration: errors come back, the old one keeps serving.
    std::fs::write(&cfg, proxy_config(run.path(), port, "three", "    bogus-keyword\n")).unwrap();
    let errors = sup.reload("haproxy").await.expect_err("invalid config must be refused");
    assert!(errors.iter().any(|e| e.contains("bogus-keyword") && e.contains("haproxy.cfg:")), "{errors:?}");
    assert_eq!(body(port).await.as_deref(), Some("two"));

    // A crash: restarted after the back-off, with a new pid, serving again.
    std::fs::write(&cfg, proxy_config(run.path(), port, "four", "")).unwrap();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let restarted = until(WAIT, || async {
        let st = sup.status("haproxy").unwrap();
        st.state == ServiceState::Running && st.pid.is_some_and(|p| p != pid)
    })
    .await;
    let st = sup.status("haproxy").unwrap();
    assert!(restarted, "{st:?}\n{}", log_text(&sup, "haproxy"));
    run.track(st.pid.unwrap());
    assert_eq!(st.restarts, 1);
    assert_eq!(st.last_exit.as_ref().and_then(|e| e.signal), Some(9), "{st:?}");
    assert!(until(WAIT, || async { body(port).await.as_deref() == Some("four") }).await);

    // Stop: the port closes, the pid file goes.
    sup.stop("haproxy").await.unwrap();
    let st = sup.status("haproxy").unwrap();
    assert_eq!((st.state, st.pid), (ServiceState::Stopped, None));
    assert_eq!(st.last_exit.as_ref().and_then(|e| e.code), Some(0), "graceful stop: {st:?}");
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err(), "port still open");
    assert!(!run.path().join("haproxy.pid").exists());
    assert_eq!(sup.reload("haproxy").await, Err(vec!["service 'haproxy' is not running".to_string()]));

    // The child's own lines and the supervisor's events, in the ring and file.
    let has_all = |text: &str| {
        text.contains("lanai proxy started with")
            && text.contains("reload refused")
            && text.contains("restarting in")
            && text.contains("stopped (exit status 0)")
    };
    assert!(
        until(WAIT, || async { has_all(&log_text(&sup, "haproxy")) }).await,
        "{}",
        log_text(&sup, "haproxy")
    );
    assert!(has_all(&std::fs::read_to_string(run.path().join("haproxy.log")).unwrap()));
    sup.shutdown(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_supervisor_adopts_the_running_proxy() {
    let run = RunDir::new();
    let port = free_port();
    let cfg = run.path().join("haproxy.cfg");
    std::fs::write(&cfg, proxy_config(run.path(), port, "first", "")).unwrap();

    let a = supervisor(run.path());
    a.add(proxy_spec(run.path(), &cfg)).unwrap();
    assert_eq!(a.start_autostart().await.len(), 1);
    let pid = a.status("haproxy").unwrap().pid.unwrap();
    run.track(pid);
    assert!(until(WAIT, || running(&a, "haproxy")).await);
    assert_eq!(body(port).await.as_deref(), Some("first"));

    // `lanai run` disappears without stopping anything.
    drop(a);
    for _ in 0..5 {
        assert_eq!(body(port).await.as_deref(), Some("first"), "the data plane must keep serving");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let b = supervisor(run.path());
    b.add(proxy_spec(run.path(), &cfg)).unwrap();
    assert_eq!(b.adopt().await, ["haproxy"]);
    let st = b.status("haproxy").unwrap();
    assert_eq!((st.state, st.pid, st.adopted), (ServiceState::Running, Some(pid), true));
    // Starting an adopted service is a no-op, not a second proxy.
    b.start("haproxy").await.unwrap();
    assert_eq!(b.status("haproxy").unwrap().pid, Some(pid));

    std::fs::write(&cfg, proxy_config(run.path(), port, "second", "")).unwrap();
    assert_eq!(b.reload("haproxy").await, Ok(vec![]));
    assert_eq!(body(port).await.as_deref(), Some("second"));
    // The child still writes into the log file: B sees its new lines.
    let reloaded = || async { log_text(&b, "haproxy").contains("configuration reloaded (runtime API)") };
    assert!(until(WAIT, reloaded).await, "{}", log_text(&b, "haproxy"));
    assert!(log_text(&b, "haproxy").contains("lanai proxy started with"), "history is loaded");

    b.stop("haproxy").await.unwrap();
    assert_eq!(b.status("haproxy").unwrap().state, ServiceState::Stopped);
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err(), "port still open");
    b.shutdown(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopted_child_dying_is_restarted_and_shutdown_can_leave_children() {
    let run = RunDir::new();
    let port = free_port();
    let cfg = run.path().join("haproxy.cfg");
    std::fs::write(&cfg, proxy_config(run.path(), port, "x", "")).unwrap();
    let a = supervisor(run.path());
    a.add(proxy_spec(run.path(), &cfg)).unwrap();
    a.start("haproxy").await.unwrap();
    let pid = a.status("haproxy").unwrap().pid.unwrap();
    run.track(pid);
    assert!(until(WAIT, || running(&a, "haproxy")).await);
    // A clean shutdown that leaves the children (an upgrade of `lanai run`).
    a.shutdown(false).await;
    assert_eq!(body(port).await.as_deref(), Some("x"));

    let b = supervisor(run.path());
    b.add(proxy_spec(run.path(), &cfg)).unwrap();
    // `start` adopts rather than spawning a second proxy on the same port.
    b.start("haproxy").await.unwrap();
    assert_eq!(b.status("haproxy").unwrap().pid, Some(pid));
    // Not our child: the death is seen by polling /proc, then restarted.
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let restarted = until(WAIT, || async {
        let st = b.status("haproxy").unwrap();
        st.state == ServiceState::Running && st.pid.is_some_and(|p| p != pid)
    })
    .await;
    assert!(restarted, "{:?}\n{}", b.status("haproxy"), log_text(&b, "haproxy"));
    run.track(b.status("haproxy").unwrap().pid.unwrap());
    assert!(!b.status("haproxy").unwrap().adopted);
    assert!(until(WAIT, || async { body(port).await.as_deref() == Some("x") }).await);
    b.shutdown(true).await;
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err(), "shutdown(true) stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_backs_off_then_gives_up_and_stale_pid_files_are_not_adopted() {
    let run = RunDir::new();
    let mut opts = fast_options();
    opts.backoff.initial = Duration::from_millis(20);
    opts.backoff.give_up_after = Some(2);
    let sup = Supervisor::with_options(run.path(), PathBuf::from(env!("CARGO_BIN_EXE_lanai")), opts);
    // A pid file naming a live process that is not `lanai` (this test).
    let me = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start_time = me[me.rfind(')').unwrap() + 1..].split_whitespace().nth(19).unwrap().to_string();
    std::fs::write(run.path().join("broken.pid"), format!("{} {start_time}\n", std::process::id())).unwrap();
    let missing = run.path().join("missing.cfg");
    sup.add(ServiceSpec {
        name: "broken".into(),
        args: vec!["proxy".into(), "-f".into(), missing.clone().into()],
        config_path: missing,
        control_socket: None,
        autostart: false,
    })
    .unwrap();
    assert!(sup.adopt().await.is_empty());
    assert!(!run.path().join("broken.pid").exists(), "a foreign pid file is removed");
    assert!(sup.start_autostart().await.is_empty(), "autostart is off");

    sup.start("broken").await.unwrap();
    let crashed =
        until(WAIT, || async { sup.status("broken").unwrap().state == ServiceState::Crashed }).await;
    let st = sup.status("broken").unwrap();
    assert!(crashed, "{st:?}");
    assert_eq!(st.restarts, 2, "two restarts, then the third crash gives up");
    assert_eq!(st.last_exit.as_ref().and_then(|e| e.code), Some(1));
    let gave_up = until(WAIT, || async { log_text(&sup, "broken").contains("not restarting") }).await;
    assert!(gave_up, "{}", log_text(&sup, "broken"));
    assert!(sup.add(proxy_spec(run.path(), run.path())).is_ok());
    assert!(sup.add(proxy_spec(run.path(), run.path())).is_err(), "names are unique");
    assert!(sup.start("nope").await.is_err());
    sup.shutdown(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_control_socket_reload_is_sighup() {
    let run = RunDir::new();
    let port = free_port();
    let cfg = run.path().join("haproxy.cfg");
    std::fs::write(&cfg, proxy_config(run.path(), port, "before", "")).unwrap();
    let sup = supervisor(run.path());
    sup.add(ServiceSpec { control_socket: None, ..proxy_spec(run.path(), &cfg) }).unwrap();
    sup.start("haproxy").await.unwrap();
    run.track(sup.status("haproxy").unwrap().pid.unwrap());
    assert_eq!(sup.status("haproxy").unwrap().state, ServiceState::Running, "no socket to wait for");
    assert!(until(WAIT, || async { body(port).await.as_deref() == Some("before") }).await);
    std::fs::write(&cfg, proxy_config(run.path(), port, "after", "")).unwrap();
    assert_eq!(sup.reload("haproxy").await, Ok(vec![]), "SIGHUP cannot report errors");
    assert!(until(WAIT, || async { body(port).await.as_deref() == Some("after") }).await);
    sup.restart("haproxy").await.unwrap();
    run.track(sup.status("haproxy").unwrap().pid.unwrap());
    assert_eq!(sup.status("haproxy").unwrap().restarts, 0, "a requested restart is not a crash");
    assert!(until(WAIT, || async { body(port).await.as_deref() == Some("after") }).await);
    sup.shutdown(true).await;
}

/// Set for the copy of this test binary that plays a `lanai run` to be killed.
const HELPER_ENV: &str = "LANAI_SUPERVISOR_TEST_RUN_DIR";

/// Not a test by itself (returns at once without `HELPER_ENV`): the body of
/// the separate supervisor process that the next test SIGKILLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_supervisor_process() {
    let Ok(dir) = std::env::var(HELPER_ENV) else { return };
    let dir = PathBuf::from(dir);
    let sup = supervisor(&dir);
    sup.add(proxy_spec(&dir, &dir.join("haproxy.cfg"))).unwrap();
    sup.start("haproxy").await.unwrap();
    assert!(until(WAIT, || running(&sup, "haproxy")).await);
    std::fs::write(dir.join("helper.ready"), "").unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await; // SIGKILLed long before
}

/// `/proc/PID/stat` fields after the command name: 1 = ppid, 3 = session.
fn stat_field(pid: u32, index: usize) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(index)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_supervisor_process_leaves_the_proxy_serving_for_adoption() {
    let run = RunDir::new();
    let port = free_port();
    let cfg = run.path().join("haproxy.cfg");
    std::fs::write(&cfg, proxy_config(run.path(), port, "a", "")).unwrap();
    let helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_supervisor_process", "--test-threads=1"])
        .env(HELPER_ENV, run.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let helper_pid = helper.id();
    run.track(helper_pid);
    let ready = run.path().join("helper.ready");
    assert!(until(WAIT, || async { ready.exists() }).await, "the helper supervisor did not start");
    let pid: u32 = std::fs::read_to_string(run.path().join("haproxy.pid"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    run.track(pid);
    assert_eq!(stat_field(pid, 1), Some(helper_pid), "a child of the helper");
    assert_eq!(stat_field(pid, 3), Some(pid), "in a session of its own");
    assert_eq!(body(port).await.as_deref(), Some("a"));

    kill(Pid::from_raw(helper_pid as i32), Signal::SIGKILL).unwrap();
    let mut helper = helper;
    helper.wait().unwrap();
    for _ in 0..5 {
        assert_eq!(body(port).await.as_deref(), Some("a"), "the data plane must outlive `lanai run`");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(stat_field(pid, 1), Some(helper_pid), "reparented");

    let b = supervisor(run.path());
    b.add(proxy_spec(run.path(), &cfg)).unwrap();
    assert_eq!(b.adopt().await, ["haproxy"]);
    assert_eq!(b.status("haproxy").unwrap().pid, Some(pid));
    std::fs::write(&cfg, proxy_config(run.path(), port, "b", "")).unwrap();
    assert_eq!(b.reload("haproxy").await, Ok(vec![]));
    assert_eq!(body(port).await.as_deref(), Some("b"));
    b.stop("haproxy").await.unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err(), "port still open");
    // Gone, or a zombie until its new parent (init) reaps it.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
    assert!(matches!(state, None | Some("Z" | "X")), "the adopted proxy is gone: {state:?}");
    b.shutdown(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vrrp_control_socket_dialect_and_run_dir_default() {
    let run = RunDir::new();
    let cfg = run.path().join("keepalived.conf");
    // No vrrp_instance: the daemon and its control socket run without
    // touching any interface of this shared machine.
    std::fs::write(&cfg, "global_defs {\n    router_id supervisor-test\n}\n").unwrap();
    let sup = supervisor(run.path());
    sup.add(ServiceSpec {
        name: "vrrp".into(),
        // No --control: the default is $LANAI_RUN_DIR/vrrp.sock, and the
        // supervisor sets LANAI_RUN_DIR to its run directory.
        args: vec!["vrrp".into(), "-f".into(), cfg.clone().into()],
        config_path: cfg.clone(),
        control_socket: Some(run.path().join("vrrp.sock")),
        autostart: true,
    })
    .unwrap();
    sup.start("vrrp").await.unwrap();
    run.track(sup.status("vrrp").unwrap().pid.unwrap());
    assert!(until(WAIT, || running(&sup, "vrrp")).await, "{}", log_text(&sup, "vrrp"));
    assert_eq!(sup.reload("vrrp").await, Ok(vec![]));
    std::fs::write(&cfg, "bogus_section {\n}\n").unwrap();
    let errors = sup.reload("vrrp").await.expect_err("invalid config must be refused");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].ends_with("keepalived.conf:1: unknown keyword 'bogus_section'"), "{errors:?}");
    assert_eq!(sup.status("vrrp").unwrap().state, ServiceState::Running);
    sup.stop("vrrp").await.unwrap();
    let st = sup.status("vrrp").unwrap();
    assert_eq!(st.last_exit.as_ref().and_then(|e| e.code), Some(0), "{st:?}");
    sup.shutdown(true).await;
}
