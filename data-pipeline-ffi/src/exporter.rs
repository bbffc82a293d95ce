//! `dp_exporter`: sends trace payloads (msgpack bytes, or chunks built with the span API) to an agent.

use engine::exporter::Exporter;
use engine::span::{Map, Span, SpanLink, Str};
use engine::Trace;

use crate::error::{arg_ref, dp_error, free_box, FfiError, FfiResult, OutParam};
use crate::response::dp_response;
use crate::slice::dp_bytes;
use crate::trace::dp_trace;

/// Sends trace payloads to one agent. Create with `dp_exporter_builder_build`, free with
/// `dp_exporter_free`.
///
/// Thread-safe (Send + Sync): several threads may send through the same exporter at once;
/// connections are pooled. Sends are synchronous and bounded by the send timeout option. Free it only
/// once no other thread uses it.
pub struct dp_exporter {
    pub(crate) exporter: Exporter,
}

impl dp_exporter {
    /// The Rust exporter behind the handle (for Rust code that uses both APIs, e.g. benchmarks).
    pub fn as_exporter(&self) -> &Exporter {
        &self.exporter
    }
}

const _: () = {
    crate::assert_thread::send::<dp_exporter>();
    crate::assert_thread::sync::<dp_exporter>();
};

/// Frees an exporter and closes its connections. Does not wait for I/O. NULL is a no-op.
///
/// # Safety
/// `exporter` is NULL or a live exporter that no other thread is using, not freed before.
#[no_mangle]
pub unsafe extern "C" fn dp_exporter_free(exporter: *mut dp_exporter) {
    boundary! {
        // SAFETY: by contract NULL or a live exporter given up by the caller.
        unsafe { free_box(exporter) }
    }
}

fn respond(
    result: engine::Result<engine::exporter::AgentResponse>,
    out: OutParam<*mut dp_response>,
) -> FfiResult {
    let response = result?;
    let handle = Box::into_raw(Box::new(dp_response::new(response)));
    // SAFETY: `out` was checked non-NULL and is valid for writes by the caller's contract.
    unsafe { out.write(handle) };
    Ok(())
}

/// Sends one payload (a msgpack array of traces in the exporter's input format, v0.4 by default) and
/// waits for the agent's answer, bounded by the send timeout, with retries as configured.
///
/// `payload` is borrowed for the call only. On success `*out` receives the response (free it with
/// `dp_response_free`); on error `*out` is not written. Errors: `DP_STATUS_NETWORK`,
/// `DP_STATUS_TIMEOUT`, `DP_STATUS_HTTP` (with `dp_error_http_status`), `DP_STATUS_DECODE` (a payload
/// that is not a valid array of traces), `DP_STATUS_NULL_ARGUMENT`.
///
/// Thread-safe.
///
/// # Safety
/// `exporter` is NULL or a live exporter; `payload` is a valid view; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_send(
    exporter: *const dp_exporter,
    payload: dp_bytes,
    out: *mut *mut dp_response,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let exporter = unsafe { arg_ref(exporter, "exporter") }?;
        // SAFETY: forwarded contract.
        let payload = unsafe { payload.as_slice("payload") }?;
        let out = OutParam::new(out, "out")?;
        respond(exporter.exporter.send(payload), out)
    }
}

/// Encodes the `n` trace chunks `traces[0..n]` in the exporter's output format and sends them as one
/// payload; waits for the agent's answer like `dp_exporter_send`.
///
/// The chunks are only borrowed (not copied, not consumed): free them afterwards with
/// `dp_trace_free`, or keep them to send again. `traces` may be NULL when `n` is 0; a NULL element is
/// `DP_STATUS_NULL_ARGUMENT`. On success `*out` receives the response; on error it is not written.
///
/// Thread-safe, and the chunks may be sent by several threads at once.
///
/// # Safety
/// `exporter` is NULL or a live exporter; `traces` points to `n` pointers that are NULL or live
/// traces not modified during the call; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_send_traces(
    exporter: *const dp_exporter,
    traces: *const *const dp_trace,
    n: usize,
    out: *mut *mut dp_response,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let exporter = unsafe { arg_ref(exporter, "exporter") }?;
        let out = OutParam::new(out, "out")?;
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
        let mut views: Vec<Trace<'_>> = Vec::with_capacity(handles.len());
        for (i, t) in handles.iter().enumerate() {
            // SAFETY: each element is NULL or a live trace by contract.
            let trace = unsafe { arg_ref(*t, &format!("traces[{i}]")) }?;
            views.push(trace.spans.iter().map(view).collect());
        }
        respond(exporter.exporter.send_traces(&views), out)
    }
}

/// A span borrowing every string and byte string of `s` (the encoder only reads them).
fn view<'a>(s: &'a Span<'static>) -> Span<'a> {
    use std::borrow::Cow::Borrowed;
    fn map<'a, V: Clone, W>(m: &'a Map<'static, V>, f: impl Fn(&'a V) -> W) -> Map<'a, W> {
        m.iter().map(|(k, v)| (Str::borrowed(k), f(v))).collect()
    }
    Span {
        service: Str::borrowed(&s.service),
        name: Str::borrowed(&s.name),
        resource: Str::borrowed(&s.resource),
        r#type: Str::borrowed(&s.r#type),
        trace_id: s.trace_id,
        span_id: s.span_id,
        parent_id: s.parent_id,
        start: s.start,
        duration: s.duration,
        error: s.error,
        meta: map(&s.meta, |v| Str::borrowed(v)),
        metrics: map(&s.metrics, |v| *v),
        meta_struct: map(&s.meta_struct, |v| Borrowed(v.as_ref())),
        span_links: s
            .span_links
            .iter()
            .map(|l| SpanLink {
                trace_id: l.trace_id,
                trace_id_high: l.trace_id_high,
                span_id: l.span_id,
                attributes: map(&l.attributes, |v| Str::borrowed(v)),
                tracestate: Str::borrowed(&l.tracestate),
                flags: l.flags,
            })
            .collect(),
        // Events hold few, small attributes: a plain clone is simplest.
        span_events: s.span_events.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::span::SpanEvent;

    #[test]
    fn view_preserves_every_field() {
        let mut s = Span::<'static> {
            service: "svc".into(),
            name: "op".into(),
            resource: "res".into(),
            r#type: "web".into(),
            trace_id: 1,
            span_id: 2,
            parent_id: 3,
            start: 4,
            duration: 5,
            error: 1,
            ..Span::default()
        };
        s.meta.insert("k", "v".into());
        s.metrics.insert("m", 1.5);
        s.meta_struct.insert("ms", vec![0x80u8].into());
        s.span_links.push(SpanLink {
            trace_id: 9,
            tracestate: "ts".into(),
            ..SpanLink::default()
        });
        s.span_events.push(SpanEvent {
            time_unix_nano: 7,
            name: "e".into(),
            ..SpanEvent::default()
        });
        assert_eq!(view(&s), s);
    }
}
