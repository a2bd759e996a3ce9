//! Crash safety of the store, for real: a child process writes as fast as it can (apply,
//! add + set_running, save) and is SIGKILLed at random moments. After every kill the store must
//! open (migrations included), pass SQLite's integrity check, and every service's running and
//! saved revision must be a whole text the child wrote (each text carries its own length and
//! checksum). Committed revisions must never disappear.
//!
//! The child is this same test binary, re-executed with an environment variable naming the
//! data directory: no extra binary or hidden CLI subcommand is needed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lanai::store::{Origin, RevisionId, Store};
use rand::Rng;

const CHILD_ENV: &str = "LANAI_STORE_CRASH_CHILD";
const SERVICES: [&str; 4] = ["haproxy", "lvs", "vrrp", "network"];
const KILLS: usize = 60;
/// What the child prints once its store is open and it starts writing.
const READY: &str = "store-crash-child-writing";
/// The child stops by itself after this long, so a parent that died never leaves it running.
const CHILD_LIFETIME: Duration = Duration::from_secs(10);

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A configuration-like text of 1 byte to 256 KiB (so writes span many database pages), whose
/// first line states the service, its sequence number, the body's length and checksum.
fn make_text(service: &str, seq: u64) -> String {
    let len = (seq.wrapping_mul(2_654_435_761) % 262_144) as usize + 1;
    let mut body = String::with_capacity(len);
    let mut i = 0usize;
    while body.len() < len {
        let c = if i % 64 == 63 { '\n' } else { char::from(b'a' + ((seq as usize + i * 7) % 26) as u8) };
        body.push(c);
        i += 1;
    }
    let sum = fnv1a(body.as_bytes());
    format!("# lanai-crash service={service} seq={seq} len={len} sum={sum:016x}\n{body}")
}

/// Checks that `text` is one whole text from `make_text` for `service`.
fn check_text(service: &str, text: &str) -> Result<(), String> {
    let (header, body) = text.split_once('\n').ok_or("no header line")?;
    let fields: Vec<&str> = header.split(' ').collect();
    let field = |name: &str| {
        fields
            .iter()
            .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .ok_or_else(|| format!("no {name} in {header:?}"))
    };
    if fields.first() != Some(&"#") || fields.get(1) != Some(&"lanai-crash") {
        return Err(format!("bad header {header:?}"));
    }
    if field("service")? != service {
        return Err(format!("text of another service: {header:?}"));
    }
    let len: usize = field("len")?.parse().map_err(|e| format!("len: {e}"))?;
    if body.len() != len {
        return Err(format!("torn text: body is {} bytes, header says {len}", body.len()));
    }
    let sum = u64::from_str_radix(field("sum")?, 16).map_err(|e| format!("sum: {e}"))?;
    if fnv1a(body.as_bytes()) != sum {
        return Err(format!("checksum mismatch in {header:?}"));
    }
    Ok(())
}

#[test]
fn texts_check_themselves() {
    for seq in [0, 1, 2, 99, 12345] {
        let text = make_text("lvs", seq);
        check_text("lvs", &text).unwrap();
        assert!(check_text("vrrp", &text).is_err());
        assert!(check_text("lvs", &text[..text.len() - 1]).is_err());
        let mut flipped = text.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'z' { b'y' } else { b'z' };
        assert!(check_text("lvs", &String::from_utf8(flipped).unwrap()).is_err());
    }
}

/// The writer. Only does something when re-executed by the parent with `CHILD_ENV` set.
#[test]
#[ignore = "helper: the child process of store_survives_kill_9_at_random_moments"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let store = Store::open(Path::new(&dir)).await.unwrap();
        for service in SERVICES {
            store.ensure_service(service, &make_text(service, 0)).await.unwrap();
        }
        // Tell the parent that writing starts now (stdout is a pipe to it).
        {
            use std::io::Write;
            let mut out = std::io::stdout();
            writeln!(out, "{READY}").unwrap();
            out.flush().unwrap();
        }
        let started = Instant::now();
        // Two writers at once, so transactions also contend for the write lock.
        let writers: Vec<_> = (0..2u64)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    // Fresh sequence numbers per run and writer: every text differs.
                    let mut seq = (rand::rng().random::<u64>() >> 8) | writer;
                    while started.elapsed() < CHILD_LIFETIME {
                        seq = seq.wrapping_add(2);
                        let service = SERVICES[(seq / 2 % 4) as usize];
                        let text = make_text(service, seq);
                        match seq / 2 % 10 {
                            0..=5 => {
                                store.apply_revision(service, &text, Origin::Console, "child").await.unwrap();
                            }
                            6 | 7 => {
                                let rev =
                                    store.add_revision(service, &text, Origin::Api, "child").await.unwrap();
                                store.set_running(service, rev).await.unwrap();
                            }
                            _ => {
                                store.save_all("child").await.unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
    });
}

