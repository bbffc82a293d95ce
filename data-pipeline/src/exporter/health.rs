//! Health of the background exporter: what was enqueued, sent, dropped (and why), retried, and
//! what is still pending ([`Health`], from [`super::Exporter::health`]).
//!
//! The account always balances, in traces:
//! `traces_enqueued == traces_sent + traces_dropped() + traces_pending`.
//! Every valid payload handed to `enqueue*` is counted as enqueued, including those dropped
//! at once because the queue was full or the exporter shut down. A payload that fails validation is
//! an error to its caller and is not counted.
//!
//! Counters are per process. A forked child starts at zero and never counts the parent's queued
//! traces: they are neither delivered nor dropped by the child (see [`super::fork`]).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Why traces were dropped. Each reason is one counter of [`Dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue held `queue_max_bytes` already (the agent is slower than the application).
    QueueFull,
    /// The queue was full while the circuit breaker was open (the agent is unreachable).
    BreakerOpen,
    /// The agent refused the payload with a status that retrying cannot fix (400, 403, 404, ...).
    Http4xx,
    /// Retryable failures (408, 429, 5xx) outlasted `max_retries` or the retry budget.
    RetriesExhausted,
    /// Still queued when `shutdown` ran out of time, or when the exporter was dropped, or
    /// enqueued after `shutdown`.
    Shutdown,
    /// The payload turned out malformed when the worker decoded it (format conversion, or
    /// isolating the culprit after the agent answered 400), or normalization dropped the chunk.
    Invalid,
    /// Sampled out: a P0 chunk removed by client-side stats (P0 dropping, see
    /// [`crate::stats::stage`]). Not lost: its spans are in the stats, and the agent is told in
    /// `Datadog-Client-Dropped-P0-Traces`.
    P0,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 7] = [
        DropReason::QueueFull,
        DropReason::BreakerOpen,
        DropReason::Http4xx,
        DropReason::RetriesExhausted,
        DropReason::Shutdown,
        DropReason::Invalid,
        DropReason::P0,
    ];

    /// The snake_case name (metric tag value, JSON key).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::BreakerOpen => "breaker_open",
            DropReason::Http4xx => "http_4xx",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::Shutdown => "shutdown",
            DropReason::Invalid => "invalid",
            DropReason::P0 => "p0",
        }
    }

    /// The reason's position in [`DropReason::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            DropReason::QueueFull => 0,
            DropReason::BreakerOpen => 1,
            DropReason::Http4xx => 2,
            DropReason::RetriesExhausted => 3,
            DropReason::Shutdown => 4,
            DropReason::Invalid => 5,
            DropReason::P0 => 6,
        }
    }
}

/// State of the circuit breaker that stops sending while the agent is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Sending normally.
    #[default]
    Closed,
    /// The agent was unreachable several times in a row: no request until the next probe.
    Open,
    /// One probe request is in flight; its outcome closes or reopens the breaker.
    HalfOpen,
}

impl BreakerState {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }

    pub(crate) fn from_u8(v: u8) -> BreakerState {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

/// Traces dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Dropped {
    /// See [`DropReason::QueueFull`].
    pub queue_full: u64,
    /// See [`DropReason::BreakerOpen`].
    pub breaker_open: u64,
    /// See [`DropReason::Http4xx`].
    pub http_4xx: u64,
    /// See [`DropReason::RetriesExhausted`].
    pub retries_exhausted: u64,
    /// See [`DropReason::Shutdown`].
    pub shutdown: u64,
    /// See [`DropReason::Invalid`].
    pub invalid: u64,
    /// See [`DropReason::P0`].
    pub p0: u64,
}

impl Dropped {
    /// The count for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::QueueFull => self.queue_full,
            DropReason::BreakerOpen => self.breaker_open,
            DropReason::Http4xx => self.http_4xx,
            DropReason::RetriesExhausted => self.retries_exhausted,
            DropReason::Shutdown => self.shutdown,
            DropReason::Invalid => self.invalid,
            DropReason::P0 => self.p0,
        }
    }

    /// All reasons together.
    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

/// A snapshot of the background exporter's counters (since the exporter was created, or since
/// the fork for a child process). Counters only grow; `*_pending`, `breaker` and `worker_running`
/// are gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// Payloads (calls to `enqueue*`) accepted for validation.
    pub payloads_enqueued: u64,
    /// Traces (chunks) in them.
    pub traces_enqueued: u64,
    /// Spans in them, for `enqueue_traces` only. Raw payloads are not parsed on the enqueue path,
    /// so their spans are not counted.
    pub spans_enqueued: u64,
    /// Bytes of the payloads as enqueued (v0.4 encoding for `enqueue_traces`).
    pub bytes_enqueued: u64,
    /// Requests the agent accepted (2xx).
    pub requests_sent: u64,
    /// Traces in them.
    pub traces_sent: u64,
    /// Request body bytes in them (merged batches, in the output format).
    pub bytes_sent: u64,
    /// Traces dropped, by reason.
    pub dropped: Dropped,
    /// Bytes dropped, all reasons together (as enqueued).
    pub bytes_dropped: u64,
    /// Requests sent again after a failure.
    pub retries: u64,
    /// Requests that failed: network errors, timeouts, and non-2xx answers.
    pub requests_failed: u64,
    /// Payloads not yet delivered or dropped (queued or in the worker's hands).
    pub payloads_pending: u64,
    /// Traces in them.
    pub traces_pending: u64,
    /// Bytes charged against `queue_max_bytes` for them (payload bytes plus a small per-payload
    /// overhead).
    pub bytes_pending: u64,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
    /// How many times the breaker opened.
    pub breaker_opened: u64,
    /// How many times this exporter was reset by a fork (inherited from the parent, plus one).
    pub forks: u64,
    /// True while a background worker thread runs in this process.
    pub worker_running: bool,
}

