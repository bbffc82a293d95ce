//! The case registry: a case is one small function per side plus one entry here.
//!
//! A side function gets the case [`Input`] (payload bytes, counts, sink URL), does its setup
//! outside the timed region and returns an [`Iter`]: the closure that runs one iteration and says
//! what it did ([`Done`]), so the harness can check that both sides did the same work.

use crate::payloads::{Shape, Wire};
use crate::{ours, theirs};

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

/// What each group measures (for the report and the README).
pub fn describe_group(group: &str) -> &'static str {
    match group {
        "decode_v04" => "decode a v0.4 payload into spans (and drop them)",
        "decode_v05" => "decode a v0.5 payload into spans (and drop them)",
        "decode_encode_v04_v05" => "decode v0.4, encode the spans as a v0.5 payload",
        "decode_encode_v04_v04" => "decode v0.4, encode the spans as a v0.4 payload",
        "send_v04_v04" => "exporter send of a v0.4 payload, sent as v0.4 to the loopback sink",
        "send_v04_v05" => "exporter send of a v0.4 payload, converted and sent as v0.5",
        _ => "",
    }
}

#[allow(clippy::too_many_arguments)]
fn case(
    out: &mut Vec<Case>,
    group: &'static str,
    shapes: &[Shape],
    wire: Wire,
    needs_sink: bool,
    ours: Option<SideFn>,
    theirs: SideFn,
    target: Option<f64>,
) {
    for &shape in shapes {
        out.push(Case {
            name: format!("{group}.{}", shape.name()),
            group,
            shape,
            wire,
            needs_sink,
            ours,
            theirs,
            target,
        });
    }
}

/// Every case, in report order.
pub fn all() -> Vec<Case> {
    use Shape::*;
    let mut v = Vec::new();
    let all4 = [Realistic, Huge, Tiny, Links];
    let no_links = [Realistic, Huge, Tiny];
    case(
        &mut v,
        "decode_v04",
        &all4,
        Wire::V04,
        false,
        ours::DECODE_V04,
        theirs::decode_v04,
        Some(1.5),
    );
    case(
        &mut v,
        "decode_v05",
        &no_links,
        Wire::V05,
        false,
        ours::DECODE_V05,
        theirs::decode_v05,
        Some(1.5),
    );
    case(
        &mut v,
        "decode_encode_v04_v05",
        &no_links,
        Wire::V04,
        false,
        ours::DECODE_ENCODE_V04_V05,
        theirs::decode_encode_v04_v05,
        Some(2.0),
    );
    case(
        &mut v,
        "decode_encode_v04_v04",
        &[Realistic, Links],
        Wire::V04,
        false,
        ours::DECODE_ENCODE_V04_V04,
        theirs::decode_encode_v04_v04,
        None,
    );
    case(
        &mut v,
        "send_v04_v04",
        &[Realistic, Tiny],
        Wire::V04,
        true,
        ours::SEND_V04_V04,
        theirs::send_v04_v04,
        Some(3.0),
    );
    case(
        &mut v,
        "send_v04_v05",
        &[Realistic],
        Wire::V04,
        true,
        ours::SEND_V04_V05,
        theirs::send_v04_v05,
        None,
    );
    v
}
