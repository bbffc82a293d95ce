//! The `/v0.1/pipeline_stats` payload: a msgpack `StatsPayload` map, gzipped, one per service.
//!
//! ```text
//! StatsPayload {Env, Service, Version, Lang, TracerVersion: str, Stats: [StatsBucket],
//!               ProcessTags: [str], ProductMask: uint}
//! StatsBucket  {Start: uint ns, Duration: uint ns, Stats: [StatsPoint], Backlogs: [Backlog]}
//! StatsPoint   {EdgeTags: [str], Hash: uint, ParentHash: uint, PathwayLatency: bin,
//!               EdgeLatency: bin, PayloadSize: bin, TimestampType: "current"}
//! Backlog      {Tags: [str], Value: int}
//! ```
//! The three `bin`s are DDSketch protobuf bytes.

use super::aggregator::{AggregatedPoint, Backlog, FlushedBucket};
use crate::{Error, ErrorKind, Result};
use std::collections::BTreeMap;
use std::io::Write;

/// `ProductMask` bit: APM is enabled.
pub const PRODUCT_APM: u64 = 1;
/// `ProductMask` bit: Data Streams Monitoring is enabled.
pub const PRODUCT_DSM: u64 = 2;

/// The payload fields that do not come from the aggregation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadMeta {
    /// `Env`.
    pub env: String,
    /// `Version` (of the application).
    pub version: String,
    /// `Lang` (of the tracer).
    pub lang: String,
    /// `TracerVersion`.
    pub tracer_version: String,
    /// `ProcessTags`.
    pub process_tags: Vec<String>,
    /// `ProductMask`.
    pub product_mask: u64,
}

fn enc_err<E: std::fmt::Display>(e: E) -> Error {
    Error::new(ErrorKind::Encode, format!("pipeline stats msgpack: {e}"))
}

struct W(Vec<u8>);

impl W {
    fn map(&mut self, n: u32) -> Result<()> {
        rmp::encode::write_map_len(&mut self.0, n)
            .map(|_| ())
            .map_err(enc_err)
    }
    fn array(&mut self, n: usize) -> Result<()> {
        let n = u32::try_from(n).map_err(enc_err)?;
        rmp::encode::write_array_len(&mut self.0, n)
            .map(|_| ())
            .map_err(enc_err)
    }
    fn str(&mut self, s: &str) -> Result<()> {
        rmp::encode::write_str(&mut self.0, s).map_err(enc_err)
    }
    fn uint(&mut self, v: u64) -> Result<()> {
        rmp::encode::write_uint(&mut self.0, v)
            .map(|_| ())
            .map_err(enc_err)
    }
    fn int(&mut self, v: i64) -> Result<()> {
        rmp::encode::write_sint(&mut self.0, v)
            .map(|_| ())
            .map_err(enc_err)
    }
    fn bin(&mut self, b: &[u8]) -> Result<()> {
        rmp::encode::write_bin(&mut self.0, b).map_err(enc_err)
    }
    fn strs<S: AsRef<str>>(&mut self, v: &[S]) -> Result<()> {
        self.array(v.len())?;
        for s in v {
            self.str(s.as_ref())?;
        }
        Ok(())
    }
    fn field_str(&mut self, k: &str, v: &str) -> Result<()> {
        self.str(k)?;
        self.str(v)
    }
    fn field_uint(&mut self, k: &str, v: u64) -> Result<()> {
        self.str(k)?;
        self.uint(v)
    }
}

/// One bucket of one service's payload.
struct ServiceBucket<'a> {
    start_ns: u64,
    duration_ns: u64,
    points: Vec<&'a AggregatedPoint>,
    backlogs: &'a [Backlog],
}

fn encode_point(w: &mut W, p: &AggregatedPoint) -> Result<()> {
    w.map(7)?;
    w.str("EdgeTags")?;
    w.strs(&p.key.edge_tags)?;
    w.field_uint("Hash", p.key.hash)?;
    w.field_uint("ParentHash", p.key.parent)?;
    w.str("PathwayLatency")?;
    w.bin(&p.stats.pathway_latency.encode_to_vec())?;
    w.str("EdgeLatency")?;
    w.bin(&p.stats.edge_latency.encode_to_vec())?;
    w.str("PayloadSize")?;
    w.bin(&p.stats.payload_size.encode_to_vec())?;
    w.field_str("TimestampType", "current")
}

