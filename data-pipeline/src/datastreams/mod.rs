//! Data Streams Monitoring (DSM): pathways of messages through services and queues, their
//! latencies and sizes, aggregated and sent to the agent's `/v0.1/pipeline_stats`, byte-compatible
//! with Datadog's tracers (the wire rules are in the project's `shared/spec/dsm.md`).
//!
//! - [`hash`]: FNV-1 64 node and pathway hashes, the hash cache.
//! - [`context`]: [`PathwayContext`] and its binary / base64 codecs.
//! - [`carrier`]: inject/extract into Kafka headers, HTTP headers, any carrier.
//! - [`checkpoint`]: one checkpoint (loop protection, clamped latencies), fan-in [`merge`].
//! - [`aggregator`]: 10 s buckets of DDSketches and Kafka backlogs.
//! - [`payload`]: the msgpack `StatsPayload`, gzip.
//! - [`processor`]: [`Processor`] (alias [`DataStreams`]), the entry point; start it standalone
//!   from a [`Config`] or from the exporter's settings ([`Config::from_exporter`],
//!   [`Processor::from_exporter`]). Payloads go out through the shared [`crate::transport`].
//!
//! ```
//! use data_pipeline::datastreams::{Config, Processor};
//! let dsm = Processor::new(Config {
//!     service: "billing".into(),
//!     env: "prod".into(),
//!     flush_interval: None,
//!     agent_url: "unix:///var/run/datadog/apm.socket".into(),
//!     ..Config::default()
//! }).unwrap();
//! let mut headers = Vec::new();
//! let produced = dsm.produce(None, "orders", "", &mut headers, 120);
//! let consumed = dsm.consume("orders", "billing", "", &headers, 120);
//! // The pathway started at the produce (carried in ms on the wire).
//! assert_eq!(consumed.pathway_start_ms(), produced.pathway_start_ms());
//! ```

pub mod aggregator;
pub mod carrier;
pub mod checkpoint;
pub mod context;
pub mod hash;
pub mod payload;
pub mod processor;
mod sender;

pub use aggregator::{KafkaOffset, OffsetKind};
pub use carrier::{PROPAGATION_KEY_BASE64, PROPAGATION_KEY_LEGACY};
pub use checkpoint::merge;
pub use context::PathwayContext;
pub use processor::{Config, DataStreams, DataStreamsConfig, Processor, Stats};
