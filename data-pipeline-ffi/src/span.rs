//! Building spans through the API, for tracers that have no msgpack encoder of their own.
//!
//! `dp_span` owns a `data_pipeline::Span<'static>`: every string and byte string given to a setter is
//! copied. Links and events are built as their own handles (`dp_span_link`, `dp_span_event`) and then
//! moved into a span. Spans are moved into trace chunks (`dp_trace`, see `trace.rs`), which are sent.
//!
//! Thread-safety of all three handles: movable between threads (Send), not for concurrent use: one
//! thread at a time may call functions on a given handle.

use std::borrow::Cow;

use engine::span::{AttributeScalar, AttributeValue, Span, SpanEvent, SpanLink, Str};

use crate::error::{arg_mut, arg_take, dp_error, free_box, FfiResult};
use crate::slice::{dp_bytes, dp_str};

/// A span under construction. Create with `dp_span_new`; give it to a trace with `dp_trace_push_span`
/// (which consumes it) or free it with `dp_span_free`.
///
/// Movable between threads; not for concurrent use.
pub struct dp_span {
    pub(crate) span: Span<'static>,
}

/// A span link under construction: `dp_span_link_new`, setters, then `dp_span_add_link` (consumes it)
/// or `dp_span_link_free`.
///
/// Movable between threads; not for concurrent use.
pub struct dp_span_link {
    link: SpanLink<'static>,
}

/// A span event under construction: `dp_span_event_new`, setters, then `dp_span_add_event` (consumes
/// it) or `dp_span_event_free`.
///
/// Movable between threads; not for concurrent use.
pub struct dp_span_event {
    event: SpanEvent<'static>,
}

const _: () = {
    crate::assert_thread::send::<dp_span>();
    crate::assert_thread::send::<dp_span_link>();
    crate::assert_thread::send::<dp_span_event>();
};

/// Runs `f` on the span behind `span`, after checking it is not NULL.
unsafe fn with_span(
    span: *mut dp_span,
    f: impl FnOnce(&mut Span<'static>) -> FfiResult,
) -> FfiResult {
    // SAFETY: forwarded contract (NULL or a live span used by this call alone).
    f(&mut unsafe { arg_mut(span, "span") }?.span)
}

/// Copies a string argument.
unsafe fn owned(s: dp_str, arg: &str) -> FfiResult<Str<'static>> {
    // SAFETY: forwarded contract (a valid view for the call).
    Ok(Str::owned(unsafe { s.to_string(arg) }?))
}

// ---------------------------------------------------------------------------------------------------
// dp_span

/// A new empty span (all ids and times 0, strings empty). Never NULL unless the library panicked.
/// Free with `dp_span_free` unless given to `dp_trace_push_span`.
#[no_mangle]
pub extern "C" fn dp_span_new() -> *mut dp_span {
    boundary! {
        Box::into_raw(Box::new(dp_span { span: Span::default() }))
    }
}

/// Frees a span. NULL is a no-op.
///
/// # Safety
/// `span` is NULL or a span from `dp_span_new` that was not consumed or freed.
#[no_mangle]
pub unsafe extern "C" fn dp_span_free(span: *mut dp_span) {
    boundary! {
        // SAFETY: by contract NULL or a live span given up by the caller.
        unsafe { free_box(span) }
    }
}

/// Sets the service name (copied).
///
/// # Safety
/// `span` is NULL or a live span; `service` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_service(span: *mut dp_span, service: dp_str) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_span(span, |s| { s.service = owned(service, "service")?; Ok(()) }) } }
}

/// Sets the operation name (copied).
///
/// # Safety
/// `span` is NULL or a live span; `name` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_name(span: *mut dp_span, name: dp_str) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_span(span, |s| { s.name = owned(name, "name")?; Ok(()) }) } }
}

/// Sets the resource (copied), e.g. the SQL query or the HTTP route.
///
/// # Safety
/// `span` is NULL or a live span; `resource` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_resource(
    span: *mut dp_span,
    resource: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_span(span, |s| { s.resource = owned(resource, "resource")?; Ok(()) }) } }
}

/// Sets the span type (copied): `web`, `sql`, `redis`, ...; empty means none.
///
/// # Safety
/// `span` is NULL or a live span; `type_` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_type(span: *mut dp_span, type_: dp_str) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_span(span, |s| { s.r#type = owned(type_, "type")?; Ok(()) }) } }
}