impl Health {
    /// Traces dropped, all reasons together.
    pub fn traces_dropped(&self) -> u64 {
        self.dropped.total()
    }

    /// True when `traces_enqueued == traces_sent + traces_dropped() + traces_pending`.
    pub fn balanced(&self) -> bool {
        self.traces_enqueued == self.traces_sent + self.traces_dropped() + self.traces_pending
    }

    /// The snapshot as a JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// Delivered and dropped counts, kept under the queue lock: enqueue adds its drops there, and the
/// worker adds a batch's outcome when it resolves the batch. So a [`Health`] snapshot, taken under
/// the same lock, always balances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub requests_sent: u64,
    pub traces_sent: u64,
    pub bytes_sent: u64,
    dropped: [u64; DropReason::ALL.len()],
    bytes_dropped: u64,
}

impl Tally {
    pub fn drop_traces(&mut self, reason: DropReason, traces: u64, bytes: u64) {
        self.dropped[reason.index()] += traces;
        self.bytes_dropped += bytes;
    }

    pub fn sent(&mut self, traces: u64, bytes: u64) {
        self.requests_sent += 1;
        self.traces_sent += traces;
        self.bytes_sent += bytes;
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Adds `other` and clears it.
    pub fn absorb(&mut self, other: &mut Tally) {
        self.requests_sent += other.requests_sent;
        self.traces_sent += other.traces_sent;
        self.bytes_sent += other.bytes_sent;
        for (a, b) in self.dropped.iter_mut().zip(other.dropped) {
            *a += b;
        }
        self.bytes_dropped += other.bytes_dropped;
        *other = Tally::default();
    }

    pub fn fill(&self, h: &mut Health) {
        h.requests_sent = self.requests_sent;
        h.traces_sent = self.traces_sent;
        h.bytes_sent = self.bytes_sent;
        let d = |r: DropReason| self.dropped(r);
        h.dropped = Dropped {
            queue_full: d(DropReason::QueueFull),
            breaker_open: d(DropReason::BreakerOpen),
            http_4xx: d(DropReason::Http4xx),
            retries_exhausted: d(DropReason::RetriesExhausted),
            shutdown: d(DropReason::Shutdown),
            invalid: d(DropReason::Invalid),
            p0: d(DropReason::P0),
        };
        h.bytes_dropped = self.bytes_dropped;
    }
}

/// Counters the worker updates as it goes (single writer, relaxed atomics). They are not part of
/// the balance.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub retries: AtomicU64,
    pub requests_failed: AtomicU64,
    pub breaker_opened: AtomicU64,
    pub breaker: AtomicU8,
}

impl WorkerCounters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn breaker_state(&self) -> BreakerState {
        BreakerState::from_u8(self.breaker.load(Ordering::Relaxed))
    }

    pub fn fill(&self, h: &mut Health) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        h.retries = get(&self.retries);
        h.requests_failed = get(&self.requests_failed);
        h.breaker_opened = get(&self.breaker_opened);
        h.breaker = self.breaker_state();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_total() {
        let mut c = Tally::default();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            c.drop_traces(*r, i as u64 + 1, 10);
        }
        let mut total = Tally::default();
        total.absorb(&mut c);
        assert_eq!(c, Tally::default(), "absorb clears the source");
        let mut h = Health::default();
        total.fill(&mut h);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(h.dropped.get(*r), i as u64 + 1, "{}", r.as_str());
        }
        assert_eq!(h.traces_dropped(), 28);
        assert_eq!(h.bytes_dropped, 70);
        h.traces_enqueued = 37;
        h.traces_pending = 9;
        assert!(h.balanced());
        h.traces_sent = 1;
        assert!(!h.balanced());
    }

    #[test]
    fn json_names_every_field() {
        let mut h = Health {
            traces_enqueued: 3,
            breaker: BreakerState::HalfOpen,
            ..Health::default()
        };
        h.dropped.http_4xx = 2;
        let v: serde_json::Value = serde_json::from_str(&h.to_json()).unwrap();
        assert_eq!(v["traces_enqueued"], 3);
        assert_eq!(v["dropped"]["http_4xx"], 2);
        assert_eq!(v["breaker"], "half_open");
        assert_eq!(v["worker_running"], false);
        for r in DropReason::ALL {
            assert!(v["dropped"].get(r.as_str()).is_some(), "{}", r.as_str());
        }
    }

    #[test]
    fn breaker_state_codes() {
        for s in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            assert_eq!(BreakerState::from_u8(s.to_u8()), s);
        }
    }
}
