//! The processing stages between decode and encode: normalization and obfuscation, with the
//! agent's exact results, configured on the [`super::ExporterBuilder`].
//!
//! # Per-destination defaults
//!
//! | destination | normalize | obfuscate | why |
//! |---|---|---|---|
//! | a Datadog agent (`/v0.4`, `/v0.5` traces) | off | off | the agent normalizes and obfuscates everything it receives with its own configuration (which the tracer cannot see); doing it twice costs time, and obfuscating with other settings than the agent's would change what users configured there. Off also keeps the passthrough fast path (the payload is forwarded without being decoded). |
//! | destinations that bypass the agent (OTLP, agentless; not built yet) | on | on | nothing downstream applies the agent's rules, so the client must, with the deployed agent's defaults ([`ObfuscationConfig::default`]) |
//! | client-side stats keys (any destination) | always | always | the agent does not recompute client stats: the service, name and resource of a stats key must already be what the agent would have made of the span, or client and agent stats disagree. The stats stage uses the pipeline's stats obfuscator (same settings, always on) whatever these options say. |
//!
//! An explicit `normalize(..)` / `obfuscate(..)` overrides the destination's default.
//!
//! # Order and exactness
//! Per chunk, as the agent: normalization (span and chunk rules; a chunk that cannot be repaired
//! is dropped and counted per reason, see [`super::Exporter::normalize_counts`]), then obfuscation per
//! span, then the agent's truncation, then the tag replacement rules. With both stages on,
//! truncation runs once, after obfuscation (the agent's place for it); with normalization only,
//! the normalizer truncates; with obfuscation only there is no truncation (it belongs to
//! normalization). The obfuscator keeps one SQL engine, so the agent's adaptive escape state
//! carries across queries as it does in the agent.

use super::fork::ForkLocalMutex;
use crate::normalize::{NormalizeConfig, NormalizeCounts, Normalizer};
use crate::obfuscate::{rules_from_json, ObfuscationConfig, Obfuscator};
use crate::span::{Trace, Traces};
use crate::{Error, Result};

/// Credit card number obfuscation in span tags (`obfuscation_credit_cards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreditCardMode {
    /// Tags are not checked.
    Off,
    /// Values that look like a card number (length and issuer prefix) become `?` (the agent's
    /// default).
    #[default]
    On,
    /// As `On`, and the Luhn checksum must match too (fewer false positives, slower).
    Luhn,
}

/// What the builder collected for the processing stages.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcessingConfig {
    /// `None`: the destination's default (see the module docs).
    pub normalize: Option<bool>,
    /// `None`: the destination's default.
    pub obfuscate: Option<bool>,
    /// Obfuscation settings; `Default` = a deployed agent's defaults.
    pub obfuscation: ObfuscationConfig,
    /// The agent's `component2name` feature.
    pub component_to_name: bool,
    /// `DD_APM_REPLACE_TAGS`-style JSON rules ("" for none), parsed when the exporter is built.
    pub replace_tags: String,
}

impl ProcessingConfig {
    /// Sets the credit card mode.
    pub fn set_credit_cards(&mut self, mode: CreditCardMode) {
        let cc = &mut self.obfuscation.credit_cards;
        cc.enabled = mode != CreditCardMode::Off;
        cc.luhn = mode == CreditCardMode::Luhn;
    }
}

/// A comma- or space-separated list (the agent's environment variable form), empty items
/// dropped.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The processing stages of one exporter. Thread-safe: `process` takes `&self`.
#[derive(Debug)]
pub(crate) struct Pipeline {
    normalizer: Option<Normalizer>,
    obfuscator: Option<Obfuscator>,
    /// For stats keys: the span obfuscator when there is one, else one with the same settings.
    stats_obfuscator: Obfuscator,
    counts: ForkLocalMutex<NormalizeCounts>,
}

impl Pipeline {
    /// Builds the stages for a destination (`bypasses_agent`: nothing downstream applies the
    /// agent's rules). Errors: bad replace rules or SQL mode (`InvalidArgument`).
    pub fn new(cfg: &ProcessingConfig, lang: &str, bypasses_agent: bool) -> Result<Pipeline> {
        let normalize = cfg.normalize.unwrap_or(bypasses_agent);
        let obfuscate = cfg.obfuscate.unwrap_or(bypasses_agent);
        let mut ocfg = cfg.obfuscation.clone();
        if !cfg.replace_tags.trim().is_empty() {
            ocfg.replace_tags = rules_from_json(&cfg.replace_tags)
                .map_err(|e| Error::invalid_argument(format!("replace_tags: {}", e.message())))?;
        }
        // Truncate once, at the agent's place (after obfuscation) when both stages run.
        ocfg.truncate = normalize && obfuscate;
        let stats_obfuscator = Obfuscator::new(ocfg.clone())
            .map_err(|e| Error::invalid_argument(format!("obfuscation: {}", e.message())))?;
        let normalizer = normalize.then(|| {
            Normalizer::new(NormalizeConfig {
                lang: lang.to_owned(),
                component2name: cfg.component_to_name,
                truncate: !obfuscate,
                ..NormalizeConfig::default()
            })
        });
        Ok(Pipeline {
            normalizer,
            obfuscator: obfuscate.then(|| stats_obfuscator.clone()),
            stats_obfuscator,
            counts: ForkLocalMutex::per_process(NormalizeCounts::new()),
        })
    }

