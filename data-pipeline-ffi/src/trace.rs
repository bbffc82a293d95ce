//! `dp_trace`: a trace chunk (spans of one trace sent together), built from `dp_span`s.

use engine::Trace;

use crate::error::{arg_mut, arg_take, dp_error, free_box};
use crate::span::dp_span;

/// A trace chunk: the spans of one trace that are sent together. Create with `dp_trace_new`, fill with
/// `dp_trace_push_span`, send with `dp_exporter_send_traces` (which only borrows it), free with
/// `dp_trace_free`.
///
/// Movable between threads (Send); not for concurrent mutation. Several threads may send the same
/// trace at once (sending only reads it), as long as none modifies or frees it meanwhile (Sync).
pub struct dp_trace {
    pub(crate) spans: Trace<'static>,
}

const _: () = {
    crate::assert_thread::send::<dp_trace>();
    crate::assert_thread::sync::<dp_trace>();
};

/// A new empty trace chunk. Never NULL unless the library panicked. Free with `dp_trace_free`.
#[no_mangle]
pub extern "C" fn dp_trace_new() -> *mut dp_trace {
    boundary! {
        Box::into_raw(Box::new(dp_trace { spans: Trace::new() }))
    }
}

/// Moves `span` to the end of the chunk. Always consumes `span`, also on error (e.g. `trace` NULL):
/// do not use or free it afterwards.
///
/// # Safety
/// `trace` is NULL or a live trace; `span` is NULL or a live span that the caller gives up.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_trace_push_span(
    trace: *mut dp_trace,
    span: *mut dp_span,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract; the span is taken first so it is consumed on every path.
        let span = unsafe { arg_take(span, "span") };
        // SAFETY: forwarded contract.
        let trace = unsafe { arg_mut(trace, "trace") }?;
        trace.spans.push(span?.span);
        Ok(())
    }
}

/// The number of spans in the chunk; 0 when `trace` is NULL.
///
/// # Safety
/// `trace` is NULL or a live trace.
#[no_mangle]
pub unsafe extern "C" fn dp_trace_len(trace: *const dp_trace) -> usize {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe { trace.as_ref() }.map_or(0, |t| t.spans.len())
    }
}

