//! Per-service logs: the child's stdout and stderr, kept for the console.
//!
//! Why a file and not a pipe: a pipe's read end lives in the supervisor, so
//! when `lanai run` is killed the child's next write gets EPIPE and every
//! later line is lost, even after a new supervisor adopts the child. Instead
//! the child's stdout and stderr are one descriptor on `run_dir/NAME.log`
//! opened with O_APPEND (inherited at spawn), and the supervisor *tails* that
//! file into a bounded ring buffer. The file outlives any supervisor, so an
//! adopting supervisor just starts tailing it again, and the supervisor's own
//! events (started, exited, restarting…) are appended to the same file so the
//! console shows them in order with the child's lines.
//!
//! Rotation is copy-then-truncate (logrotate's `copytruncate`): the child's
//! descriptor cannot be reopened from outside, and with O_APPEND its next
//! write after the truncation lands at the new end of file (no sparse file).
//! Lines written between the copy and the truncation (microseconds) are lost;
//! that is the price of never touching the child.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::SupervisorOptions;

/// One line of a service's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// When the supervisor read the line (history read at adoption gets the
    /// adoption time: the file holds no reliable time of its own).
    pub time: SystemTime,
    pub text: String,
}

/// The last `capacity` lines, each at most `max_line` bytes.
#[derive(Debug)]
pub struct LogRing {
    lines: VecDeque<LogLine>,
    capacity: usize,
    max_line: usize,
}

/// Appended to a line cut at `max_line` bytes.
pub const TRUNCATED: &str = " [truncated]";

impl LogRing {
    pub fn new(capacity: usize, max_line: usize) -> LogRing {
        LogRing { lines: VecDeque::with_capacity(capacity.min(1024)), capacity, max_line }
    }

    /// Adds a line (without its newline), dropping the oldest when full.
    pub fn push(&mut self, time: SystemTime, raw: &[u8]) {
        if self.capacity == 0 {
            return;
        }
        let text = cap_line(raw, self.max_line);
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(LogLine { time, text });
    }

    /// The last `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<LogLine> {
        let skip = self.lines.len().saturating_sub(n);
        self.lines.iter().skip(skip).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Lossy UTF-8, trailing `\r` removed, cut at a character boundary so that
/// the text is at most `max` bytes before the marker.
fn cap_line(raw: &[u8], max: usize) -> String {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = String::from_utf8_lossy(raw);
    if text.len() <= max {
        return text.into_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + TRUNCATED.len());
    out.push_str(&text[..end]);
    out.push_str(TRUNCATED);
    out
}

/// Follows `run_dir/NAME.log` and rotates it when it grows past `max_file`.
#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    /// The start of a line whose newline has not been written yet.
    pending: Vec<u8>,
    /// Drop bytes up to the next newline (the history window started
    /// inside a line).
    skip_partial: bool,
    max_line: usize,
    max_file: u64,
}

/// At most this much is read per poll, so one chatty child cannot hold the
/// blocking thread for long; the rest comes on the next polls.
const READ_BUDGET: u64 = 1 << 20;

impl LogTail {
    /// Starts at the end of the file, after loading its last `history` bytes
    /// into `ring` (what the console shows right after an adoption).
    pub fn open(path: &Path, max_line: usize, max_file: u64, history: u64, ring: &mut LogRing) -> LogTail {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let offset = len.saturating_sub(history);
        let mut tail = LogTail {
            path: path.to_path_buf(),
            offset,
            pending: Vec::new(),
            skip_partial: offset > 0 && !follows_newline(path, offset),
            max_line,
            max_file,
        };
        let _ = tail.poll(ring);
        tail
    }

