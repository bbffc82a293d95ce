//! The bounded queue between the application threads (`enqueue*`) and the background worker.
//!
//! One mutex guards it. `enqueue` holds it to copy the payload into the current chunk (see
//! [`super::chunk`]) and do a few additions. The enqueue-side counters live here too, so the hot path
//! touches no extra atomic. The worker holds it to take a batch: the front chunk, or a run of
//! loose payloads (owned buffers from `enqueue_bytes`, v0.5 payloads, payloads larger than a chunk).
//!
//! Memory is bounded by `queue_max_bytes`: every payload is charged its length plus
//! [`ITEM_OVERHEAD`], from the moment it is queued until the worker has delivered or dropped it. So
//! a batch in the worker's hands, retried while the agent is down, still counts. Beyond the cap, new
//! payloads are dropped (never blocked) and counted.
//!
//! Sequence numbers order the payloads. `done_seq` says that every payload before it is resolved
//! (delivered or dropped), and `flush` waits for it to pass the number taken at its call.

use super::chunk::{Chunk, Pool, HEADER_ROOM};
use super::codec::{count_traces, Format};
use super::health::{DropReason, Health, Tally};
use crate::{Error, ErrorKind, Result};
use bytes::Bytes;
use std::borrow::Cow;
use std::collections::VecDeque;

/// Bytes charged per payload on top of its length: the queue entry and the allocation's own
/// overhead. Without it, a flood of tiny payloads could use far more memory than the cap says.
pub(crate) const ITEM_OVERHEAD: usize = 64;

/// One payload, as the application handed it over.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// A msgpack array of traces in `format`, or, when `bare`, the v0.4 traces without the array
    /// header (a slice of a chunk).
    pub body: Bytes,
    pub format: Format,
    /// v0.4: length of the outer array header (1, 3 or 5 bytes). 0 for v0.5 and bare items.
    pub header_len: u8,
    /// Traces (chunks), from the array header.
    pub traces: u32,
    /// Spans, when known (`enqueue_traces`), else 0.
    pub spans: u32,
    /// `body` has no outer header (see above).
    pub bare: bool,
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
            bare: false,
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
        if self.bare {
            return &self.body;
        }
        &self.body[usize::from(self.header_len).min(self.body.len())..]
    }

    /// The whole payload, header included (rebuilt for a bare item).
    pub(crate) fn payload(&self) -> Cow<'_, [u8]> {
        if !self.bare {
            return Cow::Borrowed(&self.body);
        }
        let mut p = Vec::with_capacity(self.body.len() + HEADER_ROOM);
        // Writing to a Vec cannot fail.
        let _ = rmp::encode::write_array_len(&mut p, self.traces);
        p.extend_from_slice(&self.body);
        Cow::Owned(p)
    }
}

/// What the worker takes: the front chunk (sealed by the worker, outside the lock), or loose
/// payloads.
#[derive(Debug)]
pub(crate) enum Taken {
    Chunk(Chunk),
    Items(Vec<Item>),
}

/// Payloads taken by the worker, to be resolved together.
#[derive(Debug)]
pub(crate) struct Batch {
    pub taken: Taken,
    /// Payloads taken.
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
    /// Queued. `wake` asks the caller to wake the worker; `refill` to have it refill the chunk
    /// pool.
    Queued { wake: bool, refill: bool },
    /// Not queued, and counted as dropped for this reason.
    Dropped(DropReason),
}

#[derive(Debug)]
enum Entry {
    Chunk(Chunk),
    Loose(Item),
}

/// The queue and the enqueue-side counters (under the queue mutex).
#[derive(Debug, Default)]
pub(crate) struct QueueState {
    entries: VecDeque<Entry>,
    queued_payloads: u64,
    queued_cost: usize,
    queued_traces: u64,
    held_cost: usize,
    held_traces: u64,
    held_payloads: u64,
    /// Sequence number of the first queued payload.
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

/// The bounds a push is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub queue_max_bytes: usize,
    pub batch_max_bytes: usize,
}

