//! HTTP/1.1 from clients, written for the proxy: one task per connection
//! reads a request head, runs it through [`handle`], writes the response and
//! goes on with the next request on the same connection (keep-alive,
//! pipelining). Replaces hyper's server side, whose dispatcher was the largest
//! share of the user-space work per proxied request (bench/RESULTS.md).
//!
//! Timeouts as HAProxy: `timeout http-request` (else `client`) for the first
//! head, `timeout http-keep-alive` (else the former) for the wait between
//! requests; a head cut short by them gets 408, an idle connection is closed
//! quietly. On graceful stop an idle connection closes at once and a busy one
//! after its response.

mod body;
mod conn;
mod request;
mod response;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use http::header::UPGRADE;
use http::{Method, Request, StatusCode};
use tokio::sync::oneshot;

pub use body::ClientBody;
pub use conn::ClientIo;
use conn::SharedConn;
pub use request::MAX_HEAD;
use request::{parse_request, HeadError, RequestHead};
use response::{encode_head, write_response, Exchange};

use super::body::ProxyBody;
use super::deadline::LazyDeadline;
use super::wire::{Decoder, Prefixed};
use super::{handle, RequestEnv};

/// The client side of an upgraded connection: bytes it sent after its request
/// head first.
pub type ClientUpgraded = Prefixed<ClientIo>;

/// Put in the extensions of a request that asks for an upgrade: once the
/// `101` response has been written, the connection comes out of it.
#[derive(Clone)]
pub struct ClientUpgrade(Arc<Mutex<Option<oneshot::Receiver<ClientUpgraded>>>>);

impl ClientUpgrade {
    /// The connection, once the 101 response went out (None: it did not).
    pub async fn connection(self) -> Option<ClientUpgraded> {
        let rx = self.0.lock().ok()?.take()?;
        rx.await.ok()
    }
}

/// How waiting for a request head ended without one.
enum NoHead {
    /// Closed, idle timeout or stopping: nothing to answer.
    Quiet,
    /// A status to answer with before closing (400, 408, 431).
    Answer(u16),
}

/// Above this, the output buffer a large body grew is not kept for the next request.
const REUSED_OUT_MAX: usize = 64 * 1024;

pub async fn serve(io: ClientIo, env: Arc<RequestEnv>) {
    let conn = SharedConn::new(io);
    let timeouts = &env.frontend.cfg.timeouts;
    let first_wait = timeouts.http_request.or(timeouts.client);
    let idle_wait = timeouts.http_keep_alive.or(first_wait);
    let body_wait = timeouts.client;
    let mut stopping = env.engine.stopping.clone();
    let stop = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    tokio::pin!(stop);
    let mut waits = HeadWait { deadline: LazyDeadline::default(), stop, stopped: false };
    let mut limit = first_wait;
    // The response head (and the first body bytes) of every request, reused.
    let mut out = Vec::with_capacity(1024);
    loop {
        let head = match waits.next_head(&conn, limit).await {
            Ok(head) => head,
            Err(NoHead::Quiet) => break,
            Err(NoHead::Answer(status)) => {
                let resp = env.frontend.errors.response(status);
                let ex =
                    Exchange { head_request: false, client_version: http::Version::HTTP_11, close: true };
                out.clear();
                let head = encode_head(&mut out, &resp, ex);
                write_response(&conn, &mut out, resp.into_body(), head.encoding).await;
                break;
            }
        };
        limit = idle_wait;
        let RequestHead { mut parts, framing, keep_alive, expect_continue } = head;
        let ex = Exchange {
            head_request: parts.method == Method::HEAD,
            client_version: parts.version,
            close: false,
        };
        let mut upgrade_tx = None;
        if parts.headers.contains_key(UPGRADE) {
            let (tx, rx) = oneshot::channel();
            parts.extensions.insert(ClientUpgrade(Arc::new(Mutex::new(Some(rx)))));
            upgrade_tx = Some(tx);
        }
        let body = if Decoder::new(framing).is_done() {
            ProxyBody::empty()
        } else {
            ProxyBody::client(ClientBody::new(conn.clone(), framing, expect_continue, body_wait))
        };
        // Lets the other connections made ready by the same events read
        // their requests first, so that the sends to servers that follow go
        // out together (see `let_ready_tasks_run`).
        let_ready_tasks_run().await;
        let mut req = Request::from_parts(parts, body);
        let resp = handle(&mut req, &env).await;
        drop(req);

        let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS && upgrade_tx.is_some();
        let close = !switching
            && (!keep_alive || waits.stopped || *env.engine.stopping.borrow() || conn.lock().body_open);
        let ex = Exchange { close, ..ex };
        out.clear();
        if out.capacity() > REUSED_OUT_MAX {
            out = Vec::with_capacity(1024);
        }
        let head = encode_head(&mut out, &resp, ex);
        let_ready_tasks_run().await;
        let reusable = write_response(&conn, &mut out, resp.into_body(), head.encoding).await;
        if switching {
            let mut c = conn.lock();
            if let (Some(io), Some(tx)) = (c.io.take(), upgrade_tx) {
                let _ = tx.send(Prefixed::new(io, c.buf.split().freeze()));
            }
            return;
        }
        if head.close || !reusable || conn.lock().body_open {
            break;
        }
    }
    let _ = std::future::poll_fn(|cx| conn.lock().poll_shutdown(cx)).await;
}

