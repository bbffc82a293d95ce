//! `dp_exporter_builder`: one setter per exporter option (`dp_exporter_builder_set_<option>` for each
//! name in `data_pipeline::exporter::ExporterBuilder::OPTIONS`; a test checks the header against that
//! list), then `dp_exporter_builder_build`, which always consumes the builder.

use std::time::Duration;

use engine::exporter::{ExporterBuilder, Format};

use crate::error::{arg_mut, arg_take, dp_error, free_box, FfiError, FfiResult, OutParam};
use crate::exporter::dp_exporter;
use crate::slice::dp_str;

/// A trace payload format: one of the `DP_FORMAT_*` values.
pub type dp_format = u32;
/// msgpack v0.4 (`/v0.4/traces`): an array of traces, each an array of span maps.
pub const DP_FORMAT_V04: dp_format = 4;
/// msgpack v0.5 (`/v0.5/traces`): a string table and traces of 12-element span arrays.
pub const DP_FORMAT_V05: dp_format = 5;

pub(crate) fn format_from_c(format: dp_format, arg: &str) -> FfiResult<Format> {
    match format {
        DP_FORMAT_V04 => Ok(Format::V04),
        DP_FORMAT_V05 => Ok(Format::V05),
        other => Err(FfiError::invalid_argument(format!(
            "argument `{arg}` is {other}; expected DP_FORMAT_V04 (4) or DP_FORMAT_V05 (5)"
        ))),
    }
}

/// Collects the options of an exporter. Create with `dp_exporter_builder_new`, set options, then
/// `dp_exporter_builder_build` (which always consumes it) or `dp_exporter_builder_free`.
///
/// Options are only validated by `dp_exporter_builder_build`. Every option has a default, so a
/// builder with no setter called gives an exporter for `http://localhost:8126`.
///
/// Movable between threads; not for concurrent use.
pub struct dp_exporter_builder {
    pub(crate) builder: ExporterBuilder,
}

const _: () = crate::assert_thread::send::<dp_exporter_builder>();

/// A new builder with every option at its default. Never NULL unless the library panicked.
#[no_mangle]
pub extern "C" fn dp_exporter_builder_new() -> *mut dp_exporter_builder {
    boundary! {
        Box::into_raw(Box::new(dp_exporter_builder { builder: ExporterBuilder::new() }))
    }
}

/// Frees a builder that was never given to `dp_exporter_builder_build`. NULL is a no-op.
///
/// # Safety
/// `builder` is NULL or a live builder that was not consumed or freed.
#[no_mangle]
pub unsafe extern "C" fn dp_exporter_builder_free(builder: *mut dp_exporter_builder) {
    boundary! {
        // SAFETY: by contract NULL or a live builder given up by the caller.
        unsafe { free_box(builder) }
    }
}

/// Validates the options and creates the exporter into `*out`.
///
/// Always consumes `builder`, also on error: do not use or free it afterwards. On error `*out` is not
/// written. Errors: `DP_STATUS_INVALID_ARGUMENT` (bad URL, zero timeout, a metadata value that cannot
/// be an HTTP header), `DP_STATUS_UNSUPPORTED`, `DP_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// `builder` is NULL or a live builder the caller gives up; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_build(
    builder: *mut dp_exporter_builder,
    out: *mut *mut dp_exporter,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract; taken first so it is consumed on every path.
        let builder = unsafe { arg_take(builder, "builder") };
        let out = OutParam::new(out, "out")?;
        crate::background::install_fork_notifier();
        let exporter = builder?.builder.build()?;
        let handle = Box::into_raw(Box::new(dp_exporter { exporter }));
        // SAFETY: checked non-NULL; valid for writes by contract.
        unsafe { out.write(handle) };
        Ok(())
    }
}

/// Runs `f` on the builder behind `builder`.
pub(crate) unsafe fn with_builder(
    builder: *mut dp_exporter_builder,
    f: impl FnOnce(&mut ExporterBuilder) -> FfiResult,
) -> FfiResult {
    // SAFETY: forwarded contract (NULL or a live builder used by this call alone).
    f(&mut unsafe { arg_mut(builder, "builder") }?.builder)
}

