//! Client-side stats, ours vs libdatadog.
//!
//! `stats_add`: adding the spans of a payload to a warm concentrator (every key already
//! present: the steady state), ours vs libdatadog's `libdd-trace-stats`.
//!
//! Setup (untimed, both sides): decode the v0.4 payload, mark top-level spans (each side with its
//! own function), create a concentrator with the agent's default peer tags and the four default
//! span kinds, add every span once. One iteration adds every span again (`Done.spans`: spans
//! examined, as the harness expects). Both sides' eligible counts are compared at setup, where
//! a side whose count differs from the other's fails the case (the count is a property of the
//! payload, computed here by each library).
//!
//! `send_stats_v04`: the whole send path with client-side stats on, ours (`Exporter::send`, stats
//! `Auto`) vs libdatadog's `TraceExporter::send` built with `enable_stats`. Both see the same sink,
//! whose `/info` allows client-side stats and lists the agent's default span kinds and peer tags;
//! both decode, mark top-level spans, add every span to their concentrator, drop the P0 chunks
//! (~15% of the chunks of the generated payloads: priority 0 or -1, no error) and encode the
//! rest. The sink checks every request: the kept traces (header and body), the client-computed
//! stats header and the dropped-P0 counts (see `main.rs` `check_sink`).

use super::{Done, Group, Input, Iter};
use crate::payloads::{Shape, Wire};
use std::time::{Duration, UNIX_EPOCH};

/// The agent's default peer tag keys (what the sink's `/info` lists too).
const PEER_TAGS: &[&str] = data_pipeline::stats::AGENT_DEFAULT_PEER_TAGS;
const KINDS: &[&str] = &["client", "server", "producer", "consumer"];

/// Counts the payload's eligible spans with both libraries (each decoding it and marking top-level
/// spans with its own code) and fails the case when they disagree.
fn check_eligible(side: &str, input: &Input<'_>, mine: usize) -> Result<(), String> {
    use data_pipeline::stats::top_level::compute_top_level;
    use data_pipeline::stats::{Concentrator, StatsConfig};
    use libdd_trace_stats::span_concentrator::is_span_eligible;
    use libdd_trace_utils::span::trace_utils::compute_top_level_span;
    let mut ours = data_pipeline::decode::decode(data_pipeline::format::Format::V04, input.data)
        .map_err(|e| e.to_string())?;
    let mut c = Concentrator::new(&StatsConfig::default(), 0, &[], &[], "");
    let ours_count: usize = ours
        .iter_mut()
        .map(|chunk| {
            compute_top_level(chunk);
            c.add_chunk(chunk)
        })
        .sum();
    let (mut theirs, _) = libdd_trace_utils::msgpack_decoder::v04::from_slice(input.data)
        .map_err(|e| format!("{e:?}"))?;
    let kinds = strings(KINDS);
    let theirs_count: usize = theirs
        .iter_mut()
        .map(|chunk| {
            compute_top_level_span(chunk);
            chunk
                .iter()
                .filter(|s| is_span_eligible(*s, &kinds))
                .count()
        })
        .sum();
    if ours_count != theirs_count || mine != ours_count {
        return Err(format!(
            "{side}: eligible spans differ: ours {ours_count}, theirs {theirs_count}, this side {mine}"
        ));
    }
    Ok(())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// data-pipeline: `Concentrator::add_chunk` per chunk.
pub fn ours_stats_add<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    use data_pipeline::stats::top_level::compute_top_level;
    use data_pipeline::stats::{Concentrator, StatsConfig, StatsMode};
    let mut traces = data_pipeline::decode::decode(data_pipeline::format::Format::V04, input.data)
        .map_err(|e| e.to_string())?;
    for chunk in traces.iter_mut() {
        compute_top_level(chunk);
    }
    let first = traces.iter().flatten().map(|s| s.start).min().unwrap_or(0);
    let cfg = StatsConfig {
        mode: StatsMode::On,
        ..Default::default()
    };
    let mut c = Concentrator::new(&cfg, first, &strings(PEER_TAGS), &[], "");
    for chunk in &traces {
        c.add_chunk(chunk);
    }
    let n = traces.len();
    let total: usize = traces.iter().map(Vec::len).sum();
    let eligible: usize = traces.iter().map(|chunk| c.add_chunk(chunk)).sum();
    check_eligible("ours", input, eligible)?;
    Ok(Box::new(move || {
        for chunk in &traces {
            c.add_chunk(chunk);
        }
        Ok(Done {
            traces: n,
            spans: total,
            out_bytes: 0,
        })
    }))
}

