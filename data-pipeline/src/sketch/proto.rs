//! The DDSketch protobuf messages (the `ddsketch.proto` schema shared by the Datadog agent,
//! backend and tracers), declared by hand so no `protoc` is needed at build time.
//!
//! ```text
//! message DDSketch     { IndexMapping mapping = 1; Store positiveValues = 2; Store negativeValues = 3;
//!                        double zeroCount = 4; }
//! message IndexMapping { double gamma = 1; double indexOffset = 2; Interpolation interpolation = 3; }
//! message Store        { map<sint32, double> binCounts = 1; repeated double contiguousBinCounts = 2
//!                        [packed]; sint32 contiguousBinIndexOffset = 3; }
//! ```

use std::collections::HashMap;

/// A whole sketch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DdSketch {
    /// How values map to bin indices.
    #[prost(message, optional, tag = "1")]
    pub mapping: Option<IndexMapping>,
    /// Bins of the positive values.
    #[prost(message, optional, tag = "2")]
    pub positive_values: Option<Store>,
    /// Bins of the negative values (indexed by their absolute value).
    #[prost(message, optional, tag = "3")]
    pub negative_values: Option<Store>,
    /// The count of values too close to zero to be indexed.
    #[prost(double, tag = "4")]
    pub zero_count: f64,
}

/// The index mapping of a sketch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IndexMapping {
    /// The logarithm base.
    #[prost(double, tag = "1")]
    pub gamma: f64,
    /// The offset added to every index.
    #[prost(double, tag = "2")]
    pub index_offset: f64,
    /// How the logarithm is approximated ([`Interpolation`]).
    #[prost(enumeration = "Interpolation", tag = "3")]
    pub interpolation: i32,
}

/// How a mapping approximates the logarithm. Only [`Interpolation::None`] (the exact
/// logarithm) is produced and accepted by this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Interpolation {
    /// The exact logarithm.
    None = 0,
    /// Linear interpolation between powers of 2.
    Linear = 1,
    /// Quadratic interpolation.
    Quadratic = 2,
    /// Cubic interpolation.
    Cubic = 3,
}

/// The bins of one sign: sparse (`bin_counts`) and/or contiguous counts starting at
/// `contiguous_bin_index_offset`. Readers must sum both.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Store {
    /// Sparse bins: index to count.
    #[prost(map = "sint32, double", tag = "1")]
    pub bin_counts: HashMap<i32, f64>,
    /// Contiguous bins, the first one at `contiguous_bin_index_offset`.
    #[prost(double, repeated, tag = "2")]
    pub contiguous_bin_counts: Vec<f64>,
    /// The index of the first contiguous bin.
    #[prost(sint32, tag = "3")]
    pub contiguous_bin_index_offset: i32,
}
