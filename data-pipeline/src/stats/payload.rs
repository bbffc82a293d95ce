//! The `/v0.6/stats` body: a msgpack `ClientStatsPayload` with the agent's field names
//! (`pkg/proto/datadog/trace/stats.proto`, msgpack keys as the agent decodes them). Sketches
//! travel as DDSketch protobuf bytes (msgpack bin).
//!
//! Every field is written, empty ones included (the test agent's decoder, for one, requires
//! `Name`, `Resource`, `Synthetics`, `Hits`, `TopLevelHits`, `Duration`, `Errors`, `OkSummary`,
//! `ErrorSummary`).

use super::bucket::GroupStats;
use super::key::OwnedKey;
use rmp::encode as w;

/// Stats of one key in one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientGroupedStats {
    /// `Service`.
    pub service: String,
    /// `Name`.
    pub name: String,
    /// `Resource`.
    pub resource: String,
    /// `HTTPStatusCode`.
    pub http_status_code: u32,
    /// `Type`.
    pub r#type: String,
    /// `DBType` (always empty, as every client sends it).
    pub db_type: String,
    /// `Hits`.
    pub hits: u64,
    /// `Errors`.
    pub errors: u64,
    /// `Duration` (ns).
    pub duration: u64,
    /// `OkSummary` (DDSketch protobuf).
    pub ok_summary: Vec<u8>,
    /// `ErrorSummary` (DDSketch protobuf).
    pub error_summary: Vec<u8>,
    /// `Synthetics`.
    pub synthetics: bool,
    /// `TopLevelHits`.
    pub top_level_hits: u64,
    /// `SpanKind`.
    pub span_kind: String,
    /// `PeerTags` (`key:value`).
    pub peer_tags: Vec<String>,
    /// `IsTraceRoot` (Trilean: 0 not set, 1 true, 2 false).
    pub is_trace_root: u8,
    /// `GRPCStatusCode` (decimal, or empty).
    pub grpc_status_code: String,
    /// `HTTPMethod`.
    pub http_method: String,
    /// `HTTPEndpoint`.
    pub http_endpoint: String,
}

impl ClientGroupedStats {
    /// The payload form of a stored group.
    pub fn from_group(k: &OwnedKey, s: &GroupStats) -> ClientGroupedStats {
        ClientGroupedStats {
            service: k.service().to_string(),
            name: k.name().to_string(),
            resource: k.resource().to_string(),
            http_status_code: k.http_status_code,
            r#type: k.r#type().to_string(),
            db_type: String::new(),
            hits: s.hits,
            errors: s.errors,
            duration: s.duration,
            ok_summary: s.ok_summary.encode_to_vec(),
            error_summary: s.error_summary.encode_to_vec(),
            synthetics: k.synthetics,
            top_level_hits: s.top_level_hits,
            span_kind: k.span_kind().to_string(),
            peer_tags: k
                .peer_tags()
                .map(|(key, v)| {
                    if v.is_empty() {
                        key.to_string()
                    } else {
                        format!("{key}:{v}")
                    }
                })
                .collect(),
            is_trace_root: k.is_trace_root,
            grpc_status_code: k
                .grpc_status_code
                .map(|c| c.to_string())
                .unwrap_or_default(),
            http_method: k.http_method().to_string(),
            http_endpoint: k.http_endpoint().to_string(),
        }
    }
}

/// One time bucket of stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStatsBucket {
    /// `Start` (ns since the epoch).
    pub start: u64,
    /// `Duration` (ns).
    pub duration: u64,
    /// `Stats`.
    pub stats: Vec<ClientGroupedStats>,
    /// `AgentTimeShift` (0 from a client).
    pub agent_time_shift: i64,
}

/// The body of one `/v0.6/stats` request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStatsPayload {
    /// `Hostname`.
    pub hostname: String,
    /// `Env`.
    pub env: String,
    /// `Version` (application version).
    pub version: String,
    /// `Stats`.
    pub stats: Vec<ClientStatsBucket>,
    /// `Lang`.
    pub lang: String,
    /// `TracerVersion`.
    pub tracer_version: String,
    /// `RuntimeID`.
    pub runtime_id: String,
    /// `Sequence`: increases by one with every payload of an exporter.
    pub sequence: u64,
    /// `Service`.
    pub service: String,
    /// `ContainerID`.
    pub container_id: String,
}

// Writing into a Vec cannot fail: the results of the rmp calls are ignored on purpose.
fn str_field(buf: &mut Vec<u8>, key: &str, v: &str) {
    let _ = w::write_str(buf, key);
    let _ = w::write_str(buf, v);
}

fn uint_field(buf: &mut Vec<u8>, key: &str, v: u64) {
    let _ = w::write_str(buf, key);
    let _ = w::write_uint(buf, v);
}

