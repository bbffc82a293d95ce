//! Deterministic generators of traces for the codec's tests, benchmarks and fuzz seeds.
//!
//! Shared by `benches/codec.rs` (as `mod support`) and the unit tests of `src/decode` and
//! `src/encode` (through `#[path]`), so it uses only the crate's public API.
#![allow(dead_code)]

use data_pipeline::span::{
    AttributeScalar, AttributeValue, Map, Span, SpanEvent, SpanLink, Str, Trace, Traces,
};
use std::borrow::Cow;

/// A small, fast, deterministic PRNG (splitmix64).
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `pct`%.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    /// One of `items`.
    pub fn pick<'x>(&mut self, items: &[&'x str]) -> &'x str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn s(v: impl Into<String>) -> Str<'static> {
    Str::owned(v.into())
}

const SERVICES: &[&str] = &["web-frontend", "checkout", "billing-api", "users", "search"];
const ROUTES: &[&str] = &[
    "/api/v1/users/{id}",
    "/api/v1/orders",
    "/checkout/cart/{cart_id}/items",
    "/health",
    "/search",
];
const TABLES: &[&str] = &["users", "orders", "order_items", "payments", "sessions"];
const REDIS: &[&str] = &["GET", "SET", "HGETALL", "EXPIRE", "MGET"];

fn common_meta(rng: &mut Rng, meta: &mut Map<'static, Str<'static>>, env: &str) {
    meta.push("env", s(env));
    meta.push(
        "version",
        s(format!("1.{}.{}", rng.below(20), rng.below(50))),
    );
    meta.push("language", s("python"));
    meta.push(
        "runtime-id",
        s(format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())),
    );
    meta.push("_dd.p.dm", s("-0"));
}

/// A realistic HTTP root span, SQL or Redis child spans: 15-30 meta and metrics each.
pub fn realistic_trace(rng: &mut Rng, spans: usize) -> Trace<'static> {
    let trace_id = rng.next_u64();
    let root_id = rng.next_u64();
    let env = if rng.chance(50) { "prod" } else { "staging" };
    let service = rng.pick(SERVICES);
    let start = 1_700_000_000_000_000_000i64 + rng.below(1_000_000_000_000) as i64;
    let mut trace = Vec::with_capacity(spans);
    for i in 0..spans {
        let mut span = Span {
            service: s(service),
            trace_id,
            span_id: if i == 0 { root_id } else { rng.next_u64() },
            parent_id: if i == 0 { 0 } else { root_id },
            start: start + (i as i64) * 1_000_000,
            duration: 1_000 + rng.below(50_000_000) as i64,
            error: i32::from(rng.chance(3)),
            ..Default::default()
        };
        common_meta(rng, &mut span.meta, env);
        match (i, rng.below(2)) {
            (0, _) => {
                let route = rng.pick(ROUTES);
                let method = rng.pick(&["GET", "POST", "PUT", "DELETE"]);
                span.name = s("http.request");
                span.resource = s(format!("{method} {route}"));
                span.r#type = s("web");
                span.meta.push(
                    "_dd.p.tid",
                    s(format!("{:016x}", rng.next_u64() >> 32 << 32)),
                );
                span.meta.push("component", s("flask"));
                span.meta.push("span.kind", s("server"));
                span.meta.push("http.method", s(method));
                span.meta.push("http.route", s(route));
                span.meta.push(
                    "http.url",
                    s(format!(
                        "https://example.com{}?page={}",
                        route,
                        rng.below(100)
                    )),
                );
                span.meta.push(
                    "http.status_code",
                    s(format!("{}", 200 + rng.below(4) * 100)),
                );
                span.meta.push("http.useragent", s("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"));
                span.meta.push(
                    "http.client_ip",
                    s(format!("10.0.{}.{}", rng.below(255), rng.below(255))),
                );
                span.meta.push("network.client.ip", s("10.1.2.3"));
                span.meta.push("_dd.base_service", s(service));
                span.metrics.push("_sampling_priority_v1", 1.0);
                span.metrics.push("_dd.agent_psr", 1.0);
                span.metrics.push("_dd.top_level", 1.0);
                span.metrics.push("_dd.tracer_kr", 1.0);
                span.metrics.push("_dd.measured", 1.0);
                span.metrics
                    .push("process_id", (1000 + rng.below(30000)) as f64);
            }
            (_, 0) => {
                let table = rng.pick(TABLES);
                span.name = s("postgres.query");
                span.service = s(format!("{service}-postgres"));
                span.resource = s(format!(
                    "SELECT {t}.id, {t}.name, {t}.created_at, {t}.updated_at FROM {t} WHERE {t}.id = ? AND {t}.tenant_id = ? ORDER BY {t}.created_at DESC LIMIT ?",
                    t = table
                ));
                span.r#type = s("sql");
                span.meta.push("component", s("psycopg"));
                span.meta.push("span.kind", s("client"));
                span.meta.push("db.system", s("postgresql"));
                span.meta.push("db.name", s("main"));
                span.meta.push("db.user", s("app"));
                span.meta
                    .push("out.host", s(format!("db-{}.internal", rng.below(4))));
                span.meta.push("peer.service", s("postgres"));
                span.meta.push("db.application", s(service));
                span.meta.push("_dd.base_service", s(service));
                span.metrics.push("_dd.measured", 1.0);
                span.metrics.push("db.row_count", rng.below(500) as f64);
                span.metrics.push("network.destination.port", 5432.0);
                span.metrics.push("_dd.top_level", 0.0);
            }
            _ => {
                let cmd = rng.pick(REDIS);
                span.name = s("redis.command");
                span.service = s(format!("{service}-redis"));
                span.resource = s(cmd);
                span.r#type = s("redis");
                span.meta.push("component", s("redis"));
                span.meta.push("span.kind", s("client"));
                span.meta.push("db.system", s("redis"));
                span.meta.push(
                    "redis.raw_command",
                    s(format!(
                        "{cmd} session:{:08x} user:{}",
                        rng.next_u64() as u32,
                        rng.below(100000)
                    )),
                );
                span.meta.push("out.host", s("cache.internal"));
                span.meta.push("peer.service", s("redis"));
                span.meta.push("_dd.base_service", s(service));
                span.metrics.push("_dd.measured", 1.0);
                span.metrics
                    .push("redis.args_length", (1 + rng.below(5)) as f64);
                span.metrics.push("network.destination.port", 6379.0);
                span.metrics.push("db.redis.database_index", 0.0);
            }
        }
        if span.error != 0 {
            span.meta
                .push("error.type", s("psycopg.errors.QueryCanceled"));
            span.meta.push(
                "error.message",
                s("canceling statement due to statement timeout"),
            );
            span.meta.push("error.stack", s("Traceback (most recent call last):\n  File \"app.py\", line 42, in handler\n    cursor.execute(q)\npsycopg.errors.QueryCanceled"));
        }
        trace.push(span);
    }
    trace
}

