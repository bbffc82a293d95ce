"""Helpers for the tests that fork: reaping children within a time limit."""

from __future__ import annotations

import os
import signal
import time
from typing import List


def wait_children(pids: List[int], limit: float) -> List[str]:
    """Reaps ``pids`` within ``limit`` seconds; kills the ones still running. Returns failures."""
    failures = []
    deadline = time.monotonic() + limit
    for pid in pids:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    failures.append(f"child {pid}: exit {code}")
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                failures.append(f"child {pid}: hung, killed")
                break
            time.sleep(0.01)
    return failures
