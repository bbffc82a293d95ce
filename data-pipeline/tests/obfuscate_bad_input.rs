//! Hostile input: unterminated quotes, 1 MB values, deep nesting, long lists. Every function must
//! return (no panic) with a sensible result; inputs are large enough that a quadratic algorithm
//! would not finish in any reasonable time.

use data_pipeline::normalize::{
    normalize_name, normalize_service, normalize_tag, truncate_span, NormalizeCounts, Normalizer,
};
use data_pipeline::obfuscate::{
    is_card_number, obfuscate_memcached, obfuscate_redis, obfuscate_url,
    quantize_peer_ip_addresses, quantize_redis, remove_all_redis_args, replace_tags, HttpConfig,
    JsonConfig, JsonObfuscator, ObfuscationConfig, Obfuscator, ReplaceRule,
};
use data_pipeline::span::Span;
use data_pipeline::span::Str;
use std::borrow::Cow;

const MB: usize = 1 << 20;

#[test]
fn redis_unterminated_and_huge() {
    assert_eq!(obfuscate_redis("SET k \"never closed"), "SET k ?");
    assert_eq!(
        obfuscate_redis("SET k \"esc\\\" still open\nGET x"),
        "SET k ?"
    );
    let big = format!("SET key {}", "v".repeat(MB));
    assert_eq!(obfuscate_redis(&big), "SET key ?");
    let many_lines = "GET a\n".repeat(MB / 6);
    assert_eq!(obfuscate_redis(&many_lines).lines().count(), MB / 6);
    assert_eq!(quantize_redis(&many_lines), "GET GET GET ...");
    let quotes = "\"".repeat(MB);
    let _ = obfuscate_redis(&quotes);
    let spaces = format!("SET{}k v", " ".repeat(MB));
    assert_eq!(obfuscate_redis(&spaces), "SET k ?");
    assert_eq!(remove_all_redis_args(&big), "SET ?");
}

