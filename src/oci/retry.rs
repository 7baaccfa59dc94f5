//! The one retry policy every registry request goes through.
//!
//! A registry operation (a request, or the requests an upload needs) that fails
//! transiently is made again from its start: connection errors and timeouts, 408, 429,
//! 500, 502, 503 and 504, and a body whose size or digest is wrong. Waits grow
//! exponentially with jitter, `Retry-After` (seconds or an HTTP date) is honoured up to a
//! cap, attempts are bounded (`--retries N`) and so is the time one operation may spend
//! retrying. Everything else (400, 401 beyond one fresh token, 403, 404, 405, refused
//! TLS) fails at once. Each retry prints one line that names the operation, the attempt,
//! the reason and the wait; requests are named by method and path, never with a query
//! or a credential.

use std::time::{Duration, Instant};

use rand_core::RngCore as _;

use crate::error::Error;

/// How many times, and how long, to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt (`--retries`).
    pub retries: u32,
    /// The first wait; each next one doubles, with jitter.
    pub base: Duration,
    /// The longest wait between two attempts, `Retry-After` included.
    pub max_wait: Duration,
    /// How long one operation may keep retrying, waits included.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            base: Duration::from_millis(200),
            max_wait: Duration::from_secs(30),
            deadline: Duration::from_secs(180),
        }
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub enum Attempt {
    /// Worth another try: what went wrong, and how long the server asked us to wait.
    Transient {
        why: String,
        retry_after: Option<Duration>,
        /// What to fail with when no attempt is left, instead of "gave up"; and how many
        /// attempts this kind of failure gets at most (a wrong digest: two).
        last: Option<Box<(Error, u32)>>,
    },
    /// Not worth another try.
    Fatal(Box<Error>),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Attempt::Fatal(Box::new(e))
    }
}

impl Attempt {
    pub fn transient(why: impl Into<String>) -> Attempt {
        Attempt::Transient {
            why: why.into(),
            retry_after: None,
            last: None,
        }
    }

    pub fn fatal(e: Error) -> Attempt {
        Attempt::Fatal(Box::new(e))
    }

    /// Bytes that did not match their digest: fetched once more, then `e`.
    pub fn wrong_bytes(e: Error) -> Attempt {
        Attempt::settling(e, 2)
    }

    /// A refusal that another moment may lift: at most `attempts` in all, then `e`.
    pub fn settling(e: Error, attempts: u32) -> Attempt {
        Attempt::Transient {
            why: e.to_string(),
            retry_after: None,
            last: Some(Box::new((e, attempts))),
        }
    }
}

/// Whether an HTTP status is worth another try.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// A `Retry-After` header: delay-seconds, or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    let wait = (at - now).whole_milliseconds().max(0) as u64;
    Some(Duration::from_millis(wait))
}

impl RetryPolicy {
    /// The wait before attempt `next` (2 for the first retry): `Retry-After` when the
    /// server gave one, else `base · 2^(next-2)` with jitter (50–100%), both capped.
    pub fn wait(&self, next: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(w) = retry_after {
            return w.min(self.max_wait);
        }
        let exp = self
            .base
            .saturating_mul(1 << (next.saturating_sub(2)).min(16))
            .min(self.max_wait);
        let jitter = rand_core::OsRng.next_u32() as f64 / u32::MAX as f64;
        exp.mul_f64(0.5 + jitter / 2.0)
    }

    /// Runs `op` until it succeeds, fails fatally, or retries run out; `what` names the
    /// operation in retry lines and in the final error.
    pub async fn run<T>(
        &self,
        what: &str,
        registry: &str,
        mut op: impl AsyncFnMut() -> Result<T, Attempt>,
    ) -> crate::Result<T> {
        let started = Instant::now();
        let attempts = self.retries + 1;
        for attempt in 1..=attempts {
            let (why, retry_after, last) = match op().await {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(*e),
                Err(Attempt::Transient {
                    why,
                    retry_after,
                    last,
                }) => (why, retry_after, last),
            };
            let wait = self.wait(attempt + 1, retry_after);
            let limit = last.as_ref().map_or(attempts, |l| l.1.min(attempts));
            if attempt >= limit || started.elapsed() + wait > self.deadline {
                if let Some(l) = last {
                    return Err(l.0);
                }
                return Err(Error::Registry {
                    registry: registry.to_string(),
                    message: format!("{what}: {why}"),
                    hint: Some(format!(
                        "gave up after {attempt} attempt(s) in {}s; the registry keeps failing: try again later, or raise --retries",
                        started.elapsed().as_secs()
                    )),
                    retry_after,
                });
            }
            crate::progress::note(&format!(
                "retry {attempt} of {}: {what}: {why}; trying again in {:.1}s",
                self.retries,
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
        }
        unreachable!("the last attempt returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = time::macros::datetime!(2026-11-28 10:00:00 UTC);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 10:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn waits_grow_with_jitter_and_stay_capped() {
        let p = RetryPolicy::default();
        for next in 2..12 {
            let w = p.wait(next, None);
            let full = p.base * (1 << (next - 2)).min(1 << 16);
            assert!(w <= full.min(p.max_wait), "{next}: {w:?}");
            assert!(w >= full.min(p.max_wait) / 2, "{next}: {w:?}");
        }
        assert_eq!(
            p.wait(2, Some(Duration::from_secs(3600))),
            p.max_wait,
            "Retry-After is capped"
        );
        assert_eq!(
            p.wait(2, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn transient_failures_are_retried_and_fatal_ones_are_not() {
        let p = RetryPolicy {
            retries: 3,
            base: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let r = p
            .run("blob", "reg", async || {
                calls += 1;
                if calls < 3 {
                    Err(Attempt::transient("503"))
                } else {
                    Ok(calls)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);

        let mut calls = 0;
        let r: crate::Result<()> = p
            .run("blob", "reg", async || {
                calls += 1;
                Err(Attempt::Fatal(Box::new(Error::invalid("403"))))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);

        let mut calls = 0;
        let r: crate::Result<()> = p
            .run("blob", "reg", async || {
                calls += 1;
                Err(Attempt::transient("reset"))
            })
            .await;
        assert_eq!(calls, 4, "one attempt and three retries");
        let e = r.unwrap_err().to_string();
        assert!(e.contains("gave up after 4 attempt(s)"), "{e}");
    }
}
