//! Fork safety of the client-side stats flusher and the Data Streams processor, with real
//! `fork()` against the real test agent.
//!
//! While a parent thread keeps computing stats (trace sends with stats on) and recording DSM
//! checkpoints (so their locks may well be held at the instant of a fork), the parent forks
//! children. Each child checks that it starts with fresh counters, computes its own stats and
//! records its own checkpoints (its flush threads and HTTP clients are new: the parent's are gone
//! in the child), flushes them to the agent and exits with a status that is its verdict. A
//! second round detects forks through a `pthread_atfork` notifier instead of `getpid`.
//!
//! Checked at the agent (`/v0.6/stats` and `/v0.1/pipeline_stats` bodies, decoded here): every
//! child's stats and checkpoints arrived, and the parent's exactly once in total (a child that
//! re-sent the parent's pending buckets or points would make them count twice). No child hangs
//! (per-child time limit, and a watchdog over the whole test).
//!
//! One test function on purpose: a fork must not copy another test's half-done state.

mod background_support;
mod support;

use background_support::{reap_children, watchdog};
use data_pipeline::datastreams::{Config, Processor};
use data_pipeline::exporter::{fork, Exporter, ExporterBuilder};
use data_pipeline::sketch::DDSketch;
use data_pipeline::stats::StatsMode;
use data_pipeline::{Span, Trace};
use rmpv::Value;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{decode_pipeline_stats, find_field, TestAgent, DSM_EXTRA_INFO};

/// Stats spans and DSM checkpoints each child adds.
const CHILD_N: u64 = 7;
const FORKS: u64 = 6;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// One root span (top level: counted by the stats) with `resource`.
fn trace(resource: &str, id: u64) -> Trace<'static> {
    vec![Span {
        service: "fork-web".into(),
        name: "fork.request".into(),
        resource: resource.to_owned().into(),
        r#type: "web".into(),
        trace_id: id,
        span_id: id,
        parent_id: 0,
        start: now_ns() - 2_000_000,
        duration: 1_000_000,
        ..Default::default()
    }]
}

fn edge_tags(topic: &str) -> [String; 3] {
    [
        "direction:out".to_owned(),
        format!("topic:{topic}"),
        "type:kafka".to_owned(),
    ]
}

fn checkpoint(dsm: &Processor, topic: &str) {
    let tags = edge_tags(topic);
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    dsm.set_checkpoint(None, &tags, 10);
}

fn exporter(agent: &TestAgent, token: &str) -> Exporter {
    ExporterBuilder::new()
        .url(agent.url())
        .language("rust")
        .tracer_version("0.0.1-fork")
        .service("fork-web")
        .env("prod")
        .test_session_token(token)
        .stats(StatsMode::On)
        .send_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn processor(agent: &TestAgent, token: &str) -> Processor {
    Processor::new(Config {
        service: "fork-dsm".into(),
        env: "prod".into(),
        lang: "rust".into(),
        tracer_version: "0.0.1-fork".into(),
        agent_url: agent.url(),
        // A flush thread that runs (complete buckets only) in the parent and, restarted, in
        // each child.
        flush_interval: Some(Duration::from_millis(20)),
        extra_headers: vec![("X-Datadog-Test-Session-Token".into(), token.into())],
        ..Config::default()
    })
    .unwrap()
}

/// Runs in a child: never prints, never unwinds out; the exit status is the verdict.
fn child_work(ex: &Exporter, dsm: &Processor, name: &str, id_base: u64) -> i32 {
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let Some(stats) = ex.stats() else {
            return 10;
        };
        // Fresh state: nothing inherited.
        if stats.worker().sent_payloads() != 0 {
            return 11;
        }
        let s0 = dsm.stats();
        if s0.checkpoints != 0 || s0.payloads_sent != 0 {
            return 12;
        }
        for i in 0..CHILD_N {
            if ex.send_traces(&[trace(name, id_base + i)]).is_err() {
                return 13;
            }
            checkpoint(dsm, name);
        }
        // Let the child's own flush threads run a few rounds.
        std::thread::sleep(Duration::from_millis(60));
        match ex.flush_stats(true, Duration::from_secs(10)) {
            Ok(n) if n >= 1 => {}
            _ => return 14,
        }
        if dsm.flush_within(Duration::from_secs(10)).is_err() {
            return 15;
        }
        let s = dsm.stats();
        if s.checkpoints != CHILD_N || s.payloads_sent < 1 || s.send_errors != 0 {
            return 16;
        }
        if ex.shutdown(Duration::from_secs(10)).is_err() {
            return 17;
        }
        if dsm.shutdown(Duration::from_secs(10)).is_err() {
            return 18;
        }
        0
    }));
    r.unwrap_or(99)
}

