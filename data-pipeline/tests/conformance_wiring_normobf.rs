//! Pipes a few lines through the real conformance driver process to prove the normalize /
//! obfuscate / quantize areas are wired into its `AREAS` table.

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn driver() -> PathBuf {
    // Make sure the example is built (a no-op when `cargo test` already built it).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "data-pipeline",
            "--example",
            "conformance",
        ])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the conformance example failed");
    let exe = std::env::current_exe().expect("test path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/conformance
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir
        .join("examples")
        .join(format!("conformance{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

#[test]
fn areas_answer_through_the_driver_process() {
    let input = [
        r#"{"op":"quantize.redis","resource":"get my_key"}"#,
        r#"{"op":"obfuscate.redis","command":"AUTH secret"}"#,
        r#"{"op":"obfuscate.http_url","url":"http://u:p@foo.com/1?q=a","config":{"remove_query_string":true,"remove_paths_with_digits":true}}"#,
        r#"{"op":"obfuscate.credit_card","value":"4111 1111 1111 1111","config":{"luhn":true}}"#,
        r#"{"op":"normalize.service","input":"","lang":"php"}"#,
        r#"{"op":"normalize.span","span":{"trace_id":0,"span_id":1}}"#,
        r#"{"op":"obfuscate.json","input":"{\"a\": 1}"}"#,
        r#"{"op":"normalize.nope"}"#,
    ]
    .join("\n");
    let mut child = Command::new(driver())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the driver");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write requests");
    let out = child.wait_with_output().expect("driver output");
    assert!(out.status.success());
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON answer per line"))
        .collect();
    assert_eq!(answers.len(), 8);
    assert_eq!(answers[0]["result"], "GET");
    assert_eq!(answers[1]["result"], "AUTH ?");
    assert_eq!(answers[2]["result"], "http://foo.com/??");
    assert_eq!(answers[3]["is_card"], true);
    assert_eq!(answers[4]["result"], "unnamed-php-service");
    assert_eq!(
        answers[5]["error"],
        "trace chunk dropped (reason:trace_id_zero)"
    );
    assert_eq!(answers[6]["result"], r#"{"a":"?"}"#);
    assert_eq!(answers[7]["error"], "unknown op: normalize.nope");
}