/// Frees a trace chunk and its spans. NULL is a no-op.
///
/// # Safety
/// `trace` is NULL or a trace from `dp_trace_new` that was not freed.
#[no_mangle]
pub unsafe extern "C" fn dp_trace_free(trace: *mut dp_trace) {
    boundary! {
        // SAFETY: by contract NULL or a live trace given up by the caller.
        unsafe { free_box(trace) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::dp_status;
    use crate::slice::{dp_bytes, dp_str};
    use crate::span::*;
    use engine::span::{AttributeScalar, AttributeValue};

    fn ok(err: *mut dp_error) {
        assert_eq!(status(err), dp_status::DP_STATUS_OK);
    }

    use crate::error::take_status as status;

    fn s(text: &str) -> dp_str {
        dp_str::of(text)
    }

    #[test]
    fn builds_a_full_span_into_a_trace() {
        unsafe {
            let span = dp_span_new();
            ok(dp_span_set_service(span, s("web")));
            ok(dp_span_set_name(span, s("http.request")));
            ok(dp_span_set_resource(span, s("GET /users")));
            ok(dp_span_set_type(span, s("web")));
            ok(dp_span_set_trace_id(span, 0xabcd, 42));
            ok(dp_span_set_span_id(span, 7));
            ok(dp_span_set_parent_id(span, 3));
            ok(dp_span_set_start(span, 1_700_000_000_000_000_000));
            ok(dp_span_set_duration(span, 1500));
            ok(dp_span_set_error(span, 1));
            ok(dp_span_set_meta(span, s("env"), s("prod")));
            ok(dp_span_set_meta(span, s("env"), s("staging")));
            ok(dp_span_set_metric(span, s("_sampling_priority_v1"), 1.0));
            ok(dp_span_set_meta_struct(
                span,
                s("ms"),
                dp_bytes::from_slice(&[0x80]),
            ));

            let link = dp_span_link_new(1, 2, 3);
            ok(dp_span_link_set_tracestate(link, s("dd=s:1")));
            ok(dp_span_link_set_flags(link, 1));
            ok(dp_span_link_set_attribute(link, s("k"), s("v")));
            ok(dp_span_add_link(span, link));

            let event = dp_span_event_new(99);
            ok(dp_span_event_set_name(event, s("exception")));
            ok(dp_span_event_set_attribute_string(event, s("a"), s("x")));
            ok(dp_span_event_set_attribute_bool(event, s("b"), true));
            ok(dp_span_event_set_attribute_int(event, s("c"), -5));
            ok(dp_span_event_set_attribute_double(event, s("d"), 0.5));
            let strs = [s("p"), s("q")];
            ok(dp_span_event_set_attribute_string_array(
                event,
                s("e"),
                strs.as_ptr(),
                2,
            ));
            ok(dp_span_event_set_attribute_bool_array(
                event,
                s("f"),
                [true, false].as_ptr(),
                2,
            ));
            ok(dp_span_event_set_attribute_int_array(
                event,
                s("g"),
                [1i64].as_ptr(),
                1,
            ));
            ok(dp_span_event_set_attribute_double_array(
                event,
                s("h"),
                std::ptr::null(),
                0,
            ));
            ok(dp_span_add_event(span, event));

            let trace = dp_trace_new();
            ok(dp_trace_push_span(trace, span));
            ok(dp_trace_push_span(trace, dp_span_new()));
            assert_eq!(dp_trace_len(trace), 2);

            let sp = &(&(*trace).spans)[0];
            assert_eq!(sp.service, "web");
            assert_eq!(sp.name, "http.request");
            assert_eq!(sp.resource, "GET /users");
            assert_eq!(sp.r#type, "web");
            assert_eq!(sp.trace_id_128(), (0xabcdu128 << 64) | 42);
            assert_eq!(
                (sp.span_id, sp.parent_id, sp.duration, sp.error),
                (7, 3, 1500, 1)
            );
            assert_eq!(sp.start, 1_700_000_000_000_000_000);
            assert_eq!(sp.meta.get("env").map(|v| v.as_ref()), Some("staging"));
            assert_eq!(sp.sampling_priority(), Some(1.0));
            assert_eq!(
                sp.meta_struct.get("ms").map(|v| v.as_ref()),
                Some(&[0x80u8][..])
            );
            let l = &sp.span_links[0];
            assert_eq!(
                (l.trace_id_high, l.trace_id, l.span_id, l.flags),
                (1, 2, 3, 0x8000_0001)
            );
            assert_eq!(l.tracestate, "dd=s:1");
            assert_eq!(l.attributes.get("k").map(|v| v.as_ref()), Some("v"));
            let e = &sp.span_events[0];
            assert_eq!((e.time_unix_nano, e.name.as_ref()), (99, "exception"));
            assert_eq!(e.attributes.len(), 8);
            assert_eq!(
                e.attributes.get("e"),
                Some(&AttributeValue::Array(vec![
                    AttributeScalar::String("p".into()),
                    AttributeScalar::String("q".into())
                ]))
            );
            assert_eq!(e.attributes.get("h"), Some(&AttributeValue::Array(vec![])));
            dp_trace_free(trace);
        }
    }

    #[test]
    fn null_arguments_and_bad_utf8_are_errors_not_crashes() {
        unsafe {
            let null_span: *mut dp_span = std::ptr::null_mut();
            assert_eq!(
                status(dp_span_set_service(null_span, s("x"))),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                status(dp_span_set_span_id(null_span, 1)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            let span = dp_span_new();
            let bad = dp_str {
                ptr: b"\xff\xfe".as_ptr().cast(),
                len: 2,
            };
            assert_eq!(
                status(dp_span_set_name(span, bad)),
                dp_status::DP_STATUS_INVALID_UTF8
            );
            assert_eq!(
                status(dp_span_set_meta(span, s("k"), bad)),
                dp_status::DP_STATUS_INVALID_UTF8
            );
            // A failed setter leaves the span unchanged.
            let sp: &dp_span = &*span;
            assert!(sp.span.meta.is_empty());
            let null_len = dp_str {
                ptr: std::ptr::null(),
                len: 1,
            };
            assert_eq!(
                status(dp_span_set_resource(span, null_len)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            ok(dp_span_set_resource(span, dp_str::EMPTY));
            let event = dp_span_event_new(0);
            assert_eq!(
                status(dp_span_event_set_attribute_int_array(
                    event,
                    s("k"),
                    std::ptr::null(),
                    1
                )),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            dp_span_event_free(event);
            let trace: *mut dp_trace = std::ptr::null_mut();
            assert_eq!(
                status(dp_trace_push_span(trace, span)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            // `span` was consumed by the failed push: nothing to free. Same for links and events.
            let link = dp_span_link_new(0, 1, 2);
            assert_eq!(
                status(dp_span_add_link(null_span, link)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            let event = dp_span_event_new(0);
            assert_eq!(
                status(dp_span_add_event(null_span, event)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            let trace = dp_trace_new();
            assert_eq!(
                status(dp_trace_push_span(trace, std::ptr::null_mut())),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(dp_trace_len(trace), 0);
            dp_trace_free(trace);
            assert_eq!(dp_trace_len(std::ptr::null()), 0);
            dp_span_free(std::ptr::null_mut());
            dp_span_link_free(std::ptr::null_mut());
            dp_span_event_free(std::ptr::null_mut());
            dp_trace_free(std::ptr::null_mut());
        }
    }
}
