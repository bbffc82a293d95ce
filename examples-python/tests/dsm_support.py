"""Independent checks for the data streams tests: the pathway hash (FNV-1 64, written from the spec,
not taken from the library), a minimal protobuf reader for the DDSketch messages, and the decoded
``/v0.1/pipeline_stats`` payloads of a test-agent session, merged across buckets.
"""

from __future__ import annotations

import base64
import gzip
import math
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import msgpack
import pytest

KAFKA_SH = Path(__file__).resolve().parents[2] / "scripts" / "kafka.sh"

# ---- hashing (shared/spec/dsm.md) ---------------------------------------------------------------

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
HASHABLE = {"direction", "event_type", "exchange", "group", "kafka_cluster_id", "segment_name", "topic", "type"}
MASK = (1 << 64) - 1


def fnv1_64(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h = (h * FNV_PRIME) & MASK  # FNV-1: multiply, then xor
        h ^= b
    return h


def node_hash(service: str, env: str, tags: Iterable[str]) -> int:
    hashable = sorted(t.encode() for t in tags if t.split(":", 1)[0] in HASHABLE)
    return fnv1_64(service.encode() + env.encode() + b"".join(hashable))


def pathway_hash(node: int, parent: int) -> int:
    return fnv1_64(struct.pack("<QQ", node, parent))


# ---- protobuf: just what DDSketch needs ---------------------------------------------------------


def _varint(buf: bytes, i: int) -> Tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> Iterable[Tuple[int, int, Any]]:
    """(field number, wire type, value) of a message: varint -> int, fixed64 -> 8 bytes,
    length-delimited -> bytes, fixed32 -> 4 bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _double(b: bytes) -> float:
    return struct.unpack("<d", b)[0]


@dataclass
class Sketch:
    """A decoded DDSketch: bin index -> count (positive values), and the zero count. A value v > 0
    is in bin ``floor(log_gamma(v) + offset)``, so bin i holds [gamma^(i-offset), gamma^(i-offset+1))."""

    gamma: float = 0.0
    offset: float = 0.0
    bins: Dict[int, float] = field(default_factory=dict)
    negative: float = 0.0
    zero: float = 0.0

    @classmethod
    def parse(cls, data: bytes) -> "Sketch":
        s = cls()
        for number, _wire, value in _fields(data):
            if number == 1:  # IndexMapping
                for n, _w, v in _fields(value):
                    if n == 1:
                        s.gamma = _double(v)
                    elif n == 2:
                        s.offset = _double(v)
            elif number in (2, 3):  # Store: 2 positive values, 3 negative values
                bins: Dict[int, float] = {}
                contiguous: List[float] = []
                start = 0
                for n, w, v in _fields(value):
                    if n == 1:  # map<sint32, double> entry
                        k = c = 0
                        for en, _ew, ev in _fields(v):
                            if en == 1:
                                k = _zigzag(ev)
                            elif en == 2:
                                c = _double(ev)
                        bins[k] = bins.get(k, 0.0) + c
                    elif n == 2:  # packed doubles (or one unpacked double)
                        raw = v if w == 2 else v
                        contiguous += [_double(raw[j : j + 8]) for j in range(0, len(raw), 8)]
                    elif n == 3:
                        start = _zigzag(v)
                for j, c in enumerate(contiguous):
                    if c:
                        bins[start + j] = bins.get(start + j, 0.0) + c
                if number == 2:
                    for k, c in bins.items():
                        s.bins[k] = s.bins.get(k, 0.0) + c
                else:
                    s.negative += sum(bins.values())
            elif number == 4:
                s.zero = _double(value)
        return s

    def merge(self, other: "Sketch") -> None:
        assert not self.gamma or math.isclose(self.gamma, other.gamma)
        self.gamma, self.offset = other.gamma, other.offset
        for k, c in other.bins.items():
            self.bins[k] = self.bins.get(k, 0.0) + c
        self.negative += other.negative
        self.zero += other.zero

    @property
    def count(self) -> float:
        return sum(self.bins.values()) + self.zero + self.negative

    def bounds(self, index: int) -> Tuple[float, float]:
        return (self.gamma ** (index - self.offset), self.gamma ** (index - self.offset + 1))

    def min_range(self) -> Tuple[float, float]:
        """Where the smallest value lies: (0, 0) when some were 0."""
        if self.zero:
            return (0.0, 0.0)
        return self.bounds(min(self.bins))

    def max_range(self) -> Tuple[float, float]:
        """Where the largest value lies."""
        if not self.bins:
            return (0.0, 0.0)
        return self.bounds(max(self.bins))


# ---- payloads -----------------------------------------------------------------------------------


@dataclass
class Point:
    service: str
    hash: int
    parent: int
    tags: List[str]
    pathway: Sketch = field(default_factory=Sketch)
    edge: Sketch = field(default_factory=Sketch)
    size: Sketch = field(default_factory=Sketch)


@dataclass
class Payloads:
    """Every pipeline-stats payload of a session, merged across buckets."""

    raw: List[Tuple[Dict[str, str], Dict[str, Any]]]
    points: Dict[Tuple[str, int, int], Point]
    backlogs: Dict[Tuple[str, Tuple[str, ...]], int]
    bucket_starts: List[int]

    def by_service(self, service: str) -> List[Point]:
        return [p for (s, _h, _p), p in self.points.items() if s == service]

    def point(self, service: str, hash: int) -> Point:
        found = [p for p in self.by_service(service) if p.hash == hash]
        assert len(found) == 1, f"{service}: no single point with hash {hash}: {self.by_service(service)}"
        return found[0]

    def backlog(self, service: str, *tags: str) -> Optional[int]:
        return self.backlogs.get((service, tuple(tags)))


def pipeline_payloads(requests: List[Dict[str, Any]]) -> Payloads:
    """Decodes the ``/v0.1/pipeline_stats`` requests among a session's ``requests``."""
    raw = []
    points: Dict[Tuple[str, int, int], Point] = {}
    backlogs: Dict[Tuple[str, Tuple[str, ...]], int] = {}
    starts = []
    for r in requests:
        if "/v0.1/pipeline_stats" not in r["url"]:
            continue
        body = base64.b64decode(r["body"])
        if body[:2] == b"\x1f\x8b":  # in case the agent kept the gzip encoding
            body = gzip.decompress(body)
        payload = msgpack.unpackb(body, raw=False, strict_map_key=False)
        raw.append((r.get("headers", {}), payload))
        service = payload["Service"]
        for bucket in payload["Stats"]:
            starts.append(bucket["Start"])
            for sp in bucket.get("Stats") or []:
                key = (service, sp["Hash"], sp["ParentHash"])
                p = points.setdefault(key, Point(service, sp["Hash"], sp["ParentHash"], list(sp["EdgeTags"])))
                assert p.tags == list(sp["EdgeTags"])
                assert sp["TimestampType"] == "current"
                p.pathway.merge(Sketch.parse(sp["PathwayLatency"]))
                p.edge.merge(Sketch.parse(sp["EdgeLatency"]))
                p.size.merge(Sketch.parse(sp["PayloadSize"]))
            for b in bucket.get("Backlogs") or []:
                k = (service, tuple(b["Tags"]))
                backlogs[k] = max(backlogs.get(k, b["Value"]), b["Value"])
    return Payloads(raw, points, backlogs, starts)


# ---- a real Kafka broker ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory):
    """A real single-node Kafka broker for this module; its bootstrap address."""
    state = tmp_path_factory.mktemp("kafka")
    r = subprocess.run([str(KAFKA_SH), "start", str(state)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.fail(f"scripts/kafka.sh start failed (Java 17 and scripts/setup-test-env.sh needed):\n{r.stdout}\n{r.stderr}",
                    pytrace=False)
    bootstrap = r.stdout.strip().splitlines()[-1]
    try:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap})
        deadline = time.monotonic() + 90
        while True:  # the port answers before the broker serves metadata
            try:
                if admin.list_topics(timeout=5).brokers:
                    break
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the Kafka broker does not serve metadata", pytrace=False)
            time.sleep(0.5)
        yield bootstrap
    finally:
        subprocess.run([str(KAFKA_SH), "stop", str(state)], capture_output=True, timeout=120)


