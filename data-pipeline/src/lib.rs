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

pub mod error;
pub mod obfuscate;
pub mod span;

pub use error::{Error, ErrorKind, Result};
pub use span::{Span, Trace, Traces};
