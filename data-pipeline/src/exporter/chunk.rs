//! Where `enqueue` copies payloads: chunks, one per batch, taken from a pool of buffers that the
//! worker pre-faults in advance and that delivered batches give back.
//!
//! Why: with the agent stalled, the queue keeps growing into fresh memory, and the first write to
//! each fresh page is a page fault (about 0.7 per 2.7 kB payload, 1-2 µs each on a busy VM). With
//! a plain allocation per payload, the application thread would pay that inside `enqueue`. Here
//! the worker touches every page of a spare chunk before it is needed. It does so between
//! requests, and while a request is in flight, as a task on its runtime. So `enqueue` only copies
//! into memory that is already mapped. Delivered chunks come back to the pool, so in steady state
//! nothing is allocated at all. If `enqueue` outruns the worker, it allocates a chunk itself,
//! which is slower but still correct.
//!
//! A chunk holds v0.4 payloads without their outer array header, one after the other, behind
//! [`HEADER_ROOM`] reserved bytes. Sealing it writes the merged header for the total trace count
//! into the end of that room, so the request body is the chunk itself (no merge copy). The body
//! is handed to the HTTP client as `Bytes` whose owner returns the buffer to the pool when the
//! last reference drops. The `benches/enqueue_latency.rs` figures (page faults per enqueue and
//! p50) are the measurement behind this module.

use super::codec::Format;
use super::queue::Item;
use bytes::Bytes;
use std::sync::{Arc, Mutex, Weak};

/// Bytes reserved at the front of a chunk for the merged array header (at most 5).
pub(crate) const HEADER_ROOM: usize = 5;

/// Writes the msgpack array header for `n` items at the end of the first [`HEADER_ROOM`] bytes
/// of `buf` (reserved by the caller, at least that long); returns where the header starts: the
/// payload is `buf[start..]`. `n` counts decoded traces, which came in msgpack arrays of at
/// most `u32::MAX` items, so the saturation never applies in practice.
pub(crate) fn write_header_in_room(buf: &mut [u8], n: u64) -> usize {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    let mut header = Vec::with_capacity(HEADER_ROOM);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(&mut header, n);
    let start = HEADER_ROOM - header.len();
    buf[start..HEADER_ROOM].copy_from_slice(&header);
    start
}
/// Pre-faulted chunks kept ready.
pub(crate) const SPARES: usize = 2;
/// Smallest and largest chunk capacity (the batch size, bounded).
const MIN_CHUNK: usize = 16 << 10;
const MAX_CHUNK: usize = 8 << 20;
const PAGE: usize = 4096;

/// Chunk capacity for a batch size and a queue cap: at most a quarter of the cap, so that the
/// spares and the current chunk stay small next to it.
pub(crate) fn chunk_capacity(batch_max_bytes: usize, queue_max_bytes: usize) -> usize {
    batch_max_bytes
        .min(queue_max_bytes / 4)
        .clamp(MIN_CHUNK, MAX_CHUNK)
        + HEADER_ROOM
}

/// Spare chunk buffers, all of one capacity.
#[derive(Debug)]
pub(crate) struct Pool {
    spares: Mutex<Vec<Vec<u8>>>,
    capacity: usize,
}

fn lock(m: &Mutex<Vec<Vec<u8>>>) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    pub(crate) fn new(capacity: usize) -> Arc<Pool> {
        Arc::new(Pool {
            spares: Mutex::new(Vec::with_capacity(SPARES)),
            capacity,
        })
    }

    /// Chunk capacity (payload room is this minus [`HEADER_ROOM`]).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// A buffer for a new chunk, and whether the pool ran low (the worker should refill it).
    pub(crate) fn take(&self) -> (Vec<u8>, bool) {
        let mut s = lock(&self.spares);
        let buf = s.pop();
        let low = s.len() < SPARES;
        drop(s);
        // Empty pool: allocate here (pages fault as the copy touches them).
        (
            buf.unwrap_or_else(|| Vec::with_capacity(self.capacity)),
            low,
        )
    }

    /// True when fewer than [`SPARES`] buffers are ready.
    pub(crate) fn low(&self) -> bool {
        lock(&self.spares).len() < SPARES
    }

    /// Worker: fills the pool with pre-faulted buffers (the lock is not held while touching
    /// pages).
    pub(crate) fn refill(&self) {
        while self.low() {
            let buf = prefaulted(self.capacity);
            let mut s = lock(&self.spares);
            if s.len() >= SPARES {
                return;
            }
            s.push(buf);
        }
    }

    fn give_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() != self.capacity {
            return;
        }
        buf.clear();
        let mut s = lock(&self.spares);
        if s.len() < SPARES {
            s.push(buf);
        }
    }
}

/// A buffer of `capacity` bytes whose every page has been written once (so mapped).
fn prefaulted(capacity: usize) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::with_capacity(capacity);
    let spare = v.spare_capacity_mut();
    for i in (0..spare.len()).step_by(PAGE) {
        // SAFETY: `i` is within the spare capacity; a volatile write of an initialized byte to
        // owned memory (volatile so the touch is not optimized away).
        unsafe { std::ptr::write_volatile(spare[i].as_mut_ptr(), 0) };
    }
    v
}

/// Where one payload lies in a chunk.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
    traces: u32,
    spans: u32,
}

