//! Runs every vector of `shared/vectors/dsm.json` (computed with Datadog's own tracer) through
//! the public API, then through the conformance driver process.
//!
//! The file is found under `$DP_SHARED_DIR/vectors/`, else at `shared/vectors/dsm.json` in the
//! nearest ancestor of the repository that has it (`<repo>/../shared` for the main checkout,
//! further up for a worktree).

use data_pipeline::datastreams::{carrier, context, hash, Config, PathwayContext, Processor};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn vectors() -> Value {
    let path = match std::env::var_os("DP_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir).join("vectors/dsm.json"),
        None => {
            let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
            repo.ancestors()
                .map(|d| d.join("shared/vectors/dsm.json"))
                .find(|p| p.exists())
                .unwrap_or_else(|| repo.join("../shared/vectors/dsm.json"))
        }
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("dsm.json is JSON")
}

fn list<'a>(v: &'a Value, name: &str) -> &'a Vec<Value> {
    let l = v[name]
        .as_array()
        .unwrap_or_else(|| panic!("no list {name}"));
    assert!(!l.is_empty(), "{name} is empty");
    l
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect()
}

#[test]
fn fnv1_64_vectors() {
    let v = vectors();
    for case in list(&v, "fnv1_64") {
        let input = case["input_utf8"].as_str().unwrap();
        assert_eq!(
            hash::fnv1_64(input.as_bytes()),
            case["u64"].as_u64().unwrap(),
            "{case}"
        );
    }
}

#[test]
fn zigzag_varint_vectors() {
    let v = vectors();
    for case in list(&v, "zigzag_varint") {
        let value = case["value"].as_i64().unwrap();
        let expected = case["encoded_hex"].as_str().unwrap();
        let mut out = Vec::new();
        context::encode_zigzag_varint(value, &mut out);
        assert_eq!(hex(&out), expected, "{case}");
        assert_eq!(
            context::decode_zigzag_varint(&unhex(expected)),
            Some((value, expected.len() / 2)),
            "{case}"
        );
    }
}

#[test]
fn hash_vectors_through_functions_and_processor() {
    let v = vectors();
    for case in list(&v, "hashes") {
        let service = case["service"].as_str().unwrap();
        let env = case["env"].as_str().unwrap();
        let tags = strs(&case["edge_tags"]);
        let parent = case["parent_hash"].as_u64().unwrap();
        let node = hash::node_hash(service, env, &tags, &[] as &[&str]);
        assert_eq!(node, case["node_hash"].as_u64().unwrap(), "{case}");
        let expected = case["hash"].as_u64().unwrap();
        assert_eq!(hash::pathway_hash(node, parent), expected, "{case}");

        // The same through a checkpoint: the parent arrives in a propagated context.
        let dsm = Processor::new(Config {
            service: service.into(),
            env: env.into(),
            flush_interval: None,
            // No agent here: the final flush fails fast instead of reaching a real port.
            agent_url: "unix:///nonexistent/dsm-vectors.sock".into(),
            ..Config::default()
        })
        .unwrap();
        let parent_ctx = (parent != 0).then(|| PathwayContext::from_millis(parent, 1, 1));
        let ctx = dsm.set_checkpoint_at(parent_ctx.as_ref(), &tags, 0, 1_700_000_000_000_000_000);
        assert_eq!(ctx.hash(), expected, "checkpoint {case}");
    }
}

#[test]
fn encode_decode_vectors() {
    let v = vectors();
    for case in list(&v, "encode_decode") {
        let h = case["hash"].as_u64().unwrap();
        let ps = case["pathway_start_ms"].as_i64().unwrap();
        let es = case["edge_start_ms"].as_i64().unwrap();
        let bin = case["encoded_hex"].as_str().unwrap();
        let text = case["base64"].as_str().unwrap();
        let ctx = PathwayContext::from_millis(h, ps, es);
        assert_eq!(hex(&ctx.encode()), bin, "{case}");
        assert_eq!(ctx.encode_base64(), text, "{case}");
        for decoded in [
            PathwayContext::decode(&unhex(bin)),
            PathwayContext::decode_base64(text),
        ] {
            let d = decoded.unwrap_or_else(|| panic!("no context for {case}"));
            assert_eq!(
                (d.hash(), d.pathway_start_ms(), d.edge_start_ms()),
                (h, ps, es),
                "{case}"
            );
        }
        // Through a Kafka carrier and back.
        let mut headers = Vec::new();
        carrier::inject_kafka(&ctx, &mut headers);
        assert_eq!(headers[0].1, text.as_bytes());
        assert_eq!(carrier::extract_kafka(&headers), Some(ctx));
    }
}

