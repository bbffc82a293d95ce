//! Why normalization changed a span or dropped a chunk, and counters per reason.
//!
//! The reasons and their names are the agent's (`reason:<name>` tags of its
//! `datadog.trace_agent.normalizer.spans_malformed` / `traces_dropped` metrics), so counts can be
//! compared one to one.

/// One reason for fixing a span (`spans_malformed`) or dropping a chunk (`traces_dropped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    // --- traces_dropped: the chunk is rejected ---
    /// The chunk has no span.
    EmptyTrace,
    /// A span has trace id 0.
    TraceIdZero,
    /// A span has span id 0.
    SpanIdZero,
    /// A span belongs to another trace than the chunk's first span.
    ForeignSpan,
    // --- spans_malformed: the span is fixed and kept ---
    /// Two spans of the chunk share a span id (counted, kept).
    DuplicateSpanId,
    /// Empty service replaced by the fallback service.
    ServiceEmpty,
    /// Service longer than 100 bytes, truncated.
    ServiceTruncate,
    /// Service with nothing usable, replaced by the fallback service.
    ServiceInvalid,
    /// `peer.service` longer than 100 bytes, truncated.
    PeerServiceTruncate,
    /// `peer.service` with nothing usable, replaced with "".
    PeerServiceInvalid,
    /// `_dd.base_service` longer than 100 bytes, truncated.
    BaseServiceTruncate,
    /// `_dd.base_service` with nothing usable, replaced with "".
    BaseServiceInvalid,
    /// Empty operation name replaced by `unnamed_operation`.
    SpanNameEmpty,
    /// Operation name longer than 100 bytes, truncated.
    SpanNameTruncate,
    /// Operation name with no letter, replaced by `unnamed_operation`.
    SpanNameInvalid,
    /// Empty resource replaced by the operation name.
    ResourceEmpty,
    /// Span type longer than 100 bytes, truncated.
    TypeTruncate,
    /// Start before 2000-01-01, replaced by now - duration.
    InvalidStartDate,
    /// Negative duration, or one that overflows start + duration, replaced by 0.
    InvalidDuration,
    /// `http.status_code` that is not a number in 100..=599, removed.
    InvalidHttpStatusCode,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 20] = [
        Reason::EmptyTrace,
        Reason::TraceIdZero,
        Reason::SpanIdZero,
        Reason::ForeignSpan,
        Reason::DuplicateSpanId,
        Reason::ServiceEmpty,
        Reason::ServiceTruncate,
        Reason::ServiceInvalid,
        Reason::PeerServiceTruncate,
        Reason::PeerServiceInvalid,
        Reason::BaseServiceTruncate,
        Reason::BaseServiceInvalid,
        Reason::SpanNameEmpty,
        Reason::SpanNameTruncate,
        Reason::SpanNameInvalid,
        Reason::ResourceEmpty,
        Reason::TypeTruncate,
        Reason::InvalidStartDate,
        Reason::InvalidDuration,
        Reason::InvalidHttpStatusCode,
    ];

    /// The agent's name for the reason (its `reason:` tag value).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::EmptyTrace => "empty_trace",
            Reason::TraceIdZero => "trace_id_zero",
            Reason::SpanIdZero => "span_id_zero",
            Reason::ForeignSpan => "foreign_span",
            Reason::DuplicateSpanId => "duplicate_span_id",
            Reason::ServiceEmpty => "service_empty",
            Reason::ServiceTruncate => "service_truncate",
            Reason::ServiceInvalid => "service_invalid",
            Reason::PeerServiceTruncate => "peer_service_truncate",
            Reason::PeerServiceInvalid => "peer_service_invalid",
            Reason::BaseServiceTruncate => "base_service_truncate",
            Reason::BaseServiceInvalid => "base_service_invalid",
            Reason::SpanNameEmpty => "span_name_empty",
            Reason::SpanNameTruncate => "span_name_truncate",
            Reason::SpanNameInvalid => "span_name_invalid",
            Reason::ResourceEmpty => "resource_empty",
            Reason::TypeTruncate => "type_truncate",
            Reason::InvalidStartDate => "invalid_start_date",
            Reason::InvalidDuration => "invalid_duration",
            Reason::InvalidHttpStatusCode => "invalid_http_status_code",
        }
    }

    /// True when the reason drops the whole chunk (`traces_dropped`), false when the span is
    /// fixed and kept (`spans_malformed`).
    pub fn drops_chunk(self) -> bool {
        matches!(
            self,
            Reason::EmptyTrace | Reason::TraceIdZero | Reason::SpanIdZero | Reason::ForeignSpan
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters per [`Reason`]: how many spans were fixed and chunks dropped, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormalizeCounts {
    counts: [u64; Reason::ALL.len()],
}

impl NormalizeCounts {
    /// All counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one to `reason`.
    pub fn inc(&mut self, reason: Reason) {
        self.counts[reason as usize] += 1;
    }

    /// The count for `reason`.
    pub fn get(&self, reason: Reason) -> u64 {
        self.counts[reason as usize]
    }

    /// Sum of all counters.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The non-zero counters, in [`Reason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .map(|&r| (r, self.counts[r as usize]))
            .filter(|&(_, n)| n > 0)
    }

    /// Adds every counter of `other` to this one.
    pub fn merge(&mut self, other: &NormalizeCounts) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
    }

    /// Sets every counter back to zero.
    pub fn reset(&mut self) {
        self.counts = [0; Reason::ALL.len()];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_own_slot() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut c = NormalizeCounts::new();
        c.inc(Reason::InvalidDuration);
        c.inc(Reason::InvalidDuration);
        c.inc(Reason::ForeignSpan);
        let v: Vec<_> = c.iter().collect();
        assert_eq!(v, [(Reason::ForeignSpan, 1), (Reason::InvalidDuration, 2)]);
        assert_eq!(c.total(), 3);
        assert!(Reason::ForeignSpan.drops_chunk());
        assert!(!Reason::InvalidDuration.drops_chunk());
    }
}
