//! The background exporter and fork safety in C: `dp_exporter_enqueue*`, `dp_exporter_flush`,
//! `dp_exporter_health` (with `dp_health`), the builder options of the background side, and the
//! process-wide fork hooks `dp_before_fork`, `dp_after_fork_parent`, `dp_after_fork_child`.
//! `dp_exporter_shutdown` (in `stats.rs`) stops the background worker too: queued traces first,
//! then the stats buckets, within one timeout.
//!
//! `dp_health` is a plain `#[repr(C)]` struct that starts with a `size` field rather than an opaque
//! handle with getters. Health is read often, for example by a periodic metrics callback, and one
//! call then gives one consistent snapshot of every counter with no allocation and no `_free`.
//! Bindings map a struct of `uint64_t` directly (ctypes `Structure`, cgo, FFI structs). It can still
//! grow: fields are only ever appended, the caller says how much it allocated in `size`, and the
//! library writes at most that much and reports back in `size` how much it filled. So an old caller
//! works with a new library, and a new caller with an old library. Every field is a `uint64_t`, so
//! there is no padding and no layout question across compilers.
//!
//! Fork detection: the first `dp_exporter_builder_build` registers a `pthread_atfork` *child*
//! handler that only increments an atomic (async-signal-safe: it takes no lock, allocates nothing,
//! cannot deadlock). Exporters then detect a fork with one atomic load per `enqueue` instead of a
//! `getpid` system call (see `data_pipeline::exporter::fork`). The explicit hooks remain for hosts
//! that want the worker paused across the fork.

use std::sync::Once;
use std::time::Duration;

use engine::exporter::{fork, BreakerState, Health};
use engine::Trace;

use crate::error::{arg_mut, arg_ref, dp_error, FfiError, FfiResult};
use crate::exporter::dp_exporter;
use crate::exporter_builder::dp_exporter_builder;
use crate::slice::{dp_bytes, dp_str};
use crate::trace::dp_trace;

// ---------------------------------------------------------------------------------------------
// Builder options of the background side
// ---------------------------------------------------------------------------------------------

/// Background: a batch goes out once this many bytes of payload are queued (default 1 MiB; must be
/// > 0, checked by `dp_exporter_builder_build`). A payload larger than this goes out alone.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_batch_max_bytes(
    builder: *mut dp_exporter_builder,
    bytes: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe { arg_mut(builder, "builder") }?.builder.batch_max_bytes(bytes);
        Ok(())
    }
}

/// Background: the longest a payload waits in the queue for its batch to fill while the worker is
/// idle, in milliseconds (default 1000; 0 sends as soon as the worker is free).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_batch_max_delay(
    builder: *mut dp_exporter_builder,
    delay_ms: u64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe { arg_mut(builder, "builder") }?
            .builder
            .batch_max_delay(Duration::from_millis(delay_ms));
        Ok(())
    }
}

/// Background: the memory bound of the queue in bytes (payloads plus 64 bytes each, including
/// the batch being sent; default 32 MiB; must be > 0). Beyond it, `dp_exporter_enqueue*`
/// drops the payload, counts it, and returns `DP_STATUS_OVERFLOW`. It never blocks.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_queue_max_bytes(
    builder: *mut dp_exporter_builder,
    bytes: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe { arg_mut(builder, "builder") }?.builder.queue_max_bytes(bytes);
        Ok(())
    }
}

/// Background: where to send the health counters as DogStatsD metrics (`datadog.tracer.exporter.*`)
/// every 10 s and at shutdown: `udp://host:port` or `unix:///path` (a datagram socket). Empty, the
/// default, for none. Copied; checked by `dp_exporter_builder_build`.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_statsd_url(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let url = unsafe { value.to_string("value") }?;
        // SAFETY: forwarded contract.
        unsafe { arg_mut(builder, "builder") }?.builder.statsd_url(url);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Enqueue, flush, shutdown
// ---------------------------------------------------------------------------------------------

