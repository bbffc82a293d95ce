//! The standalone normalization functions: the agent's rules for one service, operation name or
//! tag, and the names of the reasons normalization counts (`dp_exporter_normalize_count`).

use engine::normalize::{self, Reason};
use std::ffi::c_char;

use crate::error::{dp_error, FfiResult, OutParam};
use crate::slice::dp_str;
use crate::string::dp_string;

/// Why normalization fixed a span or dropped a chunk: one of the `DP_NORMALIZE_*` values (the
/// agent's `reason:` tags). Append-only: numbers are never reused.
pub type dp_normalize_reason = u32;
/// A chunk without spans (chunk dropped).
pub const DP_NORMALIZE_EMPTY_TRACE: dp_normalize_reason = 0;
/// A span with trace id 0 (chunk dropped).
pub const DP_NORMALIZE_TRACE_ID_ZERO: dp_normalize_reason = 1;
/// A span with span id 0 (chunk dropped).
pub const DP_NORMALIZE_SPAN_ID_ZERO: dp_normalize_reason = 2;
/// A span of another trace than the chunk's first span (chunk dropped).
pub const DP_NORMALIZE_FOREIGN_SPAN: dp_normalize_reason = 3;
/// Two spans of a chunk share a span id (counted, kept).
pub const DP_NORMALIZE_DUPLICATE_SPAN_ID: dp_normalize_reason = 4;
/// Empty service replaced by the fallback service.
pub const DP_NORMALIZE_SERVICE_EMPTY: dp_normalize_reason = 5;
/// Service longer than 100 bytes, truncated.
pub const DP_NORMALIZE_SERVICE_TRUNCATE: dp_normalize_reason = 6;
/// Unusable service replaced by the fallback service.
pub const DP_NORMALIZE_SERVICE_INVALID: dp_normalize_reason = 7;
/// `peer.service` longer than 100 bytes, truncated.
pub const DP_NORMALIZE_PEER_SERVICE_TRUNCATE: dp_normalize_reason = 8;
/// Unusable `peer.service` replaced with "".
pub const DP_NORMALIZE_PEER_SERVICE_INVALID: dp_normalize_reason = 9;
/// `_dd.base_service` longer than 100 bytes, truncated.
pub const DP_NORMALIZE_BASE_SERVICE_TRUNCATE: dp_normalize_reason = 10;
/// Unusable `_dd.base_service` replaced with "".
pub const DP_NORMALIZE_BASE_SERVICE_INVALID: dp_normalize_reason = 11;
/// Empty operation name replaced by `unnamed_operation`.
pub const DP_NORMALIZE_SPAN_NAME_EMPTY: dp_normalize_reason = 12;
/// Operation name longer than 100 bytes, truncated.
pub const DP_NORMALIZE_SPAN_NAME_TRUNCATE: dp_normalize_reason = 13;
/// Unusable operation name replaced by `unnamed_operation`.
pub const DP_NORMALIZE_SPAN_NAME_INVALID: dp_normalize_reason = 14;
/// Empty resource replaced by the operation name.
pub const DP_NORMALIZE_RESOURCE_EMPTY: dp_normalize_reason = 15;
/// Span type longer than 100 bytes, truncated.
pub const DP_NORMALIZE_TYPE_TRUNCATE: dp_normalize_reason = 16;
/// Start before 2000-01-01, replaced by now - duration.
pub const DP_NORMALIZE_INVALID_START_DATE: dp_normalize_reason = 17;
/// Negative or overflowing duration, replaced by 0.
pub const DP_NORMALIZE_INVALID_DURATION: dp_normalize_reason = 18;
/// `http.status_code` outside 100..=599, removed.
pub const DP_NORMALIZE_INVALID_HTTP_STATUS_CODE: dp_normalize_reason = 19;

/// The engine's reason for a C number, if it is one.
pub(crate) fn reason_from_c(reason: dp_normalize_reason) -> Option<Reason> {
    Reason::ALL.get(reason as usize).copied()
}

/// The agent's name of a reason (`"service_empty"`, the value of its `reason:` tag), or `""` for a
/// number this library does not know. Static text, never NULL, never freed.
#[no_mangle]
pub extern "C" fn dp_normalize_reason_name(reason: dp_normalize_reason) -> *const c_char {
    boundary! {
        match reason_from_c(reason) {
            // The names are ASCII without NUL; `c_name` keeps them NUL-terminated.
            Some(r) => c_name(r).as_ptr(),
            None => c"".as_ptr(),
        }
    }
}

fn c_name(r: Reason) -> &'static std::ffi::CStr {
    match r {
        Reason::EmptyTrace => c"empty_trace",
        Reason::TraceIdZero => c"trace_id_zero",
        Reason::SpanIdZero => c"span_id_zero",
        Reason::ForeignSpan => c"foreign_span",
        Reason::DuplicateSpanId => c"duplicate_span_id",
        Reason::ServiceEmpty => c"service_empty",
        Reason::ServiceTruncate => c"service_truncate",
        Reason::ServiceInvalid => c"service_invalid",
        Reason::PeerServiceTruncate => c"peer_service_truncate",
        Reason::PeerServiceInvalid => c"peer_service_invalid",
        Reason::BaseServiceTruncate => c"base_service_truncate",
        Reason::BaseServiceInvalid => c"base_service_invalid",
        Reason::SpanNameEmpty => c"span_name_empty",
        Reason::SpanNameTruncate => c"span_name_truncate",
        Reason::SpanNameInvalid => c"span_name_invalid",
        Reason::ResourceEmpty => c"resource_empty",
        Reason::TypeTruncate => c"type_truncate",
        Reason::InvalidStartDate => c"invalid_start_date",
        Reason::InvalidDuration => c"invalid_duration",
        Reason::InvalidHttpStatusCode => c"invalid_http_status_code",
    }
}

