//! Span normalization (both sides in this file): every chunk of the payload through each side's
//! chunk normalization, in place, each iteration.
//!
//! Setup (untimed) decodes the payload into each side's span model: ours `data_pipeline::Span`
//! (borrowing the payload), libdatadog's `pb::Span` (what `libdd-trace-normalization` works on;
//! built from the same decoded values). After the first iteration the spans are normalized, so
//! the steady state measures what a tracer's spans cost most of the time: checking every rule on
//! valid spans (the realistic payload has no invalid span).

use super::{Done, Group, Input, Iter, SideFn};
use crate::payloads::{Shape, Wire};
use data_pipeline::decode::{self, Format};

fn counted(traces: usize, spans: usize) -> Done {
    Done {
        traces,
        spans,
        out_bytes: 0,
    }
}

mod ours {
    use super::*;
    use data_pipeline::normalize::{NormalizeConfig, NormalizeCounts, Normalizer};

    pub fn normalize<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
        let mut traces = decode::decode(Format::V04, input.data).map_err(|e| e.to_string())?;
        let n = Normalizer::new(NormalizeConfig {
            lang: "python".into(),
            ..NormalizeConfig::default()
        });
        let mut counts = NormalizeCounts::new();
        Ok(Box::new(move || {
            let mut spans = 0;
            for chunk in traces.iter_mut() {
                n.normalize_chunk(chunk, &mut counts)
                    .map_err(|e| e.to_string())?;
                spans += chunk.len();
            }
            Ok(counted(traces.len(), spans))
        }))
    }
}

mod theirs {
    use super::*;
    use libdd_trace_normalization::normalizer::normalize_trace;
    use libdd_trace_protobuf::pb;

    /// The payload as `pb::Span` chunks.
    pub(super) fn pb_traces(data: &[u8]) -> Result<Vec<Vec<pb::Span>>, String> {
        let traces = decode::decode(Format::V04, data).map_err(|e| e.to_string())?;
        Ok(traces
            .iter()
            .map(|t| {
                t.iter()
                    .map(|s| pb::Span {
                        service: s.service.to_string(),
                        name: s.name.to_string(),
                        resource: s.resource.to_string(),
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent_id: s.parent_id,
                        start: s.start,
                        duration: s.duration,
                        error: s.error,
                        meta: s
                            .meta
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        metrics: s.metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                        r#type: s.r#type.to_string(),
                        ..Default::default()
                    })
                    .collect()
            })
            .collect())
    }

    pub fn normalize<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
        let mut traces = pb_traces(input.data)?;
        Ok(Box::new(move || {
            let mut spans = 0;
            for chunk in traces.iter_mut() {
                normalize_trace(chunk).map_err(|e| e.to_string())?;
                spans += chunk.len();
            }
            Ok(counted(traces.len(), spans))
        }))
    }
}

const OURS_NORMALIZE: Option<SideFn> = Some(ours::normalize);

/// The normalization groups.
pub const GROUPS: &[Group] = &[Group {
    name: "normalize_spans",
    what: "normalize every chunk of the payload in place (agent rules; steady state: valid spans)",
    shapes: &[Shape::Realistic, Shape::Tiny],
    wire: Wire::V04,
    needs_sink: false,
    ours: OURS_NORMALIZE,
    theirs: theirs::normalize,
    target: Some(2.0),
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payloads::generate;

    #[test]
    fn both_sides_leave_the_realistic_payload_as_it_is() {
        let p = generate(Shape::Realistic);
        let mut pb = theirs::pb_traces(&p.v04).unwrap();
        let before = pb.clone();
        for t in pb.iter_mut() {
            libdd_trace_normalization::normalizer::normalize_trace(t).unwrap();
        }
        assert_eq!(
            pb, before,
            "libdatadog changed a span: the payload is not all-valid"
        );
        let mut ours = decode::decode(Format::V04, &p.v04).unwrap();
        let n = data_pipeline::normalize::Normalizer::default();
        let mut counts = data_pipeline::normalize::NormalizeCounts::new();
        for t in ours.iter_mut() {
            n.normalize_chunk(t, &mut counts).unwrap();
        }
        assert_eq!(counts.total(), 0);
    }
}
