//! The conformance driver (see `shared/spec/conformance.md` in the project's design material):
//! reads one JSON request per line on stdin and writes exactly one JSON answer per line on stdout,
//! in order, calling the engine's public API. One bad line never ends the run.
//!
//! Each area adds its ops in its own module below and one row in [`AREAS`]: a handler gets the op
//! name and the request and answers `None` for an op it does not know.

mod dsm;
mod normalize;
mod obfuscate;
mod obfuscate_sql;
mod spanjson;

use serde_json::{json, Value};
use std::io::{BufRead, Write};

/// A handler for the ops of one area (the text before the first `.` of the op).
type Handler = fn(&str, &Value) -> Option<Value>;

/// The areas and their handlers. Several rows may share an area (e.g. `obfuscate`): they are asked
/// in order until one answers.
const AREAS: &[(&str, Handler)] = &[
    ("dsm", dsm::handle),
    ("normalize", normalize::handle),
    ("obfuscate", obfuscate::handle),
    ("obfuscate", obfuscate_sql::handle),
    ("quantize", obfuscate::handle),
];

/// Answers one request object.
fn dispatch(req: &Value) -> Value {
    let op = match req.get("op").and_then(Value::as_str) {
        Some(op) => op,
        None => return json!({"error": "missing string field \"op\""}),
    };
    let area = op.split('.').next().unwrap_or_default();
    AREAS
        .iter()
        .filter(|(name, _)| *name == area)
        .find_map(|(_, handle)| handle(op, req))
        .unwrap_or_else(|| json!({ "error": format!("unknown op: {op}") }))
}

fn main() {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(out, "{}", json!({"error": format!("unreadable line: {e}")}));
                let _ = out.flush();
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(req) => dispatch(&req),
            Err(e) => json!({"error": format!("invalid JSON: {e}")}),
        };
        // serde_json keeps u64 integers exact, as the spec requires for hashes and ids.
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }
}