/// `n` realistic traces of `spans` spans each (the benchmark payload is 1000 x 10).
pub fn realistic_traces(seed: u64, n: usize, spans: usize) -> Traces<'static> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| realistic_trace(&mut rng, spans)).collect()
}

const WORDS: &[&str] = &[
    "",
    "a",
    "service",
    "héllo wörld",
    "日本語のテキスト",
    "emoji 🚀🔥",
    "quote \" and \\ backslash",
    "ctrl \u{1}\u{1f}\n\t",
    "_dd.span_links",
    "events",
];

/// A string of any length class: empty, fixstr, str8, str16, sometimes str32-sized.
pub fn any_string(rng: &mut Rng) -> Str<'static> {
    match rng.below(10) {
        0..=5 => s(rng.pick(WORDS)),
        6 | 7 => s(format!("{}-{}", rng.pick(WORDS), rng.next_u64())),
        8 => s("x".repeat(32 + rng.below(300) as usize)),
        _ => s("y".repeat(if rng.chance(5) {
            70_000
        } else {
            256 + rng.below(70_000) as usize
        })),
    }
}

fn any_i64(rng: &mut Rng) -> i64 {
    match rng.below(6) {
        0 => 0,
        1 => -(rng.below(40) as i64),
        2 => rng.below(300) as i64 - 150,
        3 => i64::MIN + rng.below(3) as i64,
        4 => i64::MAX - rng.below(3) as i64,
        _ => rng.next_u64() as i64,
    }
}

fn any_u64(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng.below(200),
        1 => u64::MAX - rng.below(3),
        2 => rng.below(1 << 33),
        _ => rng.next_u64(),
    }
}