/// libdatadog: `SpanConcentrator::add_span` per span.
pub fn theirs_stats_add<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    use libdd_trace_stats::span_concentrator::{is_span_eligible, SpanConcentrator};
    use libdd_trace_utils::span::trace_utils::compute_top_level_span;
    let (mut traces, _) = libdd_trace_utils::msgpack_decoder::v04::from_slice(input.data)
        .map_err(|e| format!("{e:?}"))?;
    for chunk in traces.iter_mut() {
        compute_top_level_span(chunk);
    }
    let first = traces.iter().flatten().map(|s| s.start).min().unwrap_or(0);
    let mut c = SpanConcentrator::new(
        Duration::from_secs(10),
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(first).unwrap_or(0)),
        strings(KINDS),
        strings(PEER_TAGS),
        None,
        vec![],
    );
    for s in traces.iter().flatten() {
        c.add_span(s);
    }
    let kinds = strings(KINDS);
    let eligible = traces
        .iter()
        .flatten()
        .filter(|s| is_span_eligible(*s, &kinds))
        .count();
    check_eligible("theirs", input, eligible)?;
    let n = traces.len();
    let total: usize = traces.iter().map(Vec::len).sum();
    Ok(Box::new(move || {
        for s in traces.iter().flatten() {
            c.add_span(s);
        }
        Ok(Done {
            traces: n,
            spans: total,
            out_bytes: 0,
        })
    }))
}

/// data-pipeline: `Exporter::send` of the v0.4 payload, output v0.4, client-side stats in `Auto`
/// mode (the sink's `/info` allows them, so stats are computed and P0 chunks dropped; the first
/// send, in the warm-up, waits for `/info`).
pub fn ours_send_stats_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    use data_pipeline::format::Format;
    use data_pipeline::stats::StatsMode;
    let url = input.sink_url.ok_or("send cases need a sink")?;
    let ex = crate::ours::exporter_builder(url, Format::V04)
        .stats(StatsMode::Auto)
        .stats_bucket_size(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(crate::ours::sends(ex, input))
}

/// libdatadog: `TraceExporter::send` of the v0.4 payload, output v0.4, built with
/// `enable_stats(10 s)`. Its stats start once its `/info` fetcher has an answer (a process-global
/// cache): the setup waits for it, so that every send computes stats and drops P0 chunks.
pub fn theirs_send_stats_v04<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
    use libdd_capabilities_impl::NativeCapabilities;
    use libdd_data_pipeline::trace_exporter::TraceExporterOutputFormat;
    let url = input.sink_url.ok_or("send cases need a sink")?;
    let mut b = crate::theirs::exporter_builder(url, TraceExporterOutputFormat::V04);
    b.enable_stats(Duration::from_secs(10));
    let ex = b.build::<NativeCapabilities>().map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while libdd_data_pipeline::agent_info::get_agent_info().is_none() {
        if std::time::Instant::now() > deadline {
            return Err("libdatadog: no /info answer within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(crate::theirs::sends(ex, input))
}

/// Groups whose sends drop P0 chunks (see `cases::drops_p0`).
pub const P0_DROPPING_GROUPS: &[&str] = &["send_stats_v04"];

/// The stats groups, registered in `cases::groups()`.
pub const GROUPS: &[Group] = &[
    Group {
        name: "stats_add",
        what: "add the spans of a payload to a warm stats concentrator",
        shapes: &[Shape::Realistic, Shape::Tiny],
        wire: Wire::V04,
        needs_sink: false,
        ours: Some(ours_stats_add),
        theirs: theirs_stats_add,
        target: Some(2.0),
    },
    Group {
        name: "send_stats_v04",
        what: "exporter send of a v0.4 payload with client-side stats and P0 dropping, delivered as v0.4",
        shapes: &[Shape::Realistic, Shape::Tiny],
        wire: Wire::V04,
        needs_sink: true,
        ours: Some(ours_send_stats_v04),
        theirs: theirs_send_stats_v04,
        target: Some(1.5),
    },
];
