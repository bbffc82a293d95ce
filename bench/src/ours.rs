//! data-pipeline's side of every case. A case's entry stays `None` until the API it needs has
//! landed on `main`.

use crate::cases::SideFn;

/// `data_pipeline::decode::decode(Format::V04, ..)` (lands with the codec branch).
pub const DECODE_V04: Option<SideFn> = None;
/// `data_pipeline::decode::decode(Format::V05, ..)`.
pub const DECODE_V05: Option<SideFn> = None;
/// decode v0.4 + `data_pipeline::encode::encode(Format::V05, ..)`.
pub const DECODE_ENCODE_V04_V05: Option<SideFn> = None;
/// decode v0.4 + `data_pipeline::encode::encode(Format::V04, ..)`.
pub const DECODE_ENCODE_V04_V04: Option<SideFn> = None;
/// `data_pipeline::exporter::Exporter::send`, output v0.4 (lands with the exporter branch).
pub const SEND_V04_V04: Option<SideFn> = None;
/// `data_pipeline::exporter::Exporter::send`, output v0.5.
pub const SEND_V04_V05: Option<SideFn> = None;