impl ClientGroupedStats {
    fn encode(&self, buf: &mut Vec<u8>) {
        let _ = w::write_map_len(buf, 19);
        str_field(buf, "Service", &self.service);
        str_field(buf, "Name", &self.name);
        str_field(buf, "Resource", &self.resource);
        uint_field(buf, "HTTPStatusCode", u64::from(self.http_status_code));
        str_field(buf, "Type", &self.r#type);
        str_field(buf, "DBType", &self.db_type);
        uint_field(buf, "Hits", self.hits);
        uint_field(buf, "Errors", self.errors);
        uint_field(buf, "Duration", self.duration);
        let _ = w::write_str(buf, "OkSummary");
        let _ = w::write_bin(buf, &self.ok_summary);
        let _ = w::write_str(buf, "ErrorSummary");
        let _ = w::write_bin(buf, &self.error_summary);
        let _ = w::write_str(buf, "Synthetics");
        let _ = w::write_bool(buf, self.synthetics);
        uint_field(buf, "TopLevelHits", self.top_level_hits);
        str_field(buf, "SpanKind", &self.span_kind);
        let _ = w::write_str(buf, "PeerTags");
        let _ = w::write_array_len(buf, self.peer_tags.len() as u32);
        for t in &self.peer_tags {
            let _ = w::write_str(buf, t);
        }
        let _ = w::write_str(buf, "IsTraceRoot");
        let _ = w::write_sint(buf, i64::from(self.is_trace_root));
        str_field(buf, "GRPCStatusCode", &self.grpc_status_code);
        str_field(buf, "HTTPMethod", &self.http_method);
        str_field(buf, "HTTPEndpoint", &self.http_endpoint);
    }
}

impl ClientStatsBucket {
    fn encode(&self, buf: &mut Vec<u8>) {
        let _ = w::write_map_len(buf, 4);
        uint_field(buf, "Start", self.start);
        uint_field(buf, "Duration", self.duration);
        let _ = w::write_str(buf, "Stats");
        let _ = w::write_array_len(buf, self.stats.len() as u32);
        for g in &self.stats {
            g.encode(buf);
        }
        let _ = w::write_str(buf, "AgentTimeShift");
        let _ = w::write_sint(buf, self.agent_time_shift);
    }
}

impl ClientStatsPayload {
    /// The msgpack body.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf =
            Vec::with_capacity(256 + self.stats.iter().map(|b| b.stats.len()).sum::<usize>() * 256);
        let _ = w::write_map_len(&mut buf, 10);
        str_field(&mut buf, "Hostname", &self.hostname);
        str_field(&mut buf, "Env", &self.env);
        str_field(&mut buf, "Version", &self.version);
        let _ = w::write_str(&mut buf, "Stats");
        let _ = w::write_array_len(&mut buf, self.stats.len() as u32);
        for b in &self.stats {
            b.encode(&mut buf);
        }
        str_field(&mut buf, "Lang", &self.lang);
        str_field(&mut buf, "TracerVersion", &self.tracer_version);
        str_field(&mut buf, "RuntimeID", &self.runtime_id);
        uint_field(&mut buf, "Sequence", self.sequence);
        str_field(&mut buf, "Service", &self.service);
        str_field(&mut buf, "ContainerID", &self.container_id);
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    fn get<'v>(m: &'v Value, k: &str) -> &'v Value {
        m.as_map()
            .and_then(|m| m.iter().find(|(key, _)| key.as_str() == Some(k)))
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no field {k}"))
    }

    #[test]
    fn field_names_and_types() {
        let p = ClientStatsPayload {
            hostname: "h".into(),
            env: "prod".into(),
            lang: "python".into(),
            sequence: 3,
            stats: vec![ClientStatsBucket {
                start: 10_000_000_000,
                duration: 10_000_000_000,
                stats: vec![ClientGroupedStats {
                    service: "web".into(),
                    hits: 5,
                    ok_summary: vec![1, 2],
                    peer_tags: vec!["db.name:x".into()],
                    is_trace_root: 1,
                    grpc_status_code: "5".into(),
                    ..Default::default()
                }],
                agent_time_shift: 0,
            }],
            ..Default::default()
        };
        let bytes = p.encode();
        let v = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        assert_eq!(v.as_map().unwrap().len(), 10);
        assert_eq!(get(&v, "Env").as_str(), Some("prod"));
        assert_eq!(get(&v, "Sequence").as_u64(), Some(3));
        for k in [
            "Hostname",
            "Version",
            "Lang",
            "TracerVersion",
            "RuntimeID",
            "Service",
            "ContainerID",
        ] {
            assert!(get(&v, k).is_str(), "{k}");
        }
        let b = &get(&v, "Stats").as_array().unwrap()[0];
        assert_eq!(get(b, "Start").as_u64(), Some(10_000_000_000));
        assert_eq!(get(b, "AgentTimeShift").as_i64(), Some(0));
        let g = &get(b, "Stats").as_array().unwrap()[0];
        assert_eq!(g.as_map().unwrap().len(), 19);
        assert_eq!(get(g, "Service").as_str(), Some("web"));
        assert_eq!(get(g, "Hits").as_u64(), Some(5));
        assert_eq!(get(g, "OkSummary").as_slice(), Some(&[1u8, 2][..]));
        assert_eq!(get(g, "ErrorSummary").as_slice(), Some(&[][..]));
        assert_eq!(get(g, "Synthetics").as_bool(), Some(false));
        assert_eq!(get(g, "IsTraceRoot").as_u64(), Some(1));
        assert_eq!(get(g, "GRPCStatusCode").as_str(), Some("5"));
        assert_eq!(
            get(g, "PeerTags").as_array().unwrap()[0].as_str(),
            Some("db.name:x")
        );
        for k in [
            "Name",
            "Resource",
            "HTTPStatusCode",
            "Type",
            "DBType",
            "Errors",
            "Duration",
            "TopLevelHits",
            "SpanKind",
            "HTTPMethod",
            "HTTPEndpoint",
        ] {
            get(g, k);
        }
    }
}
