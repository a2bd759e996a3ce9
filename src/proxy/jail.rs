//! `chroot DIR` for `lanai proxy`. Once every socket is bound and the
//! configuration loaded, the process locks itself in DIR (then drops to
//! `user`/`group`), as HAProxy does. A reload must still read the
//! configuration, its certificates and errorfiles from their real paths, and
//! resolve server names with the host's resolver: for that a broker process
//! is started just before, outside the jail (`lanai file-broker FILE`, talking
//! over a socket pair). It answers only for the configuration file and the
//! files and directories that the configuration currently names (with their
//! `.key`/`.ocsp`/`.issuer`/`.sctl` companions and a `crt` directory's
//! entries), so a compromised proxy cannot read anything else through it. It
//! exits when the proxy does (end of file on the socket).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::conf::haproxy;
use crate::conf::source;

/// Starts the broker for `config` and returns our end of its socket.
pub fn spawn_broker(config: &Path) -> Result<UnixStream, String> {
    let exe = std::env::current_exe().map_err(|e| format!("chroot: own executable: {e}"))?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("chroot: socket pair: {e}"))?;
    Command::new(exe)
        .arg("file-broker")
        .arg(config)
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("chroot: cannot start the file broker: {e}"))?;
    Ok(ours)
}

/// Locks the process in `dir`.
pub fn enter(dir: &Path) -> Result<(), String> {
    nix::unistd::chroot(dir).map_err(|e| format!("cannot chroot to '{}': {e}", dir.display()))?;
    nix::unistd::chdir("/").map_err(|e| format!("cannot chdir to / in the chroot: {e}"))
}

/// What the broker may hand out: the configuration file and what it names.
struct Allowed {
    config: PathBuf,
    named: Vec<PathBuf>,
}

const COMPANIONS: [&str; 4] = [".key", ".ocsp", ".issuer", ".sctl"];

impl Allowed {
    fn new(config: PathBuf) -> Allowed {
        let mut allowed = Allowed { config, named: Vec::new() };
        allowed.refresh();
        allowed
    }

    /// Re-reads the configuration (on every read of it: a reload) for the
    /// files it names now. An invalid text names nothing new.
    fn refresh(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.config) else { return };
        let name = self.config.display().to_string();
        if let (Some(config), _) = haproxy::parse(&name, &text) {
            self.named = haproxy::referenced_files(&config);
        }
    }

    fn allows(&self, path: &Path) -> bool {
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return false;
        }
        if path == self.config {
            return true;
        }
        self.named.iter().any(|named| {
            let companion = COMPANIONS.iter().any(|ext| {
                let mut with = named.as_os_str().to_owned();
                with.push(ext);
                path == Path::new(&with)
            });
            // A `crt` directory's entries and their companions.
            path == named || companion || path.parent() == Some(named.as_path())
        })
    }
}

/// `lanai file-broker FILE`: serves the jailed proxy on standard input.
pub fn serve_broker(config: &Path) -> ExitCode {
    use std::os::fd::AsFd;
    // Standard input is the socket spawn_broker handed us.
    let stdin = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("file-broker: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stream = UnixStream::from(stdin);
    let mut allowed = Allowed::new(config.to_path_buf());
    loop {
        let (op, payload) = match source::read_frame(&mut stream) {
            Ok(frame) => frame,
            // The proxy is gone.
            Err(_) => return ExitCode::SUCCESS,
        };
        let (status, data) = answer(&mut allowed, op, &payload);
        if source::write_frame(&mut stream, status, &data).is_err() {
            return ExitCode::SUCCESS;
        }
    }
}

fn answer(allowed: &mut Allowed, op: u8, payload: &[u8]) -> (u8, Vec<u8>) {
    let text = String::from_utf8_lossy(payload).into_owned();
    if op == b'A' {
        use std::net::ToSocketAddrs;
        return match text.to_socket_addrs() {
            Ok(addrs) => (b'O', addrs.map(|a| a.to_string()).collect::<Vec<_>>().join(" ").into_bytes()),
            Err(e) => (b'E', e.to_string().into_bytes()),
        };
    }
    let path = PathBuf::from(&text);
    if op == b'R' && path == allowed.config {
        allowed.refresh();
    }
    if !allowed.allows(&path) {
        return (b'N', Vec::new());
    }
    let result = match op {
        b'R' => std::fs::read(&path),
        b'S' => std::fs::metadata(&path).map(|m| vec![source::encode_kind(source::kind_of(&m))]),
        b'L' => source::local_dir(&path).map(|entries| source::encode_dir(&entries)),
        _ => return (b'E', format!("unknown request '{}'", op as char).into_bytes()),
    };
    match result {
        Ok(data) => (b'O', data),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (b'N', Vec::new()),
        Err(e) => (b'E', format!("{}: {e}", path.display()).into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_hands_out_only_what_the_configuration_names() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let certs = dir.path().join("certs");
        std::fs::write(
            &cfg,
            format!(
                "frontend f\n  bind :443 ssl crt {} crt /etc/ssl/site.pem\n  errorfile 503 /etc/haproxy/503.http\n",
                certs.display()
            ),
        )
        .unwrap();
        let allowed = Allowed::new(cfg.clone());
        for ok in [
            cfg.clone(),
            certs.clone(),
            certs.join("a.pem"),
            certs.join("a.pem.key"),
            PathBuf::from("/etc/ssl/site.pem"),
            PathBuf::from("/etc/ssl/site.pem.key"),
            PathBuf::from("/etc/ssl/site.pem.ocsp"),
            PathBuf::from("/etc/haproxy/503.http"),
        ] {
            assert!(allowed.allows(&ok), "{} should be allowed", ok.display());
        }
        for refused in [
            PathBuf::from("/etc/shadow"),
            PathBuf::from("/etc/ssl/other.pem"),
            certs.join("../../etc/shadow"),
            certs.join("sub/deeper.pem"),
            PathBuf::from("/etc/haproxy/503.http.bak"),
        ] {
            assert!(!allowed.allows(&refused), "{} should be refused", refused.display());
        }
        // A reload that names a new file makes it available, and the old one not.
        std::fs::write(&cfg, "frontend f\n  errorfile 503 /etc/haproxy/other.http\n").unwrap();
        let mut allowed = allowed;
        let (status, _) = answer(&mut allowed, b'R', cfg.as_os_str().as_encoded_bytes());
        assert_eq!(status, b'O');
        assert!(allowed.allows(Path::new("/etc/haproxy/other.http")));
        assert!(!allowed.allows(Path::new("/etc/haproxy/503.http")));
        assert_eq!(answer(&mut allowed, b'R', b"/etc/shadow").0, b'N');
    }
}
