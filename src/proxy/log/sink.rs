//! Sending log lines to `log` targets without ever blocking the data plane.
//!
//! Framing, as HAProxy 2.6 sends it (checked against its datagrams):
//!
//! * `rfc3164` (the default, for every destination including stdout):
//!   `<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE\n`, local time, day space-padded,
//!   no host name;
//! * `short`: `<LEVEL>MESSAGE\n` (severity only, no facility: sd-daemon style);
//! * `rfc5424`: `<PRI>1 2026-11-21T10:12:13.123456+00:00 - TAG PID - - MESSAGE\n`;
//! * `raw`: `MESSAGE\n`.
//!
//! Lines are cut at [`MAX_LINE_LEN`] bytes (HAProxy's default `len`), then
//! get their `\n`.
//!
//! Every send is a single non-blocking system call. When the socket buffer is
//! full (`EAGAIN`), the line is dropped: losing a log line is better than
//! stalling traffic, which is also HAProxy's choice.

use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::conf::haproxy::model::{Facility, Level, LogDest, LogFormat, LogTarget};

use super::time;

/// HAProxy's default maximum log line length (`log … len`), header included,
/// final `\n` not included.
pub const MAX_LINE_LEN: usize = 1024;

/// How long to wait before trying again to connect a Unix log socket that was
/// missing, so a missing `/dev/log` costs one failed `connect` per second at
/// most instead of one per line.
const UNIX_RETRY: Duration = Duration::from_secs(1);

/// Where log lines of one proxy (or of the process) go.
#[derive(Debug)]
pub struct Logger {
    tag: String,
    pid: u32,
    targets: Vec<Target>,
}

#[derive(Debug)]
struct Target {
    facility: Facility,
    max_level: Level,
    format: LogFormat,
    /// `len N`, else [`MAX_LINE_LEN`].
    max_len: usize,
    dest: Dest,
}

#[derive(Debug)]
enum Dest {
    Stdout,
    Stderr,
    Udp { sock: Option<UdpSocket>, addr: SocketAddr },
    Unix(Mutex<UnixTarget>),
}

#[derive(Debug)]
struct UnixTarget {
    path: PathBuf,
    sock: Option<UnixDatagram>,
    /// Earliest time for the next connection attempt while `sock` is `None`.
    retry_at: Instant,
}

impl Logger {
    /// A logger for `targets`, signing lines `tag[pid]`.
    pub fn new(targets: &[LogTarget], tag: &str, pid: u32) -> Logger {
        let targets = targets
            .iter()
            .map(|t| Target {
                facility: t.facility,
                max_level: t.max_level,
                format: t.format,
                max_len: t.max_len.unwrap_or(MAX_LINE_LEN).max(1),
                dest: Dest::open(&t.dest),
            })
            .collect();
        Logger { tag: tag.to_string(), pid, targets }
    }

    /// The data plane's logger: tag `lanai`, this process's pid.
    pub fn lanai(targets: &[LogTarget]) -> Logger {
        Logger::new(targets, "lanai", std::process::id())
    }

    /// No target at all (`no log`): callers can skip building lines.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Whether some target takes lines of `level`.
    pub fn enabled(&self, level: Level) -> bool {
        self.targets.iter().any(|t| level <= t.max_level)
    }

    /// Sends `msg` to every target whose `max_level` admits `level`, with the
    /// target's facility unless `facility_override` is given. Never blocks and
    /// never fails: undeliverable lines are dropped.
    pub fn log(&self, level: Level, facility_override: Option<Facility>, msg: &str) {
        let now = SystemTime::now();
        for t in &self.targets {
            if level > t.max_level {
                continue;
            }
            let facility = facility_override.unwrap_or(t.facility);
            let line = self.frame(t.format, t.max_len, facility, level, now, msg);
            t.dest.send(&line);
        }
    }