/// Queues one payload (a msgpack array of traces in the exporter's input format, v0.4 by default)
/// for the exporter's background worker, and returns at once: it never waits for the agent. The
/// payload is copied; `payload` is borrowed for the call only. The first call starts the worker
/// thread. Payloads are batched and sent by `batch_max_bytes`/`batch_max_delay`, retried, and
/// kept while the agent is unreachable, up to `queue_max_bytes`.
///
/// Only the outer array header is read here. A payload with malformed spans is caught later and
/// dropped alone (counted in `dp_health.dropped_invalid`). An empty array is accepted and ignored.
///
/// Errors: `DP_STATUS_DECODE` (not an array of traces; nothing counted), `DP_STATUS_OVERFLOW` (the
/// queue is at `queue_max_bytes`: dropped and counted), `DP_STATUS_SHUTDOWN` (after
/// `dp_exporter_shutdown`: dropped and counted), `DP_STATUS_NULL_ARGUMENT`.
///
/// Thread-safe. Fork-safe: in a forked child, the first call starts a new worker with an empty
/// queue (the parent's queued traces stay the parent's).
///
/// # Safety
/// `exporter` is NULL or a live exporter; `payload` is a valid view.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_enqueue(
    exporter: *const dp_exporter,
    payload: dp_bytes,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let exporter = unsafe { arg_ref(exporter, "exporter") }?;
        // SAFETY: forwarded contract.
        let payload = unsafe { payload.as_slice("payload") }?;
        exporter.as_exporter().enqueue(payload)?;
        Ok(())
    }
}

/// Queues the `n` trace chunks `traces[0..n]` for the background worker, like `dp_exporter_enqueue`
/// (same errors, plus `DP_STATUS_ENCODE`). The chunks are only borrowed and are encoded during the
/// call, as `dp_exporter_send_traces` does. Free them afterwards with `dp_trace_free`, or keep them.
/// `traces` may be NULL when `n` is 0; a NULL element is `DP_STATUS_NULL_ARGUMENT` and nothing is
/// queued.
///
/// Thread-safe, and the chunks may be enqueued by several threads at once.
///
/// # Safety
/// `exporter` is NULL or a live exporter; `traces` points to `n` pointers that are NULL or live
/// traces not modified during the call.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_enqueue_traces(
    exporter: *const dp_exporter,
    traces: *const *const dp_trace,
    n: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let exporter = unsafe { arg_ref(exporter, "exporter") }?;
        let handles: &[*const dp_trace] = if n == 0 {
            &[]
        } else if traces.is_null() {
            return Err(FfiError::null_argument("traces"));
        } else if n > isize::MAX as usize / std::mem::size_of::<*const dp_trace>() {
            return Err(FfiError::invalid_argument(format!("argument `n` is too large: {n}")));
        } else {
            // SAFETY: non-NULL, size checked, `n` readable pointers by contract.
            unsafe { std::slice::from_raw_parts(traces, n) }
        };
        let mut chunks: Vec<&Trace<'static>> = Vec::with_capacity(handles.len());
        for (i, t) in handles.iter().enumerate() {
            // SAFETY: each element is NULL or a live trace by contract.
            let trace = unsafe { arg_ref(*t, &format!("traces[{i}]")) }?;
            chunks.push(&trace.spans);
        }
        exporter.as_exporter().enqueue_trace_refs(&chunks)?;
        Ok(())
    }
}

/// Sends everything enqueued before this call now, without waiting for `batch_max_delay`, and
/// waits until it is delivered or dropped, for at most `timeout_ms` milliseconds. It always
/// returns within that time.
///
/// Errors: `DP_STATUS_TIMEOUT` when traces were still pending at the deadline. They stay queued
/// and go out later, and the message says how many. Read `dp_exporter_health` for what was dropped.
/// `DP_STATUS_NULL_ARGUMENT`.
///
/// Thread-safe.
///
/// # Safety
/// `exporter` is NULL or a live exporter.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_flush(
    exporter: *const dp_exporter,
    timeout_ms: u64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let exporter = unsafe { arg_ref(exporter, "exporter") }?;
        exporter.as_exporter().flush(Duration::from_millis(timeout_ms))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

/// The circuit breaker is closed: sending normally (`dp_health.breaker_state`).
pub const DP_BREAKER_CLOSED: u64 = 0;
/// The circuit breaker is open: the agent was unreachable several times in a row. Nothing is sent
/// until the next probe, and traces are kept up to `queue_max_bytes`.
pub const DP_BREAKER_OPEN: u64 = 1;
/// The circuit breaker is half-open: one probe request is in flight.
pub const DP_BREAKER_HALF_OPEN: u64 = 2;

