//! The codec entry points the exporter uses (decode, count, encode, 413 split), in one place.

pub use crate::decode::{count_traces, decode, validate};
pub use crate::encode::{encode_to_vec, split_payload};
pub use crate::format::Format;
