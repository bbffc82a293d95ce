//! The C ABI of data-pipeline. Every exported item is `dp_`-prefixed; C users read
//! `include/data-pipeline.h`, which cbindgen generates from the doc comments in this crate.
//!
//! Rules every export follows (so bindings can rely on them):
//! - Each `extern "C"` function body runs inside [`boundary!`]: a panic never crosses into the host; a
//!   fallible function returns a `DP_STATUS_PANIC` error, an infallible one its documented neutral value.
//! - Fallible functions return `dp_error *`: NULL on success. Out-params are written only on success.
//! - Inputs are borrowed for the call only ([`slice::dp_str`], [`slice::dp_bytes`]); what is kept is copied.
//! - Every `_free` accepts NULL. A function that consumes a handle says so, and consumes it also on error.
//!
//! One module per concern or handle: [`error`], [`boundary`], [`slice`], [`version`], [`log`],
//! [`exporter_builder`], [`exporter`], [`response`], [`span`] (spans, links, events), [`trace`]
//! (trace chunks), [`datastreams`] (Data Streams Monitoring, pathway contexts, carriers), [`debug`];
//! [`exporter_processing`] (the normalization and obfuscation options), [`obfuscate`] and
//! [`normalize`] (standalone functions), [`string`] (text the library returns); [`background`]
//! (enqueue, flush, health, fork hooks).

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The C names are written here as C sees them (`dp_span`, `DP_STATUS_OK`), so `grep` finds them.
#![allow(non_camel_case_types)]

#[macro_use]
pub mod boundary;
pub mod background;
pub mod datastreams;
pub mod debug;
pub mod error;
pub mod exporter;
pub mod exporter_builder;
pub mod exporter_processing;
pub mod log;
pub mod normalize;
pub mod obfuscate;
pub mod response;
pub mod slice;
pub mod span;
pub mod stats;
pub mod string;
pub mod trace;
pub mod version;

/// Compile-time assertions of the thread-safety each handle documents.
#[allow(dead_code)]
pub(crate) mod assert_thread {
    /// Compiles only for `Send` types.
    pub const fn send<T: Send>() {}
    /// Compiles only for `Sync` types.
    pub const fn sync<T: Sync>() {}
}