fn encode_payload(
    meta: &PayloadMeta,
    service: &str,
    buckets: &[ServiceBucket<'_>],
) -> Result<Vec<u8>> {
    let mut w = W(Vec::with_capacity(512));
    w.map(8)?;
    w.field_str("Env", &meta.env)?;
    w.field_str("Service", service)?;
    w.field_str("Version", &meta.version)?;
    w.field_str("Lang", &meta.lang)?;
    w.field_str("TracerVersion", &meta.tracer_version)?;
    w.str("Stats")?;
    w.array(buckets.len())?;
    for b in buckets {
        w.map(4)?;
        w.field_uint("Start", b.start_ns)?;
        w.field_uint("Duration", b.duration_ns)?;
        w.str("Stats")?;
        w.array(b.points.len())?;
        for p in &b.points {
            encode_point(&mut w, p)?;
        }
        w.str("Backlogs")?;
        w.array(b.backlogs.len())?;
        for bl in b.backlogs {
            w.map(2)?;
            w.str("Tags")?;
            w.strs(&bl.tags)?;
            w.str("Value")?;
            w.int(bl.value)?;
        }
    }
    w.str("ProcessTags")?;
    w.strs(&meta.process_tags)?;
    w.field_uint("ProductMask", meta.product_mask)?;
    Ok(w.0)
}

/// Builds the msgpack payloads (not compressed) of flushed buckets: one per service, sorted by
/// service. Backlogs go to `main_service`'s payload. Buckets with nothing for a service are
/// left out of its payload.
pub fn encode_payloads(
    meta: &PayloadMeta,
    main_service: &str,
    buckets: &[FlushedBucket],
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut per_service: BTreeMap<&str, Vec<ServiceBucket<'_>>> = BTreeMap::new();
    for b in buckets {
        let mut by_service: BTreeMap<&str, Vec<&AggregatedPoint>> = BTreeMap::new();
        for p in &b.points {
            by_service
                .entry(p.key.service.as_str())
                .or_default()
                .push(p);
        }
        if !b.backlogs.is_empty() {
            by_service.entry(main_service).or_default();
        }
        for (service, points) in by_service {
            let backlogs: &[Backlog] = if service == main_service {
                &b.backlogs
            } else {
                &[]
            };
            per_service.entry(service).or_default().push(ServiceBucket {
                start_ns: b.start_ns,
                duration_ns: b.duration_ns,
                points,
                backlogs,
            });
        }
    }
    per_service
        .into_iter()
        .map(|(service, sb)| Ok((service.to_owned(), encode_payload(meta, service, &sb)?)))
        .collect()
}

/// Gzips a payload (level 1: it runs in the application's process, ratio matters less than
/// CPU).
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 2 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(bytes)
        .and_then(|_| enc.finish())
        .map_err(|e| Error::new(ErrorKind::Encode, format!("gzip: {e}")))
}

#[cfg(test)]
mod tests {
    use super::super::aggregator::{Aggregator, KafkaOffset, OffsetKind, PreparedPoint};
    use super::super::checkpoint::StatsPoint;
    use super::super::hash::GroupKey;
    use super::*;
    use crate::sketch::DDSketch;
    use rmpv::Value;
    use std::io::Read;
    use std::sync::Arc;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * S;

