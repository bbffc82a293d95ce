"""The data streams binding: contexts (codecs, forgiving decoding, merge), carriers (Kafka header
lists, HTTP headers, callbacks), checkpoints and the Kafka helpers, errors, threads, and sending to the
real test agent (standalone and from an exporter's settings)."""

from __future__ import annotations

import email.message
import json
import socket
import threading
import time
from pathlib import Path

import pytest

import data_pipeline as dp
from data_pipeline import datastreams as dsm
from dsm_support import node_hash, pathway_hash, pipeline_payloads, fnv1_64

VECTORS = next(
    (p / "shared" / "vectors" / "dsm.json" for p in Path(__file__).resolve().parents if (p / "shared" / "vectors" / "dsm.json").is_file()),
    None,
)
NOWHERE = "unix:///nonexistent/dp-py-dsm.sock"
S = 1_000_000_000
T0 = 1_700_000_000 * S


def offline(**options):
    """Data streams that never send (no background thread, no agent)."""
    return dp.DataStreams(url=NOWHERE, service="svc-a", env="prod", flush_interval=0, **options)


@pytest.mark.skipif(VECTORS is None, reason="shared/vectors/dsm.json not found above the repository")
def test_helper_hash_and_library_match_the_shared_vectors():
    v = json.loads(VECTORS.read_text())
    for case in v["fnv1_64"]:
        assert fnv1_64(case["input_utf8"].encode()) == case["u64"]
    for case in v["hashes"]:
        node = node_hash(case["service"], case["env"], case["edge_tags"])
        assert node == case["node_hash"]
        assert pathway_hash(node, case["parent_hash"]) == case["hash"]
        with dp.DataStreams(url=NOWHERE, service=case["service"], env=case["env"], flush_interval=0) as ds:
            parent = dp.PathwayContext.new(case["parent_hash"], T0, T0) if case["parent_hash"] else None
            assert ds.checkpoint(case["edge_tags"], parent, now_ns=T0).hash == case["hash"]
    for case in v["encode_decode"]:
        ctx = dp.PathwayContext.new(case["hash"], case["pathway_start_ms"] * 10**6, case["edge_start_ms"] * 10**6)
        assert ctx.encode().hex() == case["encoded_hex"]
        assert ctx.encode_base64() == case["base64"]
    for case in v["decode"]:
        # The legacy key's value is the binary context, written as hex in the vectors file.
        carrier = {k: bytes.fromhex(x) if k == "dd-pathway-ctx" else x for k, x in case["carrier"].items()}
        got = dp.PathwayContext.extract_http(carrier)
        assert (got.hash if got else None) == case["hash"]


def test_context_codecs_and_forgiving_decoding():
    ctx = dp.PathwayContext.new(0x0123456789ABCDEF, 1_700_000_000_000 * 10**6, 1_700_000_000_500 * 10**6)
    text = ctx.encode_base64()
    assert len(text) == 28
    back = dp.PathwayContext.decode_base64(text)
    assert back == ctx and back.hash == 0x0123456789ABCDEF
    assert dp.PathwayContext.decode_base64(text.rstrip("=").encode()) == ctx  # padding optional
    assert dp.PathwayContext.decode(ctx.encode()) == ctx
    for junk in ["", "!!!!", "AAAA", text[:10], text.replace("+", "-").replace("/", "_") + "-_", None]:
        assert dp.PathwayContext.decode_base64(junk) is None, junk
    assert dp.PathwayContext.decode(b"\x01" * 9) is None
    with pytest.raises(OverflowError):
        dp.PathwayContext.new(-1, 0, 0)
    # Fan-in: the oldest pathway start wins, None entries are skipped.
    a, b = dp.PathwayContext.new(1, 5 * S, 9 * S), dp.PathwayContext.new(2, 3 * S, 9 * S)
    assert dp.PathwayContext.merge([a, None, b]).hash == 2
    assert dp.PathwayContext.merge([None]) is None
    assert dp.PathwayContext.merge([]) is None
    ctx.close()
    with pytest.raises(dp.ShutdownError):
        ctx.encode_base64()


