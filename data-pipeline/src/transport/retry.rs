//! What to do after an attempt (classification) and how long to wait before the next one (policy).
//!
//! - 2xx: delivered.
//! - network errors, timeouts, 408, 429 and 5xx: retried with exponential backoff and jitter; a
//!   `Retry-After: <seconds>` header (429, 503) replaces the backoff.
//! - 413: not retried as is; the exporter splits the payload in halves and sends each.
//! - 400, 404, 415, every other 4xx, 1xx and 3xx: not retried.
//!
//! The caller bounds the total time of one payload: a wait that would end past that bound is not
//! started (the last error is returned at once instead of sleeping for nothing).

use std::time::Duration;

/// What the exporter does with the outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered (2xx).
    Delivered,
    /// Try again later (network error, timeout, 408, 429, 5xx).
    Retry,
    /// The payload is too large (413): split it and send the halves.
    Split,
    /// Give up: retrying the same request cannot succeed.
    Fail,
}

/// Classifies an HTTP status.
pub fn classify_status(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        413 => Verdict::Split,
        _ => Verdict::Fail,
    }
}

/// Parses a `Retry-After` value given in seconds (integer or decimal). HTTP dates are not
/// supported (agents send seconds) and yield `None`, as do negative or absurd values.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

/// How many times and how fast to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = one attempt only).
    pub max_retries: u32,
    /// Backoff before the first retry; doubles for each further retry.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry): exponential, capped at
    /// `max_backoff`, with "equal jitter" (half fixed, half random) so that tracers in many
    /// processes do not retry in lockstep.
    pub fn backoff(&self, retry: u32, jitter: &mut Jitter) -> Duration {
        let exp = retry.saturating_sub(1).min(20);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = full / 2;
        let nanos = half.as_nanos() as u64;
        let random = if nanos == 0 {
            0
        } else {
            jitter.next_u64() % (nanos + 1)
        };
        half + Duration::from_nanos(random)
    }
}

/// A tiny pseudo-random source for jitter (SplitMix64); not for anything secret.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// Seeded from the clock and the process id, so that processes differ.
    pub fn new() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Jitter(t ^ (u64::from(std::process::id()) << 32))
    }

    /// Seeded explicitly (tests).
    pub fn with_seed(seed: u64) -> Self {
        Jitter(seed)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        for s in [200, 202, 204, 299] {
            assert_eq!(classify_status(s), Verdict::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(classify_status(s), Verdict::Retry, "{s}");
        }
        assert_eq!(classify_status(413), Verdict::Split);
        for s in [100, 301, 304, 400, 401, 403, 404, 405, 409, 415, 422, 451] {
            assert_eq!(classify_status(s), Verdict::Fail, "{s}");
        }
    }

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("1e300"), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
        };
        let mut j = Jitter::with_seed(7);
        let mut seen = std::collections::HashSet::new();
        for retry in 1..=40 {
            let full = Duration::from_millis(100 * (1u64 << (retry - 1).min(20)))
                .min(Duration::from_millis(700));
            let d = p.backoff(retry, &mut j);
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
            seen.insert(d);
        }
        assert!(seen.len() > 20, "jitter should vary the waits");
        let zero = RetryPolicy {
            initial_backoff: Duration::ZERO,
            ..p
        };
        assert_eq!(zero.backoff(3, &mut j), Duration::ZERO);
    }
}
