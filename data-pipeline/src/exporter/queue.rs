//! The bounded queue between the application threads (`enqueue*`) and the background worker.
//!
//! One mutex guards it. `enqueue` holds it for a push and a few additions: the enqueue-side
//! counters live here too, so the hot path touches no extra atomic. The worker holds it to take a
//! batch. Memory is bounded by `queue_max_bytes`: every payload is charged its length plus
//! [`ITEM_OVERHEAD`], from the moment it is queued until the worker has delivered or dropped it. So
//! a batch in the worker's hands, retried while the agent is down, still counts. Beyond the cap, new
//! payloads are dropped (never blocked) and counted.
//!
//! Sequence numbers order the payloads. `done_seq` says that every payload before it is resolved
//! (delivered or dropped), and `flush` waits for it to pass the number taken at its call.

use super::codec::{count_traces, Format};
use super::health::{DropReason, Health, Tally};
use crate::{Error, ErrorKind, Result};
use bytes::Bytes;
use std::collections::VecDeque;

/// Bytes charged per payload on top of its length: the queue entry and the allocation's own
/// overhead. Without it, a flood of tiny payloads could use far more memory than the cap says.
pub(crate) const ITEM_OVERHEAD: usize = 64;

/// One enqueued payload, as the application handed it over (copied).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// A msgpack array of traces in `format`.
    pub body: Bytes,
    pub format: Format,
    /// v0.4: length of the outer array header (1, 3 or 5 bytes). 0 for v0.5.
    pub header_len: u8,
    /// Traces (chunks), from the array header.
    pub traces: u32,
    /// Spans, when known (`enqueue_traces`), else 0.
    pub spans: u32,
}

impl Item {
    /// Validates a payload's outer header and reads its trace count, without decoding any span.
    /// Errors are `Decode` errors for the caller: not an array of traces, or a count that the
    /// bytes cannot hold.
    pub(crate) fn parse(format: Format, body: Bytes, spans: u32) -> Result<Item> {
        let (traces, header_len) = Self::header(format, &body)?;
        Ok(Item {
            body,
            format,
            header_len,
            traces,
            spans,
        })
    }

    /// The trace count and outer header length of a payload (see [`Item::parse`]).
    pub(crate) fn header(format: Format, body: &[u8]) -> Result<(u32, u8)> {
        let traces = count_traces(format, body)?;
        // Each trace takes at least one byte: a larger count is a lie that would corrupt a
        // merged batch.
        let traces = u32::try_from(traces)
            .ok()
            .filter(|t| *t as usize <= body.len())
            .ok_or_else(|| {
                Error::decode(
                    0,
                    format_args!("payload announces {traces} traces in {} bytes", body.len()),
                )
            })?;
        let header_len = match (format, body.first()) {
            (Format::V05, _) => 0,
            (Format::V04, Some(0xdc)) => 3,
            (Format::V04, Some(0xdd)) => 5,
            (Format::V04, _) => 1,
        };
        Ok((traces, header_len))
    }

    /// Bytes charged against the cap.
    pub(crate) fn cost(&self) -> usize {
        self.body.len() + ITEM_OVERHEAD
    }

    /// The traces' bytes without the outer array header (v0.4).
    pub(crate) fn traces_bytes(&self) -> &[u8] {
        &self.body[usize::from(self.header_len).min(self.body.len())..]
    }
}

/// Payloads taken by the worker, to be resolved together.
#[derive(Debug)]
pub(crate) struct Batch {
    pub items: Vec<Item>,
    /// Payloads taken (`items` may have been moved out since).
    pub payloads: usize,
    /// `done_seq` once resolved.
    pub end_seq: u64,
    /// Charged bytes, released on resolve.
    pub cost: usize,
    pub traces: u64,
}

/// What happened to a pushed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; `wake` asks the caller to unpark the worker.
    Queued { wake: bool },
    /// Not queued, and counted as dropped for this reason.
    Dropped(DropReason),
}