    /// True when a stage must see the spans (no passthrough fast path).
    pub fn is_active(&self) -> bool {
        self.normalizer.is_some() || self.obfuscator.is_some()
    }

    /// The obfuscator for client-side stats keys (always available, whatever the span options):
    /// [`Obfuscator::obfuscate_resource`] is the agent's `obfuscateStatsGroup`. For the stats
    /// stage (the exporter hands a clone to [`crate::stats::StatsStage`]); normalization of keys
    /// needs no settings beyond the language (`crate::normalize::normalize_service` etc.).
    pub fn stats_obfuscator(&self) -> &Obfuscator {
        &self.stats_obfuscator
    }

    /// Normalizes and obfuscates every chunk in place; drops the chunks the normalizer rejects
    /// (counted per reason).
    pub fn process(&self, traces: &mut Traces<'_>) {
        if !self.is_active() {
            return;
        }
        let mut counts = NormalizeCounts::new();
        // Chunk by chunk (normalization then obfuscation of one chunk before the next): the
        // same results as stage by stage over the payload (the stages look at one chunk at a
        // time and SQL still sees the queries in payload order), with the chunk in cache.
        traces.retain_mut(|chunk| self.process_chunk(chunk, &mut counts));
        self.merge_counts(&counts);
    }

    /// Normalizes and obfuscates one chunk in place; false when the normalizer rejects it (the
    /// reason counted in `counts`, to be handed to [`Pipeline::merge_counts`]).
    pub(crate) fn process_chunk(
        &self,
        chunk: &mut Trace<'_>,
        counts: &mut NormalizeCounts,
    ) -> bool {
        if let Some(n) = &self.normalizer {
            if let Err(e) = n.normalize_chunk(chunk, counts) {
                log::debug!("{e}");
                return false;
            }
        }
        if let Some(o) = &self.obfuscator {
            o.obfuscate_chunk(chunk);
        }
        true
    }

    /// Adds what [`Pipeline::process_chunk`] counted to [`Pipeline::normalize_counts`].
    pub(crate) fn merge_counts(&self, counts: &NormalizeCounts) {
        if counts.total() > 0 {
            self.counts.lock().merge(counts);
        }
    }

    /// What normalization fixed and dropped so far, per reason.
    pub fn normalize_counts(&self) -> NormalizeCounts {
        self.counts.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Reason;
    use crate::span::Span;
    use crate::span::Str;

    fn span<'a>(trace_id: u64, span_id: u64, ty: &'a str, resource: &'a str) -> Span<'a> {
        Span {
            service: Str::borrowed("web"),
            name: Str::borrowed("op"),
            resource: Str::borrowed(resource),
            r#type: Str::borrowed(ty),
            trace_id,
            span_id,
            start: 1_700_000_000_000_000_000,
            duration: 10,
            ..Default::default()
        }
    }

    fn cfg(normalize: Option<bool>, obfuscate: Option<bool>) -> ProcessingConfig {
        ProcessingConfig {
            normalize,
            obfuscate,
            ..ProcessingConfig::default()
        }
    }

    #[test]
    fn agent_destination_defaults_off_others_on() {
        let dflt = ProcessingConfig::default();
        assert!(!Pipeline::new(&dflt, "python", false).unwrap().is_active());
        let p = Pipeline::new(&dflt, "python", true).unwrap();
        assert!(p.normalizer.is_some() && p.obfuscator.is_some());
        let p = Pipeline::new(&cfg(None, Some(true)), "python", false).unwrap();
        assert!(p.is_active() && p.normalizer.is_none());
        let off = cfg(Some(false), Some(false));
        assert!(!Pipeline::new(&off, "", true).unwrap().is_active());
    }

    #[test]
    fn drops_and_counts_bad_chunks_then_obfuscates() {
        let p = Pipeline::new(&cfg(Some(true), Some(true)), "go", false).unwrap();
        let mut traces = vec![
            vec![span(1, 1, "sql", "SELECT * FROM t WHERE id = 42")],
            vec![span(0, 2, "web", "GET /")],
            vec![],
            vec![span(3, 3, "redis", "SET k v")],
        ];
        traces[0][0].service = Str::borrowed("");
        p.process(&mut traces);
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[0][0].resource, "SELECT * FROM t WHERE id = ?");
        assert_eq!(traces[0][0].service, "unnamed-go-service");
        assert_eq!(traces[1][0].resource, "SET");
        let c = p.normalize_counts();
        assert_eq!(c.get(Reason::TraceIdZero), 1);
        assert_eq!(c.get(Reason::EmptyTrace), 1);
        assert_eq!(c.get(Reason::ServiceEmpty), 1);
        p.process(&mut vec![vec![]]);
        assert_eq!(p.normalize_counts().get(Reason::EmptyTrace), 2);
    }