#[test]
fn json_deep_truncated_and_huge() {
    let o = JsonObfuscator::new(&JsonConfig {
        enabled: true,
        keep_values: vec!["keep".into()],
        obfuscate_sql_values: vec!["q".into()],
    });
    let deep = "{\"a\":".repeat(200_000);
    let (out, ok) = o.obfuscate(&deep, None);
    assert!(!ok && out.ends_with("..."));
    let arrays = "[".repeat(MB);
    let (out, ok) = o.obfuscate(&arrays, None);
    assert!(!ok && out.len() < 20_000);
    let (out, ok) = o.obfuscate(r#"{"a": "unterminated"#, None);
    assert!(!ok);
    assert_eq!(out, r#"{"a":"?"..."#);
    let big = format!(
        r#"{{"keep": "{}", "x": "{}"}}"#,
        "k".repeat(MB),
        "x".repeat(MB)
    );
    let (out, ok) = o.obfuscate(&big, None);
    assert!(ok);
    assert_eq!(out, format!(r#"{{"keep":"{}","x":"?"}}"#, "k".repeat(MB)));
    let t = |v: &str| v.len().to_string();
    let big_sql = format!(r#"{{"q": "{}"}}"#, "s".repeat(MB));
    let (out, _) = o.obfuscate(&big_sql, Some(&t));
    assert_eq!(out, format!(r#"{{"q":"{}"}}"#, MB));
}

#[test]
fn urls_huge_and_odd() {
    let both = HttpConfig {
        remove_query_string: true,
        remove_paths_with_digits: true,
    };
    let long_path = format!("http://h/{}", "a1/".repeat(MB / 3));
    let out = obfuscate_url(&long_path, &both);
    assert!(out.starts_with("http://h/?/?/"));
    let pct = "%".repeat(MB);
    assert_eq!(obfuscate_url(&pct, &both), "?");
    assert_eq!(obfuscate_url(&pct, &HttpConfig::default()), pct.as_str());
    let at = format!("http://{}@h/", "@".repeat(MB));
    let _ = obfuscate_url(&at, &both);
    let brackets = format!("http://[{}/", ":".repeat(MB));
    assert_eq!(obfuscate_url(&brackets, &both), "?");
}

#[test]
fn other_obfuscators_huge() {
    let digits = "4".repeat(MB);
    assert!(!is_card_number(&digits, true));
    let cmd = format!("set k 0 0 1\r\n{}", "v".repeat(MB));
    assert_eq!(obfuscate_memcached(&cmd, true), "set k 0 0 1");
    let ips = "10.0.0.1,".repeat(MB / 9);
    assert_eq!(quantize_peer_ip_addresses(&ips), "blocked-ip-address,");
    let commas = ",".repeat(MB);
    assert_eq!(quantize_peer_ip_addresses(&commas), "");
    let schemes = "http:".repeat(MB / 5);
    let _ = quantize_peer_ip_addresses(&schemes);
}

#[test]
fn normalization_of_huge_values() {
    let big = "Ab$".repeat(MB / 3);
    assert_eq!(normalize_tag(&big).len(), 200);
    assert_eq!(normalize_service(&big, "go").0.len(), 100);
    assert!(normalize_name(&big).0.len() <= 100);
    let emoji = "🐶".repeat(MB / 4);
    assert_eq!(normalize_tag(&emoji), "");

    let mut span = Span {
        service: Str::owned(big.clone()),
        name: Str::owned(big.clone()),
        resource: Str::owned(big.clone()),
        r#type: Str::owned(big.clone()),
        trace_id: 1,
        span_id: 1,
        start: 1_700_000_000_000_000_000,
        ..Default::default()
    };
    for i in 0..10_000 {
        span.meta
            .push(Str::owned(format!("k{i}")), Str::borrowed("v"));
    }
    span.meta
        .push(Str::owned("x".repeat(MB)), Str::owned("y".repeat(MB)));
    let mut chunk = vec![span; 2];
    chunk[1].span_id = 2;
    let mut counts = NormalizeCounts::new();
    Normalizer::default()
        .normalize_chunk(&mut chunk, &mut counts)
        .unwrap();
    assert_eq!(chunk[0].resource.len(), 5000);
    assert!(chunk[0]
        .meta
        .iter()
        .all(|(k, v)| k.len() <= 203 && v.len() <= 25_003));
    truncate_span(&mut chunk[0], 10);
    assert_eq!(chunk[0].resource.len(), 10);

    // Many spans with the same id: counted in linear time.
    let mut many: Vec<Span<'static>> = (0..100_000)
        .map(|_| Span {
            trace_id: 1,
            span_id: 7,
            start: 1_700_000_000_000_000_000,
            ..Default::default()
        })
        .collect();
    let mut counts = NormalizeCounts::new();
    Normalizer::default()
        .normalize_chunk(&mut many, &mut counts)
        .unwrap();
    assert_eq!(
        counts.get(data_pipeline::normalize::Reason::DuplicateSpanId),
        99_999
    );
}

#[test]
fn span_level_obfuscation_of_huge_values() {
    let o = Obfuscator::new(ObfuscationConfig::default()).unwrap();
    let mut span = Span {
        r#type: Str::borrowed("redis"),
        resource: Str::owned("GET k\n".repeat(MB / 6)),
        ..Default::default()
    };
    span.meta.push(
        "redis.raw_command",
        Str::owned(format!("SET k \"{}", "v".repeat(MB))),
    );
    span.meta.push("card", Str::owned("4111 ".repeat(MB / 5)));
    let mut chunk = vec![span];
    o.obfuscate_chunk(&mut chunk);
    assert_eq!(chunk[0].resource, "GET GET GET ...");
    assert_eq!(
        chunk[0].meta.get("redis.raw_command").map(|v| v.as_ref()),
        Some("SET k ?")
    );

    let mut s = Span::default();
    for i in 0..50_000 {
        s.metrics.push(Cow::Owned(format!("m{i}")), 400.0);
    }
    let rules = [ReplaceRule::new("*", "400", "bad").unwrap()];
    let mut spans = vec![s];
    replace_tags(&mut spans, &rules);
    assert!(spans[0].metrics.is_empty());
    assert_eq!(spans[0].meta.len(), 50_000);
}
