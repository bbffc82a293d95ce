//! Data Streams Monitoring: `dp_data_streams_builder`, `dp_data_streams` (the processor),
//! `dp_pathway_context` (a message's place in its pathway) and the carrier helpers that put a
//! context into, and get it out of, Kafka headers, HTTP headers or any carrier.
//!
//! A tracer starts data streams from its exporter's settings
//! (`dp_data_streams_builder_new_from_exporter`, or `dp_data_streams_new_from_exporter` in one
//! call) or configures them standalone (`dp_data_streams_builder_new` + setters). Checkpoints
//! return a new `dp_pathway_context`; the carrier helpers encode it under the key
//! `dd-pathway-ctx-base64` (`dp_pathway_context_key()`) and read it back (also from the legacy
//! binary key `dd-pathway-ctx`). Decoding never fails on bad content: "no context" is
//! `*out = NULL`.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use engine::datastreams::{
    carrier, context, merge, Config, KafkaOffset, OffsetKind, PathwayContext, Processor,
};

use crate::error::{arg_mut, arg_ref, arg_take, dp_error, free_box, FfiError, FfiResult, OutParam};
use crate::exporter::dp_exporter;
use crate::slice::{dp_bytes, dp_str};

/// The carrier key of the base64 context, with a NUL for views handed to C.
const KEY_NUL: &str = "dd-pathway-ctx-base64\0";
/// The legacy carrier key of the binary context, with a NUL.
const LEGACY_KEY_NUL: &str = "dd-pathway-ctx\0";
/// A buffer of this many bytes always holds the base64 text of a context and its NUL
/// terminator (the text is 28 characters for present-day times, 36 at most).
pub const DP_PATHWAY_CONTEXT_BASE64_CAPACITY: usize = 37;
/// A buffer of this many bytes always holds the binary form of a context (20 bytes for
/// present-day times, 26 at most).
pub const DP_PATHWAY_CONTEXT_ENCODED_CAPACITY: usize = 26;

// Written as literals for cbindgen; held equal to the engine's bounds here.
const _: () = {
    assert!(DP_PATHWAY_CONTEXT_BASE64_CAPACITY == context::MAX_BASE64_ENCODED_LEN + 1);
    assert!(DP_PATHWAY_CONTEXT_ENCODED_CAPACITY == context::MAX_ENCODED_LEN);
    assert!(KEY_NUL.len() == carrier::PROPAGATION_KEY_BASE64.len() + 1);
    assert!(LEGACY_KEY_NUL.len() == carrier::PROPAGATION_KEY_LEGACY.len() + 1);
};

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// Collects the options of data streams. Create with `dp_data_streams_builder_new` (standalone
/// defaults: agent `http://localhost:8126`, flush every 10 s) or
/// `dp_data_streams_builder_new_from_exporter` (the exporter's settings), change what you need,
/// then `dp_data_streams_builder_build` (which always consumes it) or
/// `dp_data_streams_builder_free`.
///
/// Movable between threads; not for concurrent use.
pub struct dp_data_streams_builder {
    config: Config,
}

/// The Data Streams Monitoring processor: checkpoints in, pipeline stats to the agent's
/// `/v0.1/pipeline_stats` (aggregated in 10 s buckets, one payload per service, sent by a
/// background thread every flush interval, or by `dp_data_streams_flush`).
///
/// Thread-safe (Send + Sync): checkpoints, offsets and flushes may be called from any thread at
/// once. Free it only once no other thread uses it. A checkpoint never does I/O.
pub struct dp_data_streams {
    dsm: Processor,
}

/// Where a message is in its pathway: pathway hash, pathway start and edge start (ns since the
/// Unix epoch locally; ms on the wire). Returned by checkpoints, decoders and extractors; free
/// with `dp_pathway_context_free`.
///
/// Immutable: thread-safe (Send + Sync); the same context may be the parent of any number of
/// checkpoints (fan-out), from any thread.
pub struct dp_pathway_context {
    ctx: PathwayContext,
}

const _: () = {
    crate::assert_thread::send::<dp_data_streams_builder>();
    crate::assert_thread::send::<dp_data_streams>();
    crate::assert_thread::sync::<dp_data_streams>();
    crate::assert_thread::send::<dp_pathway_context>();
    crate::assert_thread::sync::<dp_pathway_context>();
};

/// One Kafka message header as the carrier helpers read and write it: `key` (UTF-8) and
/// `value` (bytes). Views: who owns the bytes is said by each function.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dp_kafka_header {
    /// The header key (case-sensitive).
    pub key: dp_str,
    /// The header value.
    pub value: dp_bytes,
}

/// One HTTP header as the carrier helpers read and write it. Names are compared
/// case-insensitively. Views: who owns the bytes is said by each function.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dp_http_header {
    /// The header name.
    pub name: dp_str,
    /// The header value.
    pub value: dp_str,
}

/// Reads one key of a carrier for `dp_pathway_context_extract`.
///
/// Return true and point `*value` at the carrier's value for `key` when there is one (the view
/// must stay valid until the callback is called again or `dp_pathway_context_extract` returns);
/// return false when there is none. `key` is UTF-8 and NUL-terminated (the NUL is not counted
/// in `len`), valid during the call. Called on the thread that called
/// `dp_pathway_context_extract`, during that call only, at most twice, never concurrently.
pub type dp_carrier_get =
    Option<unsafe extern "C" fn(user_data: *mut c_void, key: dp_str, value: *mut dp_bytes) -> bool>;

/// Writes one key of a carrier for `dp_pathway_context_inject`: store `value` under `key`,
/// replacing what the carrier held under that key. Both views are UTF-8, NUL-terminated (the
/// NUL is not counted in `len`) and valid during the call only: copy them. Called on the
/// thread that called `dp_pathway_context_inject`, during that call only, exactly once.
pub type dp_carrier_set =
    Option<unsafe extern "C" fn(user_data: *mut c_void, key: dp_str, value: dp_str)>;

/// A counter of `dp_data_streams_stat`: one of the `DP_DATA_STREAMS_STAT_*` values.
pub type dp_data_streams_stat_id = u32;
/// Checkpoints recorded.
pub const DP_DATA_STREAMS_STAT_CHECKPOINTS: dp_data_streams_stat_id = 0;
/// Checkpoints not aggregated (group limit reached, or after shutdown).
pub const DP_DATA_STREAMS_STAT_DROPPED_POINTS: dp_data_streams_stat_id = 1;
/// Payloads the agent accepted.
pub const DP_DATA_STREAMS_STAT_PAYLOADS_SENT: dp_data_streams_stat_id = 2;
/// Payloads that failed (network error, timeout, HTTP error other than 404).
pub const DP_DATA_STREAMS_STAT_SEND_ERRORS: dp_data_streams_stat_id = 3;
/// 404 answers: the agent does not support data streams (older than 7.34).
pub const DP_DATA_STREAMS_STAT_AGENT_TOO_OLD: dp_data_streams_stat_id = 4;
/// Payloads dropped without sending while backing off after a 404.
pub const DP_DATA_STREAMS_STAT_PAYLOADS_DROPPED: dp_data_streams_stat_id = 5;
/// Buckets flushed.
pub const DP_DATA_STREAMS_STAT_BUCKETS_FLUSHED: dp_data_streams_stat_id = 6;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The `n` elements at `ptr` (NULL allowed when `n` is 0), named `arg` in errors.
unsafe fn array<'a, T>(ptr: *const T, n: usize, arg: &str) -> FfiResult<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::null_argument(arg));
    }
    if n.checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(FfiError::invalid_argument(format!(
            "argument `{arg}` is too long: {n} elements"
        )));
    }
    // SAFETY: non-NULL, size checked, `n` readable elements per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// Renames the argument of a view error to `arg[i]`.
fn at_index(mut e: FfiError, arg: &str, i: usize) -> FfiError {
    e.message = e
        .message
        .replacen(&format!("`{arg}`"), &format!("`{arg}[{i}]`"), 1);
    e
}

/// Tags held on the stack up to this count (no allocation on the checkpoint path).
const STACK_TAGS: usize = 16;

/// Runs `f` on the `n` edge tags at `tags`, checked for NULL and UTF-8.
unsafe fn with_tags<R>(
    tags: *const dp_str,
    n: usize,
    f: impl FnOnce(&[&str]) -> R,
) -> FfiResult<R> {
    // SAFETY: forwarded contract.
    let views = unsafe { array(tags, n, "edge_tags") }?;
    let tag = |i: usize, v: &dp_str| -> FfiResult<&str> {
        // SAFETY: each view is valid for the call by contract.
        unsafe { v.as_str("edge_tags") }.map_err(|e| at_index(e, "edge_tags", i))
    };
    if views.len() <= STACK_TAGS {
        let mut buf: [&str; STACK_TAGS] = [""; STACK_TAGS];
        for (i, v) in views.iter().enumerate() {
            buf[i] = tag(i, v)?;
        }
        Ok(f(&buf[..views.len()]))
    } else {
        let tags = views
            .iter()
            .enumerate()
            .map(|(i, v)| tag(i, v))
            .collect::<FfiResult<Vec<&str>>>()?;
        Ok(f(&tags))
    }
}

/// Hands a context to C through `out`.
unsafe fn write_context(out: OutParam<*mut dp_pathway_context>, ctx: Option<PathwayContext>) {
    let ptr = match ctx {
        Some(ctx) => Box::into_raw(Box::new(dp_pathway_context { ctx })),
        None => std::ptr::null_mut(),
    };
    // SAFETY: checked non-NULL by OutParam::new; valid for writes by the caller's contract.
    unsafe { out.write(ptr) };
}

