//! Decoding msgpack trace payloads (`/v0.4/traces`, `/v0.5/traces`) into the span model.
//!
//! Decoding is zero-copy: every string of the returned [`Traces`] borrows from the input buffer
//! ([`crate::span::Str::borrowed`]), except strings whose invalid UTF-8 had to be repaired. Use
//! [`decode_owned`] (or [`crate::span::traces_into_owned`]) to keep spans after the buffer is
//! gone.
//!
//! What the decoders accept follows the agent's own decoders (datadog-agent
//! `pkg/proto/pbgo/trace`), so a payload the agent would take is taken here:
//! - integer fields accept every msgpack int width; ids accept negative ints (reinterpreted as
//!   unsigned, for tracers without unsigned types); `start`/`duration` reject uints above
//!   `i64::MAX` and `error` anything outside `i32` (as the agent does); integer fields do not
//!   accept floats (neither the agent nor libdatadog does);
//! - metrics accept float64, any int, and float32 (a lossless widening the agent does not do);
//! - strings accept `str` and `bin`; `nil` is "" and, for maps, arrays and numbers, empty or 0;
//! - invalid UTF-8 is repaired the agent's way: one U+FFFD per offending byte (owned string);
//! - unknown v0.4 keys are skipped whatever their content (iteratively, no recursion);
//! - `nil` spans, links, events and event attributes are skipped (the agent keeps nil pointers
//!   that later stages drop; the model has no "nil span");
//! - bytes after the payload are ignored, as the agent ignores them.
//!
//! Malformed input yields an [`ErrorKind::Decode`](crate::ErrorKind::Decode) error that says what
//! was expected, what was found and the byte offset. The decoders never panic, never loop
//! forever, never recurse on input nesting, and never reserve more memory than the remaining
//! input could fill.

use crate::error::Result;
use crate::span::Traces;

mod reader;
pub(crate) mod stream;
pub mod v04;
pub mod v05;
mod validate;

pub use validate::validate;

pub use crate::format::Format;

/// Decodes a payload of `format`, borrowing strings from `bytes`.
pub fn decode(format: Format, bytes: &[u8]) -> Result<Traces<'_>> {
    match format {
        Format::V04 => v04::decode(bytes),
        Format::V05 => v05::decode(bytes),
    }
}

/// Decodes a payload of `format` into spans that own their strings (no borrow of `bytes`).
pub fn decode_owned(format: Format, bytes: &[u8]) -> Result<Traces<'static>> {
    decode(format, bytes).map(crate::span::traces_into_owned)
}

/// The number of traces (chunks) in a payload, without decoding any span: for v0.4 the top-level
/// array header; for v0.5 the string table is skipped by its length prefixes (strings are not
/// validated) and the traces array header is read. Meant for the `X-Datadog-Trace-Count` header
/// of a payload a tracer hands over already encoded.
pub fn count_traces(format: Format, bytes: &[u8]) -> Result<usize> {
    match format {
        Format::V04 => v04::count_traces(bytes),
        Format::V05 => v05::count_traces(bytes),
    }
}

/// Entry points for `benches/codec.rs` only (not a stable API): they run this module's
/// primitive reader over a buffer so the bench can compare it with `rmp::decode`.
#[doc(hidden)]
pub mod bench_hooks {
    use super::reader::Reader;
    use crate::error::Result;

    /// Reads `(str, uint, float64)` triples until the end; returns a checksum.
    pub fn read_triples(bytes: &[u8]) -> Result<u64> {
        let mut r = Reader::new(bytes);
        let mut sum = 0u64;
        while r.remaining() > 0 {
            sum = sum.wrapping_add(r.str("s")?.len() as u64);
            sum = sum.wrapping_add(r.u64("u")?);
            sum = sum.wrapping_add(r.f64("f")?.to_bits());
        }
        Ok(sum)
    }
}

/// Deterministic span generators shared with the benches (test builds only).
#[cfg(test)]
#[path = "../../benches/support/gen.rs"]
pub(crate) mod gen;

#[cfg(test)]
mod tests;
