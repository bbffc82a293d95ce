//! Conformance ops of the normalization area (`normalize.*`), answered with the engine's public
//! API (`data_pipeline::normalize`).
//!
//! | op | request | answer |
//! |---|---|---|
//! | `normalize.service` | `input`, `lang`? | `result`, `reason`? |
//! | `normalize.name` / `normalize.peer_service` | `input` | `result`, `reason`? |
//! | `normalize.tag` / `normalize.tag_value` | `input` | `result` |
//! | `normalize.truncate_utf8` | `input`, `limit` | `result` |
//! | `normalize.span` | `span`, `lang`?, `config`? (`component2name`, `truncate`: false) | `span` or `error`, and `counts` |
//! | `normalize.chunk` | `chunk` (spans), `lang`?, `config`? | `chunk` or `error`, and `counts` |
//! | `normalize.truncate_span` | `span`, `max_resource_len`? | `span` |
//!
//! `reason` and `counts` use the agent's reason names (`service_empty`, `span_name_truncate`, ...).

use super::spanjson::{span_from_json, span_to_json};
use data_pipeline::normalize::{
    self, NormalizeConfig, NormalizeCounts, Normalizer, PeerServiceIssue,
};
use serde_json::{json, Map, Value};

fn input(req: &Value) -> Result<&str, String> {
    req.get("input")
        .and_then(Value::as_str)
        .ok_or_else(|| "missing string field \"input\"".to_string())
}

fn counts_json(c: &NormalizeCounts) -> Value {
    let m: Map<String, Value> = c
        .iter()
        .map(|(r, n)| (r.as_str().to_string(), json!(n)))
        .collect();
    Value::Object(m)
}

fn config(req: &Value) -> NormalizeConfig {
    let c = req.get("config");
    let flag = |k: &str, d: bool| {
        c.and_then(|c| c.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(d)
    };
    NormalizeConfig {
        lang: req
            .get("lang")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        component2name: flag("component2name", false),
        truncate: flag("truncate", false),
        ..NormalizeConfig::default()
    }
}

fn with_reason(result: &str, reason: Option<&str>) -> Value {
    match reason {
        Some(r) => json!({"result": result, "reason": r}),
        None => json!({"result": result}),
    }
}

fn run(op: &str, req: &Value) -> Result<Value, String> {
    Ok(match op {
        "normalize.service" => {
            let lang = req.get("lang").and_then(Value::as_str).unwrap_or_default();
            let (v, r) = normalize::normalize_service(input(req)?, lang);
            with_reason(&v, r.map(|r| r.as_str()))
        }
        "normalize.name" => {
            let (v, r) = normalize::normalize_name(input(req)?);
            with_reason(&v, r.map(|r| r.as_str()))
        }
        "normalize.peer_service" => {
            let (v, r) = normalize::normalize_peer_service(input(req)?);
            let r = r.map(|r| match r {
                PeerServiceIssue::TooLong => "too_long",
                PeerServiceIssue::Invalid => "invalid",
            });
            with_reason(&v, r)
        }
        "normalize.tag" => json!({"result": normalize::normalize_tag(input(req)?)}),
        "normalize.tag_value" => json!({"result": normalize::normalize_tag_value(input(req)?)}),
        "normalize.truncate_utf8" => {
            let limit = req
                .get("limit")
                .and_then(Value::as_u64)
                .ok_or("missing integer field \"limit\"")?;
            let limit = usize::try_from(limit).map_err(|e| e.to_string())?;
            json!({"result": normalize::truncate_utf8(input(req)?, limit)})
        }
        "normalize.span" => {
            let mut span = span_from_json(req.get("span").ok_or("missing field \"span\"")?)?;
            let mut counts = NormalizeCounts::new();
            match Normalizer::new(config(req)).normalize_span(&mut span, &mut counts) {
                Ok(()) => json!({"span": span_to_json(&span), "counts": counts_json(&counts)}),
                Err(e) => json!({"error": e.message(), "counts": counts_json(&counts)}),
            }
        }
        "normalize.chunk" => {
            let spans = req
                .get("chunk")
                .and_then(Value::as_array)
                .ok_or("missing array field \"chunk\"")?;
            let mut chunk = spans
                .iter()
                .map(span_from_json)
                .collect::<Result<Vec<_>, _>>()?;
            let mut counts = NormalizeCounts::new();
            match Normalizer::new(config(req)).normalize_chunk(&mut chunk, &mut counts) {
                Ok(()) => json!({
                    "chunk": chunk.iter().map(span_to_json).collect::<Vec<_>>(),
                    "counts": counts_json(&counts),
                }),
                Err(e) => json!({"error": e.message(), "counts": counts_json(&counts)}),
            }
        }
        "normalize.truncate_span" => {
            let mut span = span_from_json(req.get("span").ok_or("missing field \"span\"")?)?;
            let max = req
                .get("max_resource_len")
                .and_then(Value::as_u64)
                .map_or(normalize::MAX_RESOURCE_LEN, |m| m as usize);
            normalize::truncate_span(&mut span, max);
            json!({"span": span_to_json(&span)})
        }
        _ => return Err(String::new()),
    })
}

/// Answers the `normalize.*` ops; `None` for an op this area does not know.
pub fn handle(op: &str, req: &Value) -> Option<Value> {
    match run(op, req) {
        Ok(v) => Some(v),
        Err(e) if e.is_empty() => None,
        Err(e) => Some(json!({ "error": e })),
    }
}
