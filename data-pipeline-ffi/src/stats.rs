//! Client-side stats, P0 dropping and sampling feedback: the stats options of
//! `dp_exporter_builder` (`dp_exporter_builder_set_stats*`, `dp_exporter_builder_set_runtime_id`),
//! the exporter's stats state, explicit flush and shutdown, and the sampling rate the agent asked
//! for in its last answer.

use std::ffi::c_double;
use std::time::Duration;

use engine::stats::{StatsMode, StatsState};

use crate::error::{arg_ref, dp_error, FfiError, FfiResult, OutParam};
use crate::exporter::dp_exporter;
use crate::exporter_builder::{dp_exporter_builder, with_builder};
use crate::slice::dp_str;

/// Whether an exporter computes client-side stats: one of the `DP_STATS_MODE_*` values.
pub type dp_stats_mode = u32;
/// Never (default): spans pass through, the agent computes stats.
pub const DP_STATS_MODE_OFF: dp_stats_mode = 0;
/// While the agent allows it (`/info`: `client_drop_p0s` and `/v0.6/stats`); P0 chunks are then
/// dropped. The first send waits once for `/info`. The recommended opt-in.
pub const DP_STATS_MODE_AUTO: dp_stats_mode = 1;
/// Always compute and send stats; P0 chunks are dropped only while the agent allows it.
pub const DP_STATS_MODE_ON: dp_stats_mode = 2;

/// What an exporter does about stats now: one of the `DP_STATS_STATE_*` values.
pub type dp_stats_state = u32;
/// Configured off.
pub const DP_STATS_STATE_DISABLED: dp_stats_state = 0;
/// Auto mode, the agent's `/info` is not known yet: spans go out untouched.
pub const DP_STATS_STATE_WAITING_FOR_AGENT: dp_stats_state = 1;
/// Auto mode, the agent does not allow client-side stats: spans go out untouched.
pub const DP_STATS_STATE_NOT_SUPPORTED_BY_AGENT: dp_stats_state = 2;
/// Stats are computed (and P0 chunks dropped when the agent allows it).
pub const DP_STATS_STATE_ENABLED: dp_stats_state = 3;

fn state_to_c(s: StatsState) -> dp_stats_state {
    match s {
        StatsState::Disabled => DP_STATS_STATE_DISABLED,
        StatsState::WaitingForAgent => DP_STATS_STATE_WAITING_FOR_AGENT,
        StatsState::NotSupportedByAgent => DP_STATS_STATE_NOT_SUPPORTED_BY_AGENT,
        StatsState::Enabled => DP_STATS_STATE_ENABLED,
    }
}

/// Copies `len` strings from `items` (NULL only with `len` 0).
///
/// # Safety
/// `items` is NULL or points to `len` valid `dp_str`.
unsafe fn str_list(items: *const dp_str, len: usize, arg: &str) -> FfiResult<Vec<String>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(FfiError::null_argument(arg));
    }
    // SAFETY: non-NULL and, by contract, `len` readable elements.
    let items = unsafe { std::slice::from_raw_parts(items, len) };
    items
        .iter()
        // SAFETY: each view is valid by contract.
        .map(|s| unsafe { s.to_string(arg) })
        .collect()
}

/// The runtime id of the tracer process, reported as `RuntimeID` in stats payloads. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_runtime_id(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let v = unsafe { value.to_string("value") }?;
        // SAFETY: forwarded contract.
        unsafe { with_builder(builder, |b| { b.runtime_id(v); Ok(()) }) }
    }
}

/// Client-side stats and P0 dropping: `DP_STATS_MODE_OFF` (default), `DP_STATS_MODE_AUTO` or
/// `DP_STATS_MODE_ON`. Any other value: `DP_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_stats(
    builder: *mut dp_exporter_builder,
    mode: dp_stats_mode,
) -> *mut dp_error {
    boundary! {
        let mode = match mode {
            DP_STATS_MODE_OFF => StatsMode::Off,
            DP_STATS_MODE_AUTO => StatsMode::Auto,
            DP_STATS_MODE_ON => StatsMode::On,
            other => {
                return Err(FfiError::invalid_argument(format!(
                    "argument `mode` is {other}; expected DP_STATS_MODE_OFF (0), DP_STATS_MODE_AUTO (1) or DP_STATS_MODE_ON (2)"
                )))
            }
        };
        // SAFETY: forwarded contract.
        unsafe { with_builder(builder, |b| { b.stats(mode); Ok(()) }) }
    }
}