    /// Reads what was appended since the last poll into `ring`, then rotates
    /// the file if it is over its size cap.
    pub fn poll(&mut self, ring: &mut LogRing) -> io::Result<()> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            // Truncated by someone else (or another supervisor rotated it).
            self.offset = 0;
            self.pending.clear();
        }
        self.read_from(&mut file, len, ring)?;
        // Even when behind (a child writing faster than READ_BUDGET per
        // poll): the cap on disk matters more than every line in the ring.
        if len > self.max_file {
            self.rotate(ring)?;
        }
        Ok(())
    }

    fn read_from(&mut self, file: &mut File, len: u64, ring: &mut LogRing) -> io::Result<()> {
        let want = len.saturating_sub(self.offset).min(READ_BUDGET);
        if want == 0 {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
        file.take(want).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.feed(&buf, ring);
        Ok(())
    }

    fn feed(&mut self, mut data: &[u8], ring: &mut LogRing) {
        let now = SystemTime::now();
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            if self.skip_partial {
                self.skip_partial = false;
            } else if self.pending.is_empty() {
                ring.push(now, &data[..pos]);
            } else {
                self.pending.extend_from_slice(&data[..pos]);
                ring.push(now, &self.pending);
                self.pending.clear();
            }
            data = &data[pos + 1..];
        }
        if self.skip_partial {
            return;
        }
        self.pending.extend_from_slice(data);
        // A line that never ends is flushed (capped) rather than growing
        // without bound.
        if self.pending.len() > self.max_line {
            ring.push(now, &self.pending);
            self.pending.clear();
        }
    }

    /// Copy to `NAME.log.1` (replacing the previous one), then truncate.
    fn rotate(&mut self, ring: &mut LogRing) -> io::Result<()> {
        let old = rotated_path(&self.path);
        std::fs::copy(&self.path, &old)?;
        // Lines appended between our read and the copy are in the copy:
        // read them from there before the original is truncated.
        let mut copy = File::open(&old)?;
        let copy_len = copy.metadata()?.len();
        if copy_len > self.offset {
            self.read_from(&mut copy, copy_len, ring)?;
        }
        if self.offset < copy_len {
            // Still behind: the skipped lines are only in the old file, and
            // the pending fragment cannot be joined to what follows.
            ring.push(SystemTime::now(), b"lanai-supervisor: output too fast, lines skipped (see .log.1)");
            self.pending.clear();
        }
        OpenOptions::new().write(true).open(&self.path)?.set_len(0)?;
        self.offset = 0;
        tracing::debug!("rotated {} to {}", self.path.display(), old.display());
        Ok(())
    }
}

/// Whether the byte before `offset` is a newline (the window starts on a
/// line boundary).
fn follows_newline(path: &Path, offset: u64) -> bool {
    let mut byte = [0u8; 1];
    File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(offset - 1))?;
            f.read_exact(&mut byte)
        })
        .is_ok_and(|()| byte[0] == b'\n')
}

/// `NAME.log` -> `NAME.log.1`.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// Opens (creating) the log file for appending: given to the child as stdout
/// and stderr, and used by the supervisor for its own event lines.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Appends one supervisor event line, marked so it is told apart from the
/// child's own output. Failures are only traced: logging must never stop a
/// service from being managed.
pub fn append_event(path: &Path, text: &str) {
    let line = format!("{} lanai-supervisor: {text}\n", httpdate::fmt_http_date(SystemTime::now()));
    if let Err(e) = open_append(path).and_then(|mut f| f.write_all(line.as_bytes())) {
        tracing::warn!("cannot write to {}: {e}", path.display());
    }
}