/// A snapshot of the background exporter's counters, from `dp_exporter_health`.
///
/// Before the call, set `size` to `sizeof(dp_health)`. The library writes at most that many bytes
/// and sets `size` to the number of bytes it filled. Fields are only ever appended, so a field
/// lies within `size` exactly when this library version knows it.
///
/// Counters only grow, since the exporter was created, or since the fork in a child process. The
/// account always balances, in traces:
/// `traces_enqueued == traces_sent + (all dropped_*) + traces_pending`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct dp_health {
    /// In: bytes the caller allocated (`sizeof(dp_health)`). Out: bytes the library filled.
    pub size: u64,
    /// Payloads passed to `dp_exporter_enqueue*` that were valid, including those dropped at once.
    pub payloads_enqueued: u64,
    /// Traces (chunks) in them.
    pub traces_enqueued: u64,
    /// Spans in them. Counted for `dp_exporter_enqueue_traces` only: raw payloads are not parsed
    /// when enqueued.
    pub spans_enqueued: u64,
    /// Payload bytes enqueued.
    pub bytes_enqueued: u64,
    /// Requests the agent accepted (2xx).
    pub requests_sent: u64,
    /// Traces in them.
    pub traces_sent: u64,
    /// Request body bytes in them.
    pub bytes_sent: u64,
    /// Traces dropped because the queue was at `queue_max_bytes`.
    pub dropped_queue_full: u64,
    /// Traces dropped because the queue was full while the agent was unreachable (breaker open).
    pub dropped_breaker_open: u64,
    /// Traces the agent refused with a status that retrying cannot fix (400, 403, 404, ...).
    pub dropped_http_4xx: u64,
    /// Traces whose retryable failures (408, 429, 5xx) outlasted `max_retries` or the retry budget.
    pub dropped_retries_exhausted: u64,
    /// Traces still queued when `dp_exporter_shutdown` ran out of time or the exporter was freed,
    /// or enqueued after shutdown.
    pub dropped_shutdown: u64,
    /// Traces in payloads found malformed by the worker, or chunks normalization refused.
    pub dropped_invalid: u64,
    /// Bytes dropped, all reasons together.
    pub bytes_dropped: u64,
    /// Requests sent again after a failure.
    pub retries: u64,
    /// Requests that failed (network errors, timeouts, non-2xx answers).
    pub requests_failed: u64,
    /// Payloads not yet delivered or dropped.
    pub payloads_pending: u64,
    /// Traces in them.
    pub traces_pending: u64,
    /// Bytes charged against `queue_max_bytes` for them.
    pub bytes_pending: u64,
    /// `DP_BREAKER_CLOSED`, `DP_BREAKER_OPEN` or `DP_BREAKER_HALF_OPEN`.
    pub breaker_state: u64,
    /// How many times the breaker opened.
    pub breaker_opened: u64,
    /// How many times this exporter was reset by a fork.
    pub forks: u64,
    /// 1 while a background worker thread runs in this process, else 0.
    pub worker_running: u64,
    /// Traces sampled out: P0 chunks removed by client-side stats (counted in the stats and
    /// reported to the agent; not lost). Last: added after the other fields.
    pub dropped_p0: u64,
}

const _: () = assert!(std::mem::size_of::<dp_health>() == 25 * 8);

impl dp_health {
    /// The C view of an engine snapshot (`size` set to the full size).
    pub fn from_health(h: &Health) -> dp_health {
        let d = &h.dropped;
        dp_health {
            size: std::mem::size_of::<dp_health>() as u64,
            payloads_enqueued: h.payloads_enqueued,
            traces_enqueued: h.traces_enqueued,
            spans_enqueued: h.spans_enqueued,
            bytes_enqueued: h.bytes_enqueued,
            requests_sent: h.requests_sent,
            traces_sent: h.traces_sent,
            bytes_sent: h.bytes_sent,
            dropped_queue_full: d.queue_full,
            dropped_breaker_open: d.breaker_open,
            dropped_http_4xx: d.http_4xx,
            dropped_retries_exhausted: d.retries_exhausted,
            dropped_shutdown: d.shutdown,
            dropped_invalid: d.invalid,
            dropped_p0: d.p0,
            bytes_dropped: h.bytes_dropped,
            retries: h.retries,
            requests_failed: h.requests_failed,
            payloads_pending: h.payloads_pending,
            traces_pending: h.traces_pending,
            bytes_pending: h.bytes_pending,
            breaker_state: match h.breaker {
                BreakerState::Closed => DP_BREAKER_CLOSED,
                BreakerState::Open => DP_BREAKER_OPEN,
                BreakerState::HalfOpen => DP_BREAKER_HALF_OPEN,
            },
            breaker_opened: h.breaker_opened,
            forks: h.forks,
            worker_running: u64::from(h.worker_running),
        }
    }
}