/// The optional context behind `ctx` (NULL: none).
unsafe fn optional<'a>(ctx: *const dp_pathway_context) -> Option<&'a PathwayContext> {
    // SAFETY: by contract NULL or a live context.
    unsafe { ctx.as_ref() }.map(|c| &c.ctx)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Writes `text` and a NUL into `buf` (capacity `cap`), its length (without the NUL) to
/// `*len` if given.
unsafe fn write_text(text: &[u8], buf: *mut c_char, cap: usize, len: *mut usize) -> FfiResult {
    if buf.is_null() {
        return Err(FfiError::null_argument("buf"));
    }
    if cap < text.len() + 1 {
        return Err(FfiError::invalid_argument(format!(
            "argument `buf_len` is {cap}: {} bytes are needed (DP_PATHWAY_CONTEXT_BASE64_CAPACITY always fits)",
            text.len() + 1
        )));
    }
    // SAFETY: `buf` is non-NULL and has room for `cap` >= text.len() + 1 bytes by contract.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
        if let Some(len) = len.as_mut() {
            *len = text.len();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------------------------

/// A new builder with standalone defaults: agent `http://localhost:8126`, empty service (reported
/// as `unnamed-<language>-service`), language `rust` until set, 10 s buckets flushed every 10 s.
/// Never NULL unless the library panicked.
#[no_mangle]
pub extern "C" fn dp_data_streams_builder_new() -> *mut dp_data_streams_builder {
    boundary! {
        Box::into_raw(Box::new(dp_data_streams_builder { config: Config::default() }))
    }
}

/// A new builder with `exporter`'s settings: agent address, service, env, application version,
/// language and its version, tracer version, container id, test session token and timeouts.
/// Change what differs with the setters, then build. `exporter` is only read; it stays usable.
/// On error `*out` is not written.
///
/// # Safety
/// `exporter` is NULL or a live exporter; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_new_from_exporter(
    exporter: *const dp_exporter,
    out: *mut *mut dp_data_streams_builder,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let exporter = unsafe { arg_ref(exporter, "exporter") }?;
        let out = OutParam::new(out, "out")?;
        let config = Config::from_exporter(exporter.as_exporter());
        let handle = Box::into_raw(Box::new(dp_data_streams_builder { config }));
        // SAFETY: checked non-NULL; valid for writes by contract.
        unsafe { out.write(handle) };
        Ok(())
    }
}

/// Frees a builder that was never given to `dp_data_streams_builder_build`. NULL is a no-op.
///
/// # Safety
/// `builder` is NULL or a live builder that was not consumed or freed.
#[no_mangle]
pub unsafe extern "C" fn dp_data_streams_builder_free(builder: *mut dp_data_streams_builder) {
    boundary! {
        // SAFETY: by contract NULL or a live builder given up by the caller.
        unsafe { free_box(builder) }
    }
}

/// Validates the options and starts data streams into `*out` (with its background thread when
/// the flush interval is not 0).
///
/// Always consumes `builder`, also on error: do not use or free it afterwards. On error `*out`
/// is not written. Errors: `DP_STATUS_INVALID_ARGUMENT` (bad URL, zero timeout, a header that
/// cannot be sent), `DP_STATUS_UNSUPPORTED` (`https://` in a build without TLS),
/// `DP_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// `builder` is NULL or a live builder the caller gives up; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_build(
    builder: *mut dp_data_streams_builder,
    out: *mut *mut dp_data_streams,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract; taken first so it is consumed on every path.
        let builder = unsafe { arg_take(builder, "builder") };
        let out = OutParam::new(out, "out")?;
        // Before the processor exists, so its fork-local state checks the fork epoch (one
        // atomic load per checkpoint) rather than the process id (a system call).
        crate::background::install_fork_notifier();
        let dsm = Processor::new(builder?.config)?;
        let handle = Box::into_raw(Box::new(dp_data_streams { dsm }));
        // SAFETY: checked non-NULL; valid for writes by contract.
        unsafe { out.write(handle) };
        Ok(())
    }
}

/// Starts data streams with `exporter`'s settings and the defaults for the rest, in one call
/// (`dp_data_streams_builder_new_from_exporter` + `dp_data_streams_builder_build`). On error
/// `*out` is not written.
///
/// # Safety
/// `exporter` is NULL or a live exporter; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_new_from_exporter(
    exporter: *const dp_exporter,
    out: *mut *mut dp_data_streams,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let exporter = unsafe { arg_ref(exporter, "exporter") }?;
        let out = OutParam::new(out, "out")?;
        let dsm = Processor::new(Config::from_exporter(exporter.as_exporter()))?;
        let handle = Box::into_raw(Box::new(dp_data_streams { dsm }));
        // SAFETY: checked non-NULL; valid for writes by contract.
        unsafe { out.write(handle) };
        Ok(())
    }
}

/// Runs `f` on the configuration behind `builder`.
unsafe fn with_config(
    builder: *mut dp_data_streams_builder,
    f: impl FnOnce(&mut Config) -> FfiResult,
) -> FfiResult {
    // SAFETY: forwarded contract (NULL or a live builder used by this call alone).
    f(&mut unsafe { arg_mut(builder, "builder") }?.config)
}

/// Sets a string option (copied).
unsafe fn set_str(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
    set: impl FnOnce(&mut Config, String),
) -> FfiResult {
    // SAFETY: forwarded contract.
    let value = unsafe { value.to_string("value") }?;
    // SAFETY: forwarded contract.
    unsafe {
        with_config(builder, |c| {
            set(c, value);
            Ok(())
        })
    }
}

/// Replaces the extra header `name` (any case) with `value`, or removes it when empty.
fn set_header(c: &mut Config, name: &str, value: String) {
    c.extra_headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    if !value.is_empty() {
        c.extra_headers.push((name.to_owned(), value));
    }
}

/// The agent address: `http://host:port` or `unix:///path/to/apm.socket` (copied; parsed by
/// build).
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_url(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |c, v| c.agent_url = v) } }
}

/// The service checkpoints are attributed to (empty: `unnamed-<language>-service`). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_service(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |c, v| c.service = v) } }
}

/// The environment (hashed as is; may be empty). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_env(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |c, v| c.env = v) } }
}

/// The application version (payload field `Version`). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_app_version(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |c, v| c.version = v) } }
}

/// The tracer language (`Lang`, `Datadog-Meta-Lang`), e.g. `cpp`. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_language(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |c, v| c.lang = v) } }
}

/// The language version (`Datadog-Meta-Lang-Version`; empty: not sent). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_language_version(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |c, v| c.lang_version = v) } }
}

/// The tracer version (`TracerVersion`, `Datadog-Meta-Tracer-Version`). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_tracer_version(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |c, v| c.tracer_version = v) } }
}

/// The container id, sent as `Datadog-Container-ID`; empty for none. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_container_id(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! {
        unsafe {
            set_str(builder, value, |c, v| {
                set_header(c, engine::datastreams::processor::CONTAINER_ID_HEADER, v)
            })
        }
    }
}

/// The Datadog test agent's session token, sent as `X-Datadog-Test-Session-Token`; empty for
/// none. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_test_session_token(
    builder: *mut dp_data_streams_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! {
        unsafe {
            set_str(builder, value, |c, v| {
                set_header(c, engine::datastreams::processor::TEST_SESSION_TOKEN_HEADER, v)
            })
        }
    }
}

/// Adds an HTTP header sent with every payload (copied; checked by build).
///
/// # Safety
/// `builder` is NULL or a live builder; `name` and `value` are valid `dp_str`s.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_add_header(
    builder: *mut dp_data_streams_builder,
    name: dp_str,
    value: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let (name, value) = unsafe { (name.to_string("name")?, value.to_string("value")?) };
        // SAFETY: forwarded contract.
        unsafe { with_config(builder, |c| { c.extra_headers.push((name, value)); Ok(()) }) }
    }
}

/// Adds a process tag (`key:value`), sent in the payload's `ProcessTags`. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `tag` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_add_process_tag(
    builder: *mut dp_data_streams_builder,
    tag: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let tag = unsafe { tag.to_string("tag") }?;
        // SAFETY: forwarded contract.
        unsafe { with_config(builder, |c| { c.process_tags.push(tag); Ok(()) }) }
    }
}

/// Whether process tags are also part of the pathway hash (default false; every service of a
/// pathway must agree).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_hash_process_tags(
    builder: *mut dp_data_streams_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(builder, |c| { c.hash_process_tags = enabled; Ok(()) }) } }
}

/// How often the background thread sends the complete buckets, in milliseconds (default
/// 10000). 0: no background thread; only `dp_data_streams_flush` and `dp_data_streams_shutdown`
/// send.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_flush_interval(
    builder: *mut dp_data_streams_builder,
    interval_ms: u64,
) -> *mut dp_error {
    boundary! {
        let interval = (interval_ms > 0).then(|| millis(interval_ms));
        // SAFETY: forwarded contract.
        unsafe { with_config(builder, |c| { c.flush_interval = interval; Ok(()) }) }
    }
}

/// The bucket duration in milliseconds (default 10000, as everywhere in data streams; values
/// under 1 are raised to 1). Change it only for tests.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_bucket_duration(
    builder: *mut dp_data_streams_builder,
    duration_ms: u64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(builder, |c| { c.bucket_duration = millis(duration_ms.max(1)); Ok(()) }) } }
}

/// Timeout of one connection attempt to the agent, in milliseconds (0 is rejected by build).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_connect_timeout(
    builder: *mut dp_data_streams_builder,
    timeout_ms: u64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(builder, |c| { c.connect_timeout = millis(timeout_ms); Ok(()) }) } }
}

/// Timeout of one request to the agent, answer included, in milliseconds (0 is rejected by
/// build).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_builder_set_request_timeout(
    builder: *mut dp_data_streams_builder,
    timeout_ms: u64,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(builder, |c| { c.request_timeout = millis(timeout_ms); Ok(()) }) } }
}

// ---------------------------------------------------------------------------------------------
// Processor
// ---------------------------------------------------------------------------------------------

/// Records a checkpoint now: a message of `payload_size` bytes (negative counts as 0) seen at
/// this hop, described by the `n` edge tags at `edge_tags` (`direction:in|out`, `type:kafka`,
/// `topic:orders`, ...; each copied as needed, order does not matter), following `parent` (the
/// message's context; NULL starts a new pathway). `*out` receives the new context: inject it
/// into what is sent next, or use it as the parent of what follows. Never does I/O.
///
/// Errors: `DP_STATUS_NULL_ARGUMENT`, `DP_STATUS_INVALID_UTF8` (the message names
/// `edge_tags[i]`). On error `*out` is not written and nothing is recorded. Thread-safe.
///
/// # Safety
/// `ds` is NULL or live; `parent` is NULL or a live context; `edge_tags` points to `n` valid
/// views (NULL allowed when `n` is 0); `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_set_checkpoint(
    ds: *const dp_data_streams,
    parent: *const dp_pathway_context,
    edge_tags: *const dp_str,
    n: usize,
    payload_size: i64,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ds = unsafe { arg_ref(ds, "ds") }?;
        let out = OutParam::new(out, "out")?;
        // SAFETY: forwarded contract.
        let parent = unsafe { optional(parent) };
        // SAFETY: forwarded contract.
        let next = unsafe { with_tags(edge_tags, n, |tags| ds.dsm.set_checkpoint(parent, tags, payload_size)) }?;
        // SAFETY: `out` checked; valid for writes by contract.
        unsafe { write_context(out, Some(next)) };
        Ok(())
    }
}

