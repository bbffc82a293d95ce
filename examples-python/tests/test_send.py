"""Sending to the real test agent: msgpack payloads (v0.4, v0.4 -> v0.5, v0.5 in), spans built
through the API (128-bit ids, links, events, meta_struct), the response and its sampling rates."""

from __future__ import annotations

import base64
import gc

import msgpack
import pytest

import data_pipeline as dp

START = 1_700_000_000_000_000_000


def v04_span(trace_id: int, span_id: int, parent_id: int = 0, **over):
    span = {
        "service": "py-tests",
        "name": "http.request",
        "resource": "GET /users/:id",
        "type": "web",
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_id": parent_id,
        "start": START + span_id,
        "duration": 1500 + span_id,
        "error": 0,
        "meta": {"env": "test", "http.method": "GET", "unicode": "héllo ✓"},
        "metrics": {"_sampling_priority_v1": 1.0, "size": 12.5},
    }
    span.update(over)
    return span


def sample_traces():
    return [
        [
            v04_span(1001, 1),
            v04_span(1001, 2, 1, name="db.query", type="sql", resource="SELECT 1", error=1),
        ],
        [v04_span(1002, 3, meta={"k": "v"}, metrics={})],
    ]


def by_span_id(spans):
    return {s["span_id"]: s for s in spans}


def assert_same_spans(sent_traces, received_spans):
    received = by_span_id(received_spans)
    sent = [s for t in sent_traces for s in t]
    assert sorted(received) == sorted(s["span_id"] for s in sent)
    for s in sent:
        got = received[s["span_id"]]
        for field, value in s.items():
            assert got.get(field) == value, f"span {s['span_id']} field {field}"
        assert set(got) == set(s), f"span {s['span_id']}: unexpected fields {set(got) ^ set(s)}"


def test_send_v04_msgpack(test_agent, session_token, exporter, exporter_options):
    traces = sample_traces()
    response = exporter.send(msgpack.packb(traces))
    assert response.status == 200
    assert response.json() == {"rate_by_service": {}}

    assert_same_spans(traces, test_agent.spans(session_token))
    (request,) = test_agent.requests(session_token)
    assert request["url"].endswith("/v0.4/traces")
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/msgpack"
    assert headers["x-datadog-trace-count"] == "2"
    assert headers["datadog-meta-lang"] == "python"
    assert headers["datadog-meta-tracer-version"] == exporter_options["tracer_version"]
    assert headers["x-datadog-test-session-token"] == session_token
    assert test_agent.check_failures(session_token) == ""


def test_v04_in_v05_out(test_agent, session_token, exporter_options):
    traces = sample_traces()
    with dp.Exporter.build(**exporter_options, input_format="v0.4", output_format="v0.5") as exp:
        assert exp.send(msgpack.packb(traces)).status == 200
    (request,) = test_agent.requests(session_token)
    assert request["url"].endswith("/v0.5/traces")
    body = msgpack.unpackb(base64.b64decode(request["body"]), strict_map_key=False)
    strings, chunks = body
    assert "py-tests" in strings and "héllo ✓" in strings
    assert [len(c) for c in chunks] == [2, 1]
    assert all(len(span) == 12 for c in chunks for span in c)
    assert_same_spans(traces, test_agent.spans(session_token))


def test_v05_in_v04_out(test_agent, session_token, exporter_options):
    strings = ["", "py-tests", "op", "res", "web", "env", "test"]
    # service, name, resource, trace_id, span_id, parent_id, start, duration, error, meta, metrics, type
    span = [1, 2, 3, 77, 5, 0, START, 42, 1, {5: 6}, {2: 0.5}, 4]
    payload = msgpack.packb([strings, [[span]]])
    with dp.Exporter.build(**exporter_options, input_format=dp.Format.V05, output_format=4) as exp:
        assert exp.send(payload).status == 200
    (got,) = test_agent.spans(session_token)
    assert got == {
        "service": "py-tests", "name": "op", "resource": "res", "type": "web",
        "trace_id": 77, "span_id": 5, "parent_id": 0, "start": START, "duration": 42, "error": 1,
        "meta": {"env": "test"}, "metrics": {"op": 0.5},
    }
    assert test_agent.requests(session_token)[0]["url"].endswith("/v0.4/traces")


def test_send_accepts_bytes_like(test_agent, session_token, exporter):
    payload = msgpack.packb(sample_traces())
    for i, view in enumerate(
        [bytearray(payload), memoryview(payload), memoryview(bytearray(payload)), memoryview(b"x" + payload)[1:]]
    ):
        assert exporter.send(view).status == 200, i
    assert len(test_agent.requests(session_token)) == 4
    # A bytearray is viewed in place during the send only: right after, it can be resized again
    # (no garbage collection needed).
    gc.disable()
    try:
        data = bytearray(payload)
        assert exporter.send(data).status == 200
        data.extend(b"more")
    finally:
        gc.enable()
    with pytest.raises(TypeError):
        exporter.send("not bytes")


