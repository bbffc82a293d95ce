//! Normalization: the Datadog agent's span and chunk rules, with the agent's exact results.
//!
//! A tracer's spans go to the agent, which normalizes them before anything else; spans that do
//! not pass through an agent (agentless, OTLP, stats computed in the client) must come out the
//! same. The agent's code and tests are the reference (`pkg/trace/traceutil/normalize`,
//! `pkg/trace/agent/normalizer.go`, `truncator.go`); its test tables run against this module
//! (`tests/normalize_tables.rs`).
//!
//! # Pipeline order
//! The agent applies, per chunk: [`Normalizer::normalize_chunk`] (span rules, chunk rules), then
//! per span obfuscation, then truncation ([`truncate_span`]), then tag replacement rules.
//! [`crate::obfuscate::Obfuscator::obfuscate_chunk`] performs the last three in that order when
//! its `truncate` is on, so an exporter gets the agent's exact results with
//! `NormalizeConfig { truncate: false, .. }` + `ObfuscationConfig { truncate: true, .. }`. The
//! defaults (normalizer truncates, obfuscator does not) truncate once, before obfuscation: only
//! values that are too long *before* obfuscation then differ from the agent. Truncation must run
//! once: it is not idempotent (a cut that drops a partial character leaves room for part of the
//! `...` on a second pass, as in the agent).
//!
//! # Cost
//! The exporter calls this on every span, so a span that needs no change is left untouched: no
//! allocation, string fields stay borrowed ([`Str::borrowed`]). Fixed values become owned, except
//! truncations and trims of a borrowed string, which stay borrowed sub-slices.
//!
//! # Rules (span)
//! trace id or span id 0: chunk dropped. Service: truncated to 100 bytes, normalized as a tag
//! value, empty/unusable -> `unnamed-<lang>-service` (`unnamed-service`). `peer.service`,
//! `_dd.base_service`: likewise, unusable -> "". Name: 100 bytes, metric-name form, empty or no
//! letter -> `unnamed_operation`. Empty resource -> the name. parent = trace = span id -> parent
//! 0. Negative or overflowing duration -> 0; start before 2000 -> now - duration. Type: 100
//! bytes. `env` normalized as a tag value. `http.status_code` not in 100..=599 removed. Span link
//! attribute `link.name` normalized as a name.
//! # Rules (chunk)
//! Empty chunk, a span of another trace (low id, and `_dd.p.tid` when both carry it), or a span
//! that cannot be repaired: the whole chunk is dropped. Duplicate span ids are counted only.

mod chunk;
mod span;
mod stats;
mod strings;

pub use chunk::same_trace_id;
pub use span::{
    fix_duration, fix_start, is_structured_meta_key, is_valid_status_code, truncate_span,
    MAX_META_KEY_LEN, MAX_META_VALUE_LEN, YEAR_2000_NS,
};
pub use stats::{NormalizeCounts, Reason};
pub use strings::{
    fallback_service, normalize_name, normalize_peer_service, normalize_service, normalize_tag,
    normalize_tag_value, normalize_type, truncate_utf8, PeerServiceIssue, DEFAULT_SERVICE_NAME,
    DEFAULT_SPAN_NAME, MAX_NAME_LEN, MAX_RESOURCE_LEN, MAX_SERVICE_LEN, MAX_TAG_LEN, MAX_TYPE_LEN,
};

use crate::error::{Error, ErrorKind, Result};
use crate::span::{Span, Str, Trace};
use std::borrow::Cow;

/// Replaces `field` with what `f` computes from it, without allocating when possible: a result
/// that borrows the whole field leaves it untouched, a result that borrows a sub-slice of it
/// re-slices the field (no copy when the field is borrowed; an owned field is copied, which is
/// rare: normalization starts from decoded, borrowed strings), anything else becomes owned.
/// Returns true when the field changed.
pub(crate) fn update_str<'a>(
    field: &mut Str<'a>,
    f: impl for<'s> FnOnce(&'s str) -> Cow<'s, str>,
) -> bool {
    let base = field.as_ptr() as usize;
    let len = field.len();
    let outcome = match f(field.as_ref()) {
        Cow::Borrowed(r) => {
            let p = r.as_ptr() as usize;
            if p >= base && p + r.len() <= base + len {
                Ok((p - base, r.len()))
            } else {
                Err(r.to_owned())
            }
        }
        Cow::Owned(o) => Err(o),
    };
    match outcome {
        Ok((0, l)) if l == len => false,
        Ok((start, l)) => {
            *field = match field.as_borrowed() {
                Some(s) => Str::borrowed(&s[start..start + l]),
                None => Str::owned(field[start..start + l].to_owned()),
            };
            true
        }
        Err(o) => {
            let changed = o != field.as_ref();
            if changed {
                *field = Str::owned(o);
            }
            changed
        }
    }
}