fn array<'v>(m: &'v Value, k: &str) -> &'v [Value] {
    find_field(m, k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Hits per resource over every `/v0.6/stats` body of the session.
fn stats_hits(reqs: &[support::Request]) -> HashMap<String, u64> {
    let mut hits = HashMap::new();
    for r in reqs.iter().filter(|r| r.path() == "/v0.6/stats") {
        let p = rmpv::decode::read_value(&mut &r.body[..]).expect("stats body is msgpack");
        for b in array(&p, "Stats") {
            for g in array(b, "Stats") {
                let res = find_field(g, "Resource")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let n = find_field(g, "Hits").and_then(Value::as_u64).unwrap_or(0);
                *hits.entry(res.to_owned()).or_default() += n;
            }
        }
    }
    hits
}

/// Checkpoints per `topic:` edge tag over every pipeline stats body of the session (the count of
/// each group's pathway latency sketch).
fn dsm_points(reqs: &[support::Request]) -> HashMap<String, u64> {
    let mut points = HashMap::new();
    for r in reqs
        .iter()
        .filter(|r| r.path().starts_with("/v0.1/pipeline_stats"))
    {
        let p = decode_pipeline_stats(&r.body);
        for b in array(&p, "Stats") {
            for g in array(b, "Stats") {
                let topic = array(g, "EdgeTags")
                    .iter()
                    .filter_map(Value::as_str)
                    .find_map(|t| t.strip_prefix("topic:"))
                    .unwrap_or("")
                    .to_owned();
                let sketch = find_field(g, "PathwayLatency")
                    .and_then(Value::as_slice)
                    .map(|b| DDSketch::decode(b).expect("sketch decodes"))
                    .expect("PathwayLatency");
                *points.entry(topic).or_default() += sketch.count() as u64;
            }
        }
    }
    points
}

fn round(agent: &TestAgent, round: u64) {
    let token = format!("fork-stats-dsm-{round}-{}", std::process::id());
    agent.start_session(&token, None);
    let ex = exporter(agent, &token);
    let dsm = processor(agent, &token);
    let parent_name = format!("parent-{round}");
    let sent = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut children = Vec::new();
    std::thread::scope(|s| {
        // The parent keeps computing stats and recording checkpoints across the forks.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                ex.send_traces(&[trace(&parent_name, (round + 1) << 40 | n)])
                    .unwrap();
                checkpoint(&dsm, &parent_name);
                std::thread::sleep(Duration::from_micros(300));
            }
        });
        for k in 0..FORKS {
            let name = format!("child-{round}-{k}");
            // SAFETY: the child runs only `child_work` (no printing, no unwinding) then `_exit`.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let code = child_work(&ex, &dsm, &name, (round + 1) << 40 | (k + 1) << 32);
                // SAFETY: ends the child without running the parent's destructors or atexit.
                unsafe { libc::_exit(code) };
            }
            assert!(pid > 0, "fork failed");
            children.push((k, pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let failures = reap_children(children, Duration::from_secs(60));
    assert!(failures.is_empty(), "round {round}: {failures:?}");

    // The parent is unaffected: its own stats and points go out now, once.
    let parent_n = sent.load(Ordering::Relaxed);
    ex.shutdown(Duration::from_secs(10)).unwrap();
    dsm.shutdown(Duration::from_secs(10)).unwrap();
    let d = dsm.stats();
    assert_eq!(d.checkpoints, parent_n, "{d:?}");
    assert_eq!(d.send_errors, 0, "{d:?}");

    let reqs = agent.requests(&token);
    let hits = stats_hits(&reqs);
    let points = dsm_points(&reqs);
    assert_eq!(
        hits.get(&parent_name).copied(),
        Some(parent_n),
        "parent stats exactly once: {hits:?}"
    );
    assert_eq!(
        points.get(&parent_name).copied(),
        Some(parent_n),
        "parent checkpoints exactly once: {points:?}"
    );
    for k in 0..FORKS {
        let name = format!("child-{round}-{k}");
        assert_eq!(hits.get(&name).copied(), Some(CHILD_N), "{name}: {hits:?}");
        assert_eq!(
            points.get(&name).copied(),
            Some(CHILD_N),
            "{name}: {points:?}"
        );
    }
    assert_eq!(hits.len() as u64, FORKS + 1, "{hits:?}");
    assert_eq!(points.len() as u64, FORKS + 1, "{points:?}");
}

extern "C" fn note_fork() {
    fork::note_fork_in_child();
}

#[test]
fn forked_children_send_their_own_stats_and_checkpoints_and_the_parent_its_own() {
    let _w = watchdog("stats/DSM fork test", Duration::from_secs(240));
    let agent = TestAgent::start_with(&[("DD_AGENT_EXTRA_INFO", DSM_EXTRA_INFO)], &[]);
    // Round 0: forks detected with getpid.
    assert!(!fork::fork_notifier_installed());
    round(&agent, 0);
    // Round 1: a pthread_atfork child handler bumps the fork epoch (as the C ABI does).
    // SAFETY: registers a handler that only increments an atomic (async-signal-safe).
    let rc = unsafe { libc::pthread_atfork(None, None, Some(note_fork)) };
    assert_eq!(rc, 0);
    fork::set_fork_notifier_installed();
    round(&agent, 1);
}
