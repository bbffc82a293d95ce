//! Background exporters: sustained throughput into the loopback sink, ours (`Exporter::enqueue*`
//! then `Exporter::flush`) vs libdatadog's `TraceBuffer` (`send_chunk` then `flush_and_wait`, its
//! worker exporting through `DefaultExport`, i.e. `TraceExporter::send_trace_chunks_async`).
//!
//! One iteration hands every trace of the payload to the buffer **one trace chunk per call** (as
//! a tracer does when a trace finishes), then waits until the sink has acknowledged all of them.
//! Both sides are configured alike: flush at 1 MB (ours `batch_max_bytes`, theirs
//! `flush_threshold_bytes`), 1 s max delay, a 64 MB cap (nothing may be dropped: a drop fails the
//! iteration), output v0.4, stats off, runtime/worker started at setup.
//!
//! Groups:
//! - `background_v04`: the input is v0.4 bytes, one small payload per trace (split at setup).
//!   Ours: `enqueue(&bytes)` (copied into the queue, merged without decoding). Theirs: its buffer
//!   only takes typed spans, so each trace is decoded with `msgpack_decoder::v04::from_bytes`
//!   (zero-copy strings) and handed to `send_chunk`.
//! - `background_spans`: the input is spans in memory, each side with its own model, decoded at
//!   setup. Every iteration clones each trace (a tracer builds its spans; both sides pay their
//!   own model's clone) and hands it over: ours `enqueue_traces(&[trace])` (encoded into the
//!   queue by the caller, the clone dropped after the call), theirs `send_chunk(trace)` (moved,
//!   encoded and dropped by its worker).
//!
//! Fairness: batching differs, so the sink check compares traces delivered (from the bodies and
//! the `X-Datadog-Trace-Count` headers), not requests (see `batched` and `main.rs`).

use super::{Done, Group, Input, Iter};
use crate::payloads::{Shape, Wire};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Flush threshold of both buffers.
const BATCH_BYTES: usize = 1_000_000;
/// Memory cap of both buffers: far above one payload, so nothing is dropped.
const CAP_BYTES: usize = 64_000_000;
/// Longest delay before an automatic flush (both sides).
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Bound of one iteration's final flush.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a group batches: the sink then gets fewer requests than iterations, and the harness
/// checks traces delivered instead of requests.
pub fn batched(group: &str) -> bool {
    GROUPS.iter().any(|g| g.name == group)
}

fn ours_exporter(url: &str) -> Result<data_pipeline::exporter::Exporter, String> {
    use data_pipeline::format::Format;
    crate::ours::exporter_builder(url, Format::V04)
        .batch_max_bytes(BATCH_BYTES)
        .batch_max_delay(MAX_DELAY)
        .queue_max_bytes(CAP_BYTES)
        .build()
        .map_err(|e| e.to_string())
}