fn any_f64(rng: &mut Rng) -> f64 {
    match rng.below(7) {
        0 => 0.0,
        1 => -0.0,
        2 => f64::INFINITY,
        3 => f64::NEG_INFINITY,
        4 => f64::MIN_POSITIVE,
        5 => rng.below(1000) as f64,
        _ => f64::from_bits(rng.next_u64() & !(0x7ff << 52)) * 1e300,
    }
}

fn any_scalar(rng: &mut Rng) -> AttributeScalar<'static> {
    match rng.below(4) {
        0 => AttributeScalar::String(any_string(rng)),
        1 => AttributeScalar::Bool(rng.chance(50)),
        2 => AttributeScalar::Int(any_i64(rng)),
        _ => AttributeScalar::Double(any_f64(rng)),
    }
}

/// A span with every field set to arbitrary (but finite-or-infinite, never NaN) values, and
/// sometimes meta_struct, links and events.
pub fn arbitrary_span(rng: &mut Rng) -> Span<'static> {
    let mut span = Span {
        service: any_string(rng),
        name: any_string(rng),
        resource: any_string(rng),
        r#type: any_string(rng),
        trace_id: any_u64(rng),
        span_id: any_u64(rng),
        parent_id: any_u64(rng),
        start: any_i64(rng),
        duration: any_i64(rng),
        error: any_i64(rng) as i32,
        ..Default::default()
    };
    let n_meta = if rng.chance(3) { 40 } else { 6 };
    for _ in 0..rng.below(n_meta) {
        span.meta.push(any_string(rng), any_string(rng));
    }
    let n_metrics = if rng.chance(3) { 20 } else { 5 };
    for _ in 0..rng.below(n_metrics) {
        span.metrics.push(any_string(rng), any_f64(rng));
    }
    if rng.chance(20) {
        for _ in 0..1 + rng.below(3) {
            // A small msgpack map, as tracers put in meta_struct.
            let mut doc = vec![0x81, 0xa1, b'k'];
            doc.push((rng.below(100)) as u8);
            span.meta_struct.push(any_string(rng), Cow::Owned(doc));
        }
    }
    if rng.chance(20) {
        for _ in 0..1 + rng.below(3) {
            let mut link = SpanLink {
                trace_id: any_u64(rng),
                trace_id_high: if rng.chance(50) { 0 } else { any_u64(rng) },
                span_id: any_u64(rng),
                tracestate: if rng.chance(50) {
                    s("")
                } else {
                    any_string(rng)
                },
                flags: match rng.below(3) {
                    0 => 0,
                    1 => 0x8000_0001,
                    _ => rng.next_u64() as u32,
                },
                ..Default::default()
            };
            for _ in 0..rng.below(3) {
                link.attributes.push(any_string(rng), any_string(rng));
            }
            span.span_links.push(link);
        }
    }
    if rng.chance(20) {
        for _ in 0..1 + rng.below(3) {
            let mut event = SpanEvent {
                time_unix_nano: any_u64(rng),
                name: any_string(rng),
                ..Default::default()
            };
            for _ in 0..rng.below(4) {
                let v = if rng.chance(30) {
                    AttributeValue::Array((0..rng.below(4)).map(|_| any_scalar(rng)).collect())
                } else {
                    AttributeValue::Scalar(any_scalar(rng))
                };
                event.attributes.push(any_string(rng), v);
            }
            span.span_events.push(event);
        }
    }
    span
}

/// [`realistic_traces`]`(seed, n, spans)` followed by `arbitrary` calls of [`arbitrary_traces`]
/// from `Rng::new(arbitrary_seed)` (chunks that normalization repairs or rejects), with every start
/// moved to 2001 at the earliest (normalization replaces an earlier start with "now - duration",
/// which no test can reproduce).
pub fn realistic_and_arbitrary(
    seed: u64,
    n: usize,
    spans: usize,
    arbitrary_seed: u64,
    arbitrary: usize,
) -> Traces<'static> {
    let mut traces = realistic_traces(seed, n, spans);
    let mut rng = Rng::new(arbitrary_seed);
    for _ in 0..arbitrary {
        traces.extend(arbitrary_traces(&mut rng));
    }
    for span in traces.iter_mut().flatten() {
        span.start = span.start.max(1_000_000_000_000_000_000);
    }
    traces
}

/// Arbitrary traces: 0-5 traces of 0-6 arbitrary spans.
pub fn arbitrary_traces(rng: &mut Rng) -> Traces<'static> {
    (0..rng.below(6))
        .map(|_| (0..rng.below(7)).map(|_| arbitrary_span(rng)).collect())
        .collect()
}
