//! The exporter: builds trace payloads in the agent's format and delivers them (see [`Exporter`]),
//! synchronously or through a background worker ([`background`]).

pub mod background;
mod batch;
mod breaker;
pub mod builder;
mod chunk;
mod codec;
#[allow(clippy::module_inception)]
mod exporter;
pub mod fork;
pub mod health;
pub mod pipeline;
mod queue;
pub mod response;
mod statsd;

pub use builder::{ExporterBuilder, TracerMetadata};
pub use codec::Format;
pub use exporter::{Exporter, TEST_SESSION_TOKEN_HEADER, TRACE_COUNT_HEADER};
pub use health::{BreakerState, DropReason, Dropped, Health};
pub use pipeline::CreditCardMode;
pub use response::{AgentResponse, RatesByService};