/// `dp_data_streams_set_checkpoint` at `now_ns` (ns since the Unix epoch) instead of now: for
/// tracers that know when the message was seen, and for tests.
///
/// # Safety
/// As `dp_data_streams_set_checkpoint`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_set_checkpoint_at(
    ds: *const dp_data_streams,
    parent: *const dp_pathway_context,
    edge_tags: *const dp_str,
    n: usize,
    payload_size: i64,
    now_ns: i64,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ds = unsafe { arg_ref(ds, "ds") }?;
        let out = OutParam::new(out, "out")?;
        // SAFETY: forwarded contract.
        let parent = unsafe { optional(parent) };
        // SAFETY: forwarded contract.
        let next = unsafe {
            with_tags(edge_tags, n, |tags| ds.dsm.set_checkpoint_at(parent, tags, payload_size, now_ns))
        }?;
        // SAFETY: `out` checked; valid for writes by contract.
        unsafe { write_context(out, Some(next)) };
        Ok(())
    }
}

/// The checkpoint of a Kafka produce, in one call: edge tags `direction:out`, `topic:<topic>`,
/// `type:kafka` and `kafka_cluster_id:<cluster_id>` (left out when empty), following `parent`
/// (NULL: a new pathway; when this produce follows a consume, pass the consume's context).
///
/// `payload_size` is the message as built without the context header: key + value + the other
/// headers (keys and values). The context header the caller injects next
/// (`dd-pathway-ctx-base64` and the base64 text of `*out`, e.g. with
/// `dp_pathway_context_inject_kafka`) is added to it. `*out` receives the context to inject.
/// Thread-safe; never does I/O.
///
/// # Safety
/// `ds` is NULL or live; `parent` is NULL or a live context; `topic` and `cluster_id` are valid
/// views; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_kafka_produce(
    ds: *const dp_data_streams,
    parent: *const dp_pathway_context,
    topic: dp_str,
    cluster_id: dp_str,
    payload_size: i64,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ds = unsafe { arg_ref(ds, "ds") }?;
        let out = OutParam::new(out, "out")?;
        // SAFETY: forwarded contract.
        let (topic, cluster_id) = unsafe { (topic.as_str("topic")?, cluster_id.as_str("cluster_id")?) };
        // SAFETY: forwarded contract.
        let parent = unsafe { optional(parent) };
        let next = ds.dsm.kafka_produce_checkpoint(parent, topic, cluster_id, payload_size, None);
        // SAFETY: `out` checked; valid for writes by contract.
        unsafe { write_context(out, Some(next)) };
        Ok(())
    }
}

/// The checkpoint of a Kafka consume, in one call: edge tags `direction:in`, `group:<group>`
/// (left out when empty), `topic:<topic>`, `type:kafka` and `kafka_cluster_id:<cluster_id>`
/// (left out when empty), following `ctx`, the context extracted from the message's headers
/// (NULL: the message carried none; the pathway starts here). `payload_size` is the message as
/// received: key + value + every header. `*out` receives the context of the work that follows
/// (the parent of what it produces). Thread-safe; never does I/O.
///
/// # Safety
/// `ds` is NULL or live; `ctx` is NULL or a live context; the views are valid; `out` is NULL
/// or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_kafka_consume(
    ds: *const dp_data_streams,
    ctx: *const dp_pathway_context,
    topic: dp_str,
    group: dp_str,
    cluster_id: dp_str,
    payload_size: i64,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ds = unsafe { arg_ref(ds, "ds") }?;
        let out = OutParam::new(out, "out")?;
        // SAFETY: forwarded contract.
        let (topic, group, cluster_id) = unsafe {
            (topic.as_str("topic")?, group.as_str("group")?, cluster_id.as_str("cluster_id")?)
        };
        // SAFETY: forwarded contract.
        let ctx = unsafe { optional(ctx) };
        let next = ds.dsm.kafka_consume_checkpoint(ctx, topic, group, cluster_id, payload_size, None);
        // SAFETY: `out` checked; valid for writes by contract.
        unsafe { write_context(out, Some(next)) };
        Ok(())
    }
}

fn track(
    ds: &dp_data_streams,
    kind: OffsetKind,
    group: &str,
    topic: &str,
    cluster_id: &str,
    partition: i32,
    offset: i64,
) {
    ds.dsm.track_kafka_offset(
        KafkaOffset {
            kind,
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            cluster_id: cluster_id.to_owned(),
            offset,
        },
        None,
    );
}

/// Records the offset of a message produced to `topic`/`partition` (from the delivery report):
/// the backlog `type:kafka_produce, topic:, partition:[, kafka_cluster_id:]`; the largest
/// offset per bucket is reported. `cluster_id` may be empty. Thread-safe; never does I/O.
///
/// # Safety
/// `ds` is NULL or live; the views are valid.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_track_kafka_produce_offset(
    ds: *const dp_data_streams,
    topic: dp_str,
    cluster_id: dp_str,
    partition: i32,
    offset: i64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ds = unsafe { arg_ref(ds, "ds") }?;
        // SAFETY: forwarded contract.
        let (topic, cluster_id) = unsafe { (topic.as_str("topic")?, cluster_id.as_str("cluster_id")?) };
        track(ds, OffsetKind::Produce, "", topic, cluster_id, partition, offset);
        Ok(())
    }
}

/// Records the offset `group` committed on `topic`/`partition` (the next offset it will read):
/// the backlog `type:kafka_commit, consumer_group:, topic:, partition:[, kafka_cluster_id:]`;
/// the largest offset per bucket is reported. `cluster_id` may be empty. Thread-safe; never
/// does I/O.
///
/// # Safety
/// `ds` is NULL or live; the views are valid.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_track_kafka_commit_offset(
    ds: *const dp_data_streams,
    group: dp_str,
    topic: dp_str,
    cluster_id: dp_str,
    partition: i32,
    offset: i64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ds = unsafe { arg_ref(ds, "ds") }?;
        // SAFETY: forwarded contract.
        let (group, topic, cluster_id) = unsafe {
            (group.as_str("group")?, topic.as_str("topic")?, cluster_id.as_str("cluster_id")?)
        };
        track(ds, OffsetKind::Commit, group, topic, cluster_id, partition, offset);
        Ok(())
    }
}

/// Sends every bucket now, complete or not, waiting at most `timeout_ms` milliseconds (each
/// request is cut short by it). Errors: `DP_STATUS_TIMEOUT`, `DP_STATUS_NETWORK`,
/// `DP_STATUS_HTTP`, `DP_STATUS_UNSUPPORTED` (the agent answered 404: it does not support data
/// streams); the data is dropped either way. Thread-safe.
///
/// # Safety
/// `ds` is NULL or live.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_flush(
    ds: *const dp_data_streams,
    timeout_ms: u64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ds = unsafe { arg_ref(ds, "ds") }?;
        ds.dsm.flush_within(millis(timeout_ms))?;
        Ok(())
    }
}

/// Stops aggregating, sends what is left and stops the background thread, all within
/// `timeout_ms` milliseconds. Later checkpoints still return contexts but are not recorded.
/// Calling it again does nothing. Errors as `dp_data_streams_flush`. Thread-safe.
///
/// # Safety
/// `ds` is NULL or live.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_data_streams_shutdown(
    ds: *const dp_data_streams,
    timeout_ms: u64,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ds = unsafe { arg_ref(ds, "ds") }?;
        ds.dsm.shutdown(millis(timeout_ms))?;
        Ok(())
    }
}

/// Frees data streams. Never blocks on I/O: what was not sent (call `dp_data_streams_shutdown`
/// first to send it) is dropped, and the background thread exits by itself after the request it
/// may be in. NULL is a no-op.
///
/// # Safety
/// `ds` is NULL or live, no other thread uses it, and it was not freed before.
#[no_mangle]
pub unsafe extern "C" fn dp_data_streams_free(ds: *mut dp_data_streams) {
    boundary! {
        if !ds.is_null() {
            // SAFETY: by contract a live handle given up by the caller.
            let ds = unsafe { Box::from_raw(ds) };
            ds.dsm.close_now();
            drop(ds);
        }
    }
}

/// The service checkpoints are attributed to. The view is UTF-8 (not NUL-terminated) and valid
/// until `dp_data_streams_free(ds)`; `{NULL, 0}` when `ds` is NULL.
///
/// # Safety
/// `ds` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn dp_data_streams_service(ds: *const dp_data_streams) -> dp_str {
    boundary! {
        // SAFETY: forwarded contract.
        match unsafe { ds.as_ref() } {
            Some(ds) => dp_str::of(ds.dsm.service()),
            None => dp_str::EMPTY,
        }
    }
}