impl QueueState {
    /// Counts a payload as enqueued, and refuses it (counted as dropped) if the exporter is
    /// closing or the cap would be passed.
    fn admit(
        &mut self,
        traces: u32,
        spans: u32,
        len: usize,
        limits: Limits,
        breaker_open: impl FnOnce() -> bool,
    ) -> Option<DropReason> {
        self.payloads_enqueued += 1;
        self.traces_enqueued += u64::from(traces);
        self.spans_enqueued += u64::from(spans);
        self.bytes_enqueued += len as u64;
        let reason = if self.closing {
            DropReason::Shutdown
        } else if self.queued_cost + self.held_cost + len + ITEM_OVERHEAD > limits.queue_max_bytes {
            if breaker_open() {
                DropReason::BreakerOpen
            } else {
                DropReason::QueueFull
            }
        } else {
            return None;
        };
        self.tally
            .drop_traces(reason, u64::from(traces), len as u64);
        Some(reason)
    }

    /// Records a queued payload; true when the worker must be woken.
    fn queued(&mut self, was_empty: bool, traces: u32, cost: usize, limits: Limits) -> bool {
        self.queued_payloads += 1;
        self.queued_cost += cost;
        self.queued_traces += u64::from(traces);
        self.next_seq += 1;
        let wake = self.worker_waiting && (was_empty || self.queued_cost >= limits.batch_max_bytes);
        if wake {
            self.worker_waiting = false;
        }
        wake
    }

    /// Queues a v0.4 payload by copying its traces into the current chunk (a new one from `pool`
    /// when it has no room). A payload larger than a chunk is copied on its own.
    pub(crate) fn push_copy(
        &mut self,
        payload: &[u8],
        (traces, header_len): (u32, u8),
        spans: u32,
        limits: Limits,
        pool: &Pool,
        breaker_open: impl FnOnce() -> bool,
    ) -> Pushed {
        let bare = &payload[usize::from(header_len).min(payload.len())..];
        if let Some(reason) = self.admit(traces, spans, bare.len(), limits, breaker_open) {
            return Pushed::Dropped(reason);
        }
        let was_empty = self.entries.is_empty();
        let mut refill = false;
        if bare.len() + HEADER_ROOM > pool.capacity() {
            // Larger than a chunk: its own buffer (bare, like chunk slices, so that its charged
            // length is the same here and when taken).
            self.entries.push_back(Entry::Loose(Item {
                body: Bytes::copy_from_slice(bare),
                format: Format::V04,
                header_len: 0,
                traces,
                spans,
                bare: true,
            }));
        } else {
            let fits =
                matches!(self.entries.back(), Some(Entry::Chunk(c)) if c.room() >= bare.len());
            if !fits {
                let (buf, low) = pool.take();
                refill = low;
                self.entries.push_back(Entry::Chunk(Chunk::new(buf)));
            }
            if let Some(Entry::Chunk(c)) = self.entries.back_mut() {
                c.push(bare, traces, spans);
            }
        }
        let wake = self.queued(was_empty, traces, bare.len() + ITEM_OVERHEAD, limits);
        Pushed::Queued { wake, refill }
    }

