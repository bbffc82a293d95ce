//! The case registry: a case is one small function per side plus one entry here.
//!
//! A side function gets the case [`Input`] (payload bytes, counts, sink URL), does its setup
//! outside the timed region and returns an [`Iter`]: the closure that runs one iteration and says
//! what it did ([`Done`]), so the harness can check that both sides did the same work.

use crate::payloads::{Shape, Wire};
use crate::{ours, theirs};

mod background;
mod normalization;
mod obfuscation;
mod stats;

/// Every registered group: [`GROUPS`] plus the groups of the case modules.
fn groups() -> impl Iterator<Item = &'static Group> {
    GROUPS
        .iter()
        .chain(obfuscation::GROUPS)
        .chain(normalization::GROUPS)
        .chain(stats::GROUPS)
        .chain(background::GROUPS)
}

/// What a side function receives.
pub struct Input<'a> {
    /// The payload, in the case's input wire format.
    pub data: &'a [u8],
    /// Traces in the payload.
    pub traces: usize,
    /// Spans in the payload.
    pub spans: usize,
    /// `http://127.0.0.1:PORT` of the sink, for the send cases.
    pub sink_url: Option<&'a str>,
}

/// What one iteration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Done {
    /// Traces decoded / sent.
    pub traces: usize,
    /// Spans decoded / sent.
    pub spans: usize,
    /// Bytes produced by an encoder (0 when the case produces none locally).
    pub out_bytes: usize,
}

/// One iteration of a side.
pub type Iter<'a> = Box<dyn FnMut() -> Result<Done, String> + 'a>;

/// Sets a side up for a case.
pub type SideFn = for<'a> fn(&Input<'a>) -> Result<Iter<'a>, String>;

/// Which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// data-pipeline.
    Ours,
    /// libdatadog.
    Theirs,
}

impl Side {
    /// "ours" / "theirs".
    pub fn name(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Theirs => "theirs",
        }
    }
    /// Parses "ours" / "theirs".
    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "ours" => Some(Side::Ours),
            "theirs" => Some(Side::Theirs),
            _ => None,
        }
    }
}

/// A benchmark case.
pub struct Case {
    /// Unique name, `group.shape` (e.g. `decode_v04.realistic`).
    pub name: String,
    /// Case group (`decode_v04`, `send_v04_v05` ...): what is measured.
    pub group: &'static str,
    /// Payload shape.
    pub shape: Shape,
    /// Input wire format.
    pub wire: Wire,
    /// Whether the case sends to the sink.
    pub needs_sink: bool,
    /// Our side; `None` until our API for it has landed.
    pub ours: Option<SideFn>,
    /// libdatadog's side.
    pub theirs: SideFn,
    /// Target ratio ours/theirs (throughput), if the issue sets one.
    pub target: Option<f64>,
}

impl Case {
    /// The side function, if that side exists.
    pub fn side(&self, side: Side) -> Option<SideFn> {
        match side {
            Side::Ours => self.ours,
            Side::Theirs => Some(self.theirs),
        }
    }
}

/// A registry entry: one measurement on one or more payload shapes.
pub struct Group {
    /// Group name; case names are `group.shape`.
    pub name: &'static str,
    /// What it measures.
    pub what: &'static str,
    /// Shapes it runs on.
    pub shapes: &'static [Shape],
    /// Input wire format.
    pub wire: Wire,
    /// Whether it sends to the sink.
    pub needs_sink: bool,
    /// Our side (`None` until the API has landed).
    pub ours: Option<SideFn>,
    /// libdatadog's side.
    pub theirs: SideFn,
    /// Target ratio ours/theirs, if the issue sets one.
    pub target: Option<f64>,
}

const ALL4: &[Shape] = &[Shape::Realistic, Shape::Huge, Shape::Tiny, Shape::Links];
const NO_LINKS: &[Shape] = &[Shape::Realistic, Shape::Huge, Shape::Tiny];

/// The registry. Adding a case = one function per side + one entry here.
pub const GROUPS: &[Group] = &[
    Group {
        name: "decode_v04",
        what: "decode a v0.4 payload into spans (and drop them)",
        shapes: ALL4,
        wire: Wire::V04,
        needs_sink: false,
        ours: ours::DECODE_V04,
        theirs: theirs::decode_v04,
        target: Some(1.5),
    },
    Group {
        name: "decode_v05",
        what: "decode a v0.5 payload into spans (and drop them)",
        shapes: NO_LINKS,
        wire: Wire::V05,
        needs_sink: false,
        ours: ours::DECODE_V05,
        theirs: theirs::decode_v05,
        target: Some(1.5),
    },
    Group {
        name: "decode_encode_v04_v05",
        what: "decode v0.4, encode the spans as a v0.5 payload (links/events as JSON meta)",
        shapes: ALL4,
        wire: Wire::V04,
        needs_sink: false,
        ours: ours::DECODE_ENCODE_V04_V05,
        theirs: theirs::decode_encode_v04_v05,
        target: Some(2.0),
    },
    Group {
        name: "decode_encode_v04_v04",
        what: "decode v0.4, encode the spans as a v0.4 payload",
        shapes: &[Shape::Realistic, Shape::Links],
        wire: Wire::V04,
        needs_sink: false,
        ours: ours::DECODE_ENCODE_V04_V04,
        theirs: theirs::decode_encode_v04_v04,
        target: None,
    },
    Group {
        name: "send_v04_v04",
        what: "exporter send of a v0.4 payload, delivered as v0.4 to the loopback sink",
        shapes: &[Shape::Realistic, Shape::Tiny],
        wire: Wire::V04,
        needs_sink: true,
        ours: ours::SEND_V04_V04,
        theirs: theirs::send_v04_v04,
        target: Some(3.0),
    },
    Group {
        name: "send_v04_v05",
        what: "exporter send of a v0.4 payload, converted and delivered as v0.5",
        shapes: &[Shape::Realistic],
        wire: Wire::V04,
        needs_sink: true,
        ours: ours::SEND_V04_V05,
        theirs: theirs::send_v04_v05,
        target: None,
    },
];

/// Whether a group batches several iterations' traces per request (the background exporters):
/// the sink check then counts traces delivered, not requests.
pub fn batched(group: &str) -> bool {
    background::batched(group)
}

/// True when the group's sends drop P0 chunks (client-side stats on): the sink then expects the
/// payload's sampled chunks only, and the P0 headers.
pub fn drops_p0(group: &str) -> bool {
    stats::P0_DROPPING_GROUPS.contains(&group)
}

/// What a group measures.
pub fn describe_group(group: &str) -> &'static str {
    groups()
        .find(|g| g.name == group)
        .map(|g| g.what)
        .unwrap_or("")
}

/// Every case, in report order.
pub fn all() -> Vec<Case> {
    groups()
        .flat_map(|g| {
            g.shapes.iter().map(move |&shape| Case {
                name: format!("{}.{}", g.name, shape.name()),
                group: g.name,
                shape,
                wire: g.wire,
                needs_sink: g.needs_sink,
                ours: g.ours,
                theirs: g.theirs,
                target: g.target,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique_and_v05_inputs_exist() {
        let all = all();
        let mut names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        // The links shape has no v0.5 encoding.
        assert!(!all
            .iter()
            .any(|c| c.wire == Wire::V05 && c.shape == Shape::Links));
        assert!(all.iter().all(|c| !describe_group(c.group).is_empty()));
    }
}
