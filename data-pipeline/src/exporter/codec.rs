//! Bridge to the codecs (`crate::decode`, `crate::encode`). TEMPORARY stand-in until the codec
//! branch lands: v0.4 trace counting only; everything else answers `Unsupported`.

use crate::{Error, ErrorKind, Result, Trace, Traces};

/// A msgpack trace payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `/v0.4/traces`.
    V04,
    /// `/v0.5/traces`.
    V05,
}

impl Format {
    /// The agent endpoint for this format.
    pub fn endpoint_path(self) -> &'static str {
        match self {
            Format::V04 => "/v0.4/traces",
            Format::V05 => "/v0.5/traces",
        }
    }
}

fn unsupported(what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("{what}: codec not available yet"),
    )
}

/// Number of traces in a payload, without decoding the spans.
pub fn count_traces(format: Format, payload: &[u8]) -> Result<usize> {
    match format {
        Format::V04 => rmp::decode::read_array_len(&mut &payload[..])
            .map(|n| n as usize)
            .map_err(|e| Error::decode(0, format!("not a v0.4 payload: {e}"))),
        Format::V05 => Err(unsupported("v0.5 counting")),
    }
}

/// Decodes a payload.
pub fn decode(_format: Format, _payload: &[u8]) -> Result<Traces<'_>> {
    Err(unsupported("decoding"))
}

/// Encodes traces.
pub fn encode_to_vec(_format: Format, _traces: &[Trace<'_>]) -> Result<Vec<u8>> {
    Err(unsupported("encoding"))
}

/// Splits a payload into two payloads of about half the spans each; `InvalidArgument` when it
/// holds fewer than two spans.
pub fn split_payload(_format: Format, _payload: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(unsupported("splitting"))
}
