//! The runtime API over a real Unix socket in a temporary directory.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::*;
use crate::proxy::state::{Admin, Health};
use crate::proxy::testutil::sample_config;

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: Arc<RuntimeContext>,
    reloads: mpsc::Receiver<ReloadRequest>,
    servers: Vec<RuntimeServer>,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, rx) = mpsc::channel(4);
        let ctx = Arc::new(RuntimeContext {
            config: Arc::new(ArcSwap::from_pointee(sample_config())),
            registry: Arc::new(crate::proxy::state::StateRegistry::new()),
            started: Instant::now(),
            pid: 4242,
            node: "lb1".into(),
            version: "0.1.0",
            reload: tx,
            log: None,
        });
        let mut servers = Vec::new();
        for (name, level) in [
            ("admin.sock", RuntimeLevel::Admin),
            ("oper.sock", RuntimeLevel::Operator),
            ("user.sock", RuntimeLevel::User),
        ] {
            let path = dir.path().join(name);
            servers.push(serve(&path, Some(0o600), level, Arc::clone(&ctx)).await.expect("serve"));
        }
        Fixture { _dir: dir, ctx, reloads: rx, servers }
    }

    fn path(&self, level: RuntimeLevel) -> PathBuf {
        let i = match level {
            RuntimeLevel::Admin => 0,
            RuntimeLevel::Operator => 1,
            RuntimeLevel::User => 2,
        };
        self.servers[i].path().to_path_buf()
    }

    fn state(&self, srv: &str) -> Arc<crate::proxy::state::ServerState> {
        self.ctx.stats().registry.server("app", srv, 1, srv == "srv1")
    }
}