#[test]
fn decode_vectors() {
    let v = vectors();
    for case in list(&v, "decode") {
        let carrier_obj = case["carrier"].as_object().unwrap();
        let headers: Vec<(String, Vec<u8>)> = carrier_obj
            .iter()
            .map(|(k, val)| {
                let s = val.as_str().unwrap();
                let bytes = if k == carrier::PROPAGATION_KEY_LEGACY {
                    unhex(s)
                } else {
                    s.as_bytes().to_vec()
                };
                (k.clone(), bytes)
            })
            .collect();
        let ctx = carrier::extract_kafka(&headers).unwrap_or_else(|| panic!("{case}"));
        assert_eq!(ctx.hash(), case["hash"].as_u64().unwrap(), "{case}");
        let http: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(k, v)| (k.to_uppercase(), v.clone()))
            .collect();
        assert_eq!(carrier::extract_http(&http), Some(ctx), "{case}");
    }
}

/// The conformance driver binary, built next to this test (`cargo test` builds examples; when
/// it was not, it is built here).
fn conformance_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let bin = profile_dir
        .join("examples")
        .join(format!("conformance{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "data-pipeline",
            "--example",
            "conformance",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the conformance example failed");
    }
    bin
}

#[test]
fn vectors_through_the_conformance_driver() {
    let v = vectors();
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for case in list(&v, "hashes") {
        requests.push(
            json!({"op": "dsm.hash", "service": case["service"], "env": case["env"],
            "edge_tags": case["edge_tags"], "parent_hash": case["parent_hash"]}),
        );
        expected.push(json!({"node_hash": case["node_hash"], "hash": case["hash"]}));
    }
    for case in list(&v, "encode_decode") {
        requests.push(json!({"op": "dsm.encode", "hash": case["hash"],
            "pathway_start_ms": case["pathway_start_ms"], "edge_start_ms": case["edge_start_ms"]}));
        expected.push(json!({"hex": case["encoded_hex"], "base64": case["base64"]}));
        let full = json!({"hash": case["hash"], "pathway_start_ms": case["pathway_start_ms"],
            "edge_start_ms": case["edge_start_ms"]});
        requests.push(
            json!({"op": "dsm.decode", "carrier": {"dd-pathway-ctx-base64": case["base64"]}}),
        );
        expected.push(full.clone());
        requests
            .push(json!({"op": "dsm.decode", "carrier": {"dd-pathway-ctx": case["encoded_hex"]}}));
        expected.push(full);
    }
    for case in list(&v, "decode") {
        requests.push(json!({"op": "dsm.decode", "carrier": case["carrier"]}));
        expected.push(json!({"hash": case["hash"]})); // only the hash is given: compared alone
    }
    // Forgiving decoding: these are "no context".
    for bad in ["", "6gAA", "6gAAAAAAAACA5vP6-WKAoKv--WI=", "!!"] {
        requests.push(json!({"op": "dsm.decode", "carrier": {"dd-pathway-ctx-base64": bad}}));
        expected.push(json!({"context": null}));
    }
    requests.push(json!({"op": "dsm.unknown"}));
    expected.push(json!({"error": "unknown op: dsm.unknown"}));

    let mut child = Command::new(conformance_binary())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = requests.iter().map(|r| format!("{r}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let answers: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(answers.len(), requests.len());
    let mut passed = 0;
    for ((req, want), got) in requests.iter().zip(&expected).zip(&answers) {
        for (k, val) in want.as_object().unwrap() {
            assert_eq!(&got[k], val, "request {req} answered {got}");
        }
        passed += 1;
    }
    assert_eq!(passed, requests.len());
}