def test_kafka_header_lists_and_dicts():
    ctx = dp.PathwayContext.new(7, T0, T0)
    headers = [("app", b"x"), (dsm.PROPAGATION_KEY, b"stale")]
    ctx.inject_kafka(headers)
    assert headers == [("app", b"x"), ("dd-pathway-ctx-base64", ctx.encode_base64().encode())]
    assert dp.PathwayContext.extract_kafka(headers) == ctx
    as_dict = {}
    ctx.inject_kafka(as_dict)
    assert dp.PathwayContext.extract_kafka(as_dict) == ctx
    # Exact keys for Kafka; the legacy binary key as a fallback; None values are skipped.
    assert dp.PathwayContext.extract_kafka([("DD-PATHWAY-CTX-BASE64", ctx.encode_base64())]) is None
    legacy = [("dd-pathway-ctx-base64", b"%%%"), ("dd-pathway-ctx", ctx.encode()), ("k", None)]
    assert dp.PathwayContext.extract_kafka(legacy) == ctx
    assert dp.PathwayContext.extract_kafka(None) is None
    assert dsm.LEGACY_PROPAGATION_KEY == "dd-pathway-ctx"


def test_http_headers_in_every_shape():
    ctx = dp.PathwayContext.new(9, T0, T0)
    headers = {"Host": "x", "DD-Pathway-Ctx-Base64": "stale"}
    ctx.inject_http(headers)
    assert headers == {"Host": "x", "dd-pathway-ctx-base64": ctx.encode_base64()}
    message = email.message.Message()  # what http.server hands a handler
    message["DD-PATHWAY-CTX-BASE64"] = ctx.encode_base64()
    assert dp.PathwayContext.extract_http(message) == ctx
    assert dp.PathwayContext.extract_http([("dd-pathway-ctx-base64", ctx.encode_base64())]) == ctx
    assert dp.PathwayContext.extract_http({"other": "1"}) is None


def test_callback_carriers():
    ctx = dp.PathwayContext.new(11, T0, T0 + S)
    carrier = {}
    ctx.inject(carrier.__setitem__)
    assert carrier == {"dd-pathway-ctx-base64": ctx.encode_base64()}
    asked = []

    def get(key):
        asked.append(key)
        return carrier.get(key)

    assert dp.PathwayContext.extract(get) == ctx
    assert asked == ["dd-pathway-ctx-base64"]
    asked.clear()
    assert dp.PathwayContext.extract(lambda k: {"dd-pathway-ctx": ctx.encode()}.get(k)) == ctx
    assert dp.PathwayContext.extract(get.__call__ if False else (lambda k: None)) is None

    def broken(key, value):
        raise KeyError("carrier is read-only")

    with pytest.raises(KeyError):
        ctx.inject(broken)
    with pytest.raises(ZeroDivisionError):
        dp.PathwayContext.extract(lambda k: 1 / 0)


def test_checkpoints_link_and_the_kafka_helpers_count_sizes():
    with offline() as ds:
        assert ds.service == "svc-a"
        out_tags = ("direction:out", "topic:orders", "type:kafka")
        c1 = ds.checkpoint(out_tags, now_ns=T0)
        assert c1.hash == 12637414960767859789  # the spec's vector
        assert (c1.pathway_start_ns, c1.edge_start_ns) == (T0, T0)
        in_tags = ["direction:in", "group:g", "topic:orders", "type:kafka"]
        c2 = ds.checkpoint(in_tags, c1, payload_size=10, now_ns=T0 + S)
        assert c2.hash == pathway_hash(node_hash("svc-a", "prod", in_tags), c1.hash)
        assert (c2.pathway_start_ns, c2.edge_start_ns) == (T0, T0 + S)

        headers = [("app", b"1")]
        p = ds.produce("orders", headers, key=b"k", value=b"value")
        assert p.hash == pathway_hash(node_hash("svc-a", "prod", out_tags), 0)
        assert headers[-1] == ("dd-pathway-ctx-base64", p.encode_base64().encode())
        # No parent given: the context already in the headers is the parent.
        again = ds.produce("orders", headers, value=b"v")
        assert again.hash == pathway_hash(node_hash("svc-a", "prod", out_tags), p.hash)
        assert len(headers) == 2
        c = ds.consume("orders", "billing", headers, cluster_id="c1", value=b"v")
        tags = ["direction:in", "group:billing", "kafka_cluster_id:c1", "topic:orders", "type:kafka"]
        assert c.hash == pathway_hash(node_hash("svc-a", "prod", tags), again.hash)
        assert c.pathway_start_ns // 10**6 == p.pathway_start_ns // 10**6
        ds.track_kafka_produce_offset("orders", 0, 41)
        ds.track_kafka_commit_offset("billing", "orders", 0, 42, cluster_id="c1")
        with pytest.raises(OverflowError):
            ds.track_kafka_produce_offset("orders", 2**31, 1)
        # HTTP helpers.
        h = {}
        out = ds.http_out(h, parent=c)
        assert out.hash == pathway_hash(node_hash("svc-a", "prod", ["direction:out", "type:http"]), c.hash)
        got = ds.http_in(h)
        assert got.hash == pathway_hash(node_hash("svc-a", "prod", ["direction:in", "type:http"]), out.hash)
        assert ds.stats["checkpoints"] == 7