/// Sets the 128-bit trace id as two halves. For a 64-bit id pass `high` = 0.
///
/// The high half travels in meta `_dd.p.tid` (16 lowercase hex digits), as on the wire; `high` = 0
/// removes that tag.
///
/// # Safety
/// `span` is NULL or a live span.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_trace_id(
    span: *mut dp_span,
    high: u64,
    low: u64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            with_span(span, |s| {
                s.set_trace_id_128((u128::from(high) << 64) | u128::from(low));
                Ok(())
            })
        }
    }
}

/// Sets the span id.
///
/// # Safety
/// `span` is NULL or a live span.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_span_id(span: *mut dp_span, span_id: u64) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_span(span, |s| { s.span_id = span_id; Ok(()) }) } }
}

/// Sets the parent span id; 0 (the default) marks a root span.
///
/// # Safety
/// `span` is NULL or a live span.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_parent_id(
    span: *mut dp_span,
    parent_id: u64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_span(span, |s| { s.parent_id = parent_id; Ok(()) }) } }
}

/// Sets the start time, nanoseconds since the Unix epoch.
///
/// # Safety
/// `span` is NULL or a live span.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_start(
    span: *mut dp_span,
    start_unix_nano: i64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_span(span, |s| { s.start = start_unix_nano; Ok(()) }) } }
}

/// Sets the duration in nanoseconds.
///
/// # Safety
/// `span` is NULL or a live span.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_duration(
    span: *mut dp_span,
    duration_nano: i64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_span(span, |s| { s.duration = duration_nano; Ok(()) }) } }
}

/// Sets the error flag: non-zero marks the span as an error.
///
/// # Safety
/// `span` is NULL or a live span.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_error(span: *mut dp_span, error: i32) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_span(span, |s| { s.error = error; Ok(()) }) } }
}

/// Sets the string tag `key` to `value` (both copied), replacing an existing value.
///
/// # Safety
/// `span` is NULL or a live span; `key` and `value` are valid `dp_str`s.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_meta(
    span: *mut dp_span,
    key: dp_str,
    value: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            with_span(span, |s| {
                let (k, v) = (owned(key, "key")?, owned(value, "value")?);
                s.meta.insert(k, v);
                Ok(())
            })
        }
    }
}

/// Sets the numeric tag `key` (copied) to `value`, replacing an existing value.
///
/// # Safety
/// `span` is NULL or a live span; `key` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_metric(
    span: *mut dp_span,
    key: dp_str,
    value: f64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            with_span(span, |s| {
                s.metrics.insert(owned(key, "key")?, value);
                Ok(())
            })
        }
    }
}

/// Sets the structured tag `key` (copied) to `msgpack`, one msgpack document (copied; not validated:
/// the agent rejects what it cannot decode). Structured tags travel in v0.4 payloads only.
///
/// # Safety
/// `span` is NULL or a live span; `key` and `msgpack` are valid views.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_set_meta_struct(
    span: *mut dp_span,
    key: dp_str,
    msgpack: dp_bytes,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            with_span(span, |s| {
                let k = owned(key, "key")?;
                let v = msgpack.as_slice("msgpack")?.to_vec();
                s.meta_struct.insert(k, Cow::Owned(v));
                Ok(())
            })
        }
    }
}

/// Moves `link` into the span's links. Always consumes `link`, also on error (e.g. `span` NULL).
///
/// # Safety
/// `span` is NULL or a live span; `link` is NULL or a live link that the caller gives up.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_add_link(
    span: *mut dp_span,
    link: *mut dp_span_link,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract; the link is taken first so it is consumed on every path.
        let link = unsafe { arg_take(link, "link") };
        // SAFETY: forwarded contract.
        let span = unsafe { arg_mut(span, "span") }?;
        span.span.span_links.push(link?.link);
        Ok(())
    }
}

/// Moves `event` into the span's events. Always consumes `event`, also on error (e.g. `span` NULL).
///
/// # Safety
/// `span` is NULL or a live span; `event` is NULL or a live event that the caller gives up.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_add_event(
    span: *mut dp_span,
    event: *mut dp_span_event,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract; the event is taken first so it is consumed on every path.
        let event = unsafe { arg_take(event, "event") };
        // SAFETY: forwarded contract.
        let span = unsafe { arg_mut(span, "span") }?;
        span.span.span_events.push(event?.event);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------
