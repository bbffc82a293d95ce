//! The agent's own SQL obfuscation test tables (`tests/data/obfuscate/sql.json`, extracted from
//! `pkg/obfuscate/sql_test.go` by `tests/go-differential/extract`) run through the public API the
//! conformance driver calls, plus a few cases piped through the driver process itself.

use data_pipeline::obfuscate::sql::{ObfuscatedSql, SqlConfig, SqlObfuscator};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn table() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/obfuscate/sql.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read sql.json"))
        .expect("parse sql.json")
}

/// `null` and `[]` are the same list (the agent's nil vs empty slices).
fn list(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    }
}

fn check_metadata(want: &Value, got: &ObfuscatedSql) -> Result<(), String> {
    let got_json = json!({
        "tables_csv": got.table_names,
        "commands": got.commands,
        "comments": got.comments,
        "procedures": got.procedures,
        "size": got.metadata_size,
    });
    for (k, w) in want.as_object().into_iter().flatten() {
        let g = &got_json[k.as_str()];
        let same = match k.as_str() {
            "commands" | "comments" | "procedures" => list(Some(w)) == list(Some(g)),
            _ => w == g,
        };
        if !same {
            return Err(format!("metadata {k}: want {w}, got {g}"));
        }
    }
    Ok(())
}

/// Runs one case; `Err(reason)` when it fails.
fn run_case(case: &Value, shared: Option<&SqlObfuscator>) -> Result<(), String> {
    let query = case["query"].as_str().ok_or("no query")?;
    let config = match SqlConfig::from_json(&case["config"]) {
        Ok(c) => c,
        Err(e) => {
            return match case.get("expected_error").and_then(Value::as_str) {
                Some(want) if want.is_empty() || want == e.message() => Ok(()),
                _ => Err(format!("config rejected: {}", e.message())),
            }
        }
    };
    let fresh;
    let obf = match shared {
        Some(o) => o,
        None => {
            let initial = case["initial_literal_escapes"].as_bool().unwrap_or(false);
            fresh = SqlObfuscator::with_literal_escapes(initial);
            &fresh
        }
    };
    let got = obf.obfuscate(query, &config);
    if case["expect_any"].as_bool().unwrap_or(false) {
        return Ok(());
    }
    if let Some(want) = case.get("expected_error").and_then(Value::as_str) {
        match &got {
            Ok(out) => return Err(format!("want error {want:?}, got result {:?}", out.query)),
            Err(e) if !want.is_empty() && e.message() != want => {
                return Err(format!("want error {want:?}, got error {:?}", e.message()))
            }
            Err(_) => {}
        }
    } else {
        let out = got
            .as_ref()
            .map_err(|e| format!("unexpected error {:?}", e.message()))?;
        if let Some(want) = case.get("expected").and_then(Value::as_str) {
            if out.query != want {
                return Err(format!("\n  want {want:?}\n  got  {:?}", out.query));
            }
        }
        if let Some(want) = case.get("expected_tables").and_then(Value::as_str) {
            if out.table_names != want {
                return Err(format!("tables: want {want:?}, got {:?}", out.table_names));
            }
        }
        if let Some(want) = case.get("expected_metadata") {
            check_metadata(want, out)?;
        }
        if let Some(other) = case.get("same_as_config") {
            let cfg = SqlConfig::from_json(other).map_err(|e| e.message().to_owned())?;
            let base = SqlObfuscator::new()
                .obfuscate(query, &cfg)
                .map_err(|e| format!("reference config failed: {}", e.message()))?;
            if base.query != out.query {
                return Err(format!(
                    "\n  want (as {other}) {:?}\n  got  {:?}",
                    base.query, out.query
                ));
            }
        }
    }
    if let Some(want) = case.get("final_literal_escapes").and_then(Value::as_bool) {
        if obf.literal_escapes() != want {
            return Err(format!(
                "literal escapes afterwards: want {want}, got {}",
                obf.literal_escapes()
            ));
        }
    }
    Ok(())
}

#[test]
fn agent_sql_test_tables() {
    let t = table();
    let cases = t["cases"].as_array().expect("cases");
    let known: BTreeMap<String, String> = t["known_failures"]
        .as_array()
        .expect("known_failures")
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap().to_owned(),
                k["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut shared: BTreeMap<String, SqlObfuscator> = BTreeMap::new();
    let mut per_group: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failed = BTreeSet::new();
    let mut report = String::new();
    for case in cases {
        let name = case["name"].as_str().unwrap().to_owned();
        let group = case["group"].as_str().unwrap().to_owned();
        let obf = if case["shared_obfuscator"].as_bool().unwrap_or(false) {
            Some(&*shared.entry(group.clone()).or_default())
        } else {
            None
        };
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(case, obf)))
            .unwrap_or_else(|_| Err("panicked".to_owned()));
        let e = per_group.entry(group).or_default();
        e.1 += 1;
        match res {
            Ok(()) => e.0 += 1,
            Err(why) => {
                if !known.contains_key(&name) {
                    report.push_str(&format!("FAIL {name}: {why}\n"));
                }
                failed.insert(name);
            }
        }
    }
    let (mut pass, mut total) = (0, 0);
    for (g, (p, n)) in &per_group {
        println!("{g}: {p}/{n}");
        pass += p;
        total += n;
    }
    println!("total: {pass}/{total}");
    // every default-config case must pass
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let default_cfg = case["config"].as_object().is_none_or(|o| o.is_empty());
        assert!(
            !(default_cfg && known.contains_key(name)),
            "{name} has the default config and may not be a known failure"
        );
    }
    let known_names: BTreeSet<String> = known.keys().cloned().collect();
    let fixed: Vec<_> = known_names.difference(&failed).collect();
    assert!(report.is_empty(), "unexpected failures:\n{report}");
    assert!(
        fixed.is_empty(),
        "known failures that now pass (update known_failures): {fixed:?}"
    );
}

/// The conformance driver binary (built by `cargo test` with the examples; built here if absent).
fn driver() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir
        .join("examples")
        .join(format!("conformance{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "data-pipeline",
                "--example",
                "conformance",
            ])
            .status()
            .expect("cargo build");
        assert!(status.success());
    }
    bin
}

#[test]
fn conformance_driver_answers_obfuscate_sql() {
    let t = table();
    let cases: Vec<&Value> = t["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["group"] == "TestSQLQuantizer" || c["group"] == "TestSQLErrors")
        .take(40)
        .collect();
    let mut input = String::new();
    for c in &cases {
        input.push_str(
            &json!({"op": "obfuscate.sql", "query": c["query"], "config": c["config"]}).to_string(),
        );
        input.push('\n');
    }
    input.push_str("{\"op\":\"obfuscate.sql\",\"query\":\"SELECT 1\",\"config\":{\"obfuscation_mode\":\"bogus\"}}\n");
    input.push_str("{\"op\":\"obfuscate.sql\",\"query\":\"select * from users where id = 42\",\"config\":{\"table_names\":true}}\n");
    let mut child = Command::new(driver())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn driver");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("driver output");
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), cases.len() + 2);
    for (c, a) in cases.iter().zip(&answers) {
        if let Some(want) = c.get("expected") {
            assert_eq!(&a["result"], want, "{}", c["name"]);
        } else {
            assert_eq!(&a["error"], &c["expected_error"], "{}", c["name"]);
        }
    }
    assert_eq!(
        answers[cases.len()]["error"],
        "invalid obfuscation mode: bogus"
    );
    let last = &answers[cases.len() + 1];
    assert_eq!(last["result"], "select * from users where id = ?");
    assert_eq!(last["metadata"]["tables_csv"], "users");
}
