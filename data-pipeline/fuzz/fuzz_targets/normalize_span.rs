//! Span normalization on arbitrary spans built from the input: never panics, the result obeys
//! the agent's limits, and applying the span rules again changes nothing (idempotence).
#![no_main]

use data_pipeline::normalize::{
    NormalizeConfig, NormalizeCounts, Normalizer, MAX_NAME_LEN, MAX_SERVICE_LEN, MAX_TYPE_LEN,
};
use data_pipeline::span::Span;
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;

fn take<'a>(data: &mut &'a [u8]) -> Cow<'a, str> {
    let n = data.first().copied().unwrap_or(0) as usize;
    let rest = data.get(1..).unwrap_or_default();
    let (head, tail) = rest.split_at(n.min(rest.len()));
    *data = tail;
    String::from_utf8_lossy(head)
}

fn num(data: &mut &[u8]) -> i64 {
    let mut b = [0u8; 8];
    let n = data.len().min(8);
    b[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    i64::from_le_bytes(b)
}

fuzz_target!(|input: &[u8]| {
    let mut data = input;
    let mut span = Span {
        service: take(&mut data),
        name: take(&mut data),
        resource: take(&mut data),
        r#type: take(&mut data),
        trace_id: num(&mut data) as u64,
        span_id: num(&mut data) as u64,
        parent_id: num(&mut data) as u64,
        start: num(&mut data),
        duration: num(&mut data),
        ..Default::default()
    };
    while !data.is_empty() {
        let k = take(&mut data);
        let v = take(&mut data);
        span.meta.push(k, v);
    }
    let n = Normalizer::new(NormalizeConfig {
        lang: "rust".into(),
        ..NormalizeConfig::default()
    });
    let mut counts = NormalizeCounts::new();
    let mut chunk = vec![span];
    if n.normalize_chunk(&mut chunk, &mut counts).is_err() {
        return;
    }
    let s = &chunk[0];
    assert!(!s.service.is_empty() && s.service.len() <= MAX_SERVICE_LEN.max(200));
    assert!(!s.name.is_empty() && s.name.len() <= MAX_NAME_LEN);
    assert!(s.r#type.len() <= MAX_TYPE_LEN);
    assert!(s.duration >= 0);
    let before = chunk.clone();
    let mut again = NormalizeCounts::new();
    // The span rules are idempotent; truncation is not (as in the agent: a cut that drops a
    // partial character leaves room for part of the "..." on a second pass), so check the rules
    // alone.
    let rules_only = Normalizer::new(NormalizeConfig {
        lang: "rust".into(),
        truncate: false,
        ..NormalizeConfig::default()
    });
    rules_only
        .normalize_chunk(&mut chunk, &mut again)
        .expect("a normalized chunk stays valid");
    // Times may move (start fix-ups use the clock); compare the string fields.
    assert_eq!(before[0].service, chunk[0].service);
    assert_eq!(before[0].name, chunk[0].name);
    assert_eq!(before[0].resource, chunk[0].resource);
    assert_eq!(before[0].meta, chunk[0].meta);
});