/// One counter since `ds` was created (`which`: a `DP_DATA_STREAMS_STAT_*` value); 0 for NULL
/// or an unknown counter. Thread-safe.
///
/// # Safety
/// `ds` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn dp_data_streams_stat(
    ds: *const dp_data_streams,
    which: dp_data_streams_stat_id,
) -> u64 {
    boundary! {
        // SAFETY: forwarded contract.
        match unsafe { ds.as_ref() } {
            None => 0,
            Some(ds) => {
                let s = ds.dsm.stats();
                match which {
                    DP_DATA_STREAMS_STAT_CHECKPOINTS => s.checkpoints,
                    DP_DATA_STREAMS_STAT_DROPPED_POINTS => s.dropped_points,
                    DP_DATA_STREAMS_STAT_PAYLOADS_SENT => s.payloads_sent,
                    DP_DATA_STREAMS_STAT_SEND_ERRORS => s.send_errors,
                    DP_DATA_STREAMS_STAT_AGENT_TOO_OLD => s.agent_too_old,
                    DP_DATA_STREAMS_STAT_PAYLOADS_DROPPED => s.payloads_dropped,
                    DP_DATA_STREAMS_STAT_BUCKETS_FLUSHED => s.buckets_flushed,
                    _ => 0,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pathway contexts
// ---------------------------------------------------------------------------------------------

/// A context with the given pathway hash, pathway start and edge start (ns since the Unix
/// epoch); for tracers that keep the fields themselves, and tests. Free with
/// `dp_pathway_context_free`. Never NULL unless the library panicked.
#[no_mangle]
pub extern "C" fn dp_pathway_context_new(
    hash: u64,
    pathway_start_ns: i64,
    edge_start_ns: i64,
) -> *mut dp_pathway_context {
    boundary! {
        Box::into_raw(Box::new(dp_pathway_context {
            ctx: PathwayContext::new(hash, pathway_start_ns, edge_start_ns),
        }))
    }
}

/// Frees a context. NULL is a no-op.
///
/// # Safety
/// `ctx` is NULL or a live context, not freed before, no longer used by another thread.
#[no_mangle]
pub unsafe extern "C" fn dp_pathway_context_free(ctx: *mut dp_pathway_context) {
    boundary! {
        // SAFETY: by contract NULL or a live context given up by the caller.
        unsafe { free_box(ctx) }
    }
}

/// The pathway hash (unsigned 64-bit, as in the payloads); 0 when `ctx` is NULL.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn dp_pathway_context_hash(ctx: *const dp_pathway_context) -> u64 {
    // SAFETY: forwarded contract.
    boundary! { unsafe { optional(ctx) }.map_or(0, |c| c.hash()) }
}

/// When the pathway started (its first checkpoint), ns since the Unix epoch (a decoded context
/// carries ms: the value is a multiple of 1000000); 0 when `ctx` is NULL.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn dp_pathway_context_pathway_start_ns(
    ctx: *const dp_pathway_context,
) -> i64 {
    // SAFETY: forwarded contract.
    boundary! { unsafe { optional(ctx) }.map_or(0, |c| c.pathway_start_ns()) }
}

/// When the previous checkpoint happened (the start of the current edge), ns since the Unix
/// epoch (a multiple of 1000000 for a decoded context); 0 when `ctx` is NULL.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn dp_pathway_context_edge_start_ns(ctx: *const dp_pathway_context) -> i64 {
    // SAFETY: forwarded contract.
    boundary! { unsafe { optional(ctx) }.map_or(0, |c| c.edge_start_ns()) }
}

/// Writes the base64 text of `ctx` (what travels under `dd-pathway-ctx-base64`) and a NUL
/// terminator into `buf`, which holds `buf_len` bytes (`DP_PATHWAY_CONTEXT_BASE64_CAPACITY`
/// always fits), and its length without the NUL into `*len` when `len` is not NULL. A buffer
/// too small is `DP_STATUS_INVALID_ARGUMENT` (nothing written). Thread-safe.
///
/// # Safety
/// `ctx` is NULL or live; `buf` is NULL or writable for `buf_len` bytes; `len` is NULL or valid
/// for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_encode_base64(
    ctx: *const dp_pathway_context,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ctx = unsafe { arg_ref(ctx, "ctx") }?;
        let text = ctx.ctx.encode_base64_buf();
        // SAFETY: forwarded contract.
        unsafe { write_text(text.as_bytes(), buf, buf_len, len) }
    }
}

/// Writes the binary form of `ctx` (8 bytes of hash, then two varints; what the legacy key
/// `dd-pathway-ctx` carries) into `buf`, which holds `buf_len` bytes
/// (`DP_PATHWAY_CONTEXT_ENCODED_CAPACITY` always fits), and its length into `*len`. A buffer
/// too small is `DP_STATUS_INVALID_ARGUMENT` (nothing written). Thread-safe.
///
/// # Safety
/// `ctx` is NULL or live; `buf` is NULL or writable for `buf_len` bytes; `len` is NULL or valid
/// for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_encode(
    ctx: *const dp_pathway_context,
    buf: *mut u8,
    buf_len: usize,
    len: *mut usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ctx = unsafe { arg_ref(ctx, "ctx") }?;
        let out = OutParam::new(len, "len")?;
        if buf.is_null() {
            return Err(FfiError::null_argument("buf"));
        }
        let bytes = ctx.ctx.encode();
        if buf_len < bytes.len() {
            return Err(FfiError::invalid_argument(format!(
                "argument `buf_len` is {buf_len}: {} bytes are needed", bytes.len()
            )));
        }
        // SAFETY: `buf` is writable for buf_len >= bytes.len() bytes by contract.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len()) };
        // SAFETY: `len` checked non-NULL; valid for writes by contract.
        unsafe { out.write(bytes.len()) };
        Ok(())
    }
}

/// Shared by the two decoders: `decode` on the bytes of `input` (argument `arg`), the result
/// (or NULL: no context) into `*out`.
unsafe fn decode_into(
    input: dp_bytes,
    arg: &str,
    out: *mut *mut dp_pathway_context,
    decode: fn(&[u8]) -> Option<PathwayContext>,
) -> FfiResult {
    let out = OutParam::new(out, "out")?;
    // SAFETY: forwarded contract: `input` is a valid view.
    let bytes = unsafe { input.as_slice(arg) }?;
    // SAFETY: `out` checked; valid for writes by contract.
    unsafe { write_context(out, decode(bytes)) };
    Ok(())
}

/// Decodes the base64 text of a context (standard alphabet, padding optional). Forgiving: empty
/// input, bad base64, the URL-safe alphabet or a truncated context are "no context": `*out` is
/// set to NULL and NULL (success) is returned. Only a NULL `out` or a `{NULL, len > 0}` view is
/// an error. Free a non-NULL result with `dp_pathway_context_free`.
///
/// # Safety
/// `text` is a valid view; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_decode_base64(
    text: dp_bytes,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { decode_into(text, "text", out, |t| PathwayContext::decode_base64(t)) } }
}

/// Decodes the binary form of a context. Forgiving like `dp_pathway_context_decode_base64`:
/// fewer than 8 bytes or a truncated varint give `*out = NULL` and success; bytes after the two
/// varints are ignored.
///
/// # Safety
/// `bytes` is a valid view; `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_decode(
    bytes: dp_bytes,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { decode_into(bytes, "bytes", out, PathwayContext::decode) } }
}

/// Fan-in: the context to carry on when one piece of work consumed several messages. Of the
/// `n` contexts at `contexts` (NULL elements, messages without a context, are skipped) it picks
/// the one whose pathway started first (ties: the earlier edge start, then the lower hash), so
/// the reported pathway latency covers the oldest input. `*out` receives a new copy of it, or
/// NULL when there was none (no error). Thread-safe.
///
/// # Safety
/// `contexts` points to `n` pointers (NULL allowed when `n` is 0), each NULL or a live context;
/// `out` is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_merge(
    contexts: *const *const dp_pathway_context,
    n: usize,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    boundary! {
        let out = OutParam::new(out, "out")?;
        // SAFETY: forwarded contract.
        let ptrs = unsafe { array(contexts, n, "contexts") }?;
        let inputs: Vec<PathwayContext> = ptrs
            .iter()
            // SAFETY: each element is NULL or a live context by contract.
            .filter_map(|p| unsafe { p.as_ref() }.map(|c| c.ctx))
            .collect();
        // SAFETY: `out` checked; valid for writes by contract.
        unsafe { write_context(out, merge(&inputs)) };
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Carriers
// ---------------------------------------------------------------------------------------------

/// The carrier key under which a pathway context travels as base64 text:
/// `dd-pathway-ctx-base64` (a Kafka header, an HTTP header, a message attribute). The only key
/// the library writes. Static text, NUL-terminated (the NUL is not counted in `len`).
#[no_mangle]
pub extern "C" fn dp_pathway_context_key() -> dp_str {
    boundary! { dp_str { ptr: KEY_NUL.as_ptr().cast(), len: KEY_NUL.len() - 1 } }
}

/// The legacy carrier key `dd-pathway-ctx`, whose value is the binary context: read by the
/// extractors, never written. Static text, NUL-terminated (the NUL is not counted in `len`).
#[no_mangle]
pub extern "C" fn dp_pathway_context_legacy_key() -> dp_str {
    boundary! { dp_str { ptr: LEGACY_KEY_NUL.as_ptr().cast(), len: LEGACY_KEY_NUL.len() - 1 } }
}

/// Injects `ctx` into any carrier: calls `set(user_data, "dd-pathway-ctx-base64", base64 text)`
/// once, on this thread, before returning (see `dp_carrier_set`). Thread-safe.
///
/// # Safety
/// `ctx` is NULL or live; `set` is NULL or a function safe to call with `user_data` as
/// documented.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_inject(
    ctx: *const dp_pathway_context,
    set: dp_carrier_set,
    user_data: *mut c_void,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let ctx = unsafe { arg_ref(ctx, "ctx") }?;
        let set = set.ok_or_else(|| FfiError::null_argument("set"))?;
        let text = ctx.ctx.encode_base64_buf();
        let mut value = [0u8; DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
        value[..text.len()].copy_from_slice(text.as_bytes());
        let key = dp_str { ptr: KEY_NUL.as_ptr().cast(), len: KEY_NUL.len() - 1 };
        let value = dp_str { ptr: value.as_ptr().cast(), len: text.len() };
        // SAFETY: the host's callback with its user_data; both views are NUL-terminated and
        // live until the call returns.
        unsafe { set(user_data, key, value) };
        Ok(())
    }
}

