"""Client-side stats, P0 dropping and sampling feedback through the binding, against the real agent."""

from __future__ import annotations

import base64
import time

import msgpack
import pytest

import data_pipeline as dp


def chunk(trace_id: int, priority: float, duration: int = 2_000_000) -> dp.Trace:
    start = time.time_ns() - 1_000_000_000
    root = dp.Span(
        service="py-stats", name="http.request", resource="GET /users/{id}", type="web",
        trace_id=trace_id, span_id=trace_id * 10, start=start, duration=duration,
        meta={"span.kind": "server", "http.method": "GET", "http.route": "/users/{id}", "http.status_code": "200"},
        metrics={"_sampling_priority_v1": priority},
    )
    db = dp.Span(
        service="py-stats-db", name="postgresql.query", resource="SELECT * FROM t WHERE id = 42", type="sql",
        trace_id=trace_id, span_id=trace_id * 10 + 1, parent_id=trace_id * 10, start=start, duration=duration // 2,
        meta={"span.kind": "client", "db.name": "main"},
    )
    return dp.Trace([root, db])


def test_stats_auto_p0_dropping_and_payload(test_agent, session_token, exporter_options):
    with dp.Exporter.build(**exporter_options, stats="auto", runtime_id="rt-py", hostname="h") as ex:
        assert ex.stats_state is dp.StatsState.WAITING_FOR_AGENT
        traces = [chunk(1, 1.0), chunk(2, 0.0), chunk(3, 2.0)]
        ex.send_traces(traces)
        assert ex.stats_state is dp.StatsState.ENABLED and ex.stats_enabled
        ex.shutdown(timeout=5.0)

    reqs = test_agent.requests(session_token)
    trace_reqs = [r for r in reqs if r["url"].endswith("/v0.4/traces")]
    assert len(trace_reqs) == 1
    headers = {k.lower(): v for k, v in trace_reqs[0]["headers"].items()}
    assert headers["datadog-client-computed-stats"] == "true"
    assert headers["datadog-client-dropped-p0-traces"] == "1"
    assert headers["datadog-client-dropped-p0-spans"] == "2"
    sent = msgpack.unpackb(base64.b64decode(trace_reqs[0]["body"]), raw=False)
    assert len(sent) == 2, "the P0 chunk did not leave"

    stats = [r for r in reqs if r["url"].endswith("/v0.6/stats")]
    assert stats, "no stats payload"
    payload = msgpack.unpackb(base64.b64decode(stats[0]["body"]), raw=False)
    assert (payload["RuntimeID"], payload["Hostname"], payload["Env"]) == ("rt-py", "h", "test")
    groups = [g for b in payload["Stats"] for g in b["Stats"]]
    by_name = {g["Name"]: g for g in groups}
    assert by_name["http.request"]["Hits"] == 3  # the dropped chunk is counted too
    assert by_name["http.request"]["TopLevelHits"] == 3
    assert by_name["http.request"]["HTTPEndpoint"] == "/users/{id}"
    assert by_name["postgresql.query"]["Resource"] == "SELECT * FROM t WHERE id = ?"
    assert by_name["postgresql.query"]["PeerTags"] == ["db.name:main"]
    assert by_name["postgresql.query"]["Duration"] == 3 * 1_000_000


def test_sampling_rate_feedback(test_agent, exporter_options):
    token = exporter_options["test_session_token"] + "-rates"
    test_agent.start_session(token, rates={"service:py-stats,env:test": 0.25, "service:,env:": 0.75})
    with dp.Exporter.build(**{**exporter_options, "test_session_token": token}) as ex:
        assert ex.sampling_rate("py-stats", "test") == 1.0  # no answer yet
        assert ex.stats_state is dp.StatsState.DISABLED
        ex.send_traces([chunk(7, 1.0)])
        assert ex.sampling_rate("py-stats", "test") == 0.25
        assert ex.sampling_rate("other", "test") == 0.75
        ex.flush_stats()  # stats off: a no-op


def test_stats_options_are_checked():
    b = dp.ExporterBuilder(
        stats=dp.StatsMode.ON, stats_bucket_size=2, stats_peer_tags=["peer.service", "db.name"],
        stats_span_kinds=[], stats_max_keys_per_bucket=10, stats_client_computed_top_level=True,
    )
    b.set(stats="off").set_stats("auto").set_stats(True)
    with pytest.raises(ValueError):
        b.set(stats="sometimes")
    with pytest.raises(TypeError):
        b.set(stats_peer_tags="db.name")
    with pytest.raises(dp.InvalidArgumentError):
        b.set(stats=9)
    with pytest.raises(dp.InvalidUtf8Error):
        b.set(stats_span_kinds=["\udc80"])
    b.close()
    with pytest.raises(dp.InvalidArgumentError):
        dp.ExporterBuilder(stats="auto", stats_max_keys_per_bucket=0).build()