/// Fills `*out` with a snapshot of the exporter's background counters (see `dp_health`). Set
/// `out->size = sizeof(dp_health)` first. The library writes at most `out->size` bytes and sets
/// `out->size` to what it filled. Cheap: one short lock, no allocation.
///
/// Errors: `DP_STATUS_NULL_ARGUMENT`, `DP_STATUS_INVALID_ARGUMENT` (`out->size` smaller than the
/// `size` field itself).
///
/// Thread-safe.
///
/// # Safety
/// `exporter` is NULL or a live exporter; `out` is NULL or points to at least `out->size` writable
/// bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_health(
    exporter: *const dp_exporter,
    out: *mut dp_health,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let exporter = unsafe { arg_ref(exporter, "exporter") }?;
        if out.is_null() {
            return Err(FfiError::null_argument("out"));
        }
        // SAFETY: non-NULL (checked); the caller's `size` field is readable by contract.
        let room = unsafe { std::ptr::addr_of!((*out).size).read_unaligned() };
        // SAFETY: forwarded contract (at least `room` writable bytes).
        unsafe { fill_health(&exporter.as_exporter().health(), out, room) }
    }
}

/// # Safety
/// `out` is non-NULL and points to at least `room` writable bytes.
unsafe fn fill_health(h: &Health, out: *mut dp_health, room: u64) -> FfiResult {
    let word = std::mem::size_of::<u64>() as u64;
    if room < word {
        return Err(FfiError::invalid_argument(format!(
            "out->size is {room}: set it to sizeof(dp_health)"
        )));
    }
    let mut full = dp_health::from_health(h);
    // Whole fields only.
    let n = room.min(full.size) / word * word;
    full.size = n;
    // SAFETY: `out` points to at least `room >= n` writable bytes by contract, and `full` has at
    // least `n` bytes; the regions do not overlap (one is on this stack).
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&full as *const dp_health).cast::<u8>(),
            out.cast::<u8>(),
            n as usize,
        )
    };
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fork
// ---------------------------------------------------------------------------------------------

static NOTIFIER: Once = Once::new();

extern "C" fn note_fork_in_child() {
    fork::note_fork_in_child();
}

/// Registers the `pthread_atfork` child handler that makes fork detection one atomic load
/// (once per process; the registration is inherited by children).
pub(crate) fn install_fork_notifier() {
    NOTIFIER.call_once(|| {
        // SAFETY: registers a handler that only increments an atomic (async-signal-safe); glibc
        // unregisters handlers of a library that is unloaded.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(note_fork_in_child)) };
        if rc == 0 {
            fork::set_fork_notifier_installed();
        } else {
            log::debug!("pthread_atfork failed ({rc}): forks are detected with getpid");
        }
    });
}

/// Prepares every exporter of the process for `fork()`: it pauses each background worker at a
/// safe point, where the worker holds none of the library's locks and runs none of its code, and it
/// holds the exporter registry so that no exporter is created across the fork. Waits at most about
/// a second per worker. Call it right before `fork()`, on the forking thread, then
/// `dp_after_fork_parent` in the parent and `dp_after_fork_child` in the child. A second call
/// without an `after` call in between does nothing.
///
/// Optional: without these hooks, each exporter detects the fork on its next call. Its signature
/// fits `pthread_atfork(dp_before_fork, dp_after_fork_parent, dp_after_fork_child)`.
#[no_mangle]
pub extern "C" fn dp_before_fork() {
    boundary! {
        if let Err(e) = fork::before_fork() {
            log::warn!("dp_before_fork: {e}");
        }
    }
}

/// Resumes the workers paused by `dp_before_fork`. Call it in the parent right after `fork()`.
#[no_mangle]
pub extern "C" fn dp_after_fork_parent() {
    boundary! {
        if let Err(e) = fork::after_fork_parent() {
            log::warn!("dp_after_fork_parent: {e}");
        }
    }
}

