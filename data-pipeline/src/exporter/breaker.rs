//! When to stop trying: a circuit breaker for an unreachable agent, and a retry budget for an agent
//! that answers with errors.
//!
//! - **Breaker.** Network errors and timeouts mean the agent is unreachable, or too slow to be useful.
//!   After [`BREAKER_THRESHOLD`] of them in a row the breaker opens. The worker then sends nothing
//!   and keeps the data, up to the queue cap. After a probe interval, it moves to half-open and
//!   sends the pending batch as the probe. If the probe succeeds, the breaker closes and the backlog
//!   drains. If it fails, the breaker reopens with the interval doubled: from [`PROBE_INTERVAL_MIN`]
//!   up to [`PROBE_INTERVAL_MAX`], with jitter. Any HTTP answer, even an error status, proves the agent
//!   reachable and closes the breaker.
//! - **Retry budget.** Retryable HTTP answers (408, 429, 5xx) are retried per batch up to
//!   `max_retries`, but only while the budget has tokens. Each retry spends one token and each
//!   delivered request earns back a fraction. So an agent that fails most requests gets about one
//!   attempt per batch instead of `1 + max_retries`, and the exporter does not triple the load on a
//!   struggling agent.

use super::health::BreakerState;
use crate::transport::retry::Jitter;
use std::time::{Duration, Instant};

/// Consecutive network failures that open the breaker.
pub const BREAKER_THRESHOLD: u32 = 3;
/// First wait before a probe once the breaker opened.
pub const PROBE_INTERVAL_MIN: Duration = Duration::from_millis(500);
/// Longest wait between probes: bounds how long after the agent comes back before
/// delivery resumes.
pub const PROBE_INTERVAL_MAX: Duration = Duration::from_secs(5);

/// Retries the budget holds when full.
pub const RETRY_BUDGET_MAX: f64 = 10.0;
/// Tokens a delivered request earns back.
pub const RETRY_BUDGET_REFILL: f64 = 0.25;

/// The breaker's state machine (owned by the worker thread).
#[derive(Debug)]
pub(crate) struct Breaker {
    state: BreakerState,
    consecutive: u32,
    interval: Duration,
    /// When open: when the next probe may go.
    probe_at: Option<Instant>,
}

/// What a failure did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tripped {
    /// Still closed: back off and retry.
    No,
    /// It just opened (or reopened after a failed probe).
    Opened,
}

impl Breaker {
    pub(crate) fn new() -> Breaker {
        Breaker {
            state: BreakerState::Closed,
            consecutive: 0,
            interval: PROBE_INTERVAL_MIN,
            probe_at: None,
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    /// Consecutive network failures so far.
    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    /// When open, the instant the next probe may be sent.
    pub(crate) fn probe_at(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open => self.probe_at,
            _ => None,
        }
    }

    /// The next request is the probe: open -> half-open.
    pub(crate) fn start_probe(&mut self) {
        if self.state == BreakerState::Open {
            self.state = BreakerState::HalfOpen;
            self.probe_at = None;
        }
    }

    /// The agent answered (any HTTP status): close.
    pub(crate) fn success(&mut self) {
        self.state = BreakerState::Closed;
        self.consecutive = 0;
        self.interval = PROBE_INTERVAL_MIN;
        self.probe_at = None;
    }

    /// A network error or timeout.
    pub(crate) fn failure(&mut self, now: Instant, jitter: &mut Jitter) -> Tripped {
        self.consecutive = self.consecutive.saturating_add(1);
        match self.state {
            BreakerState::HalfOpen => {
                self.interval = (self.interval * 2).min(PROBE_INTERVAL_MAX);
                self.open(now, jitter);
                Tripped::Opened
            }
            BreakerState::Open => {
                // A failure while open (a probe that was not marked): push the probe out.
                self.open(now, jitter);
                Tripped::No
            }
            BreakerState::Closed if self.consecutive >= BREAKER_THRESHOLD => {
                self.open(now, jitter);
                Tripped::Opened
            }
            BreakerState::Closed => Tripped::No,
        }
    }

    fn open(&mut self, now: Instant, jitter: &mut Jitter) {
        self.state = BreakerState::Open;
        // Between 3/4 and 5/4 of the interval, so processes restarted together spread out.
        let quarter = self.interval.as_nanos() as u64 / 4;
        let spread = if quarter == 0 {
            0
        } else {
            jitter.next_u64() % (2 * quarter + 1)
        };
        let wait = self.interval - Duration::from_nanos(quarter) + Duration::from_nanos(spread);
        self.probe_at = Some(now + wait);
    }
}

/// Retry tokens (owned by the worker thread).
#[derive(Debug)]
pub(crate) struct RetryBudget {
    tokens: f64,
}

impl RetryBudget {
    pub(crate) fn new() -> RetryBudget {
        RetryBudget {
            tokens: RETRY_BUDGET_MAX,
        }
    }

