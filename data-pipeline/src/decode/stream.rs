//! Trace-by-trace decoding, for callers that process and re-encode one chunk at a time (the
//! exporter's processing path): the decoded spans of one chunk stay in cache from decode to
//! encode and their allocations are reused by the next chunk, instead of the whole payload's
//! spans being built, then walked twice more from memory.
//!
//! The chunks and spans yielded are exactly those of [`super::decode`] on the same bytes, in the
//! same order, with the same errors (a chunk decodes only once the previous ones have been
//! handled, so a malformed payload can fail after some chunks were yielded).

use super::reader::Reader;
use super::v04;
use crate::error::Result;
use crate::span::Trace;

/// A v0.4 payload being decoded one trace (chunk) at a time. (v0.5 input is not streamed: a
/// second caller of the v0.5 decoder's internals cost the whole-payload `decode_v05` 3% of
/// its instructions through changed inlining; v0.5 input takes the whole-payload path.)
pub(crate) struct V04Stream<'a> {
    r: Reader<'a>,
    /// Traces not yet decoded.
    left: usize,
}

impl<'a> V04Stream<'a> {
    /// Reads the payload's header. Errors: as [`super::decode`].
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let left = r.array_len("payload (array of traces)")?;
        Ok(V04Stream { r, left })
    }

    /// Decodes the next trace into `trace` (replacing what it held); false when every trace has
    /// been read. (The decoder's own per-trace function, so that the whole-payload decoder is
    /// compiled as before: a second caller of the span decoder changed its inlining and cost
    /// `decode_v04` 1-3%.)
    pub(crate) fn next_into(&mut self, trace: &mut Trace<'a>) -> Result<bool> {
        if self.left == 0 {
            return Ok(false);
        }
        self.left -= 1;
        // The previous trace is freed first, so that its memory (still in cache) is what the
        // allocator hands out for this one.
        *trace = Vec::new();
        *trace = v04::decode_trace(&mut self.r)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, gen, Format};

    #[test]
    fn yields_what_decode_yields() {
        let traces = gen::realistic_and_arbitrary(7, 40, 10, 3, 20);
        let bytes = crate::encode::encode_to_vec(Format::V04, &traces).unwrap();
        let want = decode(Format::V04, &bytes).unwrap();
        let mut s = V04Stream::new(&bytes).unwrap();
        let mut got = Vec::new();
        let mut t = Vec::new();
        while s.next_into(&mut t).unwrap() {
            got.push(t.clone());
        }
        assert_eq!(got, want);
    }

    #[test]
    fn errors_as_decode() {
        let traces = gen::realistic_traces(1, 3, 10);
        let bytes = crate::encode::encode_to_vec(Format::V04, &traces).unwrap();
        let cut = &bytes[..bytes.len() - 10];
        let want = decode(Format::V04, cut).unwrap_err();
        let mut s = V04Stream::new(cut).unwrap();
        let mut t = Vec::new();
        let got = loop {
            match s.next_into(&mut t) {
                Ok(true) => continue,
                Ok(false) => panic!("truncated payload decoded"),
                Err(e) => break e,
            }
        };
        assert_eq!(got.to_string(), want.to_string());
    }
}
