//! When `device watch` makes its next pass, so that a fleet polling one registry does not
//! come in step nor hammer it when it fails: every interval ± 10% (jitter), the first pass
//! at a random point within one interval (`--splay`, after a fleet-wide restart), and,
//! while the registry fails or asks for less (429), waits that double each time up to a cap
//! (10 minutes by default), never shorter than a `Retry-After` it answered. A pass that
//! reaches the registry goes back to the interval.

use std::time::Duration;

use rand_core::RngCore as _;

/// How `watch` paces its passes.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    pub interval: Duration,
    /// The first pass waits a random part of one interval.
    pub splay: bool,
    /// The longest wait after failures.
    pub max_backoff: Duration,
}

/// The fraction of a wait it may be longer or shorter by.
const JITTER: f64 = 0.1;

impl Pacing {
    /// The wait before the first pass.
    pub fn first(&self, unit: f64) -> Duration {
        if self.splay {
            self.interval.mul_f64(unit.clamp(0.0, 1.0))
        } else {
            Duration::ZERO
        }
    }

    /// The wait after a pass: `failures` registry failures in a row (0 after a success),
    /// `retry_after` what the registry last asked; `unit` a random number in [0, 1].
    /// After a failure it is never shorter than the interval nor longer than the cap (or
    /// the interval, when that is longer): a `Retry-After` beyond it is not believed.
    pub fn next(&self, failures: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let factor = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        if failures == 0 {
            return self.interval.mul_f64(factor);
        }
        let cap = self.max_backoff.max(self.interval);
        let doubled = self
            .interval
            .saturating_mul(1u32 << failures.min(20))
            .min(cap);
        // Jittered after the cap, so that a failing fleet does not wait in step at it.
        let wait = doubled.mul_f64(factor).clamp(self.interval, cap);
        wait.max(retry_after.unwrap_or_default().min(cap))
    }
}

/// A random number in [0, 1].
pub fn unit() -> f64 {
    rand_core::OsRng.next_u32() as f64 / u32::MAX as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing() -> Pacing {
        Pacing {
            interval: Duration::from_secs(30),
            splay: true,
            max_backoff: Duration::from_secs(600),
        }
    }

    #[test]
    fn passes_come_every_interval_within_ten_percent() {
        let p = pacing();
        assert_eq!(p.next(0, None, 0.0), Duration::from_secs(27));
        assert_eq!(p.next(0, None, 0.5), Duration::from_secs(30));
        assert_eq!(p.next(0, None, 1.0), Duration::from_secs(33));
        assert!(p.first(0.999) < p.interval);
        assert_eq!(Pacing { splay: false, ..p }.first(0.7), Duration::ZERO);
    }

    #[test]
    fn failures_double_the_wait_up_to_the_cap_and_retry_after_is_a_floor() {
        let p = pacing();
        let mid: Vec<u64> = (0..8).map(|f| p.next(f, None, 0.5).as_secs()).collect();
        assert_eq!(mid, [30, 60, 120, 240, 480, 600, 600, 600]);
        assert_eq!(p.next(30, None, 1.0), Duration::from_secs(600), "capped");
        assert_eq!(
            p.next(30, None, 0.0),
            Duration::from_secs(540),
            "jittered below the cap, not all at it"
        );
        assert_eq!(
            p.next(1, Some(Duration::from_secs(300)), 0.5),
            Duration::from_secs(300)
        );
        assert_eq!(p.next(0, None, 0.5), p.interval, "back to the interval");
    }

    #[test]
    fn a_failing_registry_is_never_polled_more_often_than_a_working_one() {
        let p = Pacing {
            interval: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(600),
            ..pacing()
        };
        for failures in 1..10 {
            assert_eq!(p.next(failures, None, 0.0), p.interval);
        }
    }

    #[test]
    fn a_retry_after_beyond_the_cap_is_not_believed() {
        let p = pacing();
        let years = Some(Duration::from_secs(999_999_999));
        assert_eq!(p.next(1, years, 0.5), Duration::from_secs(600));
    }
}