/// Sets a string option (copied).
pub(crate) unsafe fn set_str(
    builder: *mut dp_exporter_builder,
    value: dp_str,
    set: impl FnOnce(&mut ExporterBuilder, String),
) -> FfiResult {
    // SAFETY: forwarded contract.
    unsafe {
        with_builder(builder, |b| {
            set(b, value.to_string("value")?);
            Ok(())
        })
    }
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The agent address: `http://host:port` or `unix:///path/to/apm.socket` (copied; parsed by
/// `dp_exporter_builder_build`). Default `http://localhost:8126`. Replaces an earlier
/// `dp_exporter_builder_set_url_from_env(b, true)`.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_url(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.url(v); }) } }
}

/// When `enabled`, `dp_exporter_builder_build` takes the agent address from the environment
/// (`DD_TRACE_AGENT_URL`, else `DD_AGENT_HOST` + `DD_TRACE_AGENT_PORT`), replacing an earlier URL.
/// `false` undoes an earlier `true` (back to the default address); it does not undo an explicit URL.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_url_from_env(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.url_from_env(enabled); Ok(()) }) } }
}

/// The tracer's language, sent as `Datadog-Meta-Lang` (e.g. `cpp`). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_language(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.language(v); }) } }
}

/// The language version, sent as `Datadog-Meta-Lang-Version` (e.g. `17`). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_language_version(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.language_version(v); }) } }
}

/// The language interpreter, sent as `Datadog-Meta-Lang-Interpreter` (e.g. `gcc`). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_language_interpreter(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.language_interpreter(v); }) } }
}

/// The tracer's version, sent as `Datadog-Meta-Tracer-Version`. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_tracer_version(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.tracer_version(v); }) } }
}

/// The application's default service. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_service(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.service(v); }) } }
}

/// The application's environment (`env`). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_env(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.env(v); }) } }
}

/// The application's version. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_app_version(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.app_version(v); }) } }
}

/// The host name reported with client-side stats. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_hostname(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.hostname(v); }) } }
}

/// The container id, sent as `Datadog-Container-ID`; empty (the default) for none. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_container_id(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.container_id(v); }) } }
}

/// The format of the payloads given to `dp_exporter_send` (default `DP_FORMAT_V04`). Another value
/// than a `DP_FORMAT_*` is `DP_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_input_format(
    builder: *mut dp_exporter_builder,
    format: dp_format,
) -> *mut dp_error {
    boundary! {
        let format = format_from_c(format, "format")?;
        // SAFETY: forwarded contract.
        unsafe { with_builder(builder, |b| { b.input_format(format); Ok(()) }) }
    }
}

/// The format sent to the agent (default `DP_FORMAT_V04`). v0.5 is used only while the agent
/// supports it; otherwise the exporter falls back to v0.4 without losing the payload.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_output_format(
    builder: *mut dp_exporter_builder,
    format: dp_format,
) -> *mut dp_error {
    boundary! {
        let format = format_from_c(format, "format")?;
        // SAFETY: forwarded contract.
        unsafe { with_builder(builder, |b| { b.output_format(format); Ok(()) }) }
    }
}

/// Timeout of one connection attempt, in milliseconds (default 1000; 0 is rejected by build).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_connect_timeout(
    builder: *mut dp_exporter_builder,
    timeout_ms: u64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.connect_timeout(millis(timeout_ms)); Ok(()) }) } }
}

/// Timeout of one HTTP request including the response body, in milliseconds (default 3000; 0 is
/// rejected by build).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_request_timeout(
    builder: *mut dp_exporter_builder,
    timeout_ms: u64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.request_timeout(millis(timeout_ms)); Ok(()) }) } }
}

/// Bound on the total time of one send, retries and waits included, in milliseconds (default 5000;
/// 0 is rejected by build). No `dp_exporter_send` call takes longer.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_send_timeout(
    builder: *mut dp_exporter_builder,
    timeout_ms: u64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.send_timeout(millis(timeout_ms)); Ok(()) }) } }
}

