#!/usr/bin/env python3
"""Data Streams Monitoring over Kafka (confluent-kafka): a producer service writes orders to a topic,
a consumer service reads them in a consumer group. Every message carries its pathway context in the
``dd-pathway-ctx-base64`` header; the producer tracks the offsets of its delivery reports and the
consumer the offsets it commits, so the agent sees the edge producer -> topic -> consumer, its
latencies and the consumer lag.

    python examples/dsm_kafka.py AGENT_URL BOOTSTRAP [MESSAGES]

e.g. ``python examples/dsm_kafka.py http://127.0.0.1:8126 127.0.0.1:9092 5`` (``scripts/kafka.sh
start DIR`` starts a local broker and prints its bootstrap address). Needs ``pip install
confluent-kafka``. $DP_TEST_SESSION_TOKEN, when set, tags the payloads for the Datadog test agent;
$DSM_TOPIC and $DSM_GROUP change the topic (``dsm-example-orders``) and group
(``dsm-example-billing``).
"""

from __future__ import annotations

import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import data_pipeline as dp


def data_streams(agent_url: str, service: str) -> dp.DataStreams:
    token = os.environ.get("DP_TEST_SESSION_TOKEN", "")
    return dp.DataStreams(url=agent_url, service=service, env="demo", test_session_token=token,
                          tracer_version="example")


def ensure_topic(bootstrap: str, topic: str, partitions: int = 2) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        try:
            future.result(30)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def produce(dsm: dp.DataStreams, bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})

    def delivered(err, msg) -> None:  # called from producer.poll()/flush() on this thread
        if err is not None:
            raise KafkaException(err)
        dsm.track_kafka_produce_offset(msg.topic(), msg.partition(), msg.offset())
        print(f"produced {msg.key().decode()} -> partition {msg.partition()} offset {msg.offset()}")

    for i in range(count):
        key, value = f"order-{i}".encode(), f'{{"order": {i}, "amount": {10 * i}}}'.encode()
        headers = [("app", b"dsm-example")]
        ctx = dsm.produce(topic, headers, key=key, value=value)  # checkpoint + header
        print(f"produce {key.decode()}: context hash {ctx.hash}")
        producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
        producer.poll(0)
    if producer.flush(30) != 0:
        raise RuntimeError("messages were not delivered within 30 s")


def consume(dsm: dp.DataStreams, bootstrap: str, topic: str, group: str, count: int) -> None:
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    try:
        got, deadline = 0, time.monotonic() + 60
        while got < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            ctx = dsm.consume_message(msg, group=group)  # extract + checkpoint
            latency_ms = (ctx.edge_start_ns - ctx.pathway_start_ns) / 1e6
            print(f"consumed {msg.key().decode()} (partition {msg.partition()} offset {msg.offset()}): "
                  f"context hash {ctx.hash}, {latency_ms:.1f} ms since the produce")
            for tp in consumer.commit(message=msg, asynchronous=False) or []:
                dsm.track_kafka_commit_offset(group, tp.topic, tp.partition, tp.offset)
            got += 1
        if got < count:
            raise RuntimeError(f"consumed {got} of {count} messages within 60 s")
    finally:
        consumer.close()


def main(argv: list) -> int:
    if len(argv) not in (3, 4):
        print(f"usage: {argv[0]} AGENT_URL BOOTSTRAP [MESSAGES]", file=sys.stderr)
        return 2
    agent_url, bootstrap = argv[1], argv[2]
    count = int(argv[3]) if len(argv) == 4 else 5
    topic = os.environ.get("DSM_TOPIC", "dsm-example-orders")
    group = os.environ.get("DSM_GROUP", "dsm-example-billing")
    try:
        ensure_topic(bootstrap, topic)
        with data_streams(agent_url, "dsm-kafka-producer") as producer_dsm, \
                data_streams(agent_url, "dsm-kafka-consumer") as consumer_dsm:
            produce(producer_dsm, bootstrap, topic, count)
            consume(consumer_dsm, bootstrap, topic, group, count)
            producer_dsm.flush()
            consumer_dsm.flush()
            print(f"sent: producer {producer_dsm.stats['payloads_sent']} payload(s), "
                  f"consumer {consumer_dsm.stats['payloads_sent']} payload(s)")
    except dp.DataPipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KafkaException, RuntimeError) as e:
        print(f"kafka error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