// dp_span_link

/// A new link to the span `span_id` of the trace `trace_id_high:trace_id_low` (high = 0 for a 64-bit
/// trace id), with no attributes, empty tracestate and no flags. Never NULL unless the library panicked.
#[no_mangle]
pub extern "C" fn dp_span_link_new(
    trace_id_high: u64,
    trace_id_low: u64,
    span_id: u64,
) -> *mut dp_span_link {
    boundary! {
        Box::into_raw(Box::new(dp_span_link {
            link: SpanLink {
                trace_id: trace_id_low,
                trace_id_high,
                span_id,
                ..SpanLink::default()
            },
        }))
    }
}

/// Frees a link. NULL is a no-op.
///
/// # Safety
/// `link` is NULL or a link from `dp_span_link_new` that was not consumed or freed.
#[no_mangle]
pub unsafe extern "C" fn dp_span_link_free(link: *mut dp_span_link) {
    boundary! {
        // SAFETY: by contract NULL or a live link given up by the caller.
        unsafe { free_box(link) }
    }
}

/// Sets the W3C tracestate of the linked context (copied).
///
/// # Safety
/// `link` is NULL or a live link; `tracestate` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_link_set_tracestate(
    link: *mut dp_span_link,
    tracestate: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let link = unsafe { arg_mut(link, "link") }?;
        // SAFETY: forwarded contract.
        link.link.tracestate = unsafe { owned(tracestate, "tracestate") }?;
        Ok(())
    }
}

/// Sets the W3C trace flags of the linked context (e.g. 1 = sampled). The library marks them as set
/// (bit 31 on the wire), so flags 0 is distinguishable from "no flags".
///
/// # Safety
/// `link` is NULL or a live link.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_link_set_flags(
    link: *mut dp_span_link,
    flags: u8,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let link = unsafe { arg_mut(link, "link") }?;
        link.link.flags = u32::from(flags) | (1 << 31);
        Ok(())
    }
}

/// Sets the link attribute `key` to `value` (both copied), replacing an existing value.
///
/// # Safety
/// `link` is NULL or a live link; `key` and `value` are valid `dp_str`s.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_link_set_attribute(
    link: *mut dp_span_link,
    key: dp_str,
    value: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let link = unsafe { arg_mut(link, "link") }?;
        // SAFETY: forwarded contract.
        let (k, v) = unsafe { (owned(key, "key")?, owned(value, "value")?) };
        link.link.attributes.insert(k, v);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------
// dp_span_event

/// A new event at `time_unix_nano` (nanoseconds since the Unix epoch), with an empty name and no
/// attributes. Never NULL unless the library panicked.
#[no_mangle]
pub extern "C" fn dp_span_event_new(time_unix_nano: u64) -> *mut dp_span_event {
    boundary! {
        Box::into_raw(Box::new(dp_span_event {
            event: SpanEvent {
                time_unix_nano,
                ..SpanEvent::default()
            },
        }))
    }
}

/// Frees an event. NULL is a no-op.
///
/// # Safety
/// `event` is NULL or an event from `dp_span_event_new` that was not consumed or freed.
#[no_mangle]
pub unsafe extern "C" fn dp_span_event_free(event: *mut dp_span_event) {
    boundary! {
        // SAFETY: by contract NULL or a live event given up by the caller.
        unsafe { free_box(event) }
    }
}

/// Sets the event's name (copied).
///
/// # Safety
/// `event` is NULL or a live event; `name` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_event_set_name(
    event: *mut dp_span_event,
    name: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let event = unsafe { arg_mut(event, "event") }?;
        // SAFETY: forwarded contract.
        event.event.name = unsafe { owned(name, "name") }?;
        Ok(())
    }
}

/// Sets an attribute of `event`, copying the key.
unsafe fn set_attribute(
    event: *mut dp_span_event,
    key: dp_str,
    value: impl FnOnce() -> FfiResult<AttributeValue<'static>>,
) -> FfiResult {
    // SAFETY: forwarded contract.
    let event = unsafe { arg_mut(event, "event") }?;
    // SAFETY: forwarded contract.
    let key = unsafe { owned(key, "key") }?;
    event.event.attributes.insert(key, value()?);
    Ok(())
}

