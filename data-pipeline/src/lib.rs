//! `data-pipeline`: the engine behind the C ABI that APM tracers link to.
//!
//! The data's way through the engine, one module a stage:
//!
//! ```text
//! decode -> normalize -> obfuscate -> stats -> sample (P0 drop) -> encode -> transport
//!                                                               exporter drives it all
//! datastreams (pathways, checkpoints, aggregation) and sketch beside them
//! ```
//!
//! [`span`] is the one span model every stage and destination uses.

#![deny(missing_docs)]

// Lets code shared with the benches (benches/support/gen.rs) name this crate the same way there
// and in unit tests.
extern crate self as data_pipeline;

pub mod datastreams;
pub mod decode;
pub mod encode;
pub mod error;
pub mod exporter;
pub mod format;
mod in_flight;
pub mod info;
pub mod normalize;
pub mod obfuscate;
pub mod sample;
pub mod sketch;
pub mod span;
pub mod stats;
pub mod text;
pub mod transport;

pub use error::{Error, ErrorKind, Result};
pub use span::{Span, Trace, Traces};