/// Splits a v0.4 payload into one v0.4 payload per trace (setup only).
fn split_v04(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use data_pipeline::format::Format;
    let traces = data_pipeline::decode::decode(Format::V04, data).map_err(|e| e.to_string())?;
    traces
        .iter()
        .map(|t| {
            data_pipeline::encode::encode_to_vec(Format::V04, std::slice::from_ref(t))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Ours: `flush` after the iteration's enqueues, and check that nothing was dropped.
fn ours_finish(
    ex: &data_pipeline::exporter::Exporter,
    traces: usize,
    spans: usize,
) -> Result<Done, String> {
    ex.flush(FLUSH_TIMEOUT).map_err(|e| e.to_string())?;
    let h = ex.health();
    if h.dropped.total() != 0 {
        return Err(format!("ours dropped traces: {:?}", h.dropped));
    }
    Ok(Done {
        traces,
        spans,
        out_bytes: 0,
    })
}

/// data-pipeline: `Exporter::enqueue` of each trace's v0.4 bytes, then `flush`.
pub fn ours_background_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    let url = input.sink_url.ok_or("background cases need a sink")?;
    let ex = ours_exporter(url)?;
    let parts = split_v04(input.data)?;
    if parts.len() != input.traces {
        return Err(format!("split into {} traces", parts.len()));
    }
    let (traces, spans) = (input.traces, input.spans);
    Ok(Box::new(move || {
        for p in &parts {
            ex.enqueue(p).map_err(|e| e.to_string())?;
        }
        ours_finish(&ex, traces, spans)
    }))
}

/// data-pipeline: a clone of each trace (borrowed strings, as decoded from the payload) through
/// `Exporter::enqueue_traces`, then `flush`.
pub fn ours_background_spans<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    use data_pipeline::format::Format;
    let url = input.sink_url.ok_or("background cases need a sink")?;
    let ex = ours_exporter(url)?;
    let chunks =
        data_pipeline::decode::decode(Format::V04, input.data).map_err(|e| e.to_string())?;
    let (traces, spans) = (input.traces, input.spans);
    Ok(Box::new(move || {
        for t in &chunks {
            let mine = t.clone();
            ex.enqueue_traces(std::slice::from_ref(&mine))
                .map_err(|e| e.to_string())?;
        }
        ours_finish(&ex, traces, spans)
    }))
}

mod theirs_side {
    use super::*;
    use libdd_capabilities_impl::NativeCapabilities;
    use libdd_data_pipeline::trace_buffer::{
        DefaultExport, TraceBuffer, TraceBufferConfig, TraceBufferError,
    };
    use libdd_data_pipeline::trace_exporter::TraceExporterOutputFormat;
    use libdd_shared_runtime::{ForkSafeRuntime, SharedRuntime, WorkerHandle};
    use libdd_trace_utils::span::v04::SpanBytes;

    /// A running `TraceBuffer` with its runtime, and the count of failed exports.
    pub struct Buffer {
        pub buf: TraceBuffer<SpanBytes>,
        pub failed: Arc<AtomicU64>,
        _worker: WorkerHandle,
        // Dropped last: the worker runs on it.
        _rt: Arc<ForkSafeRuntime>,
    }

    pub fn start(url: &str) -> Result<Buffer, String> {
        let rt = Arc::new(ForkSafeRuntime::new().map_err(|e| format!("{e:?}"))?);
        let mut b = crate::theirs::exporter_builder(url, TraceExporterOutputFormat::V04);
        b.set_shared_runtime(rt.clone());
        let ex = b.build::<NativeCapabilities>().map_err(|e| e.to_string())?;
        let cfg = TraceBufferConfig::new()
            .flush_threshold_bytes(BATCH_BYTES)
            .max_buffered_bytes(CAP_BYTES)
            .max_flush_interval(MAX_DELAY);
        let failed = Arc::new(AtomicU64::new(0));
        let f = failed.clone();
        let (buf, worker) = TraceBuffer::new(
            cfg,
            Box::new(move |r| {
                if r.is_err() {
                    f.fetch_add(1, Ordering::Relaxed);
                }
            }),
            Box::new(DefaultExport::new(ex, None)),
        );
        let worker = rt
            .spawn_worker(worker, true)
            .map_err(|e| format!("{e:?}"))?;
        Ok(Buffer {
            buf,
            failed,
            _worker: worker,
            _rt: rt,
        })
    }

    pub fn send(b: &Buffer, chunk: Vec<SpanBytes>) -> Result<(), String> {
        b.buf
            .send_chunk(chunk)
            .map_err(|e: TraceBufferError| format!("send_chunk: {e:?}"))
    }

    pub fn finish(b: &Buffer, traces: usize, spans: usize) -> Result<Done, String> {
        b.buf
            .flush_and_wait(Some(FLUSH_TIMEOUT))
            .map_err(|e| format!("flush_and_wait: {e:?}"))?;
        let failed = b.failed.load(Ordering::Relaxed);
        if failed != 0 {
            return Err(format!("theirs: {failed} failed exports"));
        }
        Ok(Done {
            traces,
            spans,
            out_bytes: 0,
        })
    }
}

/// libdatadog: each trace's v0.4 bytes decoded (`msgpack_decoder::v04::from_bytes`) and handed to
/// `TraceBuffer::send_chunk`, then `flush_and_wait`.
pub fn theirs_background_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    use libdd_trace_utils::msgpack_decoder;
    let url = input.sink_url.ok_or("background cases need a sink")?;
    let b = theirs_side::start(url)?;
    let parts: Vec<libdd_tinybytes::Bytes> = split_v04(input.data)?
        .into_iter()
        .map(libdd_tinybytes::Bytes::from)
        .collect();
    if parts.len() != input.traces {
        return Err(format!("split into {} traces", parts.len()));
    }
    let (traces, spans) = (input.traces, input.spans);
    Ok(Box::new(move || {
        for p in &parts {
            let (chunks, _) = msgpack_decoder::v04::from_bytes(p.clone())
                .map_err(|e| format!("decode: {e:?}"))?;
            for chunk in chunks {
                theirs_side::send(&b, chunk)?;
            }
        }
        theirs_side::finish(&b, traces, spans)
    }))
}

/// libdatadog: a clone of each trace (`SpanBytes`, decoded from the payload at setup) moved into
/// `TraceBuffer::send_chunk`, then `flush_and_wait`.
pub fn theirs_background_spans<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    use libdd_trace_utils::msgpack_decoder;
    let url = input.sink_url.ok_or("background cases need a sink")?;
    let b = theirs_side::start(url)?;
    let (chunks, _) =
        msgpack_decoder::v04::from_bytes(libdd_tinybytes::Bytes::from(input.data.to_vec()))
            .map_err(|e| format!("decode: {e:?}"))?;
    let (traces, spans) = (input.traces, input.spans);
    Ok(Box::new(move || {
        for t in &chunks {
            theirs_side::send(&b, t.clone())?;
        }
        theirs_side::finish(&b, traces, spans)
    }))
}

/// The background groups, registered in `cases::groups()`.
pub const GROUPS: &[Group] = &[
    Group {
        name: "background_v04",
        what: "background exporter: one v0.4 payload per trace enqueued, then flush, delivered as v0.4 to the loopback sink (theirs decodes each trace for TraceBuffer::send_chunk)",
        shapes: &[Shape::Realistic, Shape::Tiny],
        wire: Wire::V04,
        needs_sink: true,
        ours: Some(ours_background_v04),
        theirs: theirs_background_v04,
        target: Some(1.5),
    },
    Group {
        name: "background_spans",
        what: "background exporter: a clone of each in-memory trace enqueued (ours enqueue_traces, theirs TraceBuffer::send_chunk), then flush, delivered as v0.4 to the loopback sink",
        shapes: &[Shape::Realistic, Shape::Tiny],
        wire: Wire::V04,
        needs_sink: true,
        ours: Some(ours_background_spans),
        theirs: theirs_background_spans,
        target: Some(1.5),
    },
];
