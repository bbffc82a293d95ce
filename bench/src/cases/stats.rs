//! Client-side stats: adding the spans of a payload to a warm concentrator (every key already
//! present: the steady state), ours vs libdatadog's `libdd-trace-stats`.
//!
//! Setup (untimed, both sides): decode the v0.4 payload, mark top-level spans (each side with its
//! own function), create a concentrator with the agent's default peer tags and the four default
//! span kinds, add every span once. One iteration adds every span again (`Done.spans`: spans
//! examined, as the harness expects). Both sides' eligible counts are compared at setup, where
//! a side whose count differs from the other's fails the case (the count is a property of the
//! payload, computed here by each library).

use super::{Done, Group, Input, Iter};
use crate::payloads::{Shape, Wire};
use std::time::{Duration, UNIX_EPOCH};

/// The agent's default peer tag keys (`pkg/trace/stats` `defaultPeerTags`).
const PEER_TAGS: &[&str] = &[
    "_dd.base_service",
    "amqp.destination",
    "amqp.exchange",
    "amqp.queue",
    "aws.queue.name",
    "bucketname",
    "cassandra.cluster",
    "db.cassandra.contact.points",
    "db.couchbase.seed.nodes",
    "db.hostname",
    "db.instance",
    "db.name",
    "db.system",
    "hazelcast.instance",
    "messaging.kafka.bootstrap.servers",
    "mongodb.db",
    "msmq.queue.path",
    "net.peer.name",
    "network.destination.name",
    "peer.hostname",
    "peer.service",
    "queuename",
    "rpc.service",
    "rulename",
    "server.address",
    "statemachinename",
    "streamname",
    "tablename",
    "topicname",
];
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
            chunk.iter().filter(|s| is_span_eligible(*s, &kinds)).count()
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

/// The stats group, registered in `cases::groups()`.
pub const GROUPS: &[Group] = &[Group {
    name: "stats_add",
    what: "add the spans of a payload to a warm stats concentrator",
    shapes: &[Shape::Realistic, Shape::Tiny],
    wire: Wire::V04,
    needs_sink: false,
    ours: Some(ours_stats_add),
    theirs: theirs_stats_add,
    target: Some(2.0),
}];