def test_errors_are_typed():
    with pytest.raises(TypeError, match="unknown data streams option"):
        dp.DataStreams(sevice="typo")
    with pytest.raises(dp.InvalidArgumentError):
        dp.DataStreams(url="not a url")
    with pytest.raises(dp.InvalidArgumentError):
        dp.DataStreams(url=NOWHERE, headers={"X-Bad": "a\nb"})
    with pytest.raises(TypeError):
        dp.DataStreams(url=NOWHERE, process_tags="a:b")
    with offline() as ds:
        with pytest.raises(dp.InvalidUtf8Error, match=r"edge_tags\[1\]"):
            ds.checkpoint(["type:x", "bad:\udcff"])
        with pytest.raises(dp.NetworkError):
            ds.checkpoint(["type:x"])
            ds.flush(timeout=2)
    ds.close()
    with pytest.raises(dp.ShutdownError):
        ds.checkpoint(["type:x"])


def test_shared_between_threads():
    with offline() as ds:
        def work(t):
            parent = None
            for i in range(500):
                parent = ds.checkpoint(("direction:out" if i % 2 else "direction:in", "type:kafka", f"topic:t{t}"), parent)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ds.stats["checkpoints"] == 2000


def test_flush_is_bounded_and_close_never_waits():
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # never accepts: requests wait for an answer that never comes
    try:
        url = "http://127.0.0.1:%d" % hole.getsockname()[1]
        ds = dp.DataStreams(url=url, flush_interval=0, request_timeout=10)
        ds.checkpoint(["type:x"])
        t = time.monotonic()
        with pytest.raises(dp.DataPipelineTimeoutError):
            ds.flush(timeout=0.3)
        assert time.monotonic() - t < 3
        ds2 = dp.DataStreams(url=url, flush_interval=0.01, bucket_duration=0.001, request_timeout=10)
        ds2.checkpoint(["type:x"], now_ns=T0)
        time.sleep(0.1)  # its background thread is now waiting for the agent
        t = time.monotonic()
        ds2.close()
        ds.close()
        assert time.monotonic() - t < 0.5
    finally:
        hole.close()


def test_sends_to_the_agent_from_an_exporters_settings(test_agent, session_token, exporter):
    with dp.DataStreams(exporter=exporter, flush_interval=0) as ds:
        assert ds.service == "py-tests"
        ctx = ds.checkpoint(("direction:out", "type:sqs", "topic:q"), payload_size=12)
        ds.flush()
        assert ds.stats["payloads_sent"] == 1
    payloads = pipeline_payloads(test_agent.requests(session_token))
    (headers, payload), = payloads.raw
    assert payload["Service"] == "py-tests" and payload["Env"] == "test"
    assert payload["Lang"] == "python"
    point = payloads.point("py-tests", ctx.hash)
    assert point.parent == 0 and point.tags == ["direction:out", "topic:q", "type:sqs"]
    assert point.size.count == 1


def test_leaving_the_block_sends_what_is_left(test_agent, session_token):
    with dp.DataStreams(url=test_agent.url, service="py-standalone", env="e", test_session_token=session_token,
                        tracer_version="9.9", app_version="1.2", process_tags=["entrypoint.name:pytest"]) as ds:
        ctx = ds.checkpoint(("direction:in", "type:http"))
    assert ds.closed
    (headers, payload), = pipeline_payloads(test_agent.requests(session_token)).raw
    assert payload["Service"] == "py-standalone"
    assert payload["TracerVersion"] == "9.9" and payload["Version"] == "1.2"
    assert payload["ProcessTags"] == ["entrypoint.name:pytest"]
    assert payload["Stats"][0]["Stats"][0]["Hash"] == ctx.hash


def test_an_unreachable_agent_does_not_raise_when_leaving_the_block(closed_url, caplog):
    with dp.DataStreams(url=closed_url, shutdown_timeout=2) as ds:
        ds.checkpoint(("type:x",))
    assert ds.closed
    assert "not delivered" in caplog.text