/// Retries after the first attempt of a send (default 3; 0 = no retry). Only retryable failures are
/// retried (network errors, timeouts, 408, 429, 5xx).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_max_retries(
    builder: *mut dp_exporter_builder,
    max_retries: u32,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.max_retries(max_retries); Ok(()) }) } }
}

/// The Datadog test agent's session token, sent as `X-Datadog-Test-Session-Token`; empty (the
/// default) for none. For tests against the test agent. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_test_session_token(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.test_session_token(v); }) } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::dp_status;
    use crate::exporter::dp_exporter_free;

    use crate::error::take_status as status;

    /// The ABI has one setter per engine option: parse the committed header (what C users and every
    /// binding see) and compare with `ExporterBuilder::OPTIONS`. Fails when the engine gains an
    /// option the ABI lacks, or the header keeps a setter for an option that is gone.
    #[test]
    fn header_has_one_setter_per_engine_option() {
        let header = include_str!("../../include/data-pipeline.h");
        let prefix = "dp_exporter_builder_set_";
        let mut in_header: Vec<String> = header
            .lines()
            .filter(|l| !l.trim_start().starts_with('*') && !l.trim_start().starts_with("/*"))
            .filter_map(|l| {
                let start = l.find(prefix)? + prefix.len();
                let rest = &l[start..];
                let end = rest.find('(')?;
                Some(rest[..end].to_owned())
            })
            .collect();
        in_header.sort();
        in_header.dedup();
        let mut options: Vec<String> = ExporterBuilder::OPTIONS
            .iter()
            .map(|s| s.to_string())
            .collect();
        options.sort();
        assert_eq!(
            in_header, options,
            "setters in include/data-pipeline.h vs ExporterBuilder::OPTIONS"
        );
    }

    #[test]
    fn setters_validate_and_build_consumes_the_builder() {
        unsafe {
            let b = dp_exporter_builder_new();
            assert!(
                status(dp_exporter_builder_set_url(
                    b,
                    dp_str::of("http://127.0.0.1:9")
                )) == dp_status::DP_STATUS_OK
            );
            assert_eq!(
                status(dp_exporter_builder_set_output_format(b, 3)),
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                status(dp_exporter_builder_set_output_format(b, DP_FORMAT_V05)),
                dp_status::DP_STATUS_OK
            );
            let bad = dp_str {
                ptr: b"\xff".as_ptr().cast(),
                len: 1,
            };
            assert_eq!(
                status(dp_exporter_builder_set_service(b, bad)),
                dp_status::DP_STATUS_INVALID_UTF8
            );
            assert_eq!(
                status(dp_exporter_builder_set_language(
                    std::ptr::null_mut(),
                    dp_str::of("c")
                )),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            // NULL out: an error, and the builder is consumed anyway (no leak under the tests' leak checks).
            assert_eq!(
                status(dp_exporter_builder_build(b, std::ptr::null_mut())),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );

            // A failed build consumes the builder and leaves *out alone.
            let b = dp_exporter_builder_new();
            assert_eq!(
                status(dp_exporter_builder_set_url(b, dp_str::of("not a url"))),
                dp_status::DP_STATUS_OK
            );
            let sentinel = 0x10 as *mut dp_exporter;
            let mut out = sentinel;
            assert_eq!(
                status(dp_exporter_builder_build(b, &mut out)),
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(out, sentinel);

            let b = dp_exporter_builder_new();
            assert_eq!(
                status(dp_exporter_builder_set_request_timeout(b, 0)),
                dp_status::DP_STATUS_OK
            );
            let mut out = std::ptr::null_mut();
            assert_eq!(
                status(dp_exporter_builder_build(b, &mut out)),
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            assert!(out.is_null());

            let b = dp_exporter_builder_new();
            let mut out = std::ptr::null_mut();
            assert_eq!(
                status(dp_exporter_builder_build(b, &mut out)),
                dp_status::DP_STATUS_OK
            );
            assert!(!out.is_null());
            dp_exporter_free(out);
            assert_eq!(
                status(dp_exporter_builder_build(std::ptr::null_mut(), &mut out)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            dp_exporter_builder_free(std::ptr::null_mut());
            dp_exporter_builder_free(dp_exporter_builder_new());
        }
    }
}