/// The `n` elements at `values` (NULL allowed when `n` is 0).
unsafe fn array<'a, T>(values: *const T, n: usize) -> FfiResult<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if values.is_null() {
        return Err(crate::error::FfiError::null_argument("values"));
    }
    if n.checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(crate::error::FfiError::invalid_argument(format!(
            "argument `n` is too large: {n}"
        )));
    }
    // SAFETY: non-NULL, size checked, readable per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(values, n) })
}

/// Sets the string attribute `key` to `value` (both copied), replacing an existing value.
///
/// # Safety
/// `event` is NULL or a live event; `key` and `value` are valid `dp_str`s.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_event_set_attribute_string(
    event: *mut dp_span_event,
    key: dp_str,
    value: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            set_attribute(event, key, || {
                Ok(AttributeValue::Scalar(AttributeScalar::String(owned(value, "value")?)))
            })
        }
    }
}

/// Sets the boolean attribute `key` (copied) to `value`.
///
/// # Safety
/// `event` is NULL or a live event; `key` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_event_set_attribute_bool(
    event: *mut dp_span_event,
    key: dp_str,
    value: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_attribute(event, key, || Ok(AttributeValue::Scalar(AttributeScalar::Bool(value)))) } }
}

/// Sets the integer attribute `key` (copied) to `value`.
///
/// # Safety
/// `event` is NULL or a live event; `key` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_event_set_attribute_int(
    event: *mut dp_span_event,
    key: dp_str,
    value: i64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_attribute(event, key, || Ok(AttributeValue::Scalar(AttributeScalar::Int(value)))) } }
}

/// Sets the floating-point attribute `key` (copied) to `value`.
///
/// # Safety
/// `event` is NULL or a live event; `key` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_event_set_attribute_double(
    event: *mut dp_span_event,
    key: dp_str,
    value: f64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_attribute(event, key, || Ok(AttributeValue::Scalar(AttributeScalar::Double(value)))) } }
}

/// Sets the attribute `key` to an array of `n` strings (all copied). `values` may be NULL when `n` is 0.
///
/// # Safety
/// `event` is NULL or a live event; `key` is a valid `dp_str`; `values` points to `n` valid `dp_str`s.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_event_set_attribute_string_array(
    event: *mut dp_span_event,
    key: dp_str,
    values: *const dp_str,
    n: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            set_attribute(event, key, || {
                let items = array(values, n)?
                    .iter()
                    .map(|v| owned(*v, "values[]").map(AttributeScalar::String))
                    .collect::<FfiResult<Vec<_>>>()?;
                Ok(AttributeValue::Array(items))
            })
        }
    }
}

/// Sets the attribute `key` to an array of `n` booleans (copied). `values` may be NULL when `n` is 0.
///
/// # Safety
/// `event` is NULL or a live event; `key` is a valid `dp_str`; `values` points to `n` booleans.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_event_set_attribute_bool_array(
    event: *mut dp_span_event,
    key: dp_str,
    values: *const bool,
    n: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            set_attribute(event, key, || {
                let items = array(values, n)?.iter().map(|v| AttributeScalar::Bool(*v)).collect();
                Ok(AttributeValue::Array(items))
            })
        }
    }
}

/// Sets the attribute `key` to an array of `n` integers (copied). `values` may be NULL when `n` is 0.
///
/// # Safety
/// `event` is NULL or a live event; `key` is a valid `dp_str`; `values` points to `n` integers.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_event_set_attribute_int_array(
    event: *mut dp_span_event,
    key: dp_str,
    values: *const i64,
    n: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            set_attribute(event, key, || {
                let items = array(values, n)?.iter().map(|v| AttributeScalar::Int(*v)).collect();
                Ok(AttributeValue::Array(items))
            })
        }
    }
}

/// Sets the attribute `key` to an array of `n` doubles (copied). `values` may be NULL when `n` is 0.
///
/// # Safety
/// `event` is NULL or a live event; `key` is a valid `dp_str`; `values` points to `n` doubles.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_span_event_set_attribute_double_array(
    event: *mut dp_span_event,
    key: dp_str,
    values: *const f64,
    n: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            set_attribute(event, key, || {
                let items = array(values, n)?.iter().map(|v| AttributeScalar::Double(*v)).collect();
                Ok(AttributeValue::Array(items))
            })
        }
    }
}