    /// Queues a payload as it is (no copy).
    pub(crate) fn push(
        &mut self,
        item: Item,
        limits: Limits,
        breaker_open: impl FnOnce() -> bool,
    ) -> Pushed {
        let len = item.body.len();
        if let Some(reason) = self.admit(item.traces, item.spans, len, limits, breaker_open) {
            return Pushed::Dropped(reason);
        }
        let was_empty = self.entries.is_empty();
        let (traces, cost) = (item.traces, item.cost());
        self.entries.push_back(Entry::Loose(item));
        let wake = self.queued(was_empty, traces, cost, limits);
        Pushed::Queued {
            wake,
            refill: false,
        }
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when at least `bytes` of payload are queued.
    pub(crate) fn queued_at_least(&self, bytes: usize) -> bool {
        self.queued_cost >= bytes
    }

    /// True when a flush covers the payload at the head of the queue.
    pub(crate) fn flush_pending(&self) -> bool {
        !self.entries.is_empty() && self.flush_target > self.head_seq
    }

    /// The sequence number the next payload will get (a flush waits until `done_seq` reaches it).
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Takes the next batch for the worker: the front chunk, or loose payloads from the head up to
    /// `max_bytes` of payload (at least one). `None` when empty.
    pub(crate) fn take_batch(&mut self, max_bytes: usize) -> Option<Batch> {
        let (taken, payloads, bytes, traces) = match self.entries.pop_front()? {
            Entry::Chunk(c) => {
                let (p, b, t) = c.totals();
                (Taken::Chunk(c), p, b, t)
            }
            Entry::Loose(first) => {
                let mut bytes = first.body.len();
                let mut traces = u64::from(first.traces);
                let mut items = vec![first];
                while let Some(Entry::Loose(it)) = self.entries.front() {
                    let next = bytes + it.body.len();
                    // The merged header holds at most u32::MAX traces.
                    if next > max_bytes || traces + u64::from(it.traces) > u64::from(u32::MAX) {
                        break;
                    }
                    bytes = next;
                    traces += u64::from(it.traces);
                    if let Some(Entry::Loose(it)) = self.entries.pop_front() {
                        items.push(it);
                    }
                }
                let n = items.len();
                (Taken::Items(items), n, bytes, traces)
            }
        };
        let cost = bytes + payloads * ITEM_OVERHEAD;
        self.queued_payloads -= payloads as u64;
        self.queued_cost -= cost;
        self.queued_traces -= traces;
        self.held_cost += cost;
        self.held_traces += traces;
        self.held_payloads += payloads as u64;
        self.head_seq += payloads as u64;
        Some(Batch {
            taken,
            payloads,
            end_seq: self.head_seq,
            cost,
            traces,
        })
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
        let bytes =
            (self.queued_cost as u64).saturating_sub(self.queued_payloads * ITEM_OVERHEAD as u64);
        let traces = self.queued_traces;
        self.tally.drop_traces(DropReason::Shutdown, traces, bytes);
        self.entries.clear();
        self.queued_payloads = 0;
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
            self.queued_payloads + self.held_payloads,
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
    use crate::exporter::chunk::chunk_capacity;
    use std::sync::Arc;

    const BIG: Limits = Limits {
        queue_max_bytes: usize::MAX,
        batch_max_bytes: 1 << 20,
    };

    /// A v0.4 payload of `len` bytes: `len - 5` empty traces (0x90) behind a 5-byte array32
    /// header.
    fn payload(len: usize) -> Vec<u8> {
        let n = (len.max(6) - 5) as u32;
        let mut b = vec![0xdd];
        b.extend(n.to_be_bytes());
        b.resize(len.max(6), 0x90);
        b
    }

    fn item(len: usize) -> Item {
        Item::parse(Format::V04, Bytes::from(payload(len)), 0).unwrap()
    }

    fn pool() -> Arc<Pool> {
        Pool::new(chunk_capacity(64 << 10, 32 << 20))
    }

    fn copy(q: &mut QueueState, len: usize, limits: Limits, pool: &Pool, open: bool) -> Pushed {
        let p = payload(len);
        let h = Item::header(Format::V04, &p).unwrap();
        q.push_copy(&p, h, 0, limits, pool, || open)
    }

    #[test]
    fn parse_reads_headers_and_rejects_lies() {
        let it = Item::parse(Format::V04, Bytes::from_static(&[0x92, 0x90, 0x90]), 3).unwrap();
        assert_eq!((it.traces, it.header_len, it.spans), (2, 1, 3));
        assert_eq!(it.traces_bytes(), &[0x90, 0x90]);
        assert_eq!(&*it.payload(), &[0x92, 0x90, 0x90]);
        let it = Item::parse(Format::V04, Bytes::from(vec![0xdc, 0, 2, 0x90, 0x90]), 0).unwrap();
        assert_eq!((it.traces, it.header_len), (2, 3));
        let it = Item::parse(Format::V04, Bytes::from(vec![0xdd, 0, 0, 0, 1, 0x90]), 0).unwrap();
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
        let bare = Item {
            body: Bytes::from_static(&[0x90, 0x90]),
            format: Format::V04,
            header_len: 0,
            traces: 2,
            spans: 0,
            bare: true,
        };
        assert_eq!(&*bare.payload(), &[0x92, 0x90, 0x90]);
        assert_eq!(bare.traces_bytes(), &[0x90, 0x90]);
    }

    #[test]
    fn copies_share_a_chunk_until_it_is_full() {
        let pool = pool();
        let mut q = QueueState::default();
        // 64 KiB chunks: 16 payloads of 4000 bytes (3995 bare) fit in one, the 17th opens another.
        for _ in 0..17 {
            assert!(matches!(
                copy(&mut q, 4000, BIG, &pool, false),
                Pushed::Queued { .. }
            ));
        }
        let b = q.take_batch(1 << 20).unwrap();
        let Taken::Chunk(c) = &b.taken else {
            panic!("a chunk")
        };
        assert_eq!(b.payloads, c.payloads());
        assert_eq!(b.payloads, (64 << 10) / 3995);
        assert_eq!(b.traces, b.payloads as u64 * 3995);
        let b2 = q.take_batch(1 << 20).unwrap();
        assert_eq!(b.payloads + b2.payloads, 17);
        assert!(q.take_batch(1 << 20).is_none());
        assert_eq!(b2.end_seq, 17);
        // Sealed, the chunk is one v0.4 payload holding every trace.
        let Taken::Chunk(c) = b.taken else {
            unreachable!()
        };
        let (body, items) = c.seal(&pool);
        assert_eq!(
            crate::decode::count_traces(Format::V04, &body).unwrap() as u64,
            b.traces
        );
        assert_eq!(items.len(), b.payloads);
    }

    #[test]
    fn oversized_payloads_go_alone_and_loose_runs_respect_max_bytes() {
        let pool = pool();
        let mut q = QueueState::default();
        copy(&mut q, 100, BIG, &pool, false);
        copy(&mut q, 100 << 10, BIG, &pool, false); // larger than a chunk: loose
        for _ in 0..5 {
            q.push(item(400), BIG, || false);
        }
        assert!(matches!(q.take_batch(1000).unwrap().taken, Taken::Chunk(_)));
        let big = q.take_batch(1000).unwrap();
        assert!(
            matches!(&big.taken, Taken::Items(v) if v.len() == 1 && v[0].bare && v[0].body.len() == (100 << 10) - 5)
        );
        let b = q.take_batch(1000).unwrap();
        assert_eq!(b.payloads, 2, "400 + 400 <= 1000 < 1200");
        assert_eq!(q.take_batch(1000).unwrap().payloads, 2);
        assert_eq!(q.take_batch(1000).unwrap().payloads, 1);
        assert!(q.is_empty());
    }

    #[test]
    fn cap_counts_queued_and_held_bytes_and_balances() {
        let pool = pool();
        let mut q = QueueState::default();
        let per = 95 + ITEM_OVERHEAD; // 100-byte payload, 5-byte header stripped
        let limits = Limits {
            queue_max_bytes: 3 * per,
            batch_max_bytes: 1 << 20,
        };
        for _ in 0..3 {
            assert!(matches!(
                copy(&mut q, 100, limits, &pool, false),
                Pushed::Queued { .. }
            ));
        }
        assert_eq!(
            copy(&mut q, 100, limits, &pool, false),
            Pushed::Dropped(DropReason::QueueFull)
        );
        assert_eq!(
            copy(&mut q, 100, limits, &pool, true),
            Pushed::Dropped(DropReason::BreakerOpen)
        );
        // Taken by the worker: still charged until resolved.
        let b = q.take_batch(1 << 20).unwrap();
        assert_eq!(b.payloads, 3);
        assert_eq!(
            copy(&mut q, 100, limits, &pool, false),
            Pushed::Dropped(DropReason::QueueFull)
        );
        assert_eq!(q.pending(), (3, 3 * 95, 3 * per as u64));
        let mut outcome = Tally::default();
        outcome.sent(3 * 95, 300);
        q.resolve(&b, &mut outcome);
        assert_eq!(q.pending(), (0, 0, 0));
        assert_eq!(q.done_seq, 3);
        assert!(matches!(
            copy(&mut q, 100, limits, &pool, false),
            Pushed::Queued { .. }
        ));
        let mut h = Health::default();
        q.fill(&mut h);
        assert_eq!(h.payloads_enqueued, 7, "drops count as enqueued");
        assert_eq!(h.traces_pending, 95);
        assert_eq!(h.dropped.queue_full, 2 * 95);
        assert_eq!(h.dropped.breaker_open, 95);
        assert!(
            h.balanced(),
            "a pending trace is part of the account: {h:?}"
        );
        let mut outcome = Tally::default();
        outcome.drop_traces(DropReason::Http4xx, 95, 95);
        let b = q.take_batch(1 << 20).unwrap();
        q.resolve(&b, &mut outcome);
        q.fill(&mut h);
        assert_eq!(h.traces_sent, 3 * 95);
        assert_eq!(h.dropped.http_4xx, 95);
        assert_eq!(h.traces_pending, 0);
        assert!(h.balanced(), "{h:?}");
    }

    #[test]
    fn wakes_only_a_waiting_worker_on_empty_or_full_batch() {
        let pool = pool();
        let mut q = QueueState::default();
        let small = Limits {
            queue_max_bytes: usize::MAX,
            batch_max_bytes: 1000,
        };
        assert!(matches!(
            copy(&mut q, 10, small, &pool, false),
            Pushed::Queued { wake: false, .. }
        ));
        q.worker_waiting = true;
        assert!(matches!(
            copy(&mut q, 10, small, &pool, false),
            Pushed::Queued { wake: false, .. }
        ));
        assert!(matches!(
            copy(&mut q, 1000, small, &pool, false),
            Pushed::Queued { wake: true, .. }
        ));
        assert!(!q.worker_waiting, "one wake per wait");
        while let Some(b) = q.take_batch(usize::MAX) {
            q.resolve(&b, &mut Tally::default());
        }
        q.worker_waiting = true;
        assert!(matches!(
            q.push(item(10), small, || false),
            Pushed::Queued { wake: true, .. }
        ));
    }

    #[test]
    fn new_chunks_ask_for_a_refill() {
        let pool = pool();
        let mut q = QueueState::default();
        assert!(matches!(
            copy(&mut q, 10, BIG, &pool, false),
            Pushed::Queued { refill: true, .. }
        ));
        assert!(matches!(
            copy(&mut q, 10, BIG, &pool, false),
            Pushed::Queued { refill: false, .. }
        ));
    }

    #[test]
    fn closing_refuses_and_clear_resolves() {
        let pool = pool();
        let mut q = QueueState::default();
        copy(&mut q, 10, BIG, &pool, false); // 5 traces
        q.push(item(10), BIG, || false); // 5 traces
        q.flush_target = q.next_seq();
        assert!(q.flush_pending());
        q.closing = true;
        assert_eq!(
            copy(&mut q, 10, BIG, &pool, false),
            Pushed::Dropped(DropReason::Shutdown)
        );
        assert_eq!(q.clear(), 10);
        assert_eq!(q.done_seq, 2);
        assert!(!q.flush_pending());
        assert_eq!(
            q.tally.dropped(DropReason::Shutdown),
            15,
            "5 refused + 10 cleared"
        );
        assert_eq!(q.pending(), (0, 0, 0));
    }
}