    /// Takes a token for one retry; false when the budget is spent.
    pub(crate) fn try_spend(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A delivered request earns back part of a token.
    pub(crate) fn earn(&mut self) {
        self.tokens = (self.tokens + RETRY_BUDGET_REFILL).min(RETRY_BUDGET_MAX);
    }

    #[cfg(test)]
    pub(crate) fn tokens(&self) -> f64 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_with_growing_interval() {
        let mut b = Breaker::new();
        let mut j = Jitter::with_seed(1);
        let t0 = Instant::now();
        for _ in 1..BREAKER_THRESHOLD {
            assert_eq!(b.failure(t0, &mut j), Tripped::No);
            assert_eq!(b.state(), BreakerState::Closed);
            assert_eq!(b.probe_at(), None);
        }
        assert_eq!(b.failure(t0, &mut j), Tripped::Opened);
        assert_eq!(b.state(), BreakerState::Open);
        let first = b.probe_at().unwrap() - t0;
        assert!(
            first >= PROBE_INTERVAL_MIN * 3 / 4 && first <= PROBE_INTERVAL_MIN * 5 / 4,
            "{first:?}"
        );
        // Failed probes double the interval up to the max.
        let mut last = first;
        for _ in 0..10 {
            b.start_probe();
            assert_eq!(b.state(), BreakerState::HalfOpen);
            assert_eq!(b.probe_at(), None);
            assert_eq!(b.failure(t0, &mut j), Tripped::Opened);
            last = b.probe_at().unwrap() - t0;
        }
        assert!(
            last >= PROBE_INTERVAL_MAX * 3 / 4 && last <= PROBE_INTERVAL_MAX * 5 / 4,
            "{last:?}"
        );
        // A successful probe closes and resets.
        b.start_probe();
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 0);
        for _ in 1..BREAKER_THRESHOLD {
            b.failure(t0, &mut j);
        }
        b.failure(t0, &mut j);
        let again = b.probe_at().unwrap() - t0;
        assert!(
            again <= PROBE_INTERVAL_MIN * 5 / 4,
            "interval reset: {again:?}"
        );
    }

    #[test]
    fn success_in_between_keeps_it_closed() {
        let mut b = Breaker::new();
        let mut j = Jitter::with_seed(3);
        let t0 = Instant::now();
        for _ in 0..10 {
            for _ in 1..BREAKER_THRESHOLD {
                assert_eq!(b.failure(t0, &mut j), Tripped::No);
            }
            b.success();
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn budget_spends_and_refills() {
        let mut r = RetryBudget::new();
        let mut spent = 0;
        while r.try_spend() {
            spent += 1;
        }
        assert_eq!(spent, RETRY_BUDGET_MAX as usize);
        assert!(!r.try_spend());
        let per_token = (1.0 / RETRY_BUDGET_REFILL).ceil() as usize;
        for _ in 0..per_token - 1 {
            r.earn();
        }
        assert!(!r.try_spend(), "{}", r.tokens());
        r.earn();
        assert!(r.try_spend(), "{}", r.tokens());
        for _ in 0..1000 {
            r.earn();
        }
        assert_eq!(r.tokens(), RETRY_BUDGET_MAX);
    }
}
