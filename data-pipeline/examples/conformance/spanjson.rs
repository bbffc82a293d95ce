//! A v0.4 span as JSON (the field names of the msgpack map) <-> `Span`, for the ops that take or
//! return spans. Span event attributes use the agent's JSON form
//! `{"type": 0..4, "string_value"|"bool_value"|"int_value"|"double_value"|"array_value": ..}`.

use data_pipeline::span::{AttributeScalar, AttributeValue, Map, Span, SpanEvent, SpanLink, Str};
use serde_json::{json, Map as JMap, Value};

fn s(v: &Value, k: &str) -> Result<String, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(x)) => Ok(x.clone()),
        Some(o) => Err(format!("field {k:?}: expected a string, got {o}")),
    }
}

fn u(v: &Value, k: &str) -> Result<u64, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(0),
        Some(x) => x
            .as_u64()
            .ok_or_else(|| format!("field {k:?}: expected an unsigned integer, got {x}")),
    }
}

fn i(v: &Value, k: &str) -> Result<i64, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(0),
        Some(x) => x
            .as_i64()
            .ok_or_else(|| format!("field {k:?}: expected an integer, got {x}")),
    }
}

fn obj<'v>(v: &'v Value, k: &str) -> Result<Option<&'v JMap<String, Value>>, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(o) => Err(format!("field {k:?}: expected an object, got {o}")),
    }
}

fn str_map(
    o: Option<&JMap<String, Value>>,
    what: &str,
) -> Result<Map<'static, Str<'static>>, String> {
    let mut m = Map::new();
    for (k, v) in o.into_iter().flatten() {
        let v = v
            .as_str()
            .ok_or_else(|| format!("{what}[{k:?}]: expected a string"))?;
        m.push(Str::owned(k.clone()), Str::owned(v.to_owned()));
    }
    Ok(m)
}

fn scalar_from(v: &Value) -> Result<AttributeScalar<'static>, String> {
    let t = v.get("type").and_then(Value::as_u64).unwrap_or(0);
    Ok(match t {
        0 => AttributeScalar::String(Str::owned(s(v, "string_value")?)),
        1 => AttributeScalar::Bool(
            v.get("bool_value")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        2 => AttributeScalar::Int(i(v, "int_value")?),
        3 => AttributeScalar::Double(v.get("double_value").and_then(Value::as_f64).unwrap_or(0.0)),
        other => return Err(format!("attribute type {other} is not a scalar")),
    })
}

fn attr_from(v: &Value) -> Result<AttributeValue<'static>, String> {
    if v.get("type").and_then(Value::as_u64) == Some(4) {
        let values = v
            .get("array_value")
            .and_then(|a| a.get("values"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        return Ok(AttributeValue::Array(
            values.iter().map(scalar_from).collect::<Result<_, _>>()?,
        ));
    }
    Ok(AttributeValue::Scalar(scalar_from(v)?))
}

fn scalar_to(v: &AttributeScalar<'_>) -> Value {
    match v {
        AttributeScalar::String(x) => json!({"type": 0, "string_value": x}),
        AttributeScalar::Bool(x) => json!({"type": 1, "bool_value": x}),
        AttributeScalar::Int(x) => json!({"type": 2, "int_value": x}),
        AttributeScalar::Double(x) => json!({"type": 3, "double_value": x}),
    }
}

/// Builds a span from its JSON form.
pub fn span_from_json(v: &Value) -> Result<Span<'static>, String> {
    if !v.is_object() {
        return Err("span: expected an object".into());
    }
    let mut span = Span {
        service: Str::owned(s(v, "service")?),
        name: Str::owned(s(v, "name")?),
        resource: Str::owned(s(v, "resource")?),
        r#type: Str::owned(s(v, "type")?),
        trace_id: u(v, "trace_id")?,
        span_id: u(v, "span_id")?,
        parent_id: u(v, "parent_id")?,
        start: i(v, "start")?,
        duration: i(v, "duration")?,
        error: i32::try_from(i(v, "error")?).map_err(|_| "field \"error\": out of range")?,
        meta: str_map(obj(v, "meta")?, "meta")?,
        ..Default::default()
    };
    for (k, x) in obj(v, "metrics")?.into_iter().flatten() {
        let f = x
            .as_f64()
            .ok_or_else(|| format!("metrics[{k:?}]: expected a number"))?;
        span.metrics.push(Str::owned(k.clone()), f);
    }
    for l in v
        .get("span_links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        span.span_links.push(SpanLink {
            trace_id: u(l, "trace_id")?,
            trace_id_high: u(l, "trace_id_high")?,
            span_id: u(l, "span_id")?,
            attributes: str_map(obj(l, "attributes")?, "attributes")?,
            tracestate: Str::owned(s(l, "tracestate")?),
            flags: u32::try_from(u(l, "flags")?).map_err(|_| "link flags out of range")?,
        });
    }
    for e in v
        .get("span_events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut attributes = Map::new();
        for (k, a) in obj(e, "attributes")?.into_iter().flatten() {
            attributes.push(Str::owned(k.clone()), attr_from(a)?);
        }
        span.span_events.push(SpanEvent {
            time_unix_nano: u(e, "time_unix_nano")?,
            name: Str::owned(s(e, "name")?),
            attributes,
        });
    }
    Ok(span)
}

/// The JSON form of a span (empty collections and zero fields are written too, except links
/// and events, which are omitted when empty).
pub fn span_to_json(span: &Span<'_>) -> Value {
    let mut o = JMap::new();
    o.insert("service".into(), json!(span.service));
    o.insert("name".into(), json!(span.name));
    o.insert("resource".into(), json!(span.resource));
    o.insert("type".into(), json!(span.r#type));
    o.insert("trace_id".into(), json!(span.trace_id));
    o.insert("span_id".into(), json!(span.span_id));
    o.insert("parent_id".into(), json!(span.parent_id));
    o.insert("start".into(), json!(span.start));
    o.insert("duration".into(), json!(span.duration));
    o.insert("error".into(), json!(span.error));
    let meta: JMap<String, Value> = span
        .meta
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    o.insert("meta".into(), Value::Object(meta));
    let metrics: JMap<String, Value> = span
        .metrics
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    o.insert("metrics".into(), Value::Object(metrics));
    if !span.span_links.is_empty() {
        let links: Vec<Value> = span
            .span_links
            .iter()
            .map(|l| {
                json!({
                    "trace_id": l.trace_id, "trace_id_high": l.trace_id_high, "span_id": l.span_id,
                    "attributes": l.attributes.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<JMap<_, _>>(),
                    "tracestate": l.tracestate, "flags": l.flags,
                })
            })
            .collect();
        o.insert("span_links".into(), Value::Array(links));
    }
    if !span.span_events.is_empty() {
        let events: Vec<Value> = span
            .span_events
            .iter()
            .map(|e| {
                let attrs: JMap<String, Value> = e
                    .attributes
                    .iter()
                    .map(|(k, v)| {
                        let j = match v {
                            AttributeValue::Scalar(x) => scalar_to(x),
                            AttributeValue::Array(a) => json!({
                                "type": 4,
                                "array_value": {"values": a.iter().map(scalar_to).collect::<Vec<_>>()},
                            }),
                        };
                        (k.to_string(), j)
                    })
                    .collect();
                json!({"time_unix_nano": e.time_unix_nano, "name": e.name, "attributes": attrs})
            })
            .collect();
        o.insert("span_events".into(), Value::Array(events));
    }
    Value::Object(o)
}
