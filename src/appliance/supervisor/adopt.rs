//! Finding the children of a previous supervisor again.
//!
//! Each child runs in its own session (setsid at spawn), so killing `lanai run`
//! — even with SIGKILL — leaves it running. The supervisor records it in
//! `run_dir/NAME.pid` as `PID STARTTIME`, STARTTIME being field 22 of
//! /proc/PID/stat (clock ticks since boot): a pid can be reused by an
//! unrelated process after ours died, the pair cannot. A new supervisor adopts
//! a child only if the pair matches and the process runs our executable.
//!
//! An adopted child is not our child: no SIGCHLD, no exit status. Its death
//! is seen by polling /proc (`poll_interval`), and stop waits by polling too.
//! Known gap: a supervisor killed between the spawn and the pid file write
//! (microseconds) leaves a child nobody adopts; the next start then fails to
//! bind its addresses and says so in the log.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// What `NAME.pid` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidRecord {
    pub pid: u32,
    pub start_time: u64,
}

impl PidRecord {
    /// The record of a live process, read from /proc.
    pub fn of(pid: u32) -> Option<PidRecord> {
        proc_stat(pid).map(|s| PidRecord { pid, start_time: s.start_time })
    }

    fn parse(text: &str) -> Option<PidRecord> {
        let mut fields = text.split_whitespace();
        let pid = fields.next()?.parse().ok()?;
        let start_time = fields.next()?.parse().ok()?;
        (pid > 0).then_some(PidRecord { pid, start_time })
    }
}

/// `run_dir/NAME.pid`.
pub fn pid_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("{name}.pid"))
}

/// Written to a temporary name then renamed: a supervisor killed mid-write
/// leaves the old record or the new one, never half of one.
pub fn write_pid_file(path: &Path, rec: PidRecord) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{} {}\n", rec.pid, rec.start_time))?;
    std::fs::rename(&tmp, path)
}

/// `Ok(None)` when there is no pid file or it does not parse (then it is
/// stale garbage, not an error worth stopping for).
pub fn read_pid_file(path: &Path) -> io::Result<Option<PidRecord>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(PidRecord::parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn remove_pid_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }
}

/// The fields of /proc/PID/stat the supervisor needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    state: char,
    start_time: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `pid (comm) state ppid … starttime …`: `comm` may hold spaces and
/// parentheses, so fields are counted after the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `comm`, field 3 (state) is index 0; field 22 (starttime) index 19.
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// Whether the process recorded in `rec` is still alive: same pid, same start
/// time, and not a zombie waiting to be reaped.
pub fn is_alive(rec: PidRecord) -> bool {
    proc_stat(rec.pid).is_some_and(|s| s.start_time == rec.start_time && !matches!(s.state, 'Z' | 'X' | 'x'))
}

/// How long ago the process started (from its start time in clock ticks
/// and the system uptime): an adopted child's real age, for the back-off's
/// "stayed up long enough" rule.
pub fn age(rec: PidRecord) -> Option<std::time::Duration> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten()?;
    let ticks = u64::try_from(ticks).ok().filter(|&t| t > 0)?;
    let uptime: f64 =
        std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    let started = std::time::Duration::from_millis(rec.start_time.saturating_mul(1000) / ticks);
    std::time::Duration::try_from_secs_f64(uptime).ok()?.checked_sub(started)
}

/// What a pid file points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Our child, alive: adopt it.
    Ours,
    /// Dead (or the pid now belongs to a process started later).
    Gone,
    /// Alive with the recorded start time but not running our executable.
    Foreign(String),
}

pub fn verify(rec: PidRecord, exe: &Path) -> Verdict {
    if !is_alive(rec) {
        return Verdict::Gone;
    }
    if runs_exe(rec.pid, exe) {
        Verdict::Ours
    } else {
        let what = std::fs::read_link(format!("/proc/{}/exe", rec.pid))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("unreadable executable: {e}"));
        Verdict::Foreign(what)
    }
}

/// /proc/PID/exe names our executable (possibly " (deleted)" after an
/// upgrade replaced the file), or else argv[0] is the path we spawned.
fn runs_exe(pid: u32, exe: &Path) -> bool {
    let wanted = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    if let Ok(link) = std::fs::read_link(format!("/proc/{pid}/exe")) {
        let link = link.into_os_string().into_vec();
        let link = link.strip_suffix(b" (deleted)").unwrap_or(&link);
        if Path::new(&OsString::from_vec(link.to_vec())) == wanted {
            return true;
        }
    }
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        Path::new(&OsString::from_vec(argv0.to_vec())) == exe
    })
}

/// The command line of `pid` after argv[0] (to warn when an adopted child
/// runs with other arguments than its service now has).
pub fn args_of(pid: u32) -> Option<Vec<OsString>> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut parts: Vec<OsString> =
        cmdline.split(|&b| b == 0).map(|a| OsString::from_vec(a.to_vec())).collect();
    // The command line ends with a NUL: the split yields a last empty part.
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    (!parts.is_empty()).then(|| parts.split_off(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = "1234 (a) b) (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(ProcStat { state: 'S', start_time: 987654 }));
        assert_eq!(parse_stat("1 (x) Z 1 2"), None, "too short");
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn pid_file_round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = pid_path(dir.path(), "haproxy");
        assert_eq!(read_pid_file(&path).unwrap(), None);
        let rec = PidRecord { pid: 42, start_time: 7 };
        write_pid_file(&path, rec).unwrap();
        assert_eq!(read_pid_file(&path).unwrap(), Some(rec));
        std::fs::write(&path, "not a pid\n").unwrap();
        assert_eq!(read_pid_file(&path).unwrap(), None);
        remove_pid_file(&path);
        remove_pid_file(&path);
        assert!(!path.exists());
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = PidRecord::of(std::process::id()).unwrap();
        assert!(is_alive(me));
        assert!(!is_alive(PidRecord { start_time: me.start_time + 1, ..me }));
        let exe = std::env::current_exe().unwrap();
        assert_eq!(verify(me, &exe), Verdict::Ours);
        assert!(matches!(verify(me, Path::new("/bin/true")), Verdict::Foreign(_)));
        assert!(args_of(me.pid).is_some());
        let age = age(me).unwrap();
        assert!(age < std::time::Duration::from_secs(600), "this test process is young: {age:?}");
    }
}
