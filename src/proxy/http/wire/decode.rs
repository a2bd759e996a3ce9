//! Body framing on the wire (RFC 9112 §6, §7.1): cutting a sized or chunked
//! body out of a connection's read buffer, for request bodies from clients and
//! response bodies from servers alike.

use bytes::{Buf, Bytes, BytesMut};
use http_body::SizeHint;

/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4096;

/// How a body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the peer closes: the connection cannot be reused.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailers,
}

/// What the buffer gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// The body ended (the buffer may hold what follows it).
    End,
    /// More bytes must be read first.
    NeedMore,
    Invalid(&'static str),
}

/// Cuts one body out of a read buffer, as its bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    state: State,
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::UntilClose => State::UntilClose,
        };
        Decoder { state }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next piece of the body from `buf`. Trailers are dropped
    /// (hop-by-hop in practice).
    pub fn step(&mut self, buf: &mut BytesMut) -> Step {
        loop {
            match self.state {
                State::Done => return Step::End,
                State::Length(left) if !buf.is_empty() => {
                    let (data, left) = take_up_to(buf, left);
                    self.state = if left == 0 { State::Done } else { State::Length(left) };
                    return Step::Data(data);
                }
                State::UntilClose if !buf.is_empty() => return Step::Data(buf.split().freeze()),
                State::Chunked(Chunk::Data(left)) if !buf.is_empty() => {
                    let (data, left) = take_up_to(buf, left);
                    self.state = State::Chunked(if left == 0 { Chunk::DataEnd } else { Chunk::Data(left) });
                    return Step::Data(data);
                }
                State::Chunked(Chunk::DataEnd) if buf.len() >= 2 => {
                    if &buf[..2] != b"\r\n" {
                        return self.invalid("chunk not followed by CRLF");
                    }
                    buf.advance(2);
                    self.state = State::Chunked(Chunk::Size);
                }
                State::Chunked(Chunk::Size) => match take_line(buf) {
                    Some(line) => match parse_chunk_size(&line) {
                        Some(0) => self.state = State::Chunked(Chunk::Trailers),
                        Some(n) => self.state = State::Chunked(Chunk::Data(n)),
                        None => return self.invalid("invalid chunk size"),
                    },
                    None if buf.len() > MAX_LINE => return self.invalid("chunk-size line too long"),
                    None => return Step::NeedMore,
                },
                State::Chunked(Chunk::Trailers) => match take_line(buf) {
                    Some(line) if line.is_empty() => {
                        self.state = State::Done;
                        return Step::End;
                    }
                    Some(_) => {}
                    None if buf.len() > MAX_LINE => return self.invalid("trailer line too long"),
                    None => return Step::NeedMore,
                },
                _ => return Step::NeedMore,
            }
        }
    }

    /// The peer closed the connection: the end of a close-delimited body,
    /// an error for any other.
    pub fn at_eof(&mut self) -> Result<(), &'static str> {
        let was = std::mem::replace(&mut self.state, State::Done);
        match was {
            State::UntilClose | State::Done => Ok(()),
            _ => Err("connection closed in the middle of the body"),
        }
    }

    pub fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }

    fn invalid(&mut self, why: &'static str) -> Step {
        self.state = State::Done;
        Step::Invalid(why)
    }
}

/// At most `left` bytes from the front of a non-empty `buf`, and what is left after them.
fn take_up_to(buf: &mut BytesMut, left: u64) -> (Bytes, u64) {
    let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
    (buf.split_to(n).freeze(), left - n as u64)
}

/// A line ending in CRLF (or a bare LF) at the start of `buf`, without its end.
fn take_line(buf: &mut BytesMut) -> Option<BytesMut> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let mut line = buf.split_to(end + 1);
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Some(line)
}

/// `1a3f[;ext…]` → its value.
pub fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?;
    let digits = std::str::from_utf8(digits).ok()?.trim_matches(|c| c == ' ' || c == '\t');
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(framing: Framing, input: &[u8]) -> (Vec<u8>, Step, usize) {
        let mut d = Decoder::new(framing);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match d.step(&mut buf) {
                Step::Data(b) => out.extend_from_slice(&b),
                other => return (out, other, buf.len()),
            }
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers_leaves_what_follows() {
        let (body, end, rest) =
            all(Framing::Chunked, b"5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: v\r\n\r\nGET /next");
        assert_eq!((body.as_slice(), end, rest), (&b"hello!"[..], Step::End, 9));
    }

    #[test]
    fn length_stops_at_its_end_and_waits_for_the_rest() {
        assert_eq!(all(Framing::Length(3), b"abcdef"), (b"abc".to_vec(), Step::End, 3));
        assert_eq!(all(Framing::Length(5), b"abc"), (b"abc".to_vec(), Step::NeedMore, 0));
        let mut d = Decoder::new(Framing::Length(5));
        assert!(d.at_eof().is_err());
        let mut d = Decoder::new(Framing::UntilClose);
        assert!(d.at_eof().is_ok());
    }

    #[test]
    fn broken_chunking_is_invalid() {
        assert!(matches!(all(Framing::Chunked, b"zz\r\n").1, Step::Invalid(_)));
        assert!(matches!(all(Framing::Chunked, b"2\r\nabXX").1, Step::Invalid(_)));
        assert!(matches!(all(Framing::Chunked, &[b'1'; 5000]).1, Step::Invalid(_)));
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a"), Some(26));
        assert_eq!(parse_chunk_size(b"1A;name=value"), Some(26));
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_chunk_size(b"xyz"), None);
        assert_eq!(parse_chunk_size(b"ffffffffffffffffff"), None);
    }

    #[test]
    fn mangled_bodies_end_or_are_refused_never_a_panic() {
        use super::super::mangle::Mangler;
        let seed: &[u8] = b"5;x=y\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\nGET /next";
        let mut m = Mangler::new(7);
        let (mut ended, mut refused) = (0, 0);
        for i in 0..20_000 {
            let input = m.mangle(seed);
            let framing = if i % 4 == 0 { Framing::Length(m.below(80) as u64) } else { Framing::Chunked };
            let mut d = Decoder::new(framing);
            let mut buf = BytesMut::new();
            let (mut fed, mut out) = (0, 0);
            // Fed a few bytes at a time; every step must take bytes, end, or ask for more.
            let last = loop {
                let before = buf.len();
                match d.step(&mut buf) {
                    Step::Data(b) => {
                        assert!(!b.is_empty() && buf.len() < before);
                        out += b.len();
                    }
                    Step::NeedMore if fed < input.len() => {
                        let n = (1 + m.below(7)).min(input.len() - fed);
                        buf.extend_from_slice(&input[fed..fed + n]);
                        fed += n;
                    }
                    other => break other,
                }
            };
            assert!(out <= input.len());
            match last {
                Step::End => ended += 1,
                Step::Invalid(_) => refused += 1,
                Step::NeedMore => assert!(!d.is_done()),
                Step::Data(_) => unreachable!(),
            }
        }
        assert!(ended > 1_000 && refused > 1_000, "{ended} ended, {refused} refused");
    }
}
