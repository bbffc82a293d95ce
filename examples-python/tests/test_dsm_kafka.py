"""Data Streams Monitoring through a REAL Apache Kafka broker (KRaft, started by scripts/kafka.sh on
free 127.0.0.1 ports) and the real Datadog test agent.

Service A produces to ``orders`` (2 partitions); service B consumes it in group ``billing`` and
produces each message on to ``invoices``; service C consumes ``invoices`` in group ``archive``. Every
hop is checkpointed through the library, by three ``DataStreams`` with different services in one
test-agent session. Then, independently of the library:

- the pathway links hop by hop: each context decoded from the Kafka headers a consumer received is
  the producer's, and each hash is FNV-1(node, parent) of the previous one (dsm_support, from the
  spec);
- edge and pathway latencies are >= 0, lie inside the wall-clock window measured around the hops,
  and the sketches the agent received (decoded with a hand-written protobuf reader) hold exactly the
  latencies the contexts imply;
- the produce and commit backlogs equal the broker's offsets (delivery reports, committed offsets,
  high watermarks).

Runs when $DP_DSM_KAFKA=1: scripts/test-dsm.sh sets it (scripts/test-python.sh runs this directory
three times and would start three JVM brokers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import data_pipeline as dp
from dsm_support import Sketch, kafka, node_hash, pathway_hash, pipeline_payloads  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(os.environ.get("DP_DSM_KAFKA") != "1",
                                reason="DP_DSM_KAFKA=1 not set (scripts/test-dsm.sh sets it; starts a real Kafka broker)")

confluent_kafka = pytest.importorskip("confluent_kafka", reason="pip install confluent-kafka (scripts/setup-test-env.sh does)")
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples-python" / "examples" / "dsm_kafka.py"
ENV = "dsm-e2e"
A, B, C = "dsm-svc-a", "dsm-svc-b", "dsm-svc-c"
N = 8
MS = 1_000_000


def create_topics(bootstrap: str, topics: Dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1) for t, n in topics.items()])
    for f in futures.values():
        f.result(60)


def consumer(bootstrap: str, group: str, topic: str) -> Consumer:
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe([topic])
    return c


def poll(c: Consumer, count: int, timeout: float = 90.0) -> List:
    """Up to ``count`` messages, yielded as they come."""
    got, deadline = 0, time.monotonic() + timeout
    while got < count:
        assert time.monotonic() < deadline, f"only {got} of {count} messages within {timeout} s"
        msg = c.poll(0.5)
        if msg is None:
            continue
        assert not msg.error(), msg.error()
        got += 1
        yield msg


def in_bin(sketch: Sketch, value_s: float, which: str) -> bool:
    """Whether ``value_s`` is in the sketch's smallest (``min``) or largest (``max``) bin, one bin of
    slack either side (float rounding at a bin edge)."""
    if value_s == 0:
        return sketch.zero > 0
    lo, hi = sketch.min_range() if which == "min" else sketch.max_range()
    return lo / sketch.gamma <= value_s <= hi * sketch.gamma


def test_three_services_through_a_real_broker(kafka, test_agent, session_token):
    run = uuid.uuid4().hex[:6]
    orders, invoices = f"orders-{run}", f"invoices-{run}"
    billing, archive = f"billing-{run}", f"archive-{run}"
    create_topics(kafka, {orders: 2, invoices: 1})

    def data_streams(service: str) -> dp.DataStreams:
        return dp.DataStreams(url=test_agent.url, service=service, env=ENV, test_session_token=session_token,
                              tracer_version="0.1.0-pytest", flush_interval=0)

    dsm_a, dsm_b, dsm_c = data_streams(A), data_streams(B), data_streams(C)
    delivered: Dict[str, Dict[int, List[int]]] = {orders: {}, invoices: {}}

    def on_delivery(dsm: dp.DataStreams):
        def cb(err, msg):
            assert err is None, err
            delivered[msg.topic()].setdefault(msg.partition(), []).append(msg.offset())
            dsm.track_kafka_produce_offset(msg.topic(), msg.partition(), msg.offset())
        return cb

    # -- A: produce ---------------------------------------------------------------------------
    sent: Dict[bytes, Tuple[dp.PathwayContext, int, int, int]] = {}
    producer_a = Producer({"bootstrap.servers": kafka, "linger.ms": 0})
    for i in range(N):
        key, value = f"order-{i}".encode(), b"x" * (100 + i)
        headers = [("app", b"a")]
        t0 = time.time_ns()
        ctx = dsm_a.produce(orders, headers, key=key, value=value)
        t1 = time.time_ns()
        size = len(key) + len(value) + len("app") + 1 + len("dd-pathway-ctx-base64") + 28
        producer_a.produce(orders, value=value, key=key, headers=headers, on_delivery=on_delivery(dsm_a))
        sent[key] = (ctx, t0, t1, size)
    assert producer_a.flush(60) == 0
    h_a = pathway_hash(node_hash(A, ENV, ["direction:out", f"topic:{orders}", "type:kafka"]), 0)
    assert {c.hash for c, *_ in sent.values()} == {h_a}

    # -- B: consume, produce on ---------------------------------------------------------------
    queue_b: List[int] = []  # ns, as the consume checkpoint computed them
    pathway_b: Dict[bytes, int] = {}
    forwarded: Dict[bytes, Tuple[dp.PathwayContext, int, int]] = {}
    producer_b = Producer({"bootstrap.servers": kafka, "linger.ms": 0})
    cons_b = consumer(kafka, billing, orders)
    h_b_in = pathway_hash(node_hash(B, ENV, ["direction:in", f"group:{billing}", f"topic:{orders}", "type:kafka"]), h_a)
    h_b_out = pathway_hash(node_hash(B, ENV, ["direction:out", f"topic:{invoices}", "type:kafka"]), h_b_in)
    committed_b: Dict[int, int] = {}
    try:
        for msg in poll(cons_b, N):
            ctx_a, ta0, ta1, _size = sent[msg.key()]
            received = dp.PathwayContext.extract_kafka(msg.headers())
            # What travelled is A's context, in ms.
            assert received.hash == ctx_a.hash
            assert received.pathway_start_ns == ctx_a.pathway_start_ns // MS * MS
            assert received.edge_start_ns == ctx_a.edge_start_ns // MS * MS
            tb0 = time.time_ns()
            ctx_b = dsm_b.consume_message(msg, group=billing)
            tb1 = time.time_ns()
            assert ctx_b.hash == h_b_in, "B's consume follows A's produce"
            assert ctx_b.pathway_start_ns == received.pathway_start_ns
            queue = ctx_b.edge_start_ns - received.edge_start_ns
            # >= 0 and inside the wall-clock window around the two checkpoints (ms truncation: 1 ms).
            assert 0 <= queue and tb0 - ta1 - MS <= queue <= tb1 - ta0 + MS, (queue, tb0 - ta1, tb1 - ta0)
            queue_b.append(queue)
            pathway_b[msg.key()] = ctx_b.edge_start_ns - ctx_b.pathway_start_ns
            headers = [("app", b"b")]
            out = dsm_b.produce(invoices, headers, parent=ctx_b, key=msg.key(), value=msg.value()[:50])
            assert out.hash == h_b_out
            assert out.pathway_start_ns == ctx_b.pathway_start_ns, "the pathway started at A"
            producer_b.produce(invoices, value=msg.value()[:50], key=msg.key(), headers=headers,
                               on_delivery=on_delivery(dsm_b))
            forwarded[msg.key()] = (out, tb0, tb1)
            for tp in cons_b.commit(message=msg, asynchronous=False):
                committed_b[tp.partition] = tp.offset
                dsm_b.track_kafka_commit_offset(billing, tp.topic, tp.partition, tp.offset)
        assert producer_b.flush(60) == 0
        broker_committed_b = {tp.partition: tp.offset for tp in
                              cons_b.committed([TopicPartition(orders, p) for p in range(2)], timeout=30)}
        watermarks = {p: cons_b.get_watermark_offsets(TopicPartition(orders, p), timeout=30) for p in range(2)}
    finally:
        cons_b.close()

    # -- C: consume ----------------------------------------------------------------------------
    queue_c: List[int] = []
    pathway_c: List[int] = []
    cons_c = consumer(kafka, archive, invoices)
    h_c = pathway_hash(node_hash(C, ENV, ["direction:in", f"group:{archive}", f"topic:{invoices}", "type:kafka"]), h_b_out)
    committed_c: Dict[int, int] = {}
    try:
        for msg in poll(cons_c, N):
            out, tb0, tb1 = forwarded[msg.key()]
            received = dp.PathwayContext.extract_kafka(msg.headers())
            assert received.hash == out.hash == h_b_out
            tc0 = time.time_ns()
            ctx_c = dsm_c.consume_message(msg, group=archive)
            tc1 = time.time_ns()
            assert ctx_c.hash == h_c, "C's consume follows B's produce"
            queue = ctx_c.edge_start_ns - received.edge_start_ns
            assert 0 <= queue and tc0 - tb1 - MS <= queue <= tc1 - tb0 + MS
            queue_c.append(queue)
            pathway = ctx_c.edge_start_ns - ctx_c.pathway_start_ns
            # From A: longer than C's own queue time and than B's pathway latency of the message.
            assert pathway >= queue and pathway > pathway_b[msg.key()]
            pathway_c.append(pathway)
            for tp in cons_c.commit(message=msg, asynchronous=False):
                committed_c[tp.partition] = tp.offset
                dsm_c.track_kafka_commit_offset(archive, tp.topic, tp.partition, tp.offset)
        broker_committed_c = cons_c.committed([TopicPartition(invoices, 0)], timeout=30)[0].offset
        low, high_invoices = cons_c.get_watermark_offsets(TopicPartition(invoices, 0), timeout=30)
    finally:
        cons_c.close()

    # -- what the agent received ----------------------------------------------------------------
    for d in (dsm_a, dsm_b, dsm_c):
        d.flush(timeout=10)
        assert d.stats["payloads_sent"] >= 1 and d.stats["send_errors"] == 0
    payloads = pipeline_payloads(test_agent.requests(session_token))
    assert {p["Service"] for _h, p in payloads.raw} == {A, B, C}
    for headers, p in payloads.raw:
        assert p["Env"] == ENV and p["Lang"] == "python" and p["TracerVersion"] == "0.1.0-pytest"

    # Hop by hop: exactly these points, each the child of the previous one.
    assert [(p.hash, p.parent) for p in payloads.by_service(A)] == [(h_a, 0)]
    assert sorted((p.hash, p.parent) for p in payloads.by_service(B)) == sorted([(h_b_in, h_a), (h_b_out, h_b_in)])
    assert [(p.hash, p.parent) for p in payloads.by_service(C)] == [(h_c, h_b_out)]

    pa = payloads.point(A, h_a)
    assert pa.tags == ["direction:out", f"topic:{orders}", "type:kafka"]
    assert pa.size.count == N and pa.edge.zero == N and pa.pathway.zero == N
    sizes = [s for *_c, s in sent.values()]
    assert in_bin(pa.size, min(sizes), "min") and in_bin(pa.size, max(sizes), "max")

    pb = payloads.point(B, h_b_in)
    assert pb.tags == ["direction:in", f"group:{billing}", f"topic:{orders}", "type:kafka"]
    assert pb.edge.count == N and pb.edge.negative == 0
    assert in_bin(pb.edge, min(queue_b) / 1e9, "min") and in_bin(pb.edge, max(queue_b) / 1e9, "max")
    assert in_bin(pb.pathway, max(pathway_b.values()) / 1e9, "max")

    pbo = payloads.point(B, h_b_out)
    assert pbo.tags == ["direction:out", f"topic:{invoices}", "type:kafka"]
    assert pbo.size.count == N

    pc = payloads.point(C, h_c)
    assert pc.edge.count == N
    assert in_bin(pc.edge, min(queue_c) / 1e9, "min") and in_bin(pc.edge, max(queue_c) / 1e9, "max")
    assert in_bin(pc.pathway, max(pathway_c) / 1e9, "max")
    lo, _hi = pc.pathway.min_range()
    assert lo >= 0

    # Backlogs = the broker's offsets.
    for p, offsets in delivered[orders].items():
        assert max(offsets) == watermarks[p][1] - 1
        assert payloads.backlog(A, "type:kafka_produce", f"topic:{orders}", f"partition:{p}") == max(offsets)
    assert sum(len(o) for o in delivered[orders].values()) == N
    for p, offset in broker_committed_b.items():
        if offset < 0:  # a partition that got no message has no committed offset
            assert p not in committed_b
            continue
        assert committed_b[p] == offset == watermarks[p][1]
        assert payloads.backlog(B, "type:kafka_commit", f"consumer_group:{billing}", f"topic:{orders}",
                                f"partition:{p}") == offset
    assert payloads.backlog(B, "type:kafka_produce", f"topic:{invoices}", "partition:0") == max(delivered[invoices][0])
    assert committed_c[0] == broker_committed_c == high_invoices == N
    assert payloads.backlog(C, "type:kafka_commit", f"consumer_group:{archive}", f"topic:{invoices}",
                            "partition:0") == N

    for d in (dsm_a, dsm_b, dsm_c):
        d.shutdown()
        d.close()


def test_the_kafka_example_links_producer_and_consumer(kafka, test_agent, session_token):
    run = uuid.uuid4().hex[:6]
    env = dict(os.environ, DP_TEST_SESSION_TOKEN=session_token, DSM_TOPIC=f"example-{run}", DSM_GROUP=f"group-{run}")
    pkg_parent = str(Path(dp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    r = subprocess.run([sys.executable, str(EXAMPLE), test_agent.url, kafka, "4"], capture_output=True,
                       text=True, env=env, cwd="/", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("consumed order-") == 4
    assert "sent: producer 1 payload(s), consumer 1 payload(s)" in r.stdout
    payloads = pipeline_payloads(test_agent.requests(session_token))
    h_p = pathway_hash(node_hash("dsm-kafka-producer", "demo", ["direction:out", f"topic:example-{run}", "type:kafka"]), 0)
    h_c = pathway_hash(node_hash("dsm-kafka-consumer", "demo",
                                 ["direction:in", f"group:group-{run}", f"topic:example-{run}", "type:kafka"]), h_p)
    assert payloads.point("dsm-kafka-producer", h_p).parent == 0
    assert payloads.point("dsm-kafka-consumer", h_c).parent == h_p
    assert any(k[0] == "dsm-kafka-consumer" and k[1][0] == "type:kafka_commit" for k in payloads.backlogs)
