"""Data streams across ``os.fork()``, against the real test agent: while a parent thread keeps
recording checkpoints (so the processor's locks may be held at the instant of a fork), the parent
forks children. Each child checks that it starts with fresh counters, records its own checkpoints
(its flush thread and HTTP client are new: the parent's do not exist in the child), flushes them and
exits with a status that is its verdict. At the agent: every child's checkpoints arrived, and the
parent's exactly once (a child re-sending the parent's pending points would count them twice).
Watchdogs: ``signal.alarm`` in each child, a bounded wait for each child in the parent.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from collections import Counter
from typing import List

import data_pipeline as dp
from dsm_support import pipeline_payloads
from fork_support import wait_children


def _tags(topic: str) -> List[str]:
    return ["direction:out", f"topic:{topic}", "type:kafka"]


def _child(ds: dp.DataStreams, topic: str, n: int) -> None:
    """Runs in the child after os.fork(); never returns."""
    code = 1
    try:
        signal.alarm(60)
        if ds.stats["checkpoints"] != 0:
            code = 4  # inherited the parent's counters
        else:
            for _ in range(n):
                ds.checkpoint(_tags(topic), payload_size=10)
            time.sleep(0.1)  # the child's own flush thread runs a few rounds
            ds.flush(10.0)
            s = ds.stats
            ok = s["checkpoints"] == n and s["payloads_sent"] >= 1 and s["send_errors"] == 0
            ds.shutdown(10.0)
            code = 0 if ok else 5
    except BaseException:  # noqa: BLE001 - the exit status is the verdict
        code = 3
    finally:
        os._exit(code)


def test_os_fork_children_send_their_own_checkpoints(test_agent, session_token):
    forks, per_child = 6, 5
    ds = dp.DataStreams(url=test_agent.url, service="py-fork", env="fork",
                        test_session_token=session_token, flush_interval=0.05)
    stop = threading.Event()
    parent = [0]

    def record():
        while not stop.is_set():
            ds.checkpoint(_tags("parent"), payload_size=10)
            parent[0] += 1
            time.sleep(0.0005)

    t = threading.Thread(target=record, daemon=True)
    t.start()
    pids = []
    with warnings.catch_warnings():
        # Python >= 3.12 warns about fork() in a process with threads: that is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        for k in range(forks):
            pid = os.fork()
            if pid == 0:
                _child(ds, f"child-{k}", per_child)
            pids.append(pid)
            time.sleep(0.02)
    failures = wait_children(pids, 90.0)
    stop.set()
    t.join()
    assert not failures, failures
    ds.shutdown(10.0)
    s = ds.stats
    assert s["checkpoints"] == parent[0] and s["send_errors"] == 0, s

    payloads = pipeline_payloads(test_agent.requests(session_token))
    per_topic: Counter = Counter()
    for p in payloads.points.values():
        topic = next(tag[len("topic:"):] for tag in p.tags if tag.startswith("topic:"))
        per_topic[topic] += round(p.pathway.count)
    expected = {"parent": parent[0], **{f"child-{k}": per_child for k in range(forks)}}
    assert dict(per_topic) == expected