def api_trace(trace_id: int, first_span_id: int) -> dp.Trace:
    root = dp.Span(
        service="py-tests",
        name="http.request",
        resource="GET /",
        type="web",
        trace_id=trace_id,
        span_id=first_span_id,
        start=START,
        duration=2000,
        meta={"env": "test", "component": "api"},
        metrics={"_sampling_priority_v1": 1},
        meta_struct={"appsec": msgpack.packb({"triggers": [1, 2], "ok": True})},
    )
    root.add_link(
        dp.SpanLink(
            (0x1234 << 64) | 99, 4242, tracestate="dd=s:1;o:rum", flags=1, attributes={"reason": "retry"}
        )
    )
    root.add_event(
        dp.SpanEvent(
            START + 10,
            "exception",
            {"message": "boom", "handled": False, "code": -3, "ratio": 0.5,
             "ids": [1, 2, 3], "tags": ["a", "b"], "flags": [True, False], "values": [1.5, 2]},
        )
    )
    child = (
        dp.Span()
        .set_service("py-tests")
        .set_name("db.query")
        .set_resource("SELECT 1")
        .set_type("sql")
        .set_trace_id(trace_id)
        .set_span_id(first_span_id + 1)
        .set_parent_id(first_span_id)
        .set_start(START + 5)
        .set_duration(500)
        .set_error(True)
        .set_meta("db.system", "postgresql")
        .set_metric("rows", 3)
    )
    return dp.Trace([root, child])


def test_send_traces_built_through_the_api(test_agent, session_token, exporter):
    trace_id = (0xABCDEF << 64) | 0x1122334455667788
    traces = [api_trace(trace_id, 10), api_trace(5, 20)]
    assert [len(t) for t in traces] == [2, 2]
    response = exporter.send_traces(traces)
    assert response.status == 200

    spans = by_span_id(test_agent.spans(session_token))
    assert sorted(spans) == [10, 11, 20, 21]
    root, child = spans[10], spans[11]
    assert root["trace_id"] == 0x1122334455667788
    assert root["meta"] == {"_dd.p.tid": "0000000000abcdef", "env": "test", "component": "api"}
    assert spans[20]["trace_id"] == 5 and "_dd.p.tid" not in spans[20]["meta"]
    assert (root["service"], root["name"], root["resource"], root["type"]) == (
        "py-tests", "http.request", "GET /", "web")
    assert (root["start"], root["duration"], root["error"], root["parent_id"]) == (START, 2000, 0, 0)
    assert root["metrics"] == {"_sampling_priority_v1": 1.0}
    assert root["meta_struct"] == {"appsec": {"triggers": [1, 2], "ok": True}}
    assert root["span_links"] == [
        {
            "trace_id": 99,
            "trace_id_high": 0x1234,
            "span_id": 4242,
            "attributes": {"reason": "retry"},
            "tracestate": "dd=s:1;o:rum",
            "flags": 1 | 1 << 31,
        }
    ]
    (event,) = root["span_events"]
    assert event["time_unix_nano"] == START + 10 and event["name"] == "exception"
    attrs = event["attributes"]
    assert attrs["message"] == {"type": 0, "string_value": "boom"}
    assert attrs["handled"] == {"type": 1, "bool_value": False}
    assert attrs["code"] == {"type": 2, "int_value": -3}
    assert attrs["ratio"] == {"type": 3, "double_value": 0.5}
    assert attrs["ids"]["array_value"]["values"] == [{"type": 2, "int_value": i} for i in (1, 2, 3)]
    assert attrs["tags"]["array_value"]["values"] == [{"type": 0, "string_value": s} for s in "ab"]
    assert [v["bool_value"] for v in attrs["flags"]["array_value"]["values"]] == [True, False]
    assert [v["double_value"] for v in attrs["values"]["array_value"]["values"]] == [1.5, 2.0]

    assert child["trace_id"] == 0x1122334455667788 and child["parent_id"] == 10
    assert (child["name"], child["type"], child["error"]) == ("db.query", "sql", 1)
    assert child["meta"] == {"_dd.p.tid": "0000000000abcdef", "db.system": "postgresql"}
    assert child["metrics"] == {"rows": 3.0}

    # Sending only borrows the chunks: they can be sent again.
    assert exporter.send_traces(traces[0]).status == 200
    assert len(test_agent.requests(session_token)) == 2
    assert len(traces[0]) == 2
    for t in traces:
        t.close()


def test_meta_struct_objects_are_packed_with_msgpack(test_agent, session_token, exporter):
    span = dp.Span(service="py-tests", name="op", trace_id=1, span_id=1, meta_struct={"doc": {"a": [1, "x"]}})
    exporter.send_traces(dp.Trace([span]))
    (got,) = test_agent.spans(session_token)
    assert got["meta_struct"] == {"doc": {"a": [1, "x"]}}


def test_sampling_rates(test_agent, session_token, exporter):
    rates = {"service:py-tests,env:test": 0.25, "service:,env:": 0.75}
    test_agent.start_session(session_token, rates)
    response = exporter.send(msgpack.packb(sample_traces()))
    assert response.json() == {"rate_by_service": rates}
    assert response.sampling_rate("py-tests", "test") == 0.25
    assert response.sampling_rate("other", "prod") == 0.75  # the agent's default
    assert response.sampling_rate("py-tests") == 0.75  # env "" is another key
    response.close()


def test_sampling_rate_not_found(test_agent, session_token, exporter):
    test_agent.start_session(session_token, {"service:web,env:prod": 0.5})
    with exporter.send(b"\x90") as response:
        assert response.sampling_rate("web", "prod") == 0.5
        with pytest.raises(dp.NotFoundError) as info:
            response.sampling_rate("db", "prod")
        assert isinstance(info.value, LookupError)
        assert "service:db,env:prod" in info.value.message


def test_many_spans_in_one_payload(test_agent, session_token, exporter):
    traces = [[v04_span(5000 + t, t * 100 + s + 1, 0 if s == 0 else t * 100 + 1) for s in range(20)] for t in range(25)]
    assert exporter.send(msgpack.packb(traces)).status == 200
    assert len(test_agent.spans(session_token)) == 500
    assert test_agent.check_failures(session_token) == ""
