//! The property both targets check, for any input bytes:
//! - decoding never panics; it returns spans or a `Decode` error;
//! - what decodes re-encodes in the same format, and that encoding decodes again and re-encodes
//!   byte-for-byte identically (compared as bytes so NaN metrics do not break equality);
//! - `count_traces` agrees with the decoded trace count;
//! - what decodes also encodes in the other format, which decodes;
//! - `split_payload` splits any decodable payload of two or more spans into two decodable halves
//!   holding all the spans.

use data_pipeline::decode::{count_traces, decode, Format};
use data_pipeline::encode::{encode_to_vec, split_payload};
use data_pipeline::ErrorKind;

pub fn check(format: Format, data: &[u8]) {
    let traces = match decode(format, data) {
        Ok(t) => t,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
            return;
        }
    };
    assert_eq!(count_traces(format, data).expect("count_traces"), traces.len());

    let bytes1 = encode_to_vec(format, &traces).expect("re-encode");
    let traces2 = decode(format, &bytes1).expect("decode of our own encoding");
    let bytes2 = encode_to_vec(format, &traces2).expect("re-encode twice");
    assert_eq!(bytes1, bytes2, "re-encoding is not stable");

    let other = match format {
        Format::V04 => Format::V05,
        Format::V05 => Format::V04,
    };
    let bytes3 = encode_to_vec(other, &traces).expect("encode in the other format");
    let traces3 = decode(other, &bytes3).expect("decode of the other format");
    assert_eq!(traces3.len(), traces.len());

    let spans: usize = traces.iter().map(Vec::len).sum();
    if spans >= 2 {
        let (a, b) = split_payload(format, &bytes1).expect("split");
        let (ta, tb) = (decode(format, &a).expect("first half"), decode(format, &b).expect("second half"));
        let n: usize = ta.iter().chain(tb.iter()).map(Vec::len).sum();
        assert_eq!(n, spans);
    }
}