/// Stats bucket size and flush period, in milliseconds (default 10000; build rejects values
/// outside 1 ms to 1 h).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_stats_bucket_size(
    builder: *mut dp_exporter_builder,
    size_ms: u64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.stats_bucket_size(Duration::from_millis(size_ms)); Ok(()) }) } }
}

/// Peer tag keys aggregated in stats in addition to those the agent lists in `/info`: `len`
/// strings at `keys` (copied; `keys` may be NULL when `len` is 0). Replaces an earlier list.
///
/// # Safety
/// `builder` is NULL or a live builder; `keys` is NULL or points to `len` valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_stats_peer_tags(
    builder: *mut dp_exporter_builder,
    keys: *const dp_str,
    len: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let keys = unsafe { str_list(keys, len, "keys") }?;
        // SAFETY: forwarded contract.
        unsafe { with_builder(builder, |b| { b.stats_peer_tags(keys); Ok(()) }) }
    }
}

/// `span.kind` values that make a span eligible for stats (copied), replacing the agent's list and
/// the default client/server/producer/consumer; `len` 0 means kinds never make a span eligible.
///
/// # Safety
/// `builder` is NULL or a live builder; `kinds` is NULL or points to `len` valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_stats_span_kinds(
    builder: *mut dp_exporter_builder,
    kinds: *const dp_str,
    len: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let kinds = unsafe { str_list(kinds, len, "kinds") }?;
        // SAFETY: forwarded contract.
        unsafe { with_builder(builder, |b| { b.stats_span_kinds(kinds); Ok(()) }) }
    }
}

/// Distinct stats keys per bucket before spans are counted under `tracer_blocked_value` (default
/// 7000; 0 is rejected by build).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_stats_max_keys_per_bucket(
    builder: *mut dp_exporter_builder,
    max: usize,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.stats_max_keys_per_bucket(max); Ok(()) }) } }
}

/// `true` when the tracer marks top-level spans itself (`_dd.top_level`), so the exporter trusts
/// the marks instead of computing them per chunk (default `false`).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_stats_client_computed_top_level(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.stats_client_computed_top_level(enabled); Ok(()) }) } }
}

/// Writes the exporter's current stats state (a `DP_STATS_STATE_*` value) to `*out`. It changes
/// when the agent's `/info` answer changes. Thread-safe.
///
/// # Safety
/// `exporter` is NULL or a live exporter; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_stats_state(
    exporter: *const dp_exporter,
    out: *mut dp_stats_state,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ex = unsafe { arg_ref(exporter, "exporter") }?;
        let out = OutParam::new(out, "out")?;
        // SAFETY: checked non-NULL, valid for writes by contract.
        unsafe { out.write(state_to_c(ex.exporter.stats_state())) };
        Ok(())
    }
}

/// Writes to `*out` the sampling rate the agent asked for (`service`, `env`) in the last answer
/// that carried rates: that key's rate, else the default key's (`service:,env:`), else 1.0 (no
/// feedback yet: keep everything). Thread-safe; never blocks.
///
/// # Safety
/// `exporter` is NULL or a live exporter; `service` and `env` are valid views; `out` is NULL or
/// valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_sampling_rate(
    exporter: *const dp_exporter,
    service: dp_str,
    env: dp_str,
    out: *mut c_double,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ex = unsafe { arg_ref(exporter, "exporter") }?;
        // SAFETY: forwarded contract.
        let (service, env) = unsafe { (service.as_str("service")?, env.as_str("env")?) };
        let out = OutParam::new(out, "out")?;
        let rate = ex.exporter.sampling_rate(service, env);
        // SAFETY: checked non-NULL, valid for writes by contract.
        unsafe { out.write(rate) };
        Ok(())
    }
}

/// Sends the complete stats buckets now (every bucket when `force`), blocking at most
/// `timeout_ms`. A no-op when stats are off. Errors: `DP_STATUS_NETWORK`, `DP_STATUS_TIMEOUT`,
/// `DP_STATUS_HTTP`. Thread-safe.
///
/// # Safety
/// `exporter` is NULL or a live exporter.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_flush_stats(
    exporter: *const dp_exporter,
    force: bool,
    timeout_ms: u64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ex = unsafe { arg_ref(exporter, "exporter") }?;
        ex.exporter.flush_stats(force, Duration::from_millis(timeout_ms))?;
        Ok(())
    }
}

