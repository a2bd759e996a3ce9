//! Where the files a configuration names are read from: the file system, or,
//! once `lanai proxy` has locked itself in its `chroot`, a broker process it
//! left outside the jail (`proxy::jail`), which answers only for the files
//! the configuration names. Every configuration read (the file itself,
//! certificates, CA files, errorfiles, `return file`) and every server name
//! lookup on reload goes through here.
//!
//! Wire format, both ways: one op byte, a u32 (big-endian) length, the
//! payload. Requests: `R` read a file, `S` stat, `L` list a directory, `A`
//! resolve `host:port` (payload: the path or name). Answers: `O` + data, `N`
//! not found / not allowed, `E` + message.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Other,
}

static BROKER: OnceLock<Mutex<UnixStream>> = OnceLock::new();

/// From now on, files come from the broker at the other end of `stream`.
pub fn use_broker(stream: UnixStream) -> Result<(), String> {
    BROKER.set(Mutex::new(stream)).map_err(|_| "a file broker is already in use".to_string())
}

pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    match BROKER.get() {
        None => std::fs::read(path),
        Some(broker) => ask(broker, b'R', path.as_os_str().as_encoded_bytes()),
    }
}

pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// What `path` is (symlinks followed).
pub fn kind(path: &Path) -> io::Result<Kind> {
    match BROKER.get() {
        None => std::fs::metadata(path).map(|m| kind_of(&m)),
        Some(broker) => {
            let answer = ask(broker, b'S', path.as_os_str().as_encoded_bytes())?;
            Ok(decode_kind(answer.first().copied()))
        }
    }
}

/// The entries of a directory (symlinks followed), sorted by path.
pub fn read_dir(path: &Path) -> io::Result<Vec<(PathBuf, Kind)>> {
    let mut entries = match BROKER.get() {
        None => local_dir(path)?,
        Some(broker) => decode_dir(path, &ask(broker, b'L', path.as_os_str().as_encoded_bytes())?)?,
    };
    entries.sort();
    Ok(entries)
}

/// Addresses of `host` (a server name) at `port`.
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    match BROKER.get() {
        None => Ok((host, port).to_socket_addrs()?.collect()),
        Some(broker) => {
            let answer = ask(broker, b'A', format!("{host}:{port}").as_bytes())?;
            String::from_utf8_lossy(&answer)
                .split_whitespace()
                .map(|a| a.parse().map_err(|_| io::Error::other(format!("bad address from the broker: {a}"))))
                .collect()
        }
    }
}

pub(crate) fn kind_of(meta: &std::fs::Metadata) -> Kind {
    if meta.is_dir() {
        Kind::Dir
    } else if meta.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

pub(crate) fn encode_kind(kind: Kind) -> u8 {
    match kind {
        Kind::File => b'f',
        Kind::Dir => b'd',
        Kind::Other => b'o',
    }
}

fn decode_kind(byte: Option<u8>) -> Kind {
    match byte {
        Some(b'f') => Kind::File,
        Some(b'd') => Kind::Dir,
        _ => Kind::Other,
    }
}

/// The local directory listing, as the broker also produces it.
pub(crate) fn local_dir(path: &Path) -> io::Result<Vec<(PathBuf, Kind)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        let kind = std::fs::metadata(&p).map_or(Kind::Other, |m| kind_of(&m));
        out.push((p, kind));
    }
    Ok(out)
}

/// Directory answer: per entry, a kind byte, a u32 name length, the name.
pub(crate) fn encode_dir(entries: &[(PathBuf, Kind)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (p, kind) in entries {
        let name = p.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
        out.push(encode_kind(*kind));
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name);
    }
    out
}

fn decode_dir(dir: &Path, mut bytes: &[u8]) -> io::Result<Vec<(PathBuf, Kind)>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad directory listing from the broker");
    let mut out = Vec::new();
    while let Some((&kind, rest)) = bytes.split_first() {
        let len = rest.get(..4).ok_or_else(bad)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let name = rest.get(4..4 + len).ok_or_else(bad)?;
        let name = std::str::from_utf8(name).map_err(|_| bad())?;
        if name.contains('/') || name == ".." {
            return Err(bad());
        }
        out.push((dir.join(name), decode_kind(Some(kind))));
        bytes = &rest[4 + len..];
    }
    Ok(out)
}

pub(crate) fn write_frame(w: &mut impl Write, op: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(op);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame)
}

/// Largest frame accepted (a certificate bundle or errorfile is far smaller).
const MAX_FRAME: usize = 64 << 20;

pub(crate) fn read_frame(r: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok((head[0], payload))
}

fn ask(broker: &Mutex<UnixStream>, op: u8, payload: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = broker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    write_frame(&mut *stream, op, payload)?;
    let (status, data) = read_frame(&mut *stream)?;
    match status {
        b'O' => Ok(data),
        b'N' => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} (not found, or not named by the configuration)", String::from_utf8_lossy(payload)),
        )),
        _ => Err(io::Error::other(String::from_utf8_lossy(&data).into_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_listings_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b'R', b"/etc/haproxy/site.pem").unwrap();
        let (op, payload) = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!((op, payload.as_slice()), (b'R', &b"/etc/haproxy/site.pem"[..]));
        let entries = vec![(PathBuf::from("/d/a.pem"), Kind::File), (PathBuf::from("/d/sub"), Kind::Dir)];
        assert_eq!(decode_dir(Path::new("/d"), &encode_dir(&entries)).unwrap(), entries);
        // A listing may not climb out of its directory.
        for name in [&b".."[..], b"a/../../etc"] {
            let mut evil = vec![b'd'];
            evil.extend_from_slice(&(name.len() as u32).to_be_bytes());
            evil.extend_from_slice(name);
            assert!(decode_dir(Path::new("/d"), &evil).is_err());
        }
        assert!(read_frame(&mut &[b'O', 0xff, 0xff, 0xff, 0xff][..]).is_err());
    }
}