/// v0.4 payloads (without their outer headers) behind [`HEADER_ROOM`] bytes.
#[derive(Debug)]
pub(crate) struct Chunk {
    buf: Vec<u8>,
    index: Vec<Span>,
    traces: u64,
}

impl Chunk {
    pub(crate) fn new(mut buf: Vec<u8>) -> Chunk {
        buf.clear();
        buf.resize(HEADER_ROOM, 0);
        Chunk {
            buf,
            index: Vec::with_capacity(64),
            traces: 0,
        }
    }

    /// Free bytes.
    pub(crate) fn room(&self) -> usize {
        self.buf.capacity() - self.buf.len()
    }

    /// Appends a payload's trace bytes (the caller checked the room).
    pub(crate) fn push(&mut self, traces_bytes: &[u8], traces: u32, spans: u32) {
        let start = self.buf.len();
        self.buf.extend_from_slice(traces_bytes);
        self.index.push(Span {
            start: start as u32,
            len: traces_bytes.len() as u32,
            traces,
            spans,
        });
        self.traces += u64::from(traces);
    }

    #[cfg(test)]
    pub(crate) fn payloads(&self) -> usize {
        self.index.len()
    }

    /// Payloads, payload bytes and traces held.
    pub(crate) fn totals(&self) -> (usize, usize, u64) {
        (self.index.len(), self.buf.len() - HEADER_ROOM, self.traces)
    }

    /// Writes the merged header and returns the whole body (its buffer goes back to `pool` once
    /// every reference is dropped) and each payload as a bare slice of it.
    pub(crate) fn seal(mut self, pool: &Arc<Pool>) -> (Bytes, Vec<Item>) {
        let start = write_header_in_room(&mut self.buf, self.traces);
        let body = Bytes::from_owner(Pooled {
            buf: self.buf,
            start,
            pool: Arc::downgrade(pool),
        });
        let items = self
            .index
            .iter()
            .map(|s| {
                let at = s.start as usize - start;
                Item {
                    body: body.slice(at..at + s.len as usize),
                    format: Format::V04,
                    header_len: 0,
                    traces: s.traces,
                    spans: s.spans,
                    bare: true,
                }
            })
            .collect();
        (body, items)
    }
}

/// A chunk buffer lent to `Bytes`; back to the pool on drop.
struct Pooled {
    buf: Vec<u8>,
    start: usize,
    pool: Weak<Pool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_owned;
    use crate::encode::encode_to_vec;
    use crate::span::Span as Sp;

    fn payload(n: u64, first: u64) -> Vec<u8> {
        let traces: Vec<Vec<Sp<'_>>> = (0..n)
            .map(|i| {
                vec![Sp {
                    name: "x".into(),
                    trace_id: first + i,
                    ..Sp::default()
                }]
            })
            .collect();
        encode_to_vec(Format::V04, &traces).unwrap()
    }

    #[test]
    fn sealed_chunk_is_one_valid_payload_and_items_are_its_slices() {
        let pool = Pool::new(chunk_capacity(1 << 20, 32 << 20));
        let (buf, low) = pool.take();
        assert!(low);
        let mut c = Chunk::new(buf);
        for (n, first) in [(1u64, 10u64), (20, 100), (2, 300)] {
            let p = payload(n, first);
            let (traces, header_len) = Item::header(Format::V04, &p).unwrap();
            c.push(&p[usize::from(header_len)..], traces, 1);
        }
        assert_eq!(c.payloads(), 3);
        let (body, items) = c.seal(&pool);
        let ids: Vec<u64> = decode_owned(Format::V04, &body)
            .unwrap()
            .iter()
            .map(|t| t[0].trace_id)
            .collect();
        let mut want = vec![10];
        want.extend(100..120);
        want.extend([300, 301]);
        assert_eq!(ids, want);
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|i| i.bare));
        // Each slice is a payload again once its header is put back.
        let second = decode_owned(Format::V04, &items[1].payload()).unwrap();
        assert_eq!(second.len(), 20);
        assert_eq!(second[0][0].trace_id, 100);
        // The buffer returns to the pool when the last reference goes.
        assert!(pool.low());
        drop(items);
        assert_eq!(lock(&pool.spares).len(), 0, "body still referenced");
        drop(body);
        assert_eq!(lock(&pool.spares).len(), 1);
    }

    #[test]
    fn refill_prepares_spares_of_the_right_capacity() {
        let cap = chunk_capacity(64 << 10, 32 << 20);
        assert_eq!(cap, (64 << 10) + HEADER_ROOM);
        let pool = Pool::new(cap);
        pool.refill();
        assert!(!pool.low());
        let (buf, low) = pool.take();
        assert_eq!(buf.capacity(), cap);
        assert!(buf.is_empty());
        assert!(low);
        // Foreign capacities are not kept.
        pool.give_back(Vec::with_capacity(10));
        assert_eq!(lock(&pool.spares).len(), 1);
    }

    #[test]
    fn capacity_is_bounded_by_the_cap_and_limits() {
        assert_eq!(chunk_capacity(1 << 20, 32 << 20), (1 << 20) + HEADER_ROOM);
        assert_eq!(chunk_capacity(1 << 20, 1 << 20), (256 << 10) + HEADER_ROOM);
        assert_eq!(chunk_capacity(1, 1), MIN_CHUNK + HEADER_ROOM);
        assert_eq!(chunk_capacity(1 << 30, 1 << 40), MAX_CHUNK + HEADER_ROOM);
    }
}