/// Extracts a context from any carrier: asks `get(user_data, key, &value)` for
/// `dd-pathway-ctx-base64`, then, when that is missing or does not decode, for the legacy
/// binary key `dd-pathway-ctx` (see `dp_carrier_get`: on this thread, during
/// this call, never concurrently). `*out` receives the context, or NULL when the carrier has
/// none that decodes (no error). Thread-safe.
///
/// # Safety
/// `get` is NULL or a function safe to call with `user_data` as documented; `out` is NULL or
/// valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_extract(
    get: dp_carrier_get,
    user_data: *mut c_void,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    boundary! {
        let get = get.ok_or_else(|| FfiError::null_argument("get"))?;
        let out = OutParam::new(out, "out")?;
        let mut failure = None;
        let ctx = carrier::extract_with(|key: &str| -> Option<&[u8]> {
            // Keys with their NUL terminator, as the callback's contract promises.
            let key_nul = if key == carrier::PROPAGATION_KEY_BASE64 { KEY_NUL } else { LEGACY_KEY_NUL };
            let key = dp_str { ptr: key_nul.as_ptr().cast(), len: key_nul.len() - 1 };
            let mut value = dp_bytes::EMPTY;
            // SAFETY: the host's callback with its user_data; `value` is a valid out-param.
            if !unsafe { get(user_data, key, &mut value) } {
                return None;
            }
            // SAFETY: the host promises the view is valid until the next call or our return;
            // it is decoded before either.
            match unsafe { value.as_slice("value") } {
                Ok(v) => Some(v),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        // SAFETY: `out` checked; valid for writes by contract.
        unsafe { write_context(out, ctx) };
        Ok(())
    }
}

/// Shared by the two array injectors: finds the slot of `key` (last match) in `items` or
/// appends one, and writes the base64 text into `value_buf`.
#[allow(clippy::too_many_arguments)] // the C signature's arguments, passed through
unsafe fn inject_array<T>(
    ctx: *const dp_pathway_context,
    items: *mut T,
    n: *mut usize,
    capacity: usize,
    value_buf: *mut c_char,
    value_buf_len: usize,
    is_key: impl Fn(&T) -> FfiResult<bool>,
    make: impl FnOnce(dp_str, dp_str) -> T,
) -> FfiResult {
    // SAFETY: forwarded contract.
    let ctx = unsafe { arg_ref(ctx, "ctx") }?;
    // SAFETY: forwarded contract.
    let count = *unsafe { arg_ref(n, "n") }?;
    if count > capacity {
        return Err(FfiError::invalid_argument(format!(
            "`*n` ({count}) is larger than `capacity` ({capacity})"
        )));
    }
    // SAFETY: forwarded contract: `items` holds `count` initialized elements.
    let current = unsafe { array(items.cast_const(), count, "headers") }?;
    let mut slot = None;
    for (i, item) in current.iter().enumerate() {
        if is_key(item).map_err(|e| at_index(e, "headers", i))? {
            slot = Some(i);
        }
    }
    let slot = match slot {
        Some(i) => i,
        None if count < capacity => count,
        None => {
            return Err(FfiError::invalid_argument(format!(
                "no room for the context header: `*n` = `capacity` = {capacity}"
            )))
        }
    };
    let text = ctx.ctx.encode_base64_buf();
    // SAFETY: forwarded contract.
    unsafe {
        write_text(
            text.as_bytes(),
            value_buf,
            value_buf_len,
            std::ptr::null_mut(),
        )
    }?;
    let key = dp_str {
        ptr: KEY_NUL.as_ptr().cast(),
        len: KEY_NUL.len() - 1,
    };
    let value = dp_str {
        ptr: value_buf.cast_const(),
        len: text.len(),
    };
    // SAFETY: `slot` < capacity and `items` is writable for `capacity` elements by contract.
    unsafe {
        items.add(slot).write(make(key, value));
        if slot == count {
            *n = count + 1;
        }
    }
    Ok(())
}

/// Shared by the two list extractors: views each of the `n` headers at `headers` as
/// (key, value) bytes with `view` (an invalid view is an error naming its index), then extracts
/// the context comparing keys with `same_key`; of repeated keys the last wins.
unsafe fn extract_list<'a, T>(
    headers: *const T,
    n: usize,
    out: *mut *mut dp_pathway_context,
    view: impl Fn(&T) -> (FfiResult<&'a [u8]>, FfiResult<&'a [u8]>),
    same_key: fn(&[u8], &[u8]) -> bool,
) -> FfiResult {
    let out = OutParam::new(out, "out")?;
    // SAFETY: forwarded contract.
    let list = unsafe { array(headers, n, "headers") }?;
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::with_capacity(list.len());
    for (i, h) in list.iter().enumerate() {
        match view(h) {
            (Ok(k), Ok(v)) => pairs.push((k, v)),
            (Err(e), _) | (_, Err(e)) => return Err(at_index(e, "headers", i)),
        }
    }
    let ctx = carrier::extract_with(|key| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| same_key(k, key.as_bytes()))
            .map(|(_, v)| *v)
    });
    // SAFETY: `out` checked; valid for writes by contract.
    unsafe { write_context(out, ctx) };
    Ok(())
}

/// Injects `ctx` into a Kafka header list the caller owns: `headers` holds `*n` headers and room
/// for `capacity`. The header with key `dd-pathway-ctx-base64` is replaced (the last one, if
/// repeated), else one is appended and `*n` incremented. The new header's key points to static
/// text and its value into `value_buf` (`value_buf_len` bytes,
/// `DP_PATHWAY_CONTEXT_BASE64_CAPACITY` always fits; the text is NUL-terminated there): keep
/// `value_buf` alive as long as the header. Errors (nothing written): a full list or a buffer
/// too small (`DP_STATUS_INVALID_ARGUMENT`), `DP_STATUS_NULL_ARGUMENT`, `DP_STATUS_INVALID_UTF8`
/// (a key of the list). Thread-safe.
///
/// # Safety
/// `ctx` is NULL or live; `headers` is NULL or writable for `capacity` elements of which the first
/// `*n` are valid; `n` is NULL or valid for reads and writes; `value_buf` is NULL or writable for
/// `value_buf_len` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_inject_kafka(
    ctx: *const dp_pathway_context,
    headers: *mut dp_kafka_header,
    n: *mut usize,
    capacity: usize,
    value_buf: *mut c_char,
    value_buf_len: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            inject_array(
                ctx,
                headers,
                n,
                capacity,
                value_buf,
                value_buf_len,
                |h: &dp_kafka_header| Ok(h.key.as_bytes("headers")? == carrier::PROPAGATION_KEY_BASE64.as_bytes()),
                |key, value| dp_kafka_header {
                    key,
                    value: dp_bytes { ptr: value.ptr.cast(), len: value.len },
                },
            )
        }
    }
}

/// Extracts a context from the `n` Kafka headers at `headers` (keys compared exactly; of
/// repeated keys the last wins; `dd-pathway-ctx-base64` is preferred, the legacy binary key
/// is the fallback). `*out` receives the context, or NULL when there is none that decodes (no
/// error). Thread-safe.
///
/// # Safety
/// `headers` points to `n` valid headers (NULL allowed when `n` is 0); `out` is NULL or valid
/// for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_extract_kafka(
    headers: *const dp_kafka_header,
    n: usize,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract; each view is valid for the call.
        unsafe {
            extract_list(
                headers,
                n,
                out,
                |h: &dp_kafka_header| (h.key.as_bytes("headers"), h.value.as_slice("headers")),
                |a, b| a == b,
            )
        }
    }
}

/// Injects `ctx` into an HTTP header list the caller owns, like
/// `dp_pathway_context_inject_kafka`: the header named `dd-pathway-ctx-base64` in any case is
/// replaced, else one is appended; the value points into `value_buf`. Thread-safe.
///
/// # Safety
/// As `dp_pathway_context_inject_kafka`, with `dp_http_header` elements.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_inject_http(
    ctx: *const dp_pathway_context,
    headers: *mut dp_http_header,
    n: *mut usize,
    capacity: usize,
    value_buf: *mut c_char,
    value_buf_len: usize,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            inject_array(
                ctx,
                headers,
                n,
                capacity,
                value_buf,
                value_buf_len,
                |h: &dp_http_header| {
                    Ok(h.name.as_bytes("headers")?.eq_ignore_ascii_case(carrier::PROPAGATION_KEY_BASE64.as_bytes()))
                },
                |name, value| dp_http_header { name, value },
            )
        }
    }
}

