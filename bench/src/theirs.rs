//! libdatadog's side of every case, through its public APIs only.
//!
//! Each function sets up what the case needs (outside the timed region) and returns the closure
//! that runs one iteration.

use crate::cases::{Done, Input, Iter};
use libdd_capabilities_impl::NativeCapabilities;
use libdd_data_pipeline::trace_exporter::{
    TraceExporter, TraceExporterBuilder, TraceExporterInputFormat, TraceExporterOutputFormat,
};
use libdd_shared_runtime::ForkSafeRuntime;
use libdd_trace_utils::msgpack_decoder;
use libdd_trace_utils::msgpack_encoder;
use libdd_trace_utils::span::v04::SpanSlice;
use libdd_trace_utils::trace_utils::convert_trace_chunks_v04_to_v05;
use libdd_trace_utils::tracer_payload::TraceChunks;

fn counted(traces: &[Vec<SpanSlice<'_>>]) -> Done {
    Done {
        traces: traces.len(),
        spans: traces.iter().map(Vec::len).sum(),
        out_bytes: 0,
    }
}

/// Decode v0.4: `msgpack_decoder::v04::from_slice` (what `TraceExporter::send` runs).
pub fn decode_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    let data = input.data;
    Ok(Box::new(move || {
        let (traces, _) = msgpack_decoder::v04::from_slice(data).map_err(|e| e.to_string())?;
        Ok(counted(&traces))
    }))
}

/// Decode v0.5: `msgpack_decoder::v05::from_slice`.
pub fn decode_v05<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    let data = input.data;
    Ok(Box::new(move || {
        let (traces, _) = msgpack_decoder::v05::from_slice(data).map_err(|e| e.to_string())?;
        Ok(counted(&traces))
    }))
}

/// Decode v0.4 + encode v0.5, as `TraceExporter` does for output v0.5:
/// `convert_trace_chunks_v04_to_v05` then `rmp_serde::encode::write` of (dict, traces).
pub fn decode_encode_v04_v05<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    let data = input.data;
    let mut last_len = 1024;
    Ok(Box::new(move || {
        let (traces, _) = msgpack_decoder::v04::from_slice(data).map_err(|e| e.to_string())?;
        let mut done = counted(&traces);
        let chunks = convert_trace_chunks_v04_to_v05(&traces).map_err(|e| e.to_string())?;
        let TraceChunks::V05(payload) = chunks else {
            return Err("conversion did not give v0.5".into());
        };
        // TraceExporter sizes the buffer from the previous payload; so do we.
        let mut out = Vec::with_capacity(last_len);
        rmp_serde::encode::write(&mut out, &payload).map_err(|e| e.to_string())?;
        last_len = out.len();
        done.out_bytes = out.len();
        Ok(done)
    }))
}

/// Decode v0.4 + encode v0.4: `msgpack_encoder::v04::to_vec_with_capacity_from_v04`.
pub fn decode_encode_v04_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    let data = input.data;
    let mut last_len: u32 = 1024;
    Ok(Box::new(move || {
        let (traces, _) = msgpack_decoder::v04::from_slice(data).map_err(|e| e.to_string())?;
        let mut done = counted(&traces);
        let out = msgpack_encoder::v04::to_vec_with_capacity_from_v04(&traces, last_len);
        last_len = out.len() as u32;
        done.out_bytes = out.len();
        Ok(done)
    }))
}

/// The exporter settings every send case shares with our side
/// ([`crate::ours::exporter_builder`]): same tracer metadata, input v0.4, output `output`.
pub fn exporter_builder(
    url: &str,
    output: TraceExporterOutputFormat,
) -> TraceExporterBuilder<ForkSafeRuntime> {
    let mut b = TraceExporter::<NativeCapabilities, ForkSafeRuntime>::builder();
    b.set_url(url)
        .set_language("python")
        .set_language_version("3.12.3")
        .set_language_interpreter("CPython")
        .set_tracer_version("2.9.0")
        .set_env("prod")
        .set_service("web-store")
        .set_hostname("bench-host")
        .set_input_format(TraceExporterInputFormat::V04)
        .set_output_format(output);
    b
}

fn exporter(
    url: &str,
    output: TraceExporterOutputFormat,
) -> Result<TraceExporter<NativeCapabilities, ForkSafeRuntime>, String> {
    exporter_builder(url, output)
        .build::<NativeCapabilities>()
        .map_err(|e| e.to_string())
}

fn send_with<'a>(input: &Input<'a>, output: TraceExporterOutputFormat) -> Result<Iter<'a>, String> {
    let url = input.sink_url.ok_or("send cases need a sink")?;
    Ok(sends(exporter(url, output)?, input))
}

/// Each iteration: `ex.send` of the whole payload (the send cases' timed work).
pub fn sends<'a>(
    ex: TraceExporter<NativeCapabilities, ForkSafeRuntime>,
    input: &Input<'a>,
) -> Iter<'a> {
    let data = input.data;
    let (traces, spans) = (input.traces, input.spans);
    Box::new(move || {
        ex.send(data).map_err(|e| format!("{e:?}"))?;
        Ok(Done {
            traces,
            spans,
            out_bytes: 0,
        })
    })
}

/// `TraceExporter::send`, input v0.4, output v0.4.
pub fn send_v04_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    send_with(input, TraceExporterOutputFormat::V04)
}

/// `TraceExporter::send`, input v0.4, output v0.5.
pub fn send_v04_v05<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    send_with(input, TraceExporterOutputFormat::V05)
}

/// Span count of a body the sink received (for the end-to-end check), decoded by libdatadog.
pub fn count_spans(v05: bool, body: &[u8]) -> Result<usize, String> {
    let (traces, _) = if v05 {
        msgpack_decoder::v05::from_slice(body)
    } else {
        msgpack_decoder::v04::from_slice(body)
    }
    .map_err(|e| e.to_string())?;
    Ok(traces.iter().map(Vec::len).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payloads::{generate, Shape};

    #[test]
    fn libdatadog_reads_every_generated_payload() {
        for shape in [Shape::Realistic, Shape::Huge, Shape::Tiny, Shape::Links] {
            let p = generate(shape);
            assert_eq!(count_spans(false, &p.v04), Ok(p.spans), "{shape:?} v0.4");
            if let Some(v05) = &p.v05 {
                assert_eq!(count_spans(true, v05), Ok(p.spans), "{shape:?} v0.5");
            }
        }
        // Links shape: links, events and meta_struct survive libdatadog's decoder.
        let p = generate(Shape::Links);
        let (traces, _) = msgpack_decoder::v04::from_slice(&p.v04).unwrap();
        let spans = || traces.iter().flatten();
        assert!(spans().any(|s| !s.span_links.is_empty()));
        assert!(spans().any(|s| !s.span_events.is_empty()));
        assert!(spans().any(|s| !s.meta_struct.is_empty()));
    }
}
