//! The exporter: builds trace payloads in the agent's format and delivers them (see [`Exporter`]).

pub mod builder;
mod codec;
#[allow(clippy::module_inception)]
mod exporter;
pub mod pipeline;
pub mod response;

pub use builder::{ExporterBuilder, TracerMetadata};
pub use codec::Format;
pub use exporter::{Exporter, TEST_SESSION_TOKEN_HEADER, TRACE_COUNT_HEADER};
pub use pipeline::CreditCardMode;
pub use response::{AgentResponse, RatesByService};
