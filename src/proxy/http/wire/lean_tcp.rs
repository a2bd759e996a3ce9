//! A TCP stream that asks the kernel for write readiness only once a write
//! has had to wait.
//!
//! tokio's `TcpStream` registers every socket for readable and writable
//! events. Then each ACK that frees send-buffer space queues an EPOLLOUT
//! event that nobody waits for: kernel work for every exchange, and it moves
//! the socket up epoll's ready list, so under saturation some connections are
//! served twice while others wait (HAProxy subscribes to writes only when a
//! send would block). HTTP heads and small bodies go out in one `send`, so
//! most connections never need write events at all.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

pub struct LeanTcp {
    /// The socket, registered for readable events only.
    fd: AsyncFd<std::net::TcpStream>,
    /// A duplicate of its descriptor registered for writable events, from
    /// the first write that had to wait. A second registration rather than a
    /// new one for both: a reader waiting on the first keeps its waker.
    writes: Option<AsyncFd<std::net::TcpStream>>,
}

impl LeanTcp {
    /// Takes the socket over from tokio's reactor.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        let std = stream.into_std()?;
        Ok(LeanTcp { fd: register(std, Interest::READABLE)?, writes: None })
    }

    pub fn as_std(&self) -> &std::net::TcpStream {
        self.fd.get_ref()
    }

    /// Pending while nothing can be read (no data, no EOF, no error).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.fd.poll_read_ready(cx).map_ok(|_| ())
    }

    /// The registration for writable events, made on first use.
    fn writes(&mut self) -> io::Result<&AsyncFd<std::net::TcpStream>> {
        if self.writes.is_none() {
            let dup = self.fd.get_ref().try_clone()?;
            self.writes = Some(register(dup, Interest::WRITABLE)?);
        }
        self.writes.as_ref().ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

fn register(sock: std::net::TcpStream, interest: Interest) -> io::Result<AsyncFd<std::net::TcpStream>> {
    // SAFETY: a std TcpStream owns its descriptor: it stays open, and
    // `as_raw_fd` returns the same one, for as long as the AsyncFd holds it.
    unsafe { AsyncFd::register_with_interest(sock, interest) }.map_err(io::Error::from)
}

fn send(sock: &std::net::TcpStream, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::send(sock.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl AsyncRead for LeanTcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let fd = &self.fd;
        loop {
            let mut guard = ready!(fd.poll_read_ready(cx))?;
            // SAFETY: recv writes at most `unfilled.len()` bytes into it, and
            // only the bytes it reports written are marked initialised.
            let unfilled = unsafe { buf.unfilled_mut() };
            let wanted = unfilled.len();
            let result = guard.try_io(|sock| {
                let n =
                    unsafe { libc::recv(sock.as_raw_fd(), unfilled.as_mut_ptr().cast(), unfilled.len(), 0) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match result {
                Ok(Ok(n)) => {
                    // SAFETY: recv initialised the first `n` bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    if n > 0 && n < wanted {
                        // A short read drained the socket: wait for the next
                        // event instead of a recv that would fail with EAGAIN
                        // (as tokio's TcpStream does; the guard clears only if
                        // no event came in since).
                        guard.clear_ready_matching(tokio::io::Ready::READABLE);
                    }
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for LeanTcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.writes.is_none() {
            match send(this.fd.get_ref(), buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
        let fd = this.writes()?;
        loop {
            let mut guard = ready!(fd.poll_write_ready(cx))?;
            match guard.try_io(|sock| send(sock.get_ref(), buf)) {
                Ok(done) => return Poll::Ready(done),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.fd.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

/// A connection's byte stream, plain or TLS (`Tls`: rustls's stream for the
/// client side or for the server side of a connection).
pub enum Stream<Tls> {
    Plain(LeanTcp),
    Tls(Box<Tls>),
}

impl<Tls: AsyncRead + Unpin> AsyncRead for Stream<Tls> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<Tls: AsyncWrite + Unpin> AsyncWrite for Stream<Tls> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (LeanTcp, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (LeanTcp::new(client.unwrap()).unwrap(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn a_write_that_must_wait_arms_write_events_and_completes() {
        let (mut lean, mut peer) = pair().await;
        // Far more than both socket buffers: the write blocks until the peer reads.
        let data: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            lean.write_all(&data).await.unwrap();
            lean.shutdown().await.unwrap();
            lean
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut got = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(20), peer.read_to_end(&mut got));
        read.await.expect("the writer went on once the peer read").unwrap();
        assert!(got == expected, "{} bytes received of {}", got.len(), expected.len());
        assert!(writer.await.unwrap().writes.is_some(), "the write had to wait");
    }

    #[tokio::test]
    async fn reads_what_arrives_then_the_end() {
        let (mut lean, mut peer) = pair().await;
        let mut buf = [0u8; 64];
        peer.write_all(b"hello").await.unwrap();
        assert_eq!(lean.read(&mut buf).await.unwrap(), 5);
        // The short read cleared readiness: the next read waits for new bytes.
        let late = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            peer.write_all(b" world").await.unwrap();
            peer
        });
        let n = lean.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b" world");
        drop(late.await.unwrap());
        assert_eq!(lean.read(&mut buf).await.unwrap(), 0, "EOF");
        assert!(lean.writes.is_none());
    }

    #[tokio::test]
    async fn a_reader_waiting_when_writes_are_armed_is_still_woken() {
        let (lean, mut peer) = pair().await;
        let (mut reader, mut writer) = tokio::io::split(lean);
        // The reader waits first; then a write fills the buffers and arms write events.
        let read = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let n = reader.read(&mut buf).await.unwrap();
            buf[..n].to_vec()
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let big = vec![7u8; 16 * 1024 * 1024];
        let write = tokio::spawn(async move { writer.write_all(&big).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!write.is_finished(), "the write is waiting for the peer");
        peer.write_all(b"ping").await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
        assert_eq!(got.expect("the reader was woken").unwrap(), b"ping");
        write.abort();
    }
}
