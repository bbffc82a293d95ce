//! SQL obfuscation throughput on the differential corpus (`tests/data/obfuscate/sql_corpus.txt`,
//! 400+ realistic queries of five dialects): one iteration obfuscates every query once.
//! Criterion reports bytes/s; queries/s = bytes/s x queries / corpus bytes (both printed first).
//!
//! `cargo bench -p data-pipeline --bench obfuscate_sql`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use data_pipeline::obfuscate::sql::{obfuscate_sql, ObfuscationMode, SqlConfig, SqlObfuscator};
use std::hint::black_box;

fn corpus() -> Vec<String> {
    let text = include_str!("../tests/data/obfuscate/sql_corpus.txt");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let b = block.trim_matches('\n');
        if !b.is_empty() && !b.starts_with("//! ") {
            out.push(b.to_owned());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let queries = corpus();
    let bytes: usize = queries.iter().map(String::len).sum();
    eprintln!("corpus: {} queries, {bytes} bytes", queries.len());
    let mut group = c.benchmark_group("obfuscate_sql");
    group.throughput(Throughput::Bytes(bytes as u64));
    for (name, mode) in [
        ("legacy", ObfuscationMode::Legacy),
        ("obfuscate_only", ObfuscationMode::ObfuscateOnly),
        ("normalize_only", ObfuscationMode::NormalizeOnly),
        (
            "obfuscate_and_normalize",
            ObfuscationMode::ObfuscateAndNormalize,
        ),
    ] {
        let cfg = SqlConfig {
            obfuscation_mode: mode,
            ..SqlConfig::default()
        };
        let obf = SqlObfuscator::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                for q in &queries {
                    let _ = black_box(obf.obfuscate(black_box(q), &cfg));
                }
            })
        });
    }
    let cfg = SqlConfig {
        table_names: true,
        replace_digits: true,
        ..SqlConfig::default()
    };
    group.bench_function("legacy_table_names_replace_digits", |b| {
        b.iter(|| {
            for q in &queries {
                let _ = black_box(obfuscate_sql(black_box(q), &cfg));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