/// Puts this task at the back of the run queue once, behind the tasks that
/// were already ready, so that the sends of one batch of events go out one
/// after another, as HAProxy's tasklets send after processing the events: a
/// peer (server, client) woken by the first send finds the others queued when
/// it runs, instead of going back to epoll_wait between them and being woken
/// again, which costs it a system call and often a wake-up on another CPU
/// (`bench/proxy/wakeups.sh` counts both). Called here, at the top of the
/// connection's future, the second poll is cheap; tokio's `yield_now` would
/// wait for the next poll of the reactor instead.
fn let_ready_tasks_run() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// What waiting for the next request head needs across requests.
struct HeadWait<'a, F> {
    /// Kept from one request to the next (re-armed only when it fires).
    deadline: LazyDeadline,
    /// Resolves when the proxy stops gracefully.
    stop: Pin<&'a mut F>,
    stopped: bool,
}

impl<F: Future<Output = ()>> HeadWait<'_, F> {
    async fn next_head(&mut self, conn: &SharedConn, limit: Option<Duration>) -> Result<RequestHead, NoHead> {
        let mut armed = false;
        std::future::poll_fn(|cx| {
            let mut c = conn.lock();
            loop {
                match parse_request(&mut c.buf) {
                    Ok(Some(head)) => return Poll::Ready(Ok(head)),
                    Ok(None) => {}
                    Err(e) => {
                        if let HeadError::Bad(why) = &e {
                            tracing::debug!("bad request: {why}");
                        }
                        return Poll::Ready(Err(NoHead::Answer(e.status())));
                    }
                }
                match c.poll_fill(cx) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Err(NoHead::Quiet)),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Pending => break,
                }
            }
            if !self.stopped && self.stop.as_mut().poll(cx).is_ready() {
                self.stopped = true;
            }
            if self.stopped && c.buf.is_empty() {
                return Poll::Ready(Err(NoHead::Quiet));
            }
            let Some(limit) = limit else { return Poll::Pending };
            if !armed {
                armed = true;
                self.deadline.arm(tokio::time::Instant::now(), limit);
            }
            match self.deadline.poll_expired(cx) {
                Poll::Ready(()) if c.buf.is_empty() => Poll::Ready(Err(NoHead::Quiet)),
                Poll::Ready(()) => Poll::Ready(Err(NoHead::Answer(408))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::let_ready_tasks_run;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn tasks_ready_together_all_get_there_before_any_goes_on() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    log.lock().unwrap().push(format!("read {i}"));
                    let_ready_tasks_run().await;
                    log.lock().unwrap().push(format!("send {i}"));
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let expected = ["read 0", "read 1", "read 2", "send 0", "send 1", "send 2"];
        assert_eq!(*log.lock().unwrap(), expected);
    }
}