/// Stops the exporter's background work and delivers what it holds, blocking at most `timeout_ms`.
/// The traces queued by `dp_exporter_enqueue*` go out first, then every stats bucket. Call it
/// before `dp_exporter_free` (which never blocks and drops what is left). Sends still work
/// afterwards, with client-side stats off. Later enqueues fail with `DP_STATUS_SHUTDOWN`.
/// `DP_STATUS_TIMEOUT` when something was left: queued traces are then dropped and counted in
/// `dp_health.dropped_shutdown`. Thread-safe.
///
/// # Safety
/// `exporter` is NULL or a live exporter.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_shutdown(
    exporter: *const dp_exporter,
    timeout_ms: u64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ex = unsafe { arg_ref(exporter, "exporter") }?;
        ex.exporter.shutdown(Duration::from_millis(timeout_ms))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::dp_status;
    use crate::error::{dp_error_free, take_status};
    use crate::exporter_builder::{
        dp_exporter_builder_build, dp_exporter_builder_free, dp_exporter_builder_new,
    };

    fn ok(err: *mut dp_error) {
        assert!(err.is_null(), "unexpected error {:?}", take_status(err));
    }

    #[test]
    fn setters_state_and_rate() {
        // SAFETY: test of the C contract with valid handles and views.
        unsafe {
            let b = dp_exporter_builder_new();
            ok(dp_exporter_builder_set_runtime_id(b, dp_str::of("rt")));
            ok(dp_exporter_builder_set_stats(b, DP_STATS_MODE_ON));
            assert_eq!(
                take_status(dp_exporter_builder_set_stats(b, 7)),
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            ok(dp_exporter_builder_set_stats_bucket_size(b, 2000));
            let keys = [dp_str::of("db.name"), dp_str::of("peer.service")];
            ok(dp_exporter_builder_set_stats_peer_tags(b, keys.as_ptr(), 2));
            ok(dp_exporter_builder_set_stats_peer_tags(
                b,
                std::ptr::null(),
                0,
            ));
            assert_eq!(
                take_status(dp_exporter_builder_set_stats_span_kinds(
                    b,
                    std::ptr::null(),
                    1
                )),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            let bad = dp_str {
                ptr: b"\xff".as_ptr().cast(),
                len: 1,
            };
            assert_eq!(
                take_status(dp_exporter_builder_set_stats_span_kinds(b, &bad, 1)),
                dp_status::DP_STATUS_INVALID_UTF8
            );
            ok(dp_exporter_builder_set_stats_span_kinds(
                b,
                keys.as_ptr(),
                1,
            ));
            ok(dp_exporter_builder_set_stats_max_keys_per_bucket(b, 100));
            ok(dp_exporter_builder_set_stats_client_computed_top_level(
                b, true,
            ));
            ok(dp_exporter_builder_set_url(
                b,
                dp_str::of("http://127.0.0.1:1"),
            ));
            let mut ex = std::ptr::null_mut();
            ok(dp_exporter_builder_build(b, &mut ex));
            let mut st = 99;
            ok(dp_exporter_stats_state(ex, &mut st));
            assert_eq!(st, DP_STATS_STATE_ENABLED);
            let mut rate = 0.0;
            ok(dp_exporter_sampling_rate(
                ex,
                dp_str::of("web"),
                dp_str::of("prod"),
                &mut rate,
            ));
            assert_eq!(rate, 1.0, "no feedback yet");
            assert_eq!(
                take_status(dp_exporter_sampling_rate(
                    ex,
                    dp_str::of("web"),
                    bad,
                    &mut rate
                )),
                dp_status::DP_STATUS_INVALID_UTF8
            );
            assert_eq!(
                take_status(dp_exporter_stats_state(std::ptr::null(), &mut st)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            ok(dp_exporter_flush_stats(ex, true, 100));
            ok(dp_exporter_shutdown(ex, 100));
            crate::exporter::dp_exporter_free(ex);
            let b = dp_exporter_builder_new();
            ok(dp_exporter_builder_set_stats_max_keys_per_bucket(b, 0));
            ok(dp_exporter_builder_set_stats(b, DP_STATS_MODE_AUTO));
            let mut ex = std::ptr::null_mut();
            let err = dp_exporter_builder_build(b, &mut ex);
            assert_eq!(take_status(err), dp_status::DP_STATUS_INVALID_ARGUMENT);
            assert!(ex.is_null());
            dp_exporter_builder_free(std::ptr::null_mut());
            dp_error_free(std::ptr::null_mut());
        }
    }

    use crate::exporter_builder::dp_exporter_builder_set_url;
}
