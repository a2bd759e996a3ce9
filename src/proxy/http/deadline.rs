//! A deadline that is moved on every request but rarely re-armed.
//!
//! A keep-alive connection waits under a timeout for each request head and
//! each response head (`timeout http-keep-alive`, `timeout server`). Arming a
//! tokio timer for every wait (a new `Sleep`, or `Sleep::reset`) puts it into
//! the timer wheel and takes it out again, hundreds of instructions per
//! request (`bench/proxy/instructions.sh`). Here the timer stays armed at
//! an earlier deadline while the wanted one only moves later; when it fires,
//! the wanted deadline is checked and the timer re-armed for it. With
//! timeouts of seconds and requests of microseconds it fires about once per
//! timeout, not once per request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

#[derive(Default)]
pub struct LazyDeadline {
    /// Armed at or before `wanted`; created on first use.
    timer: Option<Pin<Box<Sleep>>>,
    wanted: Option<Instant>,
}

impl LazyDeadline {
    /// Expires `limit` after `now`. Re-arms the timer only when the new
    /// deadline comes before the one it is armed for.
    pub fn arm(&mut self, now: Instant, limit: Duration) {
        let wanted = now + limit;
        self.wanted = Some(wanted);
        match self.timer.as_mut() {
            Some(timer) if timer.deadline() > wanted => timer.as_mut().reset(wanted),
            Some(_) => {}
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(wanted))),
        }
    }

    /// Never expires (until armed again).
    pub fn disarm(&mut self) {
        self.wanted = None;
    }

    /// Ready once the deadline of the last `arm` has passed; the waker of
    /// `cx` is woken then. Pending (and never ready) when never armed.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (Some(timer), Some(wanted)) = (self.timer.as_mut(), self.wanted) else { return Poll::Pending };
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Fired for an earlier deadline: re-arm for the wanted one.
            if timer.deadline() >= wanted {
                return Poll::Ready(());
            }
            timer.as_mut().reset(wanted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_at_the_last_deadline_not_an_earlier_one() {
        let mut d = LazyDeadline::default();
        d.arm(Instant::now(), Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(6)).await;
        // Moved later without re-arming: the timer still fires at 10 s.
        d.arm(Instant::now(), Duration::from_secs(10));
        let started = Instant::now();
        std::future::poll_fn(|cx| d.poll_expired(cx)).await;
        assert_eq!(Instant::now() - started, Duration::from_secs(10), "expired at 16 s, not 10 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_limit_re_arms_earlier() {
        let mut d = LazyDeadline::default();
        d.arm(Instant::now(), Duration::from_secs(60));
        d.arm(Instant::now(), Duration::from_secs(2));
        let started = Instant::now();
        std::future::poll_fn(|cx| d.poll_expired(cx)).await;
        assert_eq!(Instant::now() - started, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn never_armed_or_disarmed_never_expires() {
        let mut d = LazyDeadline::default();
        let polled = std::future::poll_fn(|cx| Poll::Ready(d.poll_expired(cx))).await;
        assert!(polled.is_pending());
        d.arm(Instant::now(), Duration::from_secs(1));
        d.disarm();
        tokio::time::advance(Duration::from_secs(2)).await;
        let polled = std::future::poll_fn(|cx| Poll::Ready(d.poll_expired(cx))).await;
        assert!(polled.is_pending());
    }
}