/// Opens the store after a kill and checks everything; returns the newest revision id.
async fn verify(dir: &Path, round: usize) -> RevisionId {
    let store = Store::open(dir).await.unwrap_or_else(|e| panic!("round {round}: store does not open: {e}"));
    store.check_integrity().await.unwrap_or_else(|e| panic!("round {round}: {e}"));
    let audit = store.audit_log(200).await.unwrap();
    let mut newest = RevisionId(0);
    // A kill during the first start may leave fewer services: those present must be whole.
    for row in store.services().await.unwrap() {
        let name = row.name.as_str();
        assert!(SERVICES.contains(&name), "round {round}: unexpected service {name}");
        for (which, rev) in
            [("running", store.running(name).await.unwrap()), ("saved", store.saved(name).await.unwrap())]
        {
            let rev = rev.unwrap_or_else(|| panic!("round {round}: {name} has no {which} revision"));
            assert_eq!(rev.service, name);
            check_text(name, &rev.text).unwrap_or_else(|e| panic!("round {round}: {name} {which}: {e}"));
        }
        for meta in store.revisions(name, 3).await.unwrap() {
            newest = newest.max(meta.id);
            let rev = store.revision(meta.id).await.unwrap().unwrap();
            check_text(name, &rev.text).unwrap_or_else(|e| panic!("round {round}: revision {}: {e}", rev.id));
            // apply_revision writes revision, pointer and audit line together: a recent
            // console revision without its audit line would mean a torn transaction.
            if rev.origin == Origin::Console && rev.author == "child" {
                let line = format!("{name}: revision {} (console)", rev.id);
                assert!(
                    audit.iter().any(|e| e.action == "apply" && e.detail == line),
                    "round {round}: no audit line for {line}"
                );
            }
        }
    }
    // The read paths a reboot and a backup use work on the recovered store too.
    for (name, text) in store.export_running().await.unwrap() {
        check_text(&name, &text).unwrap_or_else(|e| panic!("round {round}: export of {name}: {e}"));
    }
    store.unsaved_services().await.unwrap();
    store.close().await;
    newest
}

#[test]
fn store_survives_kill_9_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut rng = rand::rng();
    let started = Instant::now();
    let mut newest = RevisionId(0);
    let mut rounds_with_progress = 0;
    for round in 0..KILLS {
        let log_path = dir.path().join("child.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        // Even rounds count the delay from the spawn, so some kills land during start-up (open,
        // migrations, first services); odd rounds from the child's "ready", so the kill lands
        // while it writes however slow the machine is.
        // The pipe stays open until the kill: a closed one would make the child's write fail.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        if round % 2 == 1 {
            // The test harness prints its own text first, on the same line too.
            let mut line = String::new();
            while !line.contains(READY) {
                line.clear();
                let n = stdout.read_line(&mut line).unwrap();
                assert!(n > 0, "round {round}: child ended before writing");
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(5..=80)));
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("round {round}: the child stopped by itself ({status}):\n{log}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        drop(stdout);

        let now = rt.block_on(verify(&dir.path().join("data"), round));
        assert!(now >= newest, "round {round}: committed revisions vanished ({now} < {newest})");
        if now > newest {
            rounds_with_progress += 1;
        }
        newest = now;
    }
    eprintln!(
        "{KILLS} kills in {:?}, {rounds_with_progress} after new commits, newest revision {newest}",
        started.elapsed()
    );
    // The kills must have landed while the child was writing, not only before it started.
    assert!(rounds_with_progress >= KILLS / 4, "only {rounds_with_progress} rounds saw new commits");
}