/// Resets every exporter for the child process right after `fork()`: empty queues, zeroed
/// counters, a new transport, and a new worker at the next enqueue. The parent's state is left
/// untouched and leaked, never freed. It belongs to threads that do not exist in the child, and
/// freeing it could deadlock. The parent's queued traces are not sent by the child.
#[no_mangle]
pub extern "C" fn dp_after_fork_child() {
    boundary! {
        if let Err(e) = fork::after_fork_child() {
            log::warn!("dp_after_fork_child: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{dp_error_code, dp_error_free, dp_status};
    use crate::exporter_builder::{dp_exporter_builder_build, dp_exporter_builder_new};

    fn code(err: *mut dp_error) -> dp_status {
        if err.is_null() {
            return dp_status::DP_STATUS_OK;
        }
        // SAFETY: a live error returned by the library.
        let c = unsafe { dp_error_code(err) };
        // SAFETY: as above, freed once.
        unsafe { dp_error_free(err) };
        c
    }

    fn exporter(url: &str) -> *mut dp_exporter {
        let b = dp_exporter_builder_new();
        // SAFETY: a live builder, consumed by build.
        unsafe {
            assert_eq!(
                code(crate::exporter_builder::dp_exporter_builder_set_url(
                    b,
                    dp_str::of(url)
                )),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(
                code(dp_exporter_builder_set_batch_max_delay(b, 0)),
                dp_status::DP_STATUS_OK
            );
            let mut ex = std::ptr::null_mut();
            assert_eq!(
                code(dp_exporter_builder_build(b, &mut ex)),
                dp_status::DP_STATUS_OK
            );
            ex
        }
    }

    #[test]
    fn null_arguments_are_errors_and_hooks_are_harmless() {
        // SAFETY: NULL handles are checked by every function.
        unsafe {
            assert_eq!(
                code(dp_exporter_enqueue(std::ptr::null(), dp_bytes::EMPTY)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                code(dp_exporter_enqueue_traces(
                    std::ptr::null(),
                    std::ptr::null(),
                    0
                )),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                code(dp_exporter_flush(std::ptr::null(), 10)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                code(dp_exporter_builder_set_batch_max_bytes(
                    std::ptr::null_mut(),
                    1
                )),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            let ex = exporter("http://127.0.0.1:1");
            assert_eq!(
                code(dp_exporter_health(ex, std::ptr::null_mut())),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                code(dp_exporter_enqueue_traces(ex, std::ptr::null(), 3)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            let nulls = [std::ptr::null::<dp_trace>(); 2];
            assert_eq!(
                code(dp_exporter_enqueue_traces(ex, nulls.as_ptr(), 2)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                code(dp_exporter_enqueue(
                    ex,
                    dp_bytes::from_slice(b"\x81\xa1a\x01")
                )),
                dp_status::DP_STATUS_DECODE
            );
            crate::exporter::dp_exporter_free(ex);
        }
        // Outside a fork they only pause and resume (nothing to reset in the creating process).
        dp_before_fork();
        dp_before_fork();
        dp_after_fork_parent();
        dp_after_fork_child();
    }

    #[test]
    fn health_respects_the_callers_size() {
        let ex = exporter("http://127.0.0.1:1");
        // SAFETY: a live exporter; buffers sized as told in `size`.
        unsafe {
            assert_eq!(
                code(dp_exporter_enqueue(ex, dp_bytes::from_slice(&[0x91, 0x90]))),
                dp_status::DP_STATUS_OK
            );
            let mut h = dp_health {
                size: std::mem::size_of::<dp_health>() as u64,
                ..dp_health::default()
            };
            assert_eq!(
                code(dp_exporter_health(ex, &mut h)),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(h.size, std::mem::size_of::<dp_health>() as u64);
            assert_eq!(h.traces_enqueued, 1);
            assert_eq!(h.payloads_enqueued, 1);
            // An older caller that knows 3 fields: exactly 4 words written.
            let mut small = [u64::MAX; 6];
            small[0] = 4 * 8;
            assert_eq!(
                code(dp_exporter_health(ex, small.as_mut_ptr().cast())),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(small[..4], [32, 1, 1, 0]);
            assert_eq!(small[4..], [u64::MAX, u64::MAX], "nothing past size");
            // A newer caller with a larger struct: told how much was filled.
            let mut big = [0u64; 40];
            big[0] = 40 * 8;
            assert_eq!(
                code(dp_exporter_health(ex, big.as_mut_ptr().cast())),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(big[0], std::mem::size_of::<dp_health>() as u64);
            let mut tiny = dp_health::default();
            assert_eq!(
                code(dp_exporter_health(ex, &mut tiny)),
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                code(crate::stats::dp_exporter_shutdown(ex, 100)),
                dp_status::DP_STATUS_TIMEOUT,
                "nothing listens on port 1"
            );
            crate::exporter::dp_exporter_free(ex);
        }
    }
}