    /// One complete line, framed for `format` and cut at `max_len` bytes.
    pub(super) fn frame(
        &self,
        format: LogFormat,
        max_len: usize,
        facility: Facility,
        level: Level,
        now: SystemTime,
        msg: &str,
    ) -> Vec<u8> {
        let pri = (facility as u32) * 8 + level as u32;
        let mut line = Vec::with_capacity(msg.len() + 48);
        match format {
            LogFormat::Rfc3164 => {
                let tm = time::local(now);
                let _ = write!(
                    line,
                    "<{pri}>{} {:2} {:02}:{:02}:{:02} {}[{}]: ",
                    tm.month_name(),
                    tm.day,
                    tm.hour,
                    tm.min,
                    tm.sec,
                    self.tag,
                    self.pid
                );
            }
            LogFormat::Short => {
                // The severity alone, as systemd/sd-daemon reads it: HAProxy
                // drops the facility in this format.
                let _ = write!(line, "<{}>", level as u32);
            }
            LogFormat::Rfc5424 => {
                // No host name: HAProxy sends `-` unless `log-send-hostname`.
                let tm = time::local(now);
                let off = tm.utc_offset.abs();
                let _ = write!(
                    line,
                    "<{pri}>1 {:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02} - {} {} - - ",
                    tm.year,
                    tm.month + 1,
                    tm.day,
                    tm.hour,
                    tm.min,
                    tm.sec,
                    tm.micros,
                    if tm.utc_offset < 0 { '-' } else { '+' },
                    off / 3600,
                    off % 3600 / 60,
                    self.tag,
                    self.pid
                );
            }
            LogFormat::Raw => {}
        }
        line.extend_from_slice(msg.as_bytes());
        line.truncate(max_len);
        line.push(b'\n');
        line
    }
}

impl Dest {
    fn open(dest: &LogDest) -> Dest {
        match dest {
            LogDest::Stdout => Dest::Stdout,
            LogDest::Stderr => Dest::Stderr,
            LogDest::Udp(addr) => {
                let local: IpAddr =
                    if addr.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
                let sock = UdpSocket::bind((local, 0)).and_then(|s| s.set_nonblocking(true).map(|()| s));
                let sock = match sock {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "cannot open UDP log socket; lines to it are dropped");
                        None
                    }
                };
                Dest::Udp { sock, addr: *addr }
            }
            LogDest::Unix(path) => {
                let mut t = UnixTarget { path: path.clone(), sock: None, retry_at: Instant::now() };
                t.connect();
                Dest::Unix(Mutex::new(t))
            }
        }
    }

    fn send(&self, line: &[u8]) {
        match self {
            Dest::Stdout => write_fd_nonblocking(libc::STDOUT_FILENO, line),
            Dest::Stderr => write_fd_nonblocking(libc::STDERR_FILENO, line),
            Dest::Udp { sock: Some(sock), addr } => {
                if let Err(e) = sock.send_to(line, addr) {
                    dropped(&e);
                }
            }
            Dest::Udp { sock: None, .. } => {}
            Dest::Unix(target) => {
                let mut t = match target.lock() {
                    Ok(t) => t,
                    Err(poisoned) => poisoned.into_inner(),
                };
                t.send(line);
            }
        }
    }
}

impl UnixTarget {
    fn connect(&mut self) {
        match connect_unix(&self.path) {
            Ok(s) => self.sock = Some(s),
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "log socket not available");
                self.sock = None;
                self.retry_at = Instant::now() + UNIX_RETRY;
            }
        }
    }

    fn send(&mut self, line: &[u8]) {
        if self.sock.is_none() && Instant::now() >= self.retry_at {
            self.connect();
        }
        let Some(sock) = &self.sock else { return };
        match sock.send(line) {
            Ok(_) => {}
            Err(e) if is_transient(&e) => dropped(&e),
            Err(_) => {
                // The listener went away (syslog restarted and recreated the
                // socket file): connect to the new one and retry this line once.
                self.sock = None;
                self.connect();
                if let Some(sock) = &self.sock {
                    if let Err(e) = sock.send(line) {
                        dropped(&e);
                    }
                }
            }
        }
    }
}

fn connect_unix(path: &Path) -> io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.set_nonblocking(true)?;
    s.connect(path)?;
    Ok(s)
}

/// Full buffers: the reader is slow, the line is dropped.
fn is_transient(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}

fn dropped(e: &io::Error) {
    tracing::trace!(error = %e, "log line dropped");
}

/// Writes `line` to a standard stream only if that can be done without
/// waiting. The descriptor itself is not switched to O_NONBLOCK, since it is
/// shared with the parent (terminal, supervisor pipe); instead we ask poll(2)
/// first. A writable pipe has at least a page free, and lines are shorter
/// than that, so the write that follows does not block.
fn write_fd_nonblocking(fd: libc::c_int, line: &[u8]) {
    let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    if ready != 1 || pfd.revents & libc::POLLOUT == 0 {
        return;
    }
    // SAFETY: `line` is a valid buffer of `line.len()` bytes for the call.
    let n = unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
    if n < 0 {
        dropped(&io::Error::last_os_error());
    }
}