/// Follows one service's log file for as long as the service is registered
/// (aborted with it). File reads run on the blocking pool.
pub async fn tail_loop(path: PathBuf, ring: Arc<Mutex<LogRing>>, opts: SupervisorOptions) {
    let mut tail: Option<LogTail> = None;
    let mut last_error = String::new();
    loop {
        let ring = Arc::clone(&ring);
        let file = path.clone();
        let (max_line, max_file, history) = (opts.log_line_max, opts.log_file_max, opts.log_history);
        let polled = tokio::task::spawn_blocking(move || {
            let mut ring = super::lock(&ring);
            match tail {
                Some(mut t) => {
                    let r = t.poll(&mut ring);
                    (t, r)
                }
                None => (LogTail::open(&file, max_line, max_file, history, &mut ring), Ok(())),
            }
        })
        .await;
        match polled {
            Ok((t, result)) => {
                tail = Some(t);
                // Said once per distinct error: a full disk must not flood.
                match result {
                    Err(e) if e.to_string() != last_error => {
                        last_error = e.to_string();
                        tracing::warn!("reading {}: {e}", path.display());
                    }
                    Err(_) => {}
                    Ok(()) => last_error.clear(),
                }
            }
            Err(_) => return, // the runtime is shutting down
        }
        tokio::time::sleep(opts.tail_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(ring: &LogRing, n: usize) -> Vec<String> {
        ring.last(n).into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn ring_keeps_the_last_lines_in_order() {
        let mut ring = LogRing::new(3, 100);
        for i in 0..5 {
            ring.push(SystemTime::now(), format!("line {i}").as_bytes());
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(texts(&ring, 10), ["line 2", "line 3", "line 4"]);
        assert_eq!(texts(&ring, 2), ["line 3", "line 4"]);
        assert!(texts(&ring, 0).is_empty());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut ring = LogRing::new(0, 100);
        ring.push(SystemTime::now(), b"x");
        assert!(ring.is_empty());
    }

    #[test]
    fn long_lines_are_capped_on_a_char_boundary() {
        let mut ring = LogRing::new(4, 5);
        ring.push(SystemTime::now(), b"abcdefgh");
        ring.push(SystemTime::now(), "abcd\u{e9}f".as_bytes()); // é straddles byte 5
        ring.push(SystemTime::now(), b"ok\r");
        ring.push(SystemTime::now(), &[0xff, b'a']);
        assert_eq!(
            texts(&ring, 4),
            [
                format!("abcde{TRUNCATED}"),
                format!("abcd{TRUNCATED}"),
                "ok".to_string(),
                "\u{fffd}a".to_string()
            ]
        );
    }

    #[test]
    fn tail_follows_appends_and_joins_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        std::fs::write(&path, "old 1\nold 2\n").unwrap();
        let mut ring = LogRing::new(100, 1000);
        let mut tail = LogTail::open(&path, 1000, 1 << 20, 1 << 16, &mut ring);
        assert_eq!(texts(&ring, 10), ["old 1", "old 2"], "history is loaded");
        let mut f = open_append(&path).unwrap();
        f.write_all(b"new 1\nhalf").unwrap();
        tail.poll(&mut ring).unwrap();
        assert_eq!(texts(&ring, 10), ["old 1", "old 2", "new 1"]);
        f.write_all(b" done\n").unwrap();
        tail.poll(&mut ring).unwrap();
        assert_eq!(texts(&ring, 1), ["half done"]);
    }

    #[test]
    fn history_window_skips_the_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        std::fs::write(&path, "aaaaaaaaaa\nbbb\nccc\n").unwrap();
        let mut ring = LogRing::new(100, 1000);
        LogTail::open(&path, 1000, 1 << 20, 5, &mut ring);
        assert_eq!(texts(&ring, 10), ["ccc"]);
        let mut ring = LogRing::new(100, 1000);
        LogTail::open(&path, 1000, 1 << 20, 8, &mut ring);
        assert_eq!(texts(&ring, 10), ["bbb", "ccc"], "window starting on a line boundary");
    }

    #[test]
    fn rotation_keeps_one_old_file_and_the_writer_appends_at_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let mut ring = LogRing::new(1000, 1000);
        let mut tail = LogTail::open(&path, 1000, 100, 0, &mut ring);
        // The "child": one O_APPEND descriptor kept across the rotation.
        let mut child = open_append(&path).unwrap();
        for i in 0..20 {
            child.write_all(format!("line {i:02}\n").as_bytes()).unwrap();
        }
        tail.poll(&mut ring).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "rotated");
        let old = std::fs::read_to_string(rotated_path(&path)).unwrap();
        assert!(old.starts_with("line 00\n") && old.ends_with("line 19\n"), "{old}");
        child.write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n", "no hole before the new line");
        tail.poll(&mut ring).unwrap();
        assert_eq!(ring.len(), 21);
        assert_eq!(texts(&ring, 1), ["after"]);
    }

    #[test]
    fn a_writer_faster_than_the_reader_still_gets_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let mut ring = LogRing::new(10, 1000);
        let mut tail = LogTail::open(&path, 1000, 1000, 0, &mut ring);
        let line = "x".repeat(99) + "\n";
        std::fs::write(&path, line.repeat(30_000)).unwrap(); // 3 MB: more than two READ_BUDGETs
        tail.poll(&mut ring).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "rotated although behind");
        assert_eq!(std::fs::metadata(rotated_path(&path)).unwrap().len(), 3_000_000);
        assert!(texts(&ring, 1)[0].contains("lines skipped"), "{:?}", texts(&ring, 1));
    }

    #[test]
    fn tail_restarts_after_an_external_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        let mut ring = LogRing::new(100, 1000);
        let mut tail = LogTail::open(&path, 1000, 1 << 20, 0, &mut ring);
        assert!(ring.is_empty(), "no history asked");
        std::fs::write(&path, "x\n").unwrap();
        tail.poll(&mut ring).unwrap();
        assert_eq!(texts(&ring, 10), ["x"]);
    }

    #[test]
    fn a_line_without_end_is_flushed_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let mut ring = LogRing::new(100, 8);
        let mut tail = LogTail::open(&path, 8, 1 << 20, 0, &mut ring);
        std::fs::write(&path, "0123456789abc").unwrap();
        tail.poll(&mut ring).unwrap();
        assert_eq!(texts(&ring, 10), [format!("01234567{TRUNCATED}")]);
    }

    #[test]
    fn events_are_marked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        append_event(&path, "started (pid 42)");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with(" lanai-supervisor: started (pid 42)\n"), "{text}");
    }
}