    fn get<'a>(v: &'a Value, k: &str) -> &'a Value {
        v.as_map()
            .unwrap()
            .iter()
            .find(|(kk, _)| kk.as_str() == Some(k))
            .map(|(_, vv)| vv)
            .unwrap_or_else(|| panic!("no field {k}"))
    }

    fn meta() -> PayloadMeta {
        PayloadMeta {
            env: "prod".into(),
            version: "1.2.3".into(),
            lang: "rust".into(),
            tracer_version: "0.1.0".into(),
            process_tags: vec!["entrypoint.name:app".into()],
            product_mask: PRODUCT_APM | PRODUCT_DSM,
        }
    }

    #[test]
    fn payload_fields_and_services() {
        let mut a = Aggregator::new(10 * S as u64, 100);
        let ka = Arc::new(GroupKey::new(
            "svc-a",
            11,
            0,
            &["type:kafka", "direction:out"],
        ));
        let kb = Arc::new(GroupKey::new("svc-b", 22, 11, &["direction:in"]));
        for (k, lat) in [(&ka, 0.5), (&kb, 1.5)] {
            a.add(PreparedPoint::new(StatsPoint {
                key: k.clone(),
                timestamp_ns: T0 + S,
                pathway_latency_ns: (lat * 1e9) as i64,
                edge_latency_ns: 0,
                payload_size: 64,
            }));
        }
        a.add_offset(
            KafkaOffset {
                kind: OffsetKind::Produce,
                group: String::new(),
                topic: "t".into(),
                partition: 2,
                cluster_id: String::new(),
                offset: 99,
            },
            T0,
        );
        let payloads = encode_payloads(&meta(), "svc-a", &a.flush(None)).unwrap();
        assert_eq!(payloads.len(), 2);
        assert_eq!(payloads[0].0, "svc-a");
        let v = rmpv::decode::read_value(&mut payloads[0].1.as_slice()).unwrap();
        assert_eq!(v.as_map().unwrap().len(), 8);
        assert_eq!(get(&v, "Env").as_str(), Some("prod"));
        assert_eq!(get(&v, "Service").as_str(), Some("svc-a"));
        assert_eq!(get(&v, "Version").as_str(), Some("1.2.3"));
        assert_eq!(get(&v, "Lang").as_str(), Some("rust"));
        assert_eq!(get(&v, "TracerVersion").as_str(), Some("0.1.0"));
        assert_eq!(get(&v, "ProductMask").as_u64(), Some(3));
        assert_eq!(
            get(&v, "ProcessTags").as_array().unwrap()[0].as_str(),
            Some("entrypoint.name:app")
        );
        let buckets = get(&v, "Stats").as_array().unwrap();
        assert_eq!(buckets.len(), 1);
        let b = &buckets[0];
        assert_eq!(get(b, "Start").as_u64(), Some(T0 as u64));
        assert_eq!(get(b, "Duration").as_u64(), Some(10 * S as u64));
        let points = get(b, "Stats").as_array().unwrap();
        assert_eq!(points.len(), 1);
        let p = &points[0];
        assert_eq!(p.as_map().unwrap().len(), 7);
        let tags: Vec<_> = get(p, "EdgeTags")
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(tags, ["direction:out", "type:kafka"]);
        assert_eq!(get(p, "Hash").as_u64(), Some(11));
        assert_eq!(get(p, "ParentHash").as_u64(), Some(0));
        assert_eq!(get(p, "TimestampType").as_str(), Some("current"));
        let Value::Binary(sk) = get(p, "PathwayLatency") else {
            panic!("not bin")
        };
        let sk = DDSketch::decode(sk).unwrap();
        assert!((sk.quantile(0.5).unwrap() - 0.5).abs() < 0.5 * sk.relative_accuracy());
        assert!(matches!(get(p, "EdgeLatency"), Value::Binary(_)));
        assert!(matches!(get(p, "PayloadSize"), Value::Binary(_)));
        let backlogs = get(b, "Backlogs").as_array().unwrap();
        assert_eq!(backlogs.len(), 1);
        assert_eq!(get(&backlogs[0], "Value").as_i64(), Some(99));
        // svc-b: its point, no backlogs.
        let v = rmpv::decode::read_value(&mut payloads[1].1.as_slice()).unwrap();
        assert_eq!(get(&v, "Service").as_str(), Some("svc-b"));
        let b = &get(&v, "Stats").as_array().unwrap()[0];
        assert_eq!(get(b, "Backlogs").as_array().unwrap().len(), 0);
        assert_eq!(
            get(&get(b, "Stats").as_array().unwrap()[0], "ParentHash").as_u64(),
            Some(11)
        );
    }

    #[test]
    fn large_hashes_are_unsigned() {
        let mut a = Aggregator::new(10 * S as u64, 100);
        let k = Arc::new(GroupKey::new("s", u64::MAX, 1 << 63, &[]));
        a.add(PreparedPoint::new(StatsPoint {
            key: k,
            timestamp_ns: T0,
            pathway_latency_ns: 0,
            edge_latency_ns: 0,
            payload_size: 0,
        }));
        let payloads = encode_payloads(&meta(), "s", &a.flush(None)).unwrap();
        let v = rmpv::decode::read_value(&mut payloads[0].1.as_slice()).unwrap();
        let p = &get(&get(&v, "Stats").as_array().unwrap()[0], "Stats")
            .as_array()
            .unwrap()[0];
        assert!(matches!(get(p, "Hash"), Value::Integer(i) if i.as_u64() == Some(u64::MAX)));
        assert_eq!(get(p, "ParentHash").as_u64(), Some(1 << 63));
    }

    #[test]
    fn backlogs_only_still_make_a_payload() {
        let mut a = Aggregator::new(10 * S as u64, 100);
        a.add_offset(
            KafkaOffset {
                kind: OffsetKind::Commit,
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                cluster_id: String::new(),
                offset: 1,
            },
            T0,
        );
        let payloads = encode_payloads(&meta(), "main", &a.flush(None)).unwrap();
        assert_eq!(payloads.len(), 1);
        assert_eq!(payloads[0].0, "main");
        assert!(encode_payloads(&meta(), "main", &[]).unwrap().is_empty());
    }

    #[test]
    fn gzip_round_trip() {
        let data = b"hello hello hello hello".repeat(10);
        let z = gzip(&data).unwrap();
        assert_eq!(&z[..2], &[0x1f, 0x8b]);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(z.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}