    /// Chunk by chunk (normalize then obfuscate each chunk) gives what stage by stage over the
    /// payload (every chunk normalized, then every chunk obfuscated) gave.
    #[test]
    fn chunk_by_chunk_equals_stage_by_stage() {
        let mut traces = crate::decode::gen::realistic_and_arbitrary(3, 20, 6, 9, 20);
        let mut sql = vec![
            span(5, 5, "sql", "SELECT 'a\\'b' FROM t"),
            span(5, 6, "sql", "SELECT 1"),
        ];
        sql[1]
            .meta
            .push("db.statement", Str::borrowed("SELECT 'x' FROM \"t"));
        traces.push(sql);
        for (n, o) in [(true, true), (true, false), (false, true)] {
            let p = Pipeline::new(&cfg(Some(n), Some(o)), "go", false).unwrap();
            let mut got = traces.clone();
            p.process(&mut got);
            let q = Pipeline::new(&cfg(Some(n), Some(o)), "go", false).unwrap();
            let mut want = traces.clone();
            let mut counts = NormalizeCounts::new();
            if let Some(norm) = &q.normalizer {
                want.retain_mut(|c| norm.normalize_chunk(c, &mut counts).is_ok());
            }
            if let Some(obf) = &q.obfuscator {
                for c in want.iter_mut() {
                    obf.obfuscate_chunk(c);
                }
            }
            q.merge_counts(&counts);
            assert_eq!(got, want, "{n} {o}");
            assert_eq!(p.normalize_counts(), q.normalize_counts(), "{n} {o}");
        }
    }

    #[test]
    fn truncates_once_after_obfuscation() {
        let long = format!("SELECT '{}' FROM t", "x".repeat(6000));
        for (normalize, obfuscate, want_len) in [
            (true, true, "SELECT ? FROM t".len()),
            (true, false, 5000),
            (false, true, "SELECT ? FROM t".len()),
        ] {
            let p = Pipeline::new(&cfg(Some(normalize), Some(obfuscate)), "", false).unwrap();
            let mut traces = vec![vec![span(1, 1, "sql", &long)]];
            p.process(&mut traces);
            assert_eq!(
                traces[0][0].resource.len(),
                want_len,
                "{normalize} {obfuscate}"
            );
        }
    }

    #[test]
    fn bad_settings_fail_the_build() {
        let bad = ProcessingConfig {
            replace_tags: "not json".into(),
            ..ProcessingConfig::default()
        };
        let e = Pipeline::new(&bad, "", false).unwrap_err();
        assert!(e.message().starts_with("replace_tags"), "{e}");
        let mut bad = ProcessingConfig::default();
        bad.obfuscation.sql.obfuscation_mode = "bogus".into();
        let e = Pipeline::new(&bad, "", false).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
    }

    #[test]
    fn stats_obfuscator_has_the_user_settings_even_when_spans_are_not_obfuscated() {
        let mut c = cfg(None, None);
        c.obfuscation.sql.keep_sql_alias = true;
        let p = Pipeline::new(&c, "", false).unwrap();
        assert!(p.obfuscator.is_none());
        let q = "SELECT a AS b FROM t WHERE x = 1";
        let o = p.stats_obfuscator().obfuscate_resource("sql", q, "");
        assert_eq!(o, "SELECT a AS b FROM t WHERE x = ?");
    }

    #[test]
    fn credit_card_modes_and_lists() {
        let mut cfg = ProcessingConfig::default();
        cfg.set_credit_cards(CreditCardMode::Luhn);
        assert!(cfg.obfuscation.credit_cards.enabled && cfg.obfuscation.credit_cards.luhn);
        cfg.set_credit_cards(CreditCardMode::Off);
        assert!(!cfg.obfuscation.credit_cards.enabled);
        assert_eq!(split_list(" a, b  c,,"), ["a", "b", "c"]);
    }
}
