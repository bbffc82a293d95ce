"""Threads: concurrent sends through one exporter, one trace sent by several threads at once,
close() while others send, and the guard against modifying a trace during a send."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import msgpack
import pytest

import data_pipeline as dp

THREADS = 8
SENDS = 10


def payload(trace_id: int) -> bytes:
    span = {"service": "py-tests", "name": "thread.op", "resource": "r", "trace_id": trace_id,
            "span_id": trace_id, "parent_id": 0, "start": 1, "duration": 1, "error": 0}
    return msgpack.packb([[span]])


def test_concurrent_sends(test_agent, session_token, exporter):
    barrier = threading.Barrier(THREADS)

    def worker(t: int):
        barrier.wait()
        statuses = []
        for i in range(SENDS):
            if i % 2:
                statuses.append(exporter.send(payload(t * 1000 + i + 1)).status)
            else:
                span = dp.Span(service="py-tests", name="thread.api", trace_id=t * 1000 + i + 1,
                               span_id=t * 1000 + i + 1, meta={"thread": str(t)})
                with dp.Trace([span]) as trace:
                    statuses.append(exporter.send_traces(trace).status)
        return statuses

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    assert results == [[200] * SENDS] * THREADS
    ids = sorted(s["trace_id"] for s in test_agent.spans(session_token))
    assert ids == sorted(t * 1000 + i + 1 for t in range(THREADS) for i in range(SENDS))


def test_one_trace_sent_by_many_threads(test_agent, session_token, exporter):
    trace = dp.Trace([dp.Span(service="py-tests", name="shared", trace_id=7, span_id=s + 1) for s in range(5)])
    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(lambda _: exporter.send_traces([trace, trace]).status, range(THREADS * 2)))
    assert statuses == [200] * (THREADS * 2)
    assert len(trace) == 5
    assert len(test_agent.requests(session_token)) == THREADS * 2
    trace.close()


def test_close_while_other_threads_send(test_agent, session_token, exporter_options):
    exporter = dp.Exporter.build(**exporter_options)
    started = threading.Barrier(THREADS + 1)
    outcomes = []
    lock = threading.Lock()

    def worker(t: int):
        started.wait()
        for i in range(SENDS):
            try:
                status = exporter.send(payload(t * 1000 + i + 1)).status
                outcome = "ok" if status == 200 else f"status {status}"
            except dp.ShutdownError:
                outcome = "closed"
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    started.wait()
    exporter.close()  # deferred until in-flight sends return; later sends raise ShutdownError
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads)
    assert exporter.closed
    assert len(outcomes) == THREADS * SENDS
    assert set(outcomes) <= {"ok", "closed"}
    assert "closed" in outcomes
    # Everything reported "ok" reached the agent.
    assert len(test_agent.requests(session_token)) == outcomes.count("ok")


def test_a_trace_cannot_change_while_it_is_sent():
    trace = dp.Trace([dp.Span()])
    trace._borrow()  # what a send in another thread does
    try:
        with pytest.raises(RuntimeError, match="in use by another thread"):
            trace.push(dp.Span())
        trace.close()  # deferred
        assert trace.closed
    finally:
        trace._unborrow()  # the last borrower frees it
    assert trace._ptr is None


def test_span_shared_between_threads_stays_consistent():
    # Spans are "not for concurrent use" in C; the binding serializes calls per handle.
    span = dp.Span()

    def worker(t: int):
        for i in range(200):
            span.set_meta(f"k{t}", str(i)).set_metric(f"m{t}", i)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    trace = dp.Trace([span])
    assert len(trace) == 1
    trace.close()