/// Sends `input` and reads until the server closes.
async fn ask_raw(path: &Path, input: &[u8]) -> String {
    let mut s = UnixStream::connect(path).await.expect("connect");
    s.write_all(input).await.expect("write");
    // Half-close like `socat`: the server sees the end of input.
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn ask(path: &Path, cmd: &str) -> String {
    ask_raw(path, format!("{cmd}\n").as_bytes()).await
}

#[tokio::test]
async fn socket_mode_and_cleanup() {
    let f = Fixture::new().await;
    let path = f.path(RuntimeLevel::Admin);
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A live socket is not stolen.
    let err = serve(&path, None, RuntimeLevel::Admin, Arc::clone(&f.ctx)).await;
    assert!(err.is_err());
    drop(f.servers);
    assert!(!path.exists());
    // A stale file is replaced.
    std::fs::write(&path, b"stale").expect("write");
    let s = serve(&path, None, RuntimeLevel::Admin, Arc::clone(&f.ctx)).await.expect("serve over stale file");
    assert_eq!(ask(s.path(), "show cli level").await, "admin\n\n");
}

#[tokio::test]
async fn show_commands() {
    let f = Fixture::new().await;
    let admin = f.path(RuntimeLevel::Admin);
    assert_eq!(ask(&admin, "show backend").await, "# name\napp\nstats\n\n");
    let info = ask(&admin, "show info").await;
    assert!(info.starts_with("Name: Lanai\nVersion: 0.1.0\nNbthread: "), "{info}");
    assert!(
        info.contains("\nPid: 4242\n")
            && info.contains("\nUptime_sec: 0\n")
            && info.contains("\nnode: lb1\n")
    );
    assert!(info.ends_with("\n\n"));
    let stat = ask(&admin, "show stat").await;
    assert!(stat.starts_with("# pxname,svname,"));
    assert!(stat.contains("\napp,srv1,") && stat.ends_with(",\n\n"));
    let state = ask(&admin, "show servers state app").await;
    let lines: Vec<&str> = state.lines().collect();
    assert_eq!(lines[0], "1");
    assert!(lines[1].starts_with("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state"));
    assert_eq!(lines[2], "3 app 1 srv1 127.0.0.1 2 0 1 1 0 1 0 2 6 0 0 0 - 18081 - 0 0 - - 0");
    assert_eq!(lines[3], "3 app 2 srv2 127.0.0.1 2 0 1 1 0 1 0 2 0 0 0 0 - 18082 - 0 0 - - 0");
    assert_eq!(ask(&admin, "show servers state nope").await, "Can't find backend.\n\n");
    assert_eq!(ask(&admin, "get weight app/srv1").await, "1 (initial 1)\n\n");
    assert_eq!(ask(&admin, "show cli level").await, "admin\n\n");
}

#[tokio::test]
async fn server_changes_and_errors() {
    let f = Fixture::new().await;
    let admin = f.path(RuntimeLevel::Admin);
    assert_eq!(ask(&admin, "disable server app/srv1").await, "\n");
    assert_eq!(f.state("srv1").admin(), Admin::Maint);
    assert_eq!(ask(&admin, "enable server app/srv1").await, "\n");
    assert_eq!(f.state("srv1").admin(), Admin::Ready);
    assert_eq!(ask(&admin, "set server app/srv2 state drain").await, "\n");
    assert_eq!(f.state("srv2").admin(), Admin::Drain);
    assert_eq!(ask(&admin, "set server app/srv2 state maint").await, "\n");
    assert_eq!(f.state("srv2").admin(), Admin::Maint);
    assert_eq!(ask(&admin, "set server app/srv2 state ready").await, "\n");
    assert_eq!(f.state("srv2").admin(), Admin::Ready);
    assert_eq!(
        ask(&admin, "set server app/srv2 state bogus").await,
        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
    );
    assert_eq!(ask(&admin, "set server app/srv1 health down").await, "\n");
    assert_eq!(f.state("srv1").health(), Health::Down);
    assert_eq!(ask(&admin, "set weight app/srv1 7").await, "\n");
    assert_eq!(ask(&admin, "get weight app/srv1").await, "7 (initial 1)\n\n");
    assert_eq!(ask(&admin, "set server app/srv1 weight 200%").await, "\n");
    assert_eq!(ask(&admin, "get weight app/srv1").await, "2 (initial 1)\n\n");
    assert_eq!(
        ask(&admin, "set weight app/srv1 300").await,
        "Absolute weight can only be between 0 and 256 inclusive.\n\n"
    );
    assert_eq!(
        ask(&admin, "set weight app/srv1 abc").await,
        "Empty weight string empty or preceded by garbage\n"
    );
    assert_eq!(ask(&admin, "disable server app/nope").await, "No such server.\n\n");
    assert_eq!(ask(&admin, "disable server nope/srv1").await, "No such backend.\n\n");
    assert_eq!(ask(&admin, "disable server app").await, "Require 'backend/server'.\n\n");
    assert_eq!(ask(&admin, "get weight").await, "Require 'backend/server'.\n\n");
    assert!(ask(&admin, "set server app/srv1").await.starts_with("usage: set server <backend>/<server>"));
    // Several commands on one line.
    assert_eq!(ask(&admin, "set weight app/srv2 3; get weight app/srv2").await, "\n3 (initial 1)\n\n");
}

#[tokio::test]
async fn static_algorithms_only_switch_weights_on_and_off() {
    let f = Fixture::new().await;
    let mut cfg = sample_config();
    if let Some(app) = cfg.proxies.iter_mut().find(|p| p.name == "app") {
        app.balance = crate::conf::haproxy::Balance::StaticRr;
        app.servers[0].weight = 10;
    }
    f.ctx.config.store(Arc::new(cfg));
    let admin = f.path(RuntimeLevel::Admin);
    let refused = "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n";
    assert_eq!(ask(&admin, "set weight app/srv1 5").await, refused);
    assert_eq!(ask(&admin, "set weight app/srv1 50%").await, refused);
    assert_eq!(ask(&admin, "set weight app/srv1 0").await, "\n");
    assert_eq!(ask(&admin, "set weight app/srv1 100%").await, "\n");
    assert_eq!(ask(&admin, "set server app/srv1 weight 0%").await, "\n");
    assert_eq!(ask(&admin, "get weight app/srv1").await, "0 (initial 10)\n\n");
}

#[tokio::test]
async fn levels_are_enforced() {
    let f = Fixture::new().await;
    let user = f.path(RuntimeLevel::User);
    let oper = f.path(RuntimeLevel::Operator);
    for cmd in
        ["disable server app/srv1", "set weight app/srv1 2", "set server app/srv1 state maint", "reload"]
    {
        assert_eq!(ask(&user, cmd).await, "Permission denied\n\n", "user: {cmd}");
        assert_eq!(ask(&oper, cmd).await, "Permission denied\n\n", "operator: {cmd}");
    }
    assert_eq!(f.state("srv1").admin(), Admin::Ready);
    assert_eq!(ask(&user, "clear counters").await, "Permission denied\n\n");
    assert_eq!(ask(&oper, "clear counters").await, "\n");
    assert_eq!(ask(&oper, "clear counters all").await, "Permission denied\n\n");
    assert_eq!(ask(&user, "get weight app/srv1").await, "1 (initial 1)\n\n");
    // Addresses are hidden from `user` sessions, as HAProxy does.
    let stat = ask(&user, "show stat").await;
    assert!(!stat.contains("127.0.0.1:18081"));
    // A session can lower its level, never raise it.
    let out = ask_raw(&oper, b"prompt\nuser\nshow cli level\noperator\nquit\n").await;
    assert_eq!(out, "\n> \n> user\n\n> Permission denied\n\n> ");
}

#[tokio::test]
async fn help_and_unknown_commands() {
    let f = Fixture::new().await;
    let admin = f.path(RuntimeLevel::Admin);
    let help = ask(&admin, "help").await;
    assert!(help.starts_with("The following commands are valid at this level:\n"));
    assert!(help.contains("\n  get weight <bk>/<srv>                   : report a server's current weight\n"));
    assert!(help.ends_with("  quit                                    : disconnect\n\n"));
    let user_help = ask(&f.path(RuntimeLevel::User), "help").await;
    assert!(!user_help.contains("reload"));
    let unknown = ask(&admin, "foo").await;
    assert!(unknown.starts_with("Unknown command. Please enter one of the following commands only:\n"));
    let near = ask(&admin, "show nothing").await;
    assert!(
        near.starts_with("Unknown command, but maybe one of the following ones is a better match:\n  show ")
    );
}

#[tokio::test]
async fn interactive_prompt_session() {
    let f = Fixture::new().await;
    let out =
        ask_raw(&f.path(RuntimeLevel::Admin), b"prompt\nshow backend\nget weight app/srv1\nquit\n").await;
    assert_eq!(out, "\n> # name\napp\nstats\n\n> 1 (initial 1)\n\n> ");
}

#[tokio::test]
async fn reload_round_trip() {
    let mut f = Fixture::new().await;
    let admin = f.path(RuntimeLevel::Admin);
    // Play the engine: first reload succeeds with a warning, second fails.
    let engine = tokio::spawn(async move {
        let first = f.reloads.recv().await.expect("first request");
        let _ = first.reply.send(Ok(vec!["haproxy.cfg:3: warning: 'daemon' ignored".into()]));
        let second = f.reloads.recv().await.expect("second request");
        let _ = second.reply.send(Err(vec!["haproxy.cfg:7: unknown keyword 'bogus'".into()]));
        f
    });
    assert_eq!(ask(&admin, "reload").await, "Success=1\n--\nhaproxy.cfg:3: warning: 'daemon' ignored\n\n");
    assert_eq!(ask(&admin, "reload").await, "Success=0\n--\nhaproxy.cfg:7: unknown keyword 'bogus'\n\n");
    let f = engine.await.expect("engine");
    // Config swap is visible to the next command.
    let mut cfg = sample_config();
    cfg.proxies.retain(|p| p.name != "stats");
    f.ctx.config.store(Arc::new(cfg));
    assert_eq!(ask(&admin, "show backend").await, "# name\napp\n\n");
}

#[tokio::test]
async fn bad_input_gets_an_error_not_a_panic() {
    let f = Fixture::new().await;
    let admin = f.path(RuntimeLevel::Admin);
    let long = vec![b'a'; MAX_LINE * 2];
    assert_eq!(ask_raw(&admin, &long).await, "Command line too long.\n\n");
    let garbage = ask_raw(&admin, b"\xff\xfe\x00\x01garbage\n").await;
    assert!(garbage.starts_with("Unknown command"), "{garbage:?}");
    // Without a final newline the line is still answered.
    assert_eq!(ask_raw(&admin, b"show cli level").await, "admin\n\n");
    // Escaped separators stay inside the word.
    assert_eq!(
        commands::split_line("a\\;b;c d"),
        vec![vec!["a;b".to_string()], vec!["c".into(), "d".into()]]
    );
    // The server still works.
    assert_eq!(ask(&admin, "show cli level").await, "admin\n\n");
}
