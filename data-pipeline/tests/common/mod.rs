//! Runs the agent's test tables (ported as data under `tests/data/`) through the conformance
//! driver's handlers, i.e. through the same public API calls the driver makes.
//!
//! Table format: `{"description", "source", "cases": [{"test", "request", "expected",
//! "compare"?, "source"?}]}`. In requests and expected values, `{"$repeat": s, "times": n}` and
//! `{"$concat": [..]}` build long strings, `{"$now_times": k}` is k x now (ns). In expected values
//! `{"$match": "now_minus", "minus": n}` accepts now - n (taken around the call) and
//! `{"$match": "any"}` anything. `compare`: `exact` (default), `span` / `chunk` (expected spans
//! are completed with default fields the way the driver prints spans), `json_normalized` (the
//! agent's JSON obfuscation test: input and expected are normalized, output compared parsed).

#![allow(dead_code)]

#[path = "../../examples/conformance/normalize.rs"]
pub mod normalize;
#[path = "../../examples/conformance/obfuscate.rs"]
pub mod obfuscate;
#[path = "../../examples/conformance/spanjson.rs"]
pub mod spanjson;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Expands the string/number builders of the table format.
pub fn expand(v: &Value, now: i64) -> Value {
    match v {
        Value::Object(o) => {
            if let (Some(Value::String(s)), Some(n)) =
                (o.get("$repeat"), o.get("times").and_then(Value::as_u64))
            {
                return Value::String(s.repeat(n as usize));
            }
            if let Some(Value::Array(parts)) = o.get("$concat") {
                let mut s = String::new();
                for p in parts {
                    match expand(p, now) {
                        Value::String(x) => s.push_str(&x),
                        other => s.push_str(&other.to_string()),
                    }
                }
                return Value::String(s);
            }
            if let Some(k) = o.get("$now_times").and_then(Value::as_i64) {
                return Value::from(now.saturating_mul(k));
            }
            if o.contains_key("$match") {
                return v.clone();
            }
            Value::Object(o.iter().map(|(k, x)| (k.clone(), expand(x, now))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| expand(x, now)).collect()),
        other => other.clone(),
    }
}

/// Compares with matcher support; `Err` says where it differs.
pub fn compare(
    expected: &Value,
    actual: &Value,
    before: i64,
    after: i64,
    path: &str,
) -> Result<(), String> {
    if let Value::Object(o) = expected {
        if let Some(m) = o.get("$match").and_then(Value::as_str) {
            return match m {
                "any" => Ok(()),
                "now_minus" => {
                    let minus = o.get("minus").and_then(Value::as_i64).unwrap_or(0);
                    let v = actual
                        .as_i64()
                        .ok_or_else(|| format!("{path}: expected an integer, got {actual}"))?;
                    if v >= before - minus && v <= after - minus {
                        Ok(())
                    } else {
                        Err(format!("{path}: {v} is not now - {minus}"))
                    }
                }
                other => Err(format!("{path}: unknown matcher {other}")),
            };
        }
        let a = actual
            .as_object()
            .ok_or_else(|| format!("{path}: expected an object, got {actual}"))?;
        let ek: BTreeSet<_> = o.keys().collect();
        let ak: BTreeSet<_> = a.keys().collect();
        if ek != ak {
            return Err(format!("{path}: keys differ: expected {ek:?}, got {ak:?}"));
        }
        for (k, e) in o {
            compare(e, &a[k], before, after, &format!("{path}.{k}"))?;
        }
        return Ok(());
    }
    if let Value::Array(e) = expected {
        let a = actual
            .as_array()
            .ok_or_else(|| format!("{path}: expected an array, got {actual}"))?;
        if a.len() != e.len() {
            return Err(format!(
                "{path}: expected {} items, got {}",
                e.len(),
                a.len()
            ));
        }
        for (i, (x, y)) in e.iter().zip(a).enumerate() {
            compare(x, y, before, after, &format!("{path}[{i}]"))?;
        }
        return Ok(());
    }
    if expected == actual {
        Ok(())
    } else {
        let show = |v: &Value| {
            let s = v.to_string();
            if s.len() > 300 {
                format!(
                    "{}... ({} bytes)",
                    data_pipeline::normalize::truncate_utf8(&s, 300),
                    s.len()
                )
            } else {
                s
            }
        };
        Err(format!(
            "{path}: expected {}, got {}",
            show(expected),
            show(actual)
        ))
    }
}

/// Completes an expected span with the driver's defaults (matchers kept as they are).
fn complete_span(v: &Value) -> Value {
    let mut stripped = v.clone();
    let mut matchers = Vec::new();
    if let Value::Object(o) = &mut stripped {
        for (k, x) in o.iter_mut() {
            if x.get("$match").is_some() {
                matchers.push((k.clone(), x.clone()));
                *x = Value::from(0);
            }
        }
    }
    let span = match spanjson::span_from_json(&stripped) {
        Ok(s) => s,
        Err(e) => panic!("bad expected span {v}: {e}"),
    };
    let mut out = spanjson::span_to_json(&span);
    for (k, m) in matchers {
        out[k.as_str()] = m;
    }
    out
}

fn normalize_json(s: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(s).map_err(|e| format!("test data is not JSON: {e}"))?;
    Ok(v.to_string())
}

/// Runs one case; `Err` describes the mismatch.
pub fn run_case(case: &Value) -> Result<(), String> {
    let now = now_ns();
    let mut request = expand(&case["request"], now);
    let mut expected = expand(&case["expected"], now);
    let mode = case
        .get("compare")
        .and_then(Value::as_str)
        .unwrap_or("exact");
    if mode == "json_normalized" {
        let input = request["input"]
            .as_str()
            .ok_or("json case without input")?
            .to_string();
        request["input"] = Value::String(normalize_json(&input)?);
        let out = expected["result"]
            .as_str()
            .ok_or("json case without result")?
            .to_string();
        expected["result"] = Value::String(normalize_json(&out)?);
    }
    if mode == "span" {
        if let Some(s) = expected.get("span").cloned() {
            expected["span"] = complete_span(&s);
        }
    }
    if mode == "chunk" {
        if let Some(Value::Array(spans)) = expected.get("chunk").cloned() {
            expected["chunk"] = Value::Array(spans.iter().map(complete_span).collect());
        }
    }
    let op = request["op"]
        .as_str()
        .ok_or("request without op")?
        .to_string();
    let before = now_ns();
    let answer = match op.split('.').next() {
        Some("normalize") => normalize::handle(&op, &request),
        Some("obfuscate") | Some("quantize") => obfuscate::handle(&op, &request),
        _ => None,
    }
    .ok_or_else(|| format!("unknown op {op}"))?;
    let after = now_ns();
    if mode == "json_normalized" {
        let got = answer["result"]
            .as_str()
            .ok_or_else(|| format!("no result: {answer}"))?;
        let got: Value =
            serde_json::from_str(got).map_err(|e| format!("output is not JSON ({e}): {got}"))?;
        let want: Value = serde_json::from_str(expected["result"].as_str().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        return compare(&want, &got, before, after, "result");
    }
    compare(&expected, &answer, before, after, "answer")
}

/// Outcome of one table file.
pub struct FileReport {
    pub file: String,
    pub total: usize,
    pub passed: usize,
    pub failures: Vec<(String, String)>,
}

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

pub fn run_file(rel: &str) -> FileReport {
    let path = data_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{rel}: no cases"));
    let mut failures = Vec::new();
    let mut names = BTreeSet::new();
    for c in cases {
        let name = c["test"].as_str().unwrap_or("?").to_string();
        assert!(
            names.insert(name.clone()),
            "{rel}: duplicate test name {name}"
        );
        if let Err(e) = run_case(c) {
            failures.push((name, e));
        }
    }
    FileReport {
        file: rel.to_string(),
        total: cases.len(),
        passed: cases.len() - failures.len(),
        failures,
    }
}

/// Runs every file, prints pass counts per file, and asserts that exactly the `known` failures
/// `(file, test, reason)` fail.
pub fn run_tables(files: &[&str], known: &[(&str, &str, &str)]) {
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let mut total = (0, 0);
    for f in files {
        let r = run_file(f);
        println!("{:<32} {:>4}/{:<4} passed", r.file, r.passed, r.total);
        total.0 += r.passed;
        total.1 += r.total;
        for (name, why) in &r.failures {
            if !known.iter().any(|(kf, kt, _)| kf == f && kt == name) {
                unexpected.push(format!("{f} :: {name}: {why}"));
            }
        }
        for (kf, kt, _) in known.iter().filter(|(kf, _, _)| kf == f) {
            if !r.failures.iter().any(|(n, _)| n == kt) {
                fixed.push(format!("{kf} :: {kt}"));
            }
        }
    }
    println!(
        "{:<32} {:>4}/{:<4} passed ({} known failures)",
        "TOTAL",
        total.0,
        total.1,
        known.len()
    );
    assert!(
        unexpected.is_empty(),
        "unexpected failures:\n{}",
        unexpected.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "known failures that now pass (remove them from the list):\n{}",
        fixed.join("\n")
    );
}
