//! data-pipeline's side of every case. A case's entry stays `None` until the API it needs has
//! landed on `main`.

use crate::cases::{Done, Input, Iter, SideFn};
use data_pipeline::decode::{self, Format};
use data_pipeline::encode;
use data_pipeline::exporter::Exporter;
use data_pipeline::Traces;

/// `data_pipeline::decode::decode(Format::V04, ..)`.
pub const DECODE_V04: Option<SideFn> = Some(decode_v04);
/// `data_pipeline::decode::decode(Format::V05, ..)`.
pub const DECODE_V05: Option<SideFn> = Some(decode_v05);
/// decode v0.4 + `data_pipeline::encode::encode_to_vec(Format::V05, ..)`.
pub const DECODE_ENCODE_V04_V05: Option<SideFn> = Some(decode_encode_v04_v05);
/// decode v0.4 + `data_pipeline::encode::encode_to_vec(Format::V04, ..)`.
pub const DECODE_ENCODE_V04_V04: Option<SideFn> = Some(decode_encode_v04_v04);
/// `data_pipeline::exporter::Exporter::send`, input v0.4, output v0.4.
pub const SEND_V04_V04: Option<SideFn> = Some(send_v04_v04);
/// `data_pipeline::exporter::Exporter::send`, input v0.4, output v0.5.
pub const SEND_V04_V05: Option<SideFn> = Some(send_v04_v05);

fn counted(traces: &Traces<'_>) -> Done {
    Done {
        traces: traces.len(),
        spans: traces.iter().map(Vec::len).sum(),
        out_bytes: 0,
    }
}

fn decode_with<'a>(input: &Input<'a>, format: Format) -> Result<Iter<'a>, String> {
    let data = input.data;
    Ok(Box::new(move || {
        let traces = decode::decode(format, data).map_err(|e| e.to_string())?;
        Ok(counted(&traces))
    }))
}

/// Decode v0.4.
pub fn decode_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    decode_with(input, Format::V04)
}

/// Decode v0.5.
pub fn decode_v05<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    decode_with(input, Format::V05)
}

fn decode_encode<'a>(input: &Input<'a>, output: Format) -> Result<Iter<'a>, String> {
    let data = input.data;
    Ok(Box::new(move || {
        let traces = decode::decode(Format::V04, data).map_err(|e| e.to_string())?;
        let mut done = counted(&traces);
        let out = encode::encode_to_vec(output, &traces).map_err(|e| e.to_string())?;
        done.out_bytes = out.len();
        Ok(done)
    }))
}

/// Decode v0.4 + encode v0.5.
pub fn decode_encode_v04_v05<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    decode_encode(input, Format::V05)
}

/// Decode v0.4 + encode v0.4.
pub fn decode_encode_v04_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    decode_encode(input, Format::V04)
}

/// The exporter settings every send case shares with libdatadog's side
/// ([`crate::theirs::exporter_builder`]): same tracer metadata, input v0.4, output `output`.
pub fn exporter_builder(url: &str, output: Format) -> data_pipeline::exporter::ExporterBuilder {
    let mut b = Exporter::builder();
    b.url(url)
        .language("python")
        .language_version("3.12.3")
        .language_interpreter("CPython")
        .tracer_version("2.9.0")
        .env("prod")
        .service("web-store")
        .hostname("bench-host")
        .input_format(Format::V04)
        .output_format(output);
    b
}

fn send_with<'a>(input: &Input<'a>, output: Format) -> Result<Iter<'a>, String> {
    let url = input.sink_url.ok_or("send cases need a sink")?;
    let ex = exporter_builder(url, output)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(sends(ex, input))
}

/// Each iteration: `ex.send` of the whole payload (the send cases' timed work).
pub fn sends<'a>(ex: Exporter, input: &Input<'a>) -> Iter<'a> {
    let data = input.data;
    let (traces, spans) = (input.traces, input.spans);
    Box::new(move || {
        ex.send(data).map_err(|e| e.to_string())?;
        Ok(Done {
            traces,
            spans,
            out_bytes: 0,
        })
    })
}

/// `Exporter::send`, input v0.4, output v0.4 (passthrough).
pub fn send_v04_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    send_with(input, Format::V04)
}

/// `Exporter::send`, input v0.4, output v0.5 (conversion).
pub fn send_v04_v05<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    send_with(input, Format::V05)
}
