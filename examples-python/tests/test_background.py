"""The background exporter from Python: enqueue / enqueue_traces / flush / shutdown / health against
the real test agent, and fork safety with real ``os.fork()`` and ``multiprocessing`` (fork start
method). A parent thread keeps enqueueing while the parent forks. Each child enqueues and delivers
its own traces and checks its own counters, and the agent must hold every trace exactly once: the
children never re-send the parent's queue. Every wait is bounded (a watchdog kills hung children).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import warnings
from typing import List, Set

import msgpack
import pytest

import data_pipeline as dp
from data_pipeline.testing import closed_port
from fork_support import wait_children

START = 1_700_000_000_000_000_000


def payload(trace_ids: List[int]) -> bytes:
    """A v0.4 payload: one single-span trace per id."""
    return msgpack.packb(
        [
            [
                {
                    "service": "py-bg",
                    "name": "bg.op",
                    "resource": "bg",
                    "trace_id": t,
                    "span_id": 1,
                    "parent_id": 0,
                    "start": START,
                    "duration": 1000,
                }
            ]
            for t in trace_ids
        ]
    )


def chunk(trace_id: int, spans: int = 2) -> dp.Trace:
    t = dp.Trace()
    for s in range(1, spans + 1):
        t.push(
            dp.Span(
                service="py-bg",
                name="bg.chunk",
                resource="chunk",
                trace_id=trace_id,
                span_id=s,
                parent_id=s - 1,
                start=START,
                duration=1000,
            )
        )
    return t


def agent_trace_ids(test_agent, token: str) -> List[int]:
    """Every trace id the agent received for the session, once per trace received."""
    ids = []
    for trace in test_agent.traces(token):
        ids.extend({span["trace_id"] for span in trace})
    return ids


@pytest.fixture
def bg_options(exporter_options):
    return dict(exporter_options, batch_max_delay=0.02)


def test_enqueue_flush_and_health(test_agent, session_token, bg_options):
    with dp.Exporter.build(**bg_options) as ex:
        h = ex.health()
        assert h.traces_enqueued == 0 and h.worker_running == 0
        for i in range(20):
            ex.enqueue(payload([100 + 2 * i, 101 + 2 * i]))
        ex.enqueue(bytearray(payload([999])))
        ex.flush(10.0)
        h = ex.health()
        assert h.payloads_enqueued == 21
        assert h.traces_enqueued == 41
        assert h.traces_sent == 41
        assert h.traces_pending == 0 and h.dropped == 0
        assert h.requests_sent < 21, "payloads are batched"
        assert h.breaker_state == dp._ffi.DP_BREAKER_CLOSED
        assert h.worker_running == 1
        assert h.balanced()
        ex.shutdown(5.0)
        assert ex.health().worker_running == 0
    assert sorted(agent_trace_ids(test_agent, session_token)) == sorted(
        list(range(100, 140)) + [999]
    )


def test_enqueue_traces_counts_spans(test_agent, session_token, bg_options):
    with dp.Exporter.build(**bg_options) as ex:
        chunks = [chunk(500 + i, spans=3) for i in range(4)]
        ex.enqueue_traces(chunks)
        ex.enqueue_traces(chunk(600))
        ex.enqueue_traces([])
        assert all(not c.closed for c in chunks), "chunks are only borrowed"
        ex.shutdown(10.0)
        h = ex.health()
        assert (h.traces_enqueued, h.spans_enqueued, h.traces_sent) == (5, 14, 5)
    assert sorted(agent_trace_ids(test_agent, session_token)) == [500, 501, 502, 503, 600]


def test_errors_shutdown_and_bounded_waits(bg_options):
    port = closed_port()
    opts = dict(bg_options, url=f"http://127.0.0.1:{port}")
    with dp.Exporter.build(**opts) as ex:
        with pytest.raises(dp.DecodeError):
            ex.enqueue(b"\x81\xa1a\x01")
        ex.enqueue(payload([1, 2]))
        t0 = time.monotonic()
        with pytest.raises(dp.DataPipelineTimeoutError, match="2 trace"):
            ex.flush(0.3)
        with pytest.raises(dp.DataPipelineTimeoutError):
            ex.shutdown(0.3)
        assert time.monotonic() - t0 < 2.0, "flush and shutdown return within their timeouts"
        with pytest.raises(dp.ShutdownError):
            ex.enqueue(payload([3]))
        h = ex.health()
        assert h.traces_enqueued == 3
        assert h.dropped_shutdown == 3
        assert h.requests_failed >= 1
        assert h.balanced()


def test_queue_cap_drops_and_counts(bg_options):
    port = closed_port()
    opts = dict(bg_options, url=f"http://127.0.0.1:{port}", queue_max_bytes=16 * 1024)
    with dp.Exporter.build(**opts) as ex:
        refused = 0
        for i in range(200):
            try:
                ex.enqueue(payload([i]))
            except dp.DataPipelineOverflowError:
                refused += 1
        h = ex.health()
        assert refused > 0
        assert h.dropped_queue_full + h.dropped_breaker_open == refused
        assert h.bytes_pending <= 16 * 1024
        assert h.balanced()


def test_background_options_are_validated():
    with pytest.raises(dp.InvalidArgumentError, match="statsd_url"):
        dp.Exporter.build(statsd_url="tcp://nope")
    with pytest.raises(dp.InvalidArgumentError, match="queue_max_bytes"):
        dp.Exporter.build(queue_max_bytes=0)
    with pytest.raises(OverflowError):
        dp.ExporterBuilder(batch_max_bytes=-1)
    with dp.Exporter.build(
        batch_max_bytes=1 << 16, batch_max_delay=0.5, statsd_url="udp://127.0.0.1:8125"
    ) as ex:
        assert ex.health().traces_enqueued == 0


def _child_job(ex: dp.Exporter, base: int, n: int) -> None:
    """In a forked child: own traces, flush, own counters. Raises on any failure."""
    h = ex.health()
    assert h.traces_enqueued == 0 and h.traces_pending == 0, "inherited the parent's queue"
    assert h.forks >= 1
    ex.enqueue(payload(list(range(base, base + n))))
    ex.enqueue_traces(chunk(base + n))
    ex.flush(20.0)
    h = ex.health()
    assert h.traces_sent == n + 1 and h.balanced(), h
    ex.shutdown(10.0)


def _fork_child(ex: dp.Exporter, base: int, n: int) -> None:
    """Runs in the child after os.fork(); never returns."""
    code = 1
    try:
        signal.alarm(60)
        _child_job(ex, base, n)
        code = 0
    except BaseException:  # noqa: BLE001 - the exit status is the verdict
        code = 3
    finally:
        os._exit(code)


class Enqueuer(threading.Thread):
    """A parent thread that keeps enqueueing one-trace payloads until stopped."""

    def __init__(self, ex: dp.Exporter, first: int) -> None:
        super().__init__(daemon=True)
        self.ex, self.next, self.sent = ex, first, []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.ex.enqueue(payload([self.next]))
            self.sent.append(self.next)
            self.next += 1
            time.sleep(0.0005)

    def stop(self) -> List[int]:
        self.stop_event.set()
        self.join(10)
        assert not self.is_alive()
        return self.sent


def check_delivered(test_agent, token: str, expected: Set[int]) -> None:
    got = agent_trace_ids(test_agent, token)
    assert len(got) == len(set(got)), "a trace arrived twice: a child re-sent the parent's queue"
    assert set(got) == expected


def test_os_fork_while_enqueueing(test_agent, session_token, bg_options):
    forks, per_child = 12, 4
    with dp.Exporter.build(**bg_options) as ex:
        enqueuer = Enqueuer(ex, 1)
        enqueuer.start()
        pids = []
        with warnings.catch_warnings():
            # Python >= 3.12 warns about fork() in a process with threads: that is the point here.
            warnings.simplefilter("ignore", DeprecationWarning)
            for k in range(forks):
                base = (k + 1) * 1_000_000
                pid = os.fork()
                if pid == 0:
                    _fork_child(ex, base, per_child)
                pids.append(pid)
                time.sleep(0.02)
        failures = wait_children(pids, 90.0)
        parent = enqueuer.stop()
        assert not failures, failures
        ex.shutdown(20.0)
        h = ex.health()
        assert h.traces_sent == len(parent) and h.forks == 0 and h.balanced()
    expected = set(parent)
    for k in range(forks):
        base = (k + 1) * 1_000_000
        expected |= set(range(base, base + per_child + 1))
    check_delivered(test_agent, session_token, expected)


def test_multiprocessing_fork_start_method(test_agent, session_token, bg_options):
    ctx = multiprocessing.get_context("fork")
    with dp.Exporter.build(**bg_options) as ex:
        ex.enqueue(payload([7]))  # the parent's worker is running when the children are forked
        enqueuer = Enqueuer(ex, 10)
        enqueuer.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            procs = [
                ctx.Process(target=_child_job, args=(ex, (k + 1) * 2_000_000, 3)) for k in range(4)
            ]
            for p in procs:
                p.start()
        for p in procs:
            p.join(90)
            if p.is_alive():
                p.kill()
                p.join()
        parent = enqueuer.stop()
        assert [p.exitcode for p in procs] == [0] * len(procs)
        ex.shutdown(20.0)
        assert ex.health().traces_sent == len(parent) + 1
    expected = {7} | set(parent)
    for k in range(4):
        base = (k + 1) * 2_000_000
        expected |= set(range(base, base + 4))
    check_delivered(test_agent, session_token, expected)
