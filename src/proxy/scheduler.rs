//! Keeping the kernel's scheduler up to date with the proxy thread's CPU use.
//!
//! Under load the proxy thread runs for milliseconds without sleeping, and
//! none of its system calls (recv, send, an epoll_wait that returns at once)
//! makes the scheduler account the time it has run. On a kernel with a
//! 250 Hz tick its time slice is then found used up only at the next tick,
//! up to 4 ms late, while a peer woken on the same CPU (a client, a server,
//! the console) waits all that time: on a 2-core machine this was most of
//! lanai's p99 gap to HAProxy (bench/RESULTS.md). Reading the thread's CPU
//! clock makes the kernel account the running thread then, and switch to a
//! waiting thread if the slice is over; HAProxy reads it in every pass of
//! its event loop.

use std::cell::Cell;
use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};

/// How often, at most, the CPU clock is read: often enough that a slice
/// (0.7-3 ms) ends on time, rarely enough that the system call costs nothing
/// measurable (once in several requests or chunks at full load).
const ACCOUNT_EVERY: Duration = Duration::from_micros(50);

thread_local! {
    static LAST_ACCOUNTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Lets the scheduler account this thread's CPU time if it has not done so
/// in the last [`ACCOUNT_EVERY`] before `now` (the caller's clock reading,
/// which a request takes anyway). Called for each request, accepted
/// connection and relayed chunk; returns whether it read the clock this time.
pub fn account_cpu_time(now: Instant) -> bool {
    let due = LAST_ACCOUNTED.with(|last| {
        let due = is_due(last.get(), now);
        if due {
            last.set(Some(now));
        }
        due
    });
    if due {
        // Only the accounting the read causes matters, not the value; it
        // cannot fail for the calling thread's own clock.
        let _ = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID);
    }
    due
}

fn is_due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|at| now.saturating_duration_since(at) >= ACCOUNT_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_first_then_once_per_interval() {
        let t0 = Instant::now();
        assert!(is_due(None, t0), "never read yet");
        assert!(!is_due(Some(t0), t0 + ACCOUNT_EVERY / 2), "within the interval");
        assert!(is_due(Some(t0), t0 + ACCOUNT_EVERY), "an interval later");
    }

    #[test]
    fn a_thread_reads_the_clock_on_its_first_call() {
        // Each test runs on a thread of its own: nothing was read on it yet.
        assert!(account_cpu_time(Instant::now()));
        std::thread::sleep(ACCOUNT_EVERY);
        assert!(account_cpu_time(Instant::now()), "an interval later");
    }
}