/// Extracts a context from the `n` HTTP headers at `headers` (names compared case-insensitively;
/// of repeated names the last wins; values need not be UTF-8). `*out` receives the context, or
/// NULL when there is none that decodes (no error). Thread-safe.
///
/// # Safety
/// `headers` points to `n` valid headers (NULL allowed when `n` is 0); `out` is NULL or valid
/// for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_pathway_context_extract_http(
    headers: *const dp_http_header,
    n: usize,
    out: *mut *mut dp_pathway_context,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract; each view is valid for the call.
        unsafe {
            extract_list(
                headers,
                n,
                out,
                |h: &dp_http_header| (h.name.as_bytes("headers"), h.value.as_bytes("headers")),
                <[u8]>::eq_ignore_ascii_case,
            )
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::error::{dp_error_code, dp_error_free, dp_error_message, dp_status};
    use crate::exporter::dp_exporter_free;
    use crate::exporter_builder::{
        dp_exporter_builder_build, dp_exporter_builder_new, dp_exporter_builder_set_env,
        dp_exporter_builder_set_language, dp_exporter_builder_set_service,
        dp_exporter_builder_set_test_session_token, dp_exporter_builder_set_url,
    };
    use engine::datastreams::hash::{node_hash, pathway_hash};
    use std::collections::HashMap;
    use std::ffi::CStr;
    use std::ptr::{null, null_mut};
    use std::time::Instant;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * S;
    const NONE: [&str; 0] = [];

    /// The status of `err` (freed); its message is returned too.
    fn check(err: *mut dp_error) -> (dp_status, String) {
        unsafe {
            let code = dp_error_code(err);
            let msg = CStr::from_ptr(dp_error_message(err))
                .to_string_lossy()
                .into_owned();
            dp_error_free(err);
            (code, msg)
        }
    }

    fn ok(err: *mut dp_error) {
        let (code, msg) = check(err);
        assert_eq!(code, dp_status::DP_STATUS_OK, "{msg}");
    }

    fn s(text: &str) -> dp_str {
        dp_str::of(text)
    }

    /// Data streams without a background thread, aimed at `url`.
    fn data_streams(url: &str, request_timeout_ms: u64) -> *mut dp_data_streams {
        unsafe {
            let b = dp_data_streams_builder_new();
            ok(dp_data_streams_builder_set_url(b, s(url)));
            ok(dp_data_streams_builder_set_service(b, s("svc-a")));
            ok(dp_data_streams_builder_set_env(b, s("prod")));
            ok(dp_data_streams_builder_set_flush_interval(b, 0));
            ok(dp_data_streams_builder_set_request_timeout(
                b,
                request_timeout_ms,
            ));
            let mut ds = null_mut();
            ok(dp_data_streams_builder_build(b, &mut ds));
            assert!(!ds.is_null());
            ds
        }
    }

    fn checkpoint_at(
        ds: *const dp_data_streams,
        parent: *const dp_pathway_context,
        tags: &[&str],
        now: i64,
    ) -> *mut dp_pathway_context {
        let views: Vec<dp_str> = tags.iter().map(|t| s(t)).collect();
        let mut out = null_mut();
        ok(unsafe {
            dp_data_streams_set_checkpoint_at(
                ds,
                parent,
                views.as_ptr(),
                views.len(),
                10,
                now,
                &mut out,
            )
        });
        out
    }

    fn base64(ctx: *const dp_pathway_context) -> String {
        let mut buf = [0 as c_char; DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
        let mut len = 0;
        ok(unsafe { dp_pathway_context_encode_base64(ctx, buf.as_mut_ptr(), buf.len(), &mut len) });
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(text.len(), len);
        text
    }

    #[test]
    fn checkpoints_hash_like_the_spec_and_chain() {
        let ds = data_streams("unix:///nonexistent/dp-ffi.sock", 1000);
        unsafe {
            let c1 = checkpoint_at(
                ds,
                null(),
                &["direction:out", "topic:orders", "type:kafka"],
                T0,
            );
            assert_eq!(
                dp_pathway_context_hash(c1),
                12637414960767859789,
                "the spec's vector"
            );
            assert_eq!(dp_pathway_context_pathway_start_ns(c1), T0);
            assert_eq!(dp_pathway_context_edge_start_ns(c1), T0);
            let in_tags = ["type:kafka", "topic:orders", "group:g", "direction:in"];
            let c2 = checkpoint_at(ds, c1, &in_tags, T0 + S);
            assert_eq!(
                dp_pathway_context_hash(c2),
                pathway_hash(
                    node_hash("svc-a", "prod", &in_tags, &NONE),
                    12637414960767859789
                )
            );
            assert_eq!(dp_pathway_context_pathway_start_ns(c2), T0);
            assert_eq!(dp_pathway_context_edge_start_ns(c2), T0 + S);
            // Now-based checkpoint with many tags (past the stack buffer).
            let many: Vec<String> = (0..40).map(|i| format!("extra{i}:v")).collect();
            let mut views: Vec<dp_str> = many.iter().map(|t| s(t)).collect();
            views.push(s("type:internal"));
            let mut c3 = null_mut();
            ok(dp_data_streams_set_checkpoint(
                ds,
                c2,
                views.as_ptr(),
                views.len(),
                -5,
                &mut c3,
            ));
            assert_eq!(
                dp_pathway_context_hash(c3),
                pathway_hash(
                    node_hash("svc-a", "prod", &["type:internal"], &NONE),
                    dp_pathway_context_hash(c2)
                ),
                "only hashable tags count"
            );
            assert!(dp_pathway_context_edge_start_ns(c3) > T0 + S);
            assert_eq!(
                dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_CHECKPOINTS),
                3
            );
            assert_eq!(dp_data_streams_stat(ds, 999), 0);
            let svc = dp_data_streams_service(ds);
            assert_eq!(
                std::slice::from_raw_parts(svc.ptr.cast::<u8>(), svc.len),
                b"svc-a"
            );
            for c in [c1, c2, c3] {
                dp_pathway_context_free(c);
            }
            dp_data_streams_free(ds);
        }
    }

    #[test]
    fn null_and_bad_utf8_arguments_fail_without_writing_out() {
        let ds = data_streams("unix:///nonexistent/dp-ffi.sock", 1000);
        let sentinel = std::ptr::dangling_mut::<dp_pathway_context>();
        unsafe {
            let tags = [
                s("type:x"),
                dp_str {
                    ptr: b"a\xffb".as_ptr().cast(),
                    len: 3,
                },
            ];
            let mut out = sentinel;
            let (code, msg) = check(dp_data_streams_set_checkpoint(
                ds,
                null(),
                tags.as_ptr(),
                2,
                0,
                &mut out,
            ));
            assert_eq!(code, dp_status::DP_STATUS_INVALID_UTF8);
            assert!(msg.contains("`edge_tags[1]`"), "{msg}");
            assert_eq!(out, sentinel, "out untouched on error");
            let (code, _) = check(dp_data_streams_set_checkpoint(
                ds,
                null(),
                null(),
                1,
                0,
                &mut out,
            ));
            assert_eq!(code, dp_status::DP_STATUS_NULL_ARGUMENT);
            let (code, msg) = check(dp_data_streams_set_checkpoint(
                null(),
                null(),
                null(),
                0,
                0,
                &mut out,
            ));
            assert_eq!(
                (code, msg.contains("`ds`")),
                (dp_status::DP_STATUS_NULL_ARGUMENT, true)
            );
            let (code, _) = check(dp_data_streams_set_checkpoint(
                ds,
                null(),
                null(),
                0,
                0,
                null_mut(),
            ));
            assert_eq!(code, dp_status::DP_STATUS_NULL_ARGUMENT);
            assert_eq!(out, sentinel);
            assert_eq!(
                dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_CHECKPOINTS),
                0,
                "nothing recorded"
            );
            // No tags at all is a valid checkpoint.
            ok(dp_data_streams_set_checkpoint(
                ds,
                null(),
                null(),
                0,
                0,
                &mut out,
            ));
            dp_pathway_context_free(out);

            let bad = dp_str {
                ptr: b"\xc3".as_ptr().cast(),
                len: 1,
            };
            let (code, msg) = check(dp_data_streams_kafka_produce(
                ds,
                null(),
                bad,
                s(""),
                0,
                &mut out,
            ));
            assert_eq!(
                (code, msg.contains("`topic`")),
                (dp_status::DP_STATUS_INVALID_UTF8, true)
            );
            let (code, _) = check(dp_data_streams_kafka_consume(
                ds,
                null(),
                s("t"),
                bad,
                s(""),
                0,
                &mut out,
            ));
            assert_eq!(code, dp_status::DP_STATUS_INVALID_UTF8);
            let (code, _) = check(dp_data_streams_track_kafka_commit_offset(
                ds,
                s("g"),
                s("t"),
                bad,
                0,
                1,
            ));
            assert_eq!(code, dp_status::DP_STATUS_INVALID_UTF8);
            let (code, _) = check(dp_data_streams_track_kafka_produce_offset(
                null(),
                s("t"),
                s(""),
                0,
                1,
            ));
            assert_eq!(code, dp_status::DP_STATUS_NULL_ARGUMENT);
            assert_eq!(
                check(dp_data_streams_flush(null(), 10)).0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                check(dp_data_streams_shutdown(null(), 10)).0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );

            // Builders: setters check their arguments; build consumes also on error.
            let b = dp_data_streams_builder_new();
            assert_eq!(
                check(dp_data_streams_builder_set_service(b, bad)).0,
                dp_status::DP_STATUS_INVALID_UTF8
            );
            assert_eq!(
                check(dp_data_streams_builder_set_service(null_mut(), s("x"))).0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            ok(dp_data_streams_builder_set_url(b, s("nope")));
            let mut ds2 = std::ptr::dangling_mut::<dp_data_streams>();
            let (code, msg) = check(dp_data_streams_builder_build(b, &mut ds2));
            assert_eq!(code, dp_status::DP_STATUS_INVALID_ARGUMENT, "{msg}");
            assert_eq!(ds2, std::ptr::dangling_mut::<dp_data_streams>());
            let b = dp_data_streams_builder_new();
            ok(dp_data_streams_builder_set_request_timeout(b, 0));
            assert_eq!(
                check(dp_data_streams_builder_build(b, &mut ds2)).0,
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            let b = dp_data_streams_builder_new();
            ok(dp_data_streams_builder_add_header(b, s("X-Bad"), s("a\nb")));
            assert_eq!(
                check(dp_data_streams_builder_build(b, &mut ds2)).0,
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            let b = dp_data_streams_builder_new();
            assert_eq!(
                check(dp_data_streams_builder_build(b, null_mut())).0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                check(dp_data_streams_builder_build(null_mut(), &mut ds2)).0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                check(dp_data_streams_builder_new_from_exporter(
                    null(),
                    &mut null_mut()
                ))
                .0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );

            // NULL handles: neutral values and no-ops.
            assert_eq!(dp_pathway_context_hash(null()), 0);
            assert_eq!(dp_pathway_context_pathway_start_ns(null()), 0);
            assert_eq!(dp_pathway_context_edge_start_ns(null()), 0);
            assert_eq!(dp_data_streams_stat(null(), 0), 0);
            assert_eq!(dp_data_streams_service(null()).len, 0);
            dp_pathway_context_free(null_mut());
            dp_data_streams_free(null_mut());
            dp_data_streams_builder_free(null_mut());
            dp_data_streams_free(ds);
        }
    }

    #[test]
    fn codecs_round_trip_and_decoding_is_forgiving() {
        unsafe {
            let ctx = dp_pathway_context_new(
                0x0123456789abcdef,
                1_700_000_000_000 * 1_000_000,
                1_700_000_000_500 * 1_000_000,
            );
            let text = base64(ctx);
            assert_eq!(text.len(), 28);
            assert_eq!(
                text,
                engine::datastreams::PathwayContext::from_millis(
                    0x0123456789abcdef,
                    1_700_000_000_000,
                    1_700_000_000_500
                )
                .encode_base64()
            );
            let mut back = null_mut();
            ok(dp_pathway_context_decode_base64(
                dp_bytes::from_slice(text.as_bytes()),
                &mut back,
            ));
            assert_eq!(dp_pathway_context_hash(back), 0x0123456789abcdef);
            assert_eq!(
                dp_pathway_context_edge_start_ns(back),
                1_700_000_000_500 * 1_000_000
            );
            dp_pathway_context_free(back);
            // Missing padding is fine.
            ok(dp_pathway_context_decode_base64(
                dp_bytes::from_slice(text.trim_end_matches('=').as_bytes()),
                &mut back,
            ));
            assert_eq!(dp_pathway_context_hash(back), 0x0123456789abcdef);
            dp_pathway_context_free(back);

            let mut bin = [0u8; DP_PATHWAY_CONTEXT_ENCODED_CAPACITY];
            let mut len = 0;
            ok(dp_pathway_context_encode(
                ctx,
                bin.as_mut_ptr(),
                bin.len(),
                &mut len,
            ));
            assert_eq!(len, 20);
            ok(dp_pathway_context_decode(
                dp_bytes::from_slice(&bin[..len]),
                &mut back,
            ));
            assert_eq!(dp_pathway_context_hash(back), 0x0123456789abcdef);
            dp_pathway_context_free(back);

            // "No context" is not an error: out = NULL.
            for junk in [
                &b""[..],
                b"!!!!",
                b"AAAA",
                b"ASNFZ4mrze_-_-_-_-_-_-_-_-_-",
                &text.as_bytes()[..10],
            ] {
                let mut out = std::ptr::dangling_mut::<dp_pathway_context>();
                ok(dp_pathway_context_decode_base64(
                    dp_bytes::from_slice(junk),
                    &mut out,
                ));
                assert!(out.is_null(), "{junk:?}");
            }
            let mut out = std::ptr::dangling_mut::<dp_pathway_context>();
            ok(dp_pathway_context_decode(
                dp_bytes::from_slice(&bin[..9]),
                &mut out,
            ));
            assert!(out.is_null());
            let (code, _) = check(dp_pathway_context_decode_base64(
                dp_bytes {
                    ptr: null(),
                    len: 4,
                },
                &mut out,
            ));
            assert_eq!(code, dp_status::DP_STATUS_NULL_ARGUMENT);
            assert_eq!(
                check(dp_pathway_context_decode(dp_bytes::EMPTY, null_mut())).0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );

            // Buffers too small: an error, nothing written.
            let mut small = [7 as c_char; 28];
            let (code, msg) = check(dp_pathway_context_encode_base64(
                ctx,
                small.as_mut_ptr(),
                small.len(),
                null_mut(),
            ));
            assert_eq!(code, dp_status::DP_STATUS_INVALID_ARGUMENT, "{msg}");
            assert!(small.iter().all(|b| *b == 7));
            let (code, _) = check(dp_pathway_context_encode(
                ctx,
                bin.as_mut_ptr(),
                19,
                &mut len,
            ));
            assert_eq!(code, dp_status::DP_STATUS_INVALID_ARGUMENT);
            assert_eq!(
                check(dp_pathway_context_encode_base64(
                    ctx,
                    null_mut(),
                    40,
                    null_mut()
                ))
                .0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                check(dp_pathway_context_encode_base64(
                    null(),
                    small.as_mut_ptr(),
                    28,
                    null_mut()
                ))
                .0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            dp_pathway_context_free(ctx);
        }
    }

    #[test]
    fn merge_picks_the_oldest_pathway_and_skips_nulls() {
        unsafe {
            let a = dp_pathway_context_new(1, 5 * S, 9 * S);
            let b = dp_pathway_context_new(2, 3 * S, 9 * S);
            let c = dp_pathway_context_new(3, 3 * S, 8 * S);
            let list = [a.cast_const(), null(), b.cast_const(), c.cast_const()];
            let mut out = null_mut();
            ok(dp_pathway_context_merge(
                list.as_ptr(),
                list.len(),
                &mut out,
            ));
            assert_eq!(
                dp_pathway_context_hash(out),
                3,
                "oldest start, then oldest edge"
            );
            dp_pathway_context_free(out);
            let nulls = [null::<dp_pathway_context>(); 2];
            let mut out = std::ptr::dangling_mut::<dp_pathway_context>();
            ok(dp_pathway_context_merge(nulls.as_ptr(), 2, &mut out));
            assert!(out.is_null());
            let mut out = std::ptr::dangling_mut::<dp_pathway_context>();
            ok(dp_pathway_context_merge(null(), 0, &mut out));
            assert!(out.is_null());
            assert_eq!(
                check(dp_pathway_context_merge(null(), 1, &mut out)).0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            for p in [a, b, c] {
                dp_pathway_context_free(p);
            }
        }
    }

    type Carrier = HashMap<String, Vec<u8>>;

    unsafe extern "C" fn carrier_set(user_data: *mut c_void, key: dp_str, value: dp_str) {
        let map = unsafe { &mut *user_data.cast::<Carrier>() };
        // NUL-terminated as promised.
        assert_eq!(unsafe { *key.ptr.add(key.len) }, 0);
        assert_eq!(unsafe { *value.ptr.add(value.len) }, 0);
        let k = unsafe { key.as_str("key") }.unwrap().to_owned();
        let v = unsafe { value.as_bytes("value") }.unwrap().to_vec();
        map.insert(k, v);
    }

    unsafe extern "C" fn carrier_get(
        user_data: *mut c_void,
        key: dp_str,
        value: *mut dp_bytes,
    ) -> bool {
        let map = unsafe { &*user_data.cast::<Carrier>() };
        assert_eq!(unsafe { *key.ptr.add(key.len) }, 0);
        let k = unsafe { key.as_str("key") }.unwrap();
        match map.get(k) {
            Some(v) => {
                unsafe { *value = dp_bytes::from_slice(v) };
                true
            }
            None => false,
        }
    }

    #[test]
    fn callback_carriers_inject_and_extract_with_legacy_fallback() {
        unsafe {
            let ctx =
                dp_pathway_context_new(42, 1_700_000_000_000_000_000, 1_700_000_001_000_000_000);
            let mut map = Carrier::new();
            ok(dp_pathway_context_inject(
                ctx,
                Some(carrier_set),
                (&mut map as *mut Carrier).cast(),
            ));
            assert_eq!(map.len(), 1);
            assert_eq!(map["dd-pathway-ctx-base64"], base64(ctx).into_bytes());
            let mut out = null_mut();
            ok(dp_pathway_context_extract(
                Some(carrier_get),
                (&mut map as *mut Carrier).cast(),
                &mut out,
            ));
            assert_eq!(dp_pathway_context_hash(out), 42);
            dp_pathway_context_free(out);

            // Bad base64 under the main key: the legacy binary key is used.
            let mut bin = [0u8; 26];
            let mut len = 0;
            ok(dp_pathway_context_encode(
                ctx,
                bin.as_mut_ptr(),
                bin.len(),
                &mut len,
            ));
            let mut legacy = Carrier::new();
            legacy.insert("dd-pathway-ctx-base64".into(), b"%%%".to_vec());
            legacy.insert("dd-pathway-ctx".into(), bin[..len].to_vec());
            ok(dp_pathway_context_extract(
                Some(carrier_get),
                (&mut legacy as *mut Carrier).cast(),
                &mut out,
            ));
            assert_eq!(dp_pathway_context_hash(out), 42);
            dp_pathway_context_free(out);

            let mut empty = Carrier::new();
            let mut out = std::ptr::dangling_mut::<dp_pathway_context>();
            ok(dp_pathway_context_extract(
                Some(carrier_get),
                (&mut empty as *mut Carrier).cast(),
                &mut out,
            ));
            assert!(out.is_null(), "no context: NULL, no error");
            assert_eq!(
                check(dp_pathway_context_extract(None, null_mut(), &mut out)).0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                check(dp_pathway_context_inject(ctx, None, null_mut())).0,
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            let key = dp_pathway_context_key();
            assert_eq!(CStr::from_ptr(key.ptr).to_bytes(), b"dd-pathway-ctx-base64");
            assert_eq!(key.len, 21);
            let key = dp_pathway_context_legacy_key();
            assert_eq!(CStr::from_ptr(key.ptr).to_bytes(), b"dd-pathway-ctx");
            dp_pathway_context_free(ctx);
        }
    }

    fn kafka(key: &'static str, value: &'static [u8]) -> dp_kafka_header {
        dp_kafka_header {
            key: s(key),
            value: dp_bytes::from_slice(value),
        }
    }

    #[test]
    fn array_carriers_replace_append_and_refuse_full_lists() {
        unsafe {
            let ctx =
                dp_pathway_context_new(7, 1_700_000_000_000_000_000, 1_700_000_000_000_000_000);
            let text = base64(ctx);
            let mut buf = [0 as c_char; DP_PATHWAY_CONTEXT_BASE64_CAPACITY];

            // Append.
            let mut headers = [kafka("a", b"1"), kafka("", b""), kafka("", b"")];
            let mut n = 1;
            ok(dp_pathway_context_inject_kafka(
                ctx,
                headers.as_mut_ptr(),
                &mut n,
                3,
                buf.as_mut_ptr(),
                buf.len(),
            ));
            assert_eq!(n, 2);
            assert_eq!(headers[1].key.as_str("k").unwrap(), "dd-pathway-ctx-base64");
            assert_eq!(headers[1].value.as_slice("v").unwrap(), text.as_bytes());
            // Replace (the count stays).
            let other = dp_pathway_context_new(8, 0, 0);
            let mut buf2 = [0 as c_char; DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
            ok(dp_pathway_context_inject_kafka(
                other,
                headers.as_mut_ptr(),
                &mut n,
                3,
                buf2.as_mut_ptr(),
                buf2.len(),
            ));
            assert_eq!(n, 2);
            let mut out = null_mut();
            ok(dp_pathway_context_extract_kafka(
                headers.as_ptr(),
                n,
                &mut out,
            ));
            assert_eq!(dp_pathway_context_hash(out), 8);
            dp_pathway_context_free(out);
            // Full list, small buffer: errors, nothing changed.
            let mut full = [kafka("a", b"1")];
            let mut n1 = 1;
            let (code, msg) = check(dp_pathway_context_inject_kafka(
                ctx,
                full.as_mut_ptr(),
                &mut n1,
                1,
                buf.as_mut_ptr(),
                buf.len(),
            ));
            assert_eq!(code, dp_status::DP_STATUS_INVALID_ARGUMENT, "{msg}");
            assert_eq!(n1, 1);
            let mut n0 = 0;
            let (code, _) = check(dp_pathway_context_inject_kafka(
                ctx,
                full.as_mut_ptr(),
                &mut n0,
                1,
                buf.as_mut_ptr(),
                10,
            ));
            assert_eq!((code, n0), (dp_status::DP_STATUS_INVALID_ARGUMENT, 0));
            let mut n2 = 2;
            let (code, _) = check(dp_pathway_context_inject_kafka(
                ctx,
                full.as_mut_ptr(),
                &mut n2,
                1,
                buf.as_mut_ptr(),
                buf.len(),
            ));
            assert_eq!(code, dp_status::DP_STATUS_INVALID_ARGUMENT, "*n > capacity");
            // Kafka keys are case-sensitive; legacy key fallback.
            let upper = [kafka("DD-PATHWAY-CTX-BASE64", b"")];
            let mut out = std::ptr::dangling_mut::<dp_pathway_context>();
            ok(dp_pathway_context_extract_kafka(
                upper.as_ptr(),
                1,
                &mut out,
            ));
            assert!(out.is_null());
            let bad_key = [dp_kafka_header {
                key: dp_str {
                    ptr: null(),
                    len: 2,
                },
                value: dp_bytes::EMPTY,
            }];
            let (code, msg) = check(dp_pathway_context_extract_kafka(
                bad_key.as_ptr(),
                1,
                &mut out,
            ));
            assert_eq!(code, dp_status::DP_STATUS_NULL_ARGUMENT);
            assert!(msg.contains("`headers[0]`"), "{msg}");

            // HTTP: names in any case are replaced; values need not be UTF-8 to be skipped.
            let mut http = [
                dp_http_header {
                    name: s("Host"),
                    value: s("x"),
                },
                dp_http_header {
                    name: s("DD-Pathway-Ctx-Base64"),
                    value: s("stale"),
                },
                dp_http_header {
                    name: s(""),
                    value: s(""),
                },
            ];
            let mut n = 2;
            ok(dp_pathway_context_inject_http(
                ctx,
                http.as_mut_ptr(),
                &mut n,
                3,
                buf.as_mut_ptr(),
                buf.len(),
            ));
            assert_eq!(n, 2, "replaced in place");
            assert_eq!(http[1].value.as_str("v").unwrap(), text);
            http[0].value = dp_str {
                ptr: b"\xff".as_ptr().cast(),
                len: 1,
            };
            let mut out = null_mut();
            ok(dp_pathway_context_extract_http(http.as_ptr(), n, &mut out));
            assert_eq!(dp_pathway_context_hash(out), 7);
            dp_pathway_context_free(out);
            for c in [ctx, other] {
                dp_pathway_context_free(c);
            }
        }
    }

    #[test]
    fn kafka_helpers_link_a_pipeline_and_track_offsets() {
        let ds = data_streams("unix:///nonexistent/dp-ffi.sock", 1000);
        unsafe {
            let mut p = null_mut();
            ok(dp_data_streams_kafka_produce(
                ds,
                null(),
                s("orders"),
                s(""),
                100,
                &mut p,
            ));
            assert_eq!(
                dp_pathway_context_hash(p),
                pathway_hash(
                    node_hash(
                        "svc-a",
                        "prod",
                        &["direction:out", "topic:orders", "type:kafka"],
                        &NONE
                    ),
                    0
                )
            );
            let mut headers = [kafka("k", b"v"), kafka("", b"")];
            let mut n = 1;
            let mut buf = [0 as c_char; DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
            ok(dp_pathway_context_inject_kafka(
                p,
                headers.as_mut_ptr(),
                &mut n,
                2,
                buf.as_mut_ptr(),
                buf.len(),
            ));
            let mut extracted = null_mut();
            ok(dp_pathway_context_extract_kafka(
                headers.as_ptr(),
                n,
                &mut extracted,
            ));
            let mut c = null_mut();
            ok(dp_data_streams_kafka_consume(
                ds,
                extracted,
                s("orders"),
                s("billing"),
                s("c1"),
                149,
                &mut c,
            ));
            let tags = [
                "direction:in",
                "group:billing",
                "kafka_cluster_id:c1",
                "topic:orders",
                "type:kafka",
            ];
            assert_eq!(
                dp_pathway_context_hash(c),
                pathway_hash(
                    node_hash("svc-a", "prod", &tags, &NONE),
                    dp_pathway_context_hash(p)
                )
            );
            assert_eq!(
                dp_pathway_context_pathway_start_ns(c) / 1_000_000,
                dp_pathway_context_pathway_start_ns(p) / 1_000_000
            );
            let mut c2 = null_mut();
            ok(dp_data_streams_kafka_consume(
                ds,
                null(),
                s("orders"),
                s(""),
                s(""),
                0,
                &mut c2,
            ));
            assert_eq!(
                dp_pathway_context_hash(c2),
                pathway_hash(
                    node_hash(
                        "svc-a",
                        "prod",
                        &["direction:in", "topic:orders", "type:kafka"],
                        &NONE
                    ),
                    0
                ),
                "no context: a new pathway, no group tag"
            );
            ok(dp_data_streams_track_kafka_produce_offset(
                ds,
                s("orders"),
                s(""),
                0,
                41,
            ));
            ok(dp_data_streams_track_kafka_commit_offset(
                ds,
                s("billing"),
                s("orders"),
                s("c1"),
                0,
                42,
            ));
            assert_eq!(
                dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_CHECKPOINTS),
                3
            );
            for x in [p, extracted, c, c2] {
                dp_pathway_context_free(x);
            }
            dp_data_streams_free(ds);
        }
    }

    /// A loopback listener that never accepts: connections succeed (kernel backlog) and no
    /// answer ever comes, so requests run into their timeouts.
    fn black_hole() -> (std::net::TcpListener, String) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        (l, url)
    }

    #[test]
    fn flush_and_shutdown_are_bounded_and_free_never_waits() {
        let (_hole, url) = black_hole();
        let ds = data_streams(&url, 10_000);
        unsafe {
            let c = checkpoint_at(ds, null(), &["type:x"], T0);
            let t = Instant::now();
            let (code, msg) = check(dp_data_streams_flush(ds, 300));
            assert_eq!(code, dp_status::DP_STATUS_TIMEOUT, "{msg}");
            assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
            assert_eq!(
                dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_SEND_ERRORS),
                1
            );
            dp_pathway_context_free(checkpoint_at(ds, c, &["type:x"], T0));
            let t = Instant::now();
            assert_eq!(
                check(dp_data_streams_shutdown(ds, 300)).0,
                dp_status::DP_STATUS_TIMEOUT
            );
            assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
            ok(dp_data_streams_shutdown(ds, 300)); // again: nothing to do
            dp_pathway_context_free(c);
            dp_data_streams_free(ds);

            // A background thread stuck in a request: free returns at once.
            let b = dp_data_streams_builder_new();
            ok(dp_data_streams_builder_set_url(b, s(&url)));
            ok(dp_data_streams_builder_set_flush_interval(b, 10));
            ok(dp_data_streams_builder_set_bucket_duration(b, 1));
            ok(dp_data_streams_builder_set_request_timeout(b, 10_000));
            let mut ds = null_mut();
            ok(dp_data_streams_builder_build(b, &mut ds));
            dp_pathway_context_free(checkpoint_at(ds, null(), &["type:x"], T0));
            std::thread::sleep(Duration::from_millis(100)); // the thread is now sending
            let t = Instant::now();
            dp_data_streams_free(ds);
            assert!(
                t.elapsed() < Duration::from_millis(200),
                "{:?}",
                t.elapsed()
            );
        }
    }

    #[test]
    fn started_from_an_exporter() {
        unsafe {
            let eb = dp_exporter_builder_new();
            ok(dp_exporter_builder_set_url(
                eb,
                s("unix:///nonexistent/dp-ffi.sock"),
            ));
            ok(dp_exporter_builder_set_service(eb, s("web")));
            ok(dp_exporter_builder_set_env(eb, s("staging")));
            ok(dp_exporter_builder_set_language(eb, s("cpp")));
            ok(dp_exporter_builder_set_test_session_token(eb, s("tok")));
            let mut ex = null_mut();
            ok(dp_exporter_builder_build(eb, &mut ex));
            let mut b = null_mut();
            ok(dp_data_streams_builder_new_from_exporter(ex, &mut b));
            let cfg = &(*b).config;
            assert_eq!(
                (cfg.service.as_str(), cfg.env.as_str(), cfg.lang.as_str()),
                ("web", "staging", "cpp")
            );
            assert_eq!(cfg.agent_url, "unix:///nonexistent/dp-ffi.sock");
            assert!(cfg
                .extra_headers
                .iter()
                .any(|(k, v)| k == "X-Datadog-Test-Session-Token" && v == "tok"));
            ok(dp_data_streams_builder_set_test_session_token(
                b,
                s("other"),
            ));
            let cfg = &(*b).config;
            assert_eq!(
                cfg.extra_headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("x-datadog-test-session-token"))
                    .count(),
                1,
                "replaced, not added"
            );
            ok(dp_data_streams_builder_set_service(b, s("web-dsm")));
            ok(dp_data_streams_builder_set_flush_interval(b, 0));
            let mut ds = null_mut();
            ok(dp_data_streams_builder_build(b, &mut ds));
            let svc = dp_data_streams_service(ds);
            assert_eq!(
                std::slice::from_raw_parts(svc.ptr.cast::<u8>(), svc.len),
                b"web-dsm"
            );
            dp_data_streams_free(ds);
            let mut ds = null_mut();
            ok(dp_data_streams_new_from_exporter(ex, &mut ds));
            let svc = dp_data_streams_service(ds);
            assert_eq!(
                std::slice::from_raw_parts(svc.ptr.cast::<u8>(), svc.len),
                b"web"
            );
            dp_data_streams_free(ds);
            dp_exporter_free(ex);
        }
    }

    #[test]
    fn shared_between_threads() {
        let ds = data_streams("unix:///nonexistent/dp-ffi.sock", 1000);
        let addr = ds as usize;
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    let ds = addr as *const dp_data_streams;
                    let mut parent: *mut dp_pathway_context = null_mut();
                    for i in 0..250 {
                        let dir = if i % 2 == 0 {
                            "direction:out"
                        } else {
                            "direction:in"
                        };
                        let next = checkpoint_at(
                            ds,
                            parent,
                            &[dir, "type:kafka", &format!("topic:t{t}")],
                            T0 + i,
                        );
                        unsafe { dp_pathway_context_free(parent) };
                        parent = next;
                    }
                    unsafe { dp_pathway_context_free(parent) };
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        unsafe {
            assert_eq!(
                dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_CHECKPOINTS),
                1000
            );
            dp_data_streams_free(ds);
        }
    }
}