/// Normalization settings.
#[derive(Debug, Clone)]
pub struct NormalizeConfig {
    /// The tracer language, for the fallback service `unnamed-<lang>-service` ("" gives
    /// `unnamed-service`, as the agent does when it does not know the language).
    pub lang: String,
    /// The agent's `component2name` feature: a non-empty `component` tag becomes the span name.
    pub component2name: bool,
    /// Truncate resources, meta and metric keys/values in [`Normalizer::normalize_chunk`] (see
    /// the module docs for the order; [`crate::obfuscate::Obfuscator::obfuscate_chunk`]
    /// truncates too).
    pub truncate: bool,
    /// Maximum resource length in bytes (the agent's `MaxResourceLen`, 5000 by default).
    pub max_resource_len: usize,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        NormalizeConfig {
            lang: String::new(),
            component2name: false,
            truncate: true,
            max_resource_len: MAX_RESOURCE_LEN,
        }
    }
}

/// Applies the agent's normalization rules to spans and chunks. Cheap to share: `&self` only.
#[derive(Debug, Clone)]
pub struct Normalizer {
    cfg: NormalizeConfig,
    fallback_service: String,
}

impl Normalizer {
    /// A normalizer with the given settings.
    pub fn new(cfg: NormalizeConfig) -> Self {
        let fallback_service = fallback_service(&cfg.lang).into_owned();
        Normalizer {
            cfg,
            fallback_service,
        }
    }

    /// The settings.
    pub fn config(&self) -> &NormalizeConfig {
        &self.cfg
    }

    fn rules(&self) -> span::SpanRules<'_> {
        span::SpanRules {
            fallback_service: &self.fallback_service,
            component2name: self.cfg.component2name,
            max_resource_len: self.cfg.max_resource_len,
        }
    }

    /// Normalizes a chunk in place. Every fix and a drop are counted in `counts`.
    ///
    /// `Err` (kind [`ErrorKind::InvalidArgument`], the message names the reason) means the chunk
    /// is unusable and must be dropped whole, as the agent would.
    pub fn normalize_chunk(
        &self,
        chunk: &mut Trace<'_>,
        counts: &mut NormalizeCounts,
    ) -> Result<()> {
        let may_truncate = chunk::normalize_chunk(chunk, &self.rules(), counts).map_err(dropped)?;
        // Truncation runs after the chunk rules (as in the agent); the span pass already knows
        // whether any length is over a limit, so the common chunk skips this loop.
        if self.cfg.truncate && may_truncate {
            for s in chunk.iter_mut() {
                truncate_span(s, self.cfg.max_resource_len);
            }
        }
        Ok(())
    }

    /// Normalizes one span in place (span rules only, no chunk rules). `Err` when the span is
    /// unusable (trace id or span id 0).
    pub fn normalize_span(&self, span: &mut Span<'_>, counts: &mut NormalizeCounts) -> Result<()> {
        span::normalize_span(span, &self.rules(), counts).map_err(dropped)?;
        if self.cfg.truncate {
            truncate_span(span, self.cfg.max_resource_len);
        }
        Ok(())
    }

    /// Applies the truncation rules only (see [`truncate_span`]), with this normalizer's
    /// resource limit.
    pub fn truncate_chunk(&self, chunk: &mut Trace<'_>) {
        for s in chunk.iter_mut() {
            truncate_span(s, self.cfg.max_resource_len);
        }
    }
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer::new(NormalizeConfig::default())
    }
}

fn dropped(reason: Reason) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("trace chunk dropped (reason:{reason})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_str_reslices_without_copy() {
        let src = String::from("hello world");
        let mut f = Str::borrowed(&src);
        assert!(!update_str(&mut f, |s| Cow::Borrowed(s)));
        assert!(update_str(&mut f, |s| Cow::Borrowed(&s[6..])));
        assert_eq!(f.as_borrowed(), Some("world"));
        assert_eq!(
            f.as_ptr(),
            src[6..].as_ptr(),
            "a sub-slice of a borrowed field copies nothing"
        );
        let mut o = Str::owned("hello world".into());
        assert!(update_str(&mut o, |s| Cow::Borrowed(&s[2..5])));
        assert_eq!(o, "llo");
        assert!(o.is_owned());
        assert!(update_str(&mut o, |_| Cow::Borrowed("constant")));
        assert_eq!(o, "constant");
        assert!(!update_str(&mut o, |_| Cow::Owned("constant".into())));
    }

    #[test]
    fn untouched_span_stays_borrowed() {
        let meta_k = String::from("env");
        let meta_v = String::from("prod");
        let mut span = Span {
            service: Str::borrowed("web"),
            name: Str::borrowed("http.request"),
            resource: Str::borrowed("GET /"),
            r#type: Str::borrowed("web"),
            trace_id: 1,
            span_id: 2,
            start: YEAR_2000_NS + 1,
            duration: 5,
            ..Default::default()
        };
        span.meta.push(
            Cow::Borrowed(meta_k.as_str()),
            Str::borrowed(meta_v.as_str()),
        );
        let mut chunk = vec![span];
        let mut counts = NormalizeCounts::new();
        Normalizer::default()
            .normalize_chunk(&mut chunk, &mut counts)
            .unwrap();
        assert_eq!(counts.total(), 0);
        let s = &chunk[0];
        assert!(s.service.is_borrowed());
        assert!(s.name.is_borrowed());
        assert!(s.meta.get("env").is_some_and(Str::is_borrowed));
    }
}
