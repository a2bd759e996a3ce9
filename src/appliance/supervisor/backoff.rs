//! Restart back-off: how long to wait before restarting a service that exited
//! without being asked to.

use std::time::Duration;

/// Exponential back-off: `initial`, doubled after each consecutive crash up to
/// `max`; a child that stayed up `reset_after` counts as healthy again, so
/// the next crash waits `initial` again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
    /// Consecutive crashes after which the supervisor gives up and leaves the
    /// service `Crashed` until someone starts it. `None`: never give up (the
    /// data plane must come back by itself).
    pub give_up_after: Option<u32>,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
            give_up_after: None,
        }
    }
}

impl BackoffPolicy {
    /// The wait before restart number `failures` (1 = first crash in a row).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// Consecutive crash count after a child that ran for `uptime` exited:
    /// a long run resets the series.
    pub fn next_failures(&self, previous: u32, uptime: Duration) -> u32 {
        if uptime >= self.reset_after {
            1
        } else {
            previous.saturating_add(1)
        }
    }

    /// Whether `failures` consecutive crashes exhaust the policy.
    pub fn gives_up(&self, failures: u32) -> bool {
        self.give_up_after.is_some_and(|limit| failures > limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_initial_and_caps_at_max() {
        let p = BackoffPolicy::default();
        let got: Vec<Duration> = (1..=9).map(|n| p.delay(n)).collect();
        assert_eq!(
            got,
            [ms(500), ms(1000), ms(2000), ms(4000), ms(8000), ms(16000), ms(30000), ms(30000), ms(30000)]
        );
        assert_eq!(p.delay(0), ms(500), "0 is treated as the first failure");
        assert_eq!(p.delay(u32::MAX), ms(30000), "no overflow on long series");
    }

    #[test]
    fn huge_initial_saturates_instead_of_overflowing() {
        let p = BackoffPolicy { initial: Duration::MAX, max: Duration::MAX, ..Default::default() };
        assert_eq!(p.delay(40), Duration::MAX);
    }

    #[test]
    fn long_uptime_resets_the_series() {
        let p = BackoffPolicy::default();
        assert_eq!(p.next_failures(0, ms(10)), 1);
        assert_eq!(p.next_failures(5, ms(59_999)), 6);
        assert_eq!(p.next_failures(5, ms(60_000)), 1);
        assert_eq!(p.next_failures(u32::MAX, ms(1)), u32::MAX);
    }

    #[test]
    fn gives_up_only_when_configured() {
        let p = BackoffPolicy::default();
        assert!(!p.gives_up(1_000_000));
        let p = BackoffPolicy { give_up_after: Some(3), ..Default::default() };
        assert!(!p.gives_up(3));
        assert!(p.gives_up(4));
    }
}
