//! Data streams ops: `dsm.hash`, `dsm.encode`, `dsm.decode` (see `shared/spec/conformance.md`).

use data_pipeline::datastreams::{carrier, hash, PathwayContext, PROPAGATION_KEY_LEGACY};
use serde_json::{json, Value};

/// Answers a `dsm.*` op, `None` for an op it does not know.
pub fn handle(op: &str, req: &Value) -> Option<Value> {
    let answer = match op {
        "dsm.hash" => hash_op(req),
        "dsm.encode" => encode_op(req),
        "dsm.decode" => decode_op(req),
        _ => return None,
    };
    Some(answer.unwrap_or_else(|e| json!({ "error": e })))
}

fn str_field<'a>(req: &'a Value, name: &str) -> Result<&'a str, String> {
    req.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field \"{name}\""))
}

fn u64_field(req: &Value, name: &str) -> Result<u64, String> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("field \"{name}\" must be an unsigned 64-bit integer")),
    }
}

fn i64_field(req: &Value, name: &str) -> Result<i64, String> {
    req.get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("field \"{name}\" must be a signed 64-bit integer"))
}

fn hash_op(req: &Value) -> Result<Value, String> {
    let service = str_field(req, "service")?;
    let env = str_field(req, "env")?;
    let tags: Vec<&str> = match req.get("edge_tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().ok_or("edge_tags must be strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("edge_tags must be an array".into()),
    };
    let parent = u64_field(req, "parent_hash")?;
    let node = hash::node_hash(service, env, &tags, &[] as &[&str]);
    Ok(json!({ "node_hash": node, "hash": hash::pathway_hash(node, parent) }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

fn encode_op(req: &Value) -> Result<Value, String> {
    let ctx = PathwayContext::from_millis(
        u64_field(req, "hash")?,
        i64_field(req, "pathway_start_ms")?,
        i64_field(req, "edge_start_ms")?,
    );
    Ok(json!({ "hex": hex(&ctx.encode()), "base64": ctx.encode_base64() }))
}

fn decode_op(req: &Value) -> Result<Value, String> {
    let carrier_obj = req
        .get("carrier")
        .and_then(Value::as_object)
        .ok_or("missing object field \"carrier\"")?;
    // Values of the binary key are given as hex; a value that is not hex is passed as its text.
    let ctx = carrier::extract_with(|key| {
        let v = carrier_obj.get(key)?.as_str()?;
        if key == PROPAGATION_KEY_LEGACY {
            Some(unhex(v).unwrap_or_else(|| v.as_bytes().to_vec()))
        } else {
            Some(v.as_bytes().to_vec())
        }
    });
    Ok(match ctx {
        Some(c) => json!({
            "hash": c.hash(),
            "pathway_start_ms": c.pathway_start_ms(),
            "edge_start_ms": c.edge_start_ms(),
        }),
        None => json!({ "context": null }),
    })
}
