//! Structural validation of a payload that is forwarded as it is (the exporter's passthrough path).
//!
//! Passthrough skips decoding for speed, but malformed msgpack must still be rejected here with a
//! message and an offset, not forwarded for the agent to refuse. [`validate`] walks the whole
//! payload once without building spans or allocating: every msgpack value must be complete and
//! well-formed, and the shape must be the format's (v0.4: arrays of span maps with string keys;
//! v0.5: `[string_table, traces]` with 12-element spans whose string indices are in range).
//! Field *values* are checked only for msgpack well-formedness; their types are the decoder's
//! business (a payload that validates may still fail [`super::decode`] on a wrongly typed field).

use super::reader::{shape_error, Reader};
use crate::error::Result;
use crate::format::Format;

/// Validates the structure of a payload of `format` and returns its number of traces (chunks).
pub fn validate(format: Format, bytes: &[u8]) -> Result<usize> {
    match format {
        Format::V04 => validate_v04(bytes),
        Format::V05 => validate_v05(bytes),
    }
}

fn validate_v04(bytes: &[u8]) -> Result<usize> {
    let mut r = Reader::new(bytes);
    let traces = r.array_len("payload (array of traces)")?;
    for _ in 0..traces {
        let spans = r.array_len("trace (array of spans)")?;
        for _ in 0..spans {
            if r.eat_nil() {
                continue;
            }
            let fields = r.map_len("span (map)")?;
            for _ in 0..fields {
                r.key("span field name")?;
                r.skip("span field value")?;
            }
        }
    }
    Ok(traces)
}

fn validate_v05(bytes: &[u8]) -> Result<usize> {
    let mut r = Reader::new(bytes);
    let at = r.pos();
    let outer = r.array_len("payload ([string_table, traces])")?;
    if outer != 2 {
        return Err(shape_error(
            at,
            format_args!("v0.5 payload must be an array of 2 elements, found {outer}"),
        ));
    }
    let strings = r.array_len("string table (array of strings)")?;
    for _ in 0..strings {
        r.skip_str("string table entry")?;
    }
    let index = |r: &mut Reader<'_>, what: &'static str| -> Result<()> {
        let at = r.pos();
        let i = r.index(what)?;
        if i >= strings {
            return Err(shape_error(
                at,
                format_args!("{what}: string index {i} out of range (table has {strings})"),
            ));
        }
        Ok(())
    };
    let traces = r.array_len("payload traces (array of traces)")?;
    for _ in 0..traces {
        let spans = r.array_len("trace (array of spans)")?;
        for _ in 0..spans {
            let at = r.pos();
            let n = r.array_len("span (array of 12)")?;
            if n != 12 {
                return Err(shape_error(
                    at,
                    format_args!("v0.5 span must be an array of 12 elements, found {n}"),
                ));
            }
            index(&mut r, "service")?;
            index(&mut r, "name")?;
            index(&mut r, "resource")?;
            for what in [
                "trace_id",
                "span_id",
                "parent_id",
                "start",
                "duration",
                "error",
            ] {
                r.skip(what)?;
            }
            for _ in 0..r.map_len("meta (map)")? {
                index(&mut r, "meta key")?;
                index(&mut r, "meta value")?;
            }
            for _ in 0..r.map_len("metrics (map)")? {
                index(&mut r, "metrics key")?;
                r.skip("metrics value")?;
            }
            index(&mut r, "type")?;
        }
    }
    Ok(traces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{count_traces, decode};
    use crate::encode::encode_to_vec;
    use crate::ErrorKind;

    fn payload(format: Format) -> Vec<u8> {
        let traces = super::super::gen::realistic_traces(7, 20, 5);
        encode_to_vec(format, &traces).unwrap_or_default()
    }

    #[test]
    fn valid_payloads_validate_with_their_trace_count() {
        for format in [Format::V04, Format::V05] {
            let bytes = payload(format);
            assert_eq!(validate(format, &bytes).ok(), Some(20));
            assert_eq!(count_traces(format, &bytes).ok(), Some(20));
        }
    }

    #[test]
    fn every_truncation_is_rejected_with_an_offset() {
        for format in [Format::V04, Format::V05] {
            let bytes = payload(format);
            for cut in 0..bytes.len() {
                let err = validate(format, &bytes[..cut]).expect_err("truncated payload validated");
                assert_eq!(err.kind(), ErrorKind::Decode);
                assert!(err.message().contains("at byte"), "{err}");
                // Whatever validates also decodes (the decoder is the stricter of the two).
                assert!(decode(format, &bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn v05_string_index_out_of_range_is_rejected() {
        // [["", "s"], [[[9, 1, 1, 1, 2, 0, 0, 0, 0, {}, {}, 0]]]]: service index 9 of 2.
        let bytes = [
            0x92, 0x92, 0xa0, 0xa1, b's', 0x91, 0x91, 0x9c, 0x09, 0x01, 0x01, 0x01, 0x02, 0x00,
            0x00, 0x00, 0x00, 0x80, 0x80, 0x00,
        ];
        let err = validate(Format::V05, &bytes).expect_err("out-of-range index validated");
        assert!(err.message().contains("out of range"), "{err}");
        assert!(decode(Format::V05, &bytes).is_err());
    }

    #[test]
    fn v04_span_that_is_not_a_map_is_rejected() {
        let bytes = [0x91, 0x91, 0x01];
        assert!(validate(Format::V04, &bytes).is_err());
    }
}