/// The queue and the enqueue-side counters (under the queue mutex).
#[derive(Debug, Default)]
pub(crate) struct QueueState {
    items: VecDeque<Item>,
    queued_cost: usize,
    queued_traces: u64,
    held_cost: usize,
    held_traces: u64,
    held_payloads: u64,
    /// Sequence number of `items.front()`.
    head_seq: u64,
    /// Sequence number the next pushed payload gets.
    next_seq: u64,
    /// Every payload numbered below is resolved.
    pub done_seq: u64,
    /// `flush` asked for every payload numbered below to go out now.
    pub flush_target: u64,
    /// `shutdown` asked the worker to drain and stop; new payloads are refused.
    pub closing: bool,
    /// The worker parks waiting for payloads (enqueue may wake it).
    pub worker_waiting: bool,
    /// The worker thread has finished.
    pub worker_exited: bool,
    /// Bumped by each flush and shutdown: a worker waiting for a breaker probe probes now.
    pub kick: u64,
    payloads_enqueued: u64,
    traces_enqueued: u64,
    spans_enqueued: u64,
    bytes_enqueued: u64,
    /// Delivered and dropped so far (see [`Tally`]).
    pub tally: Tally,
}

impl QueueState {
    /// Counts `item` as enqueued and queues it, unless the exporter is closing or the cap would be
    /// passed. `breaker_open` names the drop reason when full. `batch_max_bytes` decides when the
    /// worker must be woken.
    pub(crate) fn push(
        &mut self,
        item: Item,
        queue_max_bytes: usize,
        batch_max_bytes: usize,
        breaker_open: impl FnOnce() -> bool,
    ) -> Pushed {
        self.payloads_enqueued += 1;
        self.traces_enqueued += u64::from(item.traces);
        self.spans_enqueued += u64::from(item.spans);
        self.bytes_enqueued += item.body.len() as u64;
        let cost = item.cost();
        let refused = if self.closing {
            Some(DropReason::Shutdown)
        } else if self.queued_cost + self.held_cost + cost > queue_max_bytes {
            Some(if breaker_open() {
                DropReason::BreakerOpen
            } else {
                DropReason::QueueFull
            })
        } else {
            None
        };
        if let Some(reason) = refused {
            self.tally
                .drop_traces(reason, u64::from(item.traces), item.body.len() as u64);
            return Pushed::Dropped(reason);
        }
        let was_empty = self.items.is_empty();
        self.queued_cost += cost;
        self.queued_traces += u64::from(item.traces);
        self.items.push_back(item);
        self.next_seq += 1;
        let wake = self.worker_waiting && (was_empty || self.queued_cost >= batch_max_bytes);
        if wake {
            self.worker_waiting = false;
        }
        Pushed::Queued { wake }
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when at least `bytes` of payload are queued.
    pub(crate) fn queued_at_least(&self, bytes: usize) -> bool {
        self.queued_cost >= bytes
    }

    /// True when a flush covers the payload at the head of the queue.
    pub(crate) fn flush_pending(&self) -> bool {
        !self.items.is_empty() && self.flush_target > self.head_seq
    }

    /// The sequence number the next payload will get (a flush waits until `done_seq` reaches it).
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Takes payloads from the head, up to `max_bytes` of payload (at least one), for the worker.
    pub(crate) fn take_batch(&mut self, max_bytes: usize) -> Batch {
        let mut bytes = 0usize;
        let mut traces = 0u64;
        let mut n = 0;
        for it in &self.items {
            let next = bytes + it.body.len();
            // The merged header holds at most u32::MAX traces.
            if n > 0 && (next > max_bytes || traces + u64::from(it.traces) > u64::from(u32::MAX)) {
                break;
            }
            bytes = next;
            traces += u64::from(it.traces);
            n += 1;
        }
        let items: Vec<Item> = if n == self.items.len() {
            std::mem::take(&mut self.items).into()
        } else {
            self.items.drain(..n).collect()
        };
        let cost = bytes + n * ITEM_OVERHEAD;
        self.queued_cost -= cost;
        self.queued_traces -= traces;
        self.held_cost += cost;
        self.held_traces += traces;
        self.held_payloads += n as u64;
        self.head_seq += n as u64;
        Batch {
            items,
            payloads: n,
            end_seq: self.head_seq,
            cost,
            traces,
        }
    }

    /// Releases a batch the worker finished with, adding its outcome to the tally.
    pub(crate) fn resolve(&mut self, batch: &Batch, outcome: &mut Tally) {
        self.tally.absorb(outcome);
        self.held_cost -= batch.cost;
        self.held_traces -= batch.traces;
        self.held_payloads -= batch.payloads as u64;
        self.done_seq = self.done_seq.max(batch.end_seq);
    }

    /// Drops everything queued (shutdown ran out of time) as [`DropReason::Shutdown`]; returns the
    /// traces dropped. Payloads in the worker's hands are resolved by the worker.
    pub(crate) fn clear(&mut self) -> u64 {
        let bytes: u64 = self.items.iter().map(|i| i.body.len() as u64).sum();
        let traces = self.queued_traces;
        self.tally.drop_traces(DropReason::Shutdown, traces, bytes);
        self.items.clear();
        self.queued_cost = 0;
        self.queued_traces = 0;
        self.head_seq = self.next_seq;
        if self.held_payloads == 0 {
            self.done_seq = self.next_seq;
        }
        traces
    }

    /// Pending payloads, traces and charged bytes (queued or held by the worker).
    pub(crate) fn pending(&self) -> (u64, u64, u64) {
        (
            self.items.len() as u64 + self.held_payloads,
            self.queued_traces + self.held_traces,
            (self.queued_cost + self.held_cost) as u64,
        )
    }

    /// Adds the enqueue side and the gauges to `h`.
    pub(crate) fn fill(&self, h: &mut Health) {
        h.payloads_enqueued = self.payloads_enqueued;
        h.traces_enqueued = self.traces_enqueued;
        h.spans_enqueued = self.spans_enqueued;
        h.bytes_enqueued = self.bytes_enqueued;
        self.tally.fill(h);
        (h.payloads_pending, h.traces_pending, h.bytes_pending) = self.pending();
    }
}

/// The error `enqueue` returns for a payload that was counted and dropped.
pub(crate) fn dropped_error(reason: DropReason, traces: u32) -> Error {
    match reason {
        DropReason::Shutdown => Error::new(
            ErrorKind::Shutdown,
            format!("exporter shut down: {traces} trace(s) dropped"),
        ),
        DropReason::BreakerOpen => Error::new(
            ErrorKind::Overflow,
            format!("queue full while the agent is unreachable: {traces} trace(s) dropped"),
        ),
        _ => Error::new(
            ErrorKind::Overflow,
            format!("queue full (queue_max_bytes): {traces} trace(s) dropped"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(traces: u32, len: usize) -> Item {
        // A v0.4 fixarray header then filler (the queue never looks inside).
        let mut body = vec![0x90 | traces.min(15) as u8];
        body.resize(len.max(1), 0x90);
        Item::parse(Format::V04, Bytes::from(body), 0).unwrap()
    }

    #[test]
    fn parse_reads_headers_and_rejects_lies() {
        let it = Item::parse(Format::V04, Bytes::from_static(&[0x92, 0x90, 0x90]), 3).unwrap();
        assert_eq!((it.traces, it.header_len, it.spans), (2, 1, 3));
        assert_eq!(it.traces_bytes(), &[0x90, 0x90]);
        let mut b16 = vec![0xdc, 0x00, 0x02];
        b16.extend([0x90, 0x90]);
        let it = Item::parse(Format::V04, Bytes::from(b16), 0).unwrap();
        assert_eq!((it.traces, it.header_len), (2, 3));
        let mut b32 = vec![0xdd, 0, 0, 0, 1];
        b32.push(0x90);
        let it = Item::parse(Format::V04, Bytes::from(b32), 0).unwrap();
        assert_eq!((it.traces, it.header_len), (1, 5));
        let nil = Item::parse(Format::V04, Bytes::from_static(&[0xc0]), 0).unwrap();
        assert_eq!(nil.traces, 0);
        for bad in [
            &[][..],
            &[0x81, 0xa1, 0x61, 0x01],
            &[0xdd, 0xff, 0xff, 0xff, 0xff],
        ] {
            let e = Item::parse(Format::V04, Bytes::copy_from_slice(bad), 0).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Decode, "{bad:?}: {e}");
        }
        let v05 = Item::parse(
            Format::V05,
            Bytes::from_static(&[0x92, 0x91, 0xa0, 0x91, 0x90]),
            0,
        )
        .unwrap();
        assert_eq!((v05.traces, v05.header_len), (1, 0));
    }

    #[test]
    fn cap_counts_queued_and_held_bytes() {
        let mut q = QueueState::default();
        let cap = 3 * (100 + ITEM_OVERHEAD);
        for _ in 0..3 {
            assert!(matches!(
                q.push(item(1, 100), cap, 1 << 20, || false),
                Pushed::Queued { .. }
            ));
        }
        assert_eq!(
            q.push(item(1, 100), cap, 1 << 20, || false),
            Pushed::Dropped(DropReason::QueueFull)
        );
        assert_eq!(
            q.push(item(1, 100), cap, 1 << 20, || true),
            Pushed::Dropped(DropReason::BreakerOpen)
        );
        // Taken by the worker: still charged until resolved.
        let b = q.take_batch(1 << 20);
        assert_eq!(b.items.len(), 3);
        assert_eq!(
            q.push(item(1, 100), cap, 1 << 20, || false),
            Pushed::Dropped(DropReason::QueueFull)
        );
        assert_eq!(q.pending(), (3, 3, cap as u64));
        let mut outcome = Tally::default();
        outcome.sent(3, 300);
        q.resolve(&b, &mut outcome);
        assert_eq!(q.pending(), (0, 0, 0));
        assert_eq!(q.done_seq, 3);
        assert!(matches!(
            q.push(item(1, 100), cap, 1 << 20, || false),
            Pushed::Queued { .. }
        ));
        let mut h = Health::default();
        q.fill(&mut h);
        assert_eq!(h.payloads_enqueued, 7, "drops count as enqueued");
        assert_eq!(h.traces_pending, 1);
        assert_eq!(h.dropped.queue_full, 2);
        assert_eq!(h.dropped.breaker_open, 1);
        assert!(
            h.balanced(),
            "a pending trace is part of the account: {h:?}"
        );
        let mut outcome = Tally::default();
        outcome.drop_traces(DropReason::Http4xx, 1, 100);
        let b = q.take_batch(1 << 20);
        q.resolve(&b, &mut outcome);
        q.fill(&mut h);
        assert_eq!(h.traces_sent, 3);
        assert_eq!(h.dropped.http_4xx, 1);
        assert_eq!(h.traces_pending, 0);
        assert!(h.balanced(), "{h:?}");
        assert!(h.balanced(), "{h:?}");
    }

    #[test]
    fn batches_respect_max_bytes_but_take_at_least_one() {
        let mut q = QueueState::default();
        for _ in 0..5 {
            q.push(item(1, 400), usize::MAX, 1 << 20, || false);
        }
        q.push(item(1, 5000), usize::MAX, 1 << 20, || false);
        let b = q.take_batch(1000);
        assert_eq!(b.items.len(), 2);
        assert_eq!(b.end_seq, 2);
        let b2 = q.take_batch(1000);
        assert_eq!(b2.items.len(), 2);
        let b3 = q.take_batch(1000);
        assert_eq!(b3.items.len(), 1);
        let big = q.take_batch(1000);
        assert_eq!(big.items.len(), 1, "an oversized payload goes alone");
        assert_eq!(big.items[0].body.len(), 5000);
        assert!(q.is_empty());
        for b in [&b, &b2, &b3, &big] {
            q.resolve(b, &mut Tally::default());
        }
        assert_eq!(q.done_seq, 6);
        assert_eq!(q.pending(), (0, 0, 0));
    }

    #[test]
    fn wakes_only_a_waiting_worker_on_empty_or_full_batch() {
        let mut q = QueueState::default();
        assert_eq!(
            q.push(item(1, 10), usize::MAX, 100, || false),
            Pushed::Queued { wake: false },
            "worker not waiting"
        );
        q.worker_waiting = true;
        assert_eq!(
            q.push(item(1, 10), usize::MAX, 1000, || false),
            Pushed::Queued { wake: false },
            "not empty, batch not full"
        );
        assert_eq!(
            q.push(item(1, 1000), usize::MAX, 1000, || false),
            Pushed::Queued { wake: true },
            "batch full"
        );
        assert!(!q.worker_waiting, "one wake per wait");
        let b = q.take_batch(usize::MAX);
        q.resolve(&b, &mut Tally::default());
        q.worker_waiting = true;
        assert_eq!(
            q.push(item(1, 10), usize::MAX, 1000, || false),
            Pushed::Queued { wake: true },
            "was empty"
        );
    }

    #[test]
    fn closing_refuses_and_clear_resolves() {
        let mut q = QueueState::default();
        q.push(item(2, 10), usize::MAX, 100, || false);
        q.push(item(3, 10), usize::MAX, 100, || false);
        assert!(q.flush_pending() || q.flush_target == 0);
        q.flush_target = q.next_seq();
        assert!(q.flush_pending());
        q.closing = true;
        assert_eq!(
            q.push(item(1, 10), usize::MAX, 100, || false),
            Pushed::Dropped(DropReason::Shutdown)
        );
        assert_eq!(q.clear(), 5);
        assert_eq!(q.done_seq, 2);
        assert_eq!(
            q.tally.dropped(DropReason::Shutdown),
            6,
            "1 refused + 5 cleared"
        );
        assert!(!q.flush_pending());
    }
}