unsafe fn transform(
    input: dp_str,
    arg: &str,
    out: *mut *mut dp_string,
    f: impl FnOnce(&str) -> String,
) -> FfiResult {
    // SAFETY: forwarded contract.
    let input = unsafe { input.as_str(arg) }?;
    let out = OutParam::new(out, "out")?;
    dp_string::write(out, f(input))
}

/// Normalizes a service name as the agent does: at most 100 bytes, normalized as a tag value; an
/// empty or unusable one becomes the fallback the agent uses, `unnamed-<lang>-service` (or
/// `unnamed-service` when `lang` is empty).
///
/// # Safety
/// `service` and `lang` are valid views; `out` is valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_normalize_service(
    service: dp_str,
    lang: dp_str,
    out: *mut *mut dp_string,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let lang = unsafe { lang.as_str("lang") }?;
        // SAFETY: forwarded contract.
        unsafe { transform(service, "service", out, |s| normalize::normalize_service(s, lang).0.into_owned()) }
    }
}

/// Normalizes an operation name as the agent does: at most 100 bytes, metric-name form
/// (`[a-zA-Z][a-zA-Z0-9_.]*`); an empty or unusable one becomes `unnamed_operation`.
///
/// # Safety
/// `name` is a valid view; `out` is valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_normalize_name(
    name: dp_str,
    out: *mut *mut dp_string,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe { transform(name, "name", out, |n| normalize::normalize_name(n).0.into_owned()) }
    }
}

/// Normalizes a `key:value` tag as the agent does: lower case, leading non-letters trimmed, runs of
/// invalid characters replaced with `_`, at most 200 characters.
///
/// # Safety
/// `tag` is a valid view; `out` is valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_normalize_tag(tag: dp_str, out: *mut *mut dp_string) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe { transform(tag, "tag", out, |t| normalize::normalize_tag(t).into_owned()) }
    }
}

/// Normalizes a tag value alone (as for `env`): like `dp_normalize_tag`, but the value may start
/// with any character.
///
/// # Safety
/// `value` is a valid view; `out` is valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_normalize_tag_value(
    value: dp_str,
    out: *mut *mut dp_string,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe { transform(value, "value", out, |v| normalize::normalize_tag_value(v).into_owned()) }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::error::{dp_status, take_status as status};
    use crate::string::{dp_string_free, dp_string_view};
    use std::ffi::CStr;

    fn text(s: *mut dp_string) -> String {
        unsafe {
            let v = dp_string_view(s);
            let t =
                String::from_utf8(std::slice::from_raw_parts(v.ptr.cast::<u8>(), v.len).to_vec())
                    .unwrap();
            dp_string_free(s);
            t
        }
    }

    #[test]
    fn service_name_tag() {
        let mut out = std::ptr::null_mut();
        unsafe {
            assert!(dp_normalize_service(dp_str::of(""), dp_str::of("python"), &mut out).is_null());
            assert_eq!(text(out), "unnamed-python-service");
            assert!(
                dp_normalize_service(dp_str::of("My Service!"), dp_str::EMPTY, &mut out).is_null()
            );
            assert_eq!(text(out), "my_service");
            assert!(dp_normalize_name(dp_str::of("other:ops"), &mut out).is_null());
            assert_eq!(text(out), "other_ops");
            assert!(dp_normalize_name(dp_str::of(""), &mut out).is_null());
            assert_eq!(text(out), "unnamed_operation");
            assert!(dp_normalize_tag(dp_str::of("#Key:Value"), &mut out).is_null());
            assert_eq!(text(out), "key:value");
            assert!(dp_normalize_tag_value(dp_str::of("1.2.3"), &mut out).is_null());
            assert_eq!(text(out), "1.2.3");
            let bad = dp_str {
                ptr: b"\xc3".as_ptr().cast(),
                len: 1,
            };
            assert_eq!(
                status(dp_normalize_tag(bad, &mut out)),
                dp_status::DP_STATUS_INVALID_UTF8
            );
            assert_eq!(
                status(dp_normalize_name(dp_str::of("a"), std::ptr::null_mut())),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
        }
    }

    #[test]
    fn reason_names_are_the_engines() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            let name = unsafe { CStr::from_ptr(dp_normalize_reason_name(i as u32)) };
            assert_eq!(name.to_str().unwrap(), r.as_str());
            assert_eq!(reason_from_c(i as u32), Some(*r));
        }
        let unknown = unsafe { CStr::from_ptr(dp_normalize_reason_name(999)) };
        assert!(unknown.to_bytes().is_empty());
        assert_eq!(
            DP_NORMALIZE_INVALID_HTTP_STATUS_CODE as usize,
            Reason::ALL.len() - 1
        );
    }
}
