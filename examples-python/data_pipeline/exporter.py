"""Sending traces: :class:`ExporterBuilder`, :class:`Exporter`, :class:`Response`.

>>> with Exporter.build(url="http://127.0.0.1:8126", service="web") as exporter:
...     response = exporter.send(payload)          # msgpack v0.4 bytes
...     rate = response.sampling_rate("web", "prod")
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime
import enum
import json
import math
import os
import platform
import threading
import weakref
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

from . import _ffi
from ._ffi import U32, U64, Handle, _check, check_range, lib, to_bytes, to_name, to_str
from .obfuscate import PROCESSING_OPTIONS, normalize_counts
from .span import Trace

__all__ = [
    "Format",
    "ExporterBuilder",
    "Exporter",
    "Response",
    "OPTIONS",
    "StatsMode",
    "StatsState",
    "Health",
]


class Format(enum.IntEnum):
    """Trace payload formats (``DP_FORMAT_*``). Options also accept ``"v0.4"`` / ``"v0.5"``."""

    V04 = _ffi.DP_FORMAT_V04
    V05 = _ffi.DP_FORMAT_V05


_FORMAT_NAMES = {"v0.4": Format.V04, "0.4": Format.V04, "v0.5": Format.V05, "0.5": Format.V05}


def _format(value: Any, arg: str) -> int:
    if isinstance(value, str):
        try:
            return int(_FORMAT_NAMES[value.lower()])
        except KeyError:
            raise ValueError(f"{arg}={value!r}: expected 'v0.4' or 'v0.5'") from None
    # Any other number goes to the library, which rejects it with InvalidArgumentError.
    return check_range(value, arg, U32)


def _millis(value: Any, arg: str) -> int:
    """Seconds (int, float or timedelta) to whole milliseconds, rounded up so 0.0001 s is not 0."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{arg} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{arg}={value!r}: expected a finite number of seconds >= 0")
    return check_range(math.ceil(value * 1000), arg, U64)


def _text(value: Any, arg: str) -> _ffi.dp_str:
    return to_str(value, arg)


def _flag(value: Any, arg: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{arg} must be a bool, not {type(value).__name__}")
    return value


def _count(value: Any, arg: str) -> int:
    return check_range(value, arg, U32)


#: Every exporter option: ``keyword -> (C setter, converter, doc)``; one per
#: ``dp_exporter_builder_set_*`` of the header (a test checks it).
OPTIONS: Dict[str, Tuple[Callable[..., Any], Callable[[Any, str], Any], str]] = {
    "url": (
        lib.dp_exporter_builder_set_url,
        _text,
        "Agent address, ``http://host:port`` or ``unix:///path/apm.socket`` (default localhost:8126).",
    ),
    "url_from_env": (
        lib.dp_exporter_builder_set_url_from_env,
        _flag,
        "True: take the address from DD_TRACE_AGENT_URL / DD_AGENT_HOST + DD_TRACE_AGENT_PORT.",
    ),
    "language": (
        lib.dp_exporter_builder_set_language,
        _text,
        "Datadog-Meta-Lang (the binding sets ``python``).",
    ),
    "language_version": (
        lib.dp_exporter_builder_set_language_version,
        _text,
        "Datadog-Meta-Lang-Version (the binding sets the running Python's version).",
    ),
    "language_interpreter": (
        lib.dp_exporter_builder_set_language_interpreter,
        _text,
        "Datadog-Meta-Lang-Interpreter (the binding sets e.g. ``CPython``).",
    ),
    "tracer_version": (
        lib.dp_exporter_builder_set_tracer_version,
        _text,
        "Datadog-Meta-Tracer-Version.",
    ),
    "service": (lib.dp_exporter_builder_set_service, _text, "The application's default service."),
    "env": (lib.dp_exporter_builder_set_env, _text, "The application's environment."),
    "app_version": (lib.dp_exporter_builder_set_app_version, _text, "The application's version."),
    "hostname": (
        lib.dp_exporter_builder_set_hostname,
        _text,
        "Host name reported with client-side stats.",
    ),
    "container_id": (
        lib.dp_exporter_builder_set_container_id,
        _text,
        "Datadog-Container-ID; empty for none.",
    ),
    "input_format": (
        lib.dp_exporter_builder_set_input_format,
        _format,
        "Format of the payloads given to :meth:`Exporter.send` (``'v0.4'`` default, ``'v0.5'``).",
    ),
    "output_format": (
        lib.dp_exporter_builder_set_output_format,
        _format,
        "Format sent to the agent (``'v0.4'`` default; ``'v0.5'`` falls back to v0.4 if unsupported).",
    ),
    "connect_timeout": (
        lib.dp_exporter_builder_set_connect_timeout,
        _millis,
        "Timeout of one connection attempt, in seconds (default 1.0).",
    ),
    "request_timeout": (
        lib.dp_exporter_builder_set_request_timeout,
        _millis,
        "Timeout of one HTTP request including the body, in seconds (default 3.0).",
    ),
    "send_timeout": (
        lib.dp_exporter_builder_set_send_timeout,
        _millis,
        "Bound on one whole send, retries included, in seconds (default 5.0).",
    ),
    "max_retries": (
        lib.dp_exporter_builder_set_max_retries,
        _count,
        "Retries after the first attempt (default 3; 0 = none).",
    ),
    "test_session_token": (
        lib.dp_exporter_builder_set_test_session_token,
        _text,
        "X-Datadog-Test-Session-Token, for the Datadog test agent; empty for none.",
    ),
}

# --- client-side stats options (data-pipeline-ffi/src/stats.rs) ----------------------------------


class StatsMode(enum.IntEnum):
    """Client-side stats: ``OFF`` (default), ``AUTO`` (while the agent allows them; P0 chunks are then
    dropped), ``ON`` (always; P0 chunks dropped only while the agent allows it)."""

    OFF = _ffi.DP_STATS_MODE_OFF
    AUTO = _ffi.DP_STATS_MODE_AUTO
    ON = _ffi.DP_STATS_MODE_ON


class StatsState(enum.IntEnum):
    """What an exporter does about client-side stats now (:attr:`Exporter.stats_state`)."""

    DISABLED = _ffi.DP_STATS_STATE_DISABLED
    WAITING_FOR_AGENT = _ffi.DP_STATS_STATE_WAITING_FOR_AGENT
    NOT_SUPPORTED_BY_AGENT = _ffi.DP_STATS_STATE_NOT_SUPPORTED_BY_AGENT
    ENABLED = _ffi.DP_STATS_STATE_ENABLED


def _stats_mode(value: Any, arg: str) -> int:
    if isinstance(value, str):
        try:
            return int(StatsMode[value.upper()])
        except KeyError:
            raise ValueError(f"{arg}={value!r}: expected 'off', 'auto' or 'on'") from None
    if isinstance(value, bool):
        return int(StatsMode.AUTO if value else StatsMode.OFF)
    return check_range(value, arg, U32)


def _size(value: Any, arg: str) -> int:
    return check_range(value, arg, (0, 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1))


def _list_setter(fn: Any) -> Callable[[Any, Any], Any]:
    """Adapts a ``(builder, const dp_str *, size_t)`` setter to the one-argument OPTIONS shape."""

    def call(builder: Any, arg: Any) -> Any:
        array, n, _views = arg  # _views keep the strings alive during the call
        return fn(builder, array, n)

    call.__name__ = call.__qualname__ = fn.__name__
    return call


OPTIONS.update(
    {
        "runtime_id": (
            lib.dp_exporter_builder_set_runtime_id,
            _text,
            "Runtime id of the tracer process, reported with client-side stats.",
        ),
        "stats": (
            lib.dp_exporter_builder_set_stats,
            _stats_mode,
            "Client-side stats: 'off' (default), 'auto' or 'on' (or a StatsMode; True means 'auto').",
        ),
        "stats_bucket_size": (
            lib.dp_exporter_builder_set_stats_bucket_size,
            _millis,
            "Stats bucket size and flush period, in seconds (default 10).",
        ),
        "stats_peer_tags": (
            _list_setter(lib.dp_exporter_builder_set_stats_peer_tags),
            _ffi.str_array,
            "Peer tag keys aggregated in stats besides those the agent lists.",
        ),
        "stats_span_kinds": (
            _list_setter(lib.dp_exporter_builder_set_stats_span_kinds),
            _ffi.str_array,
            "span.kind values that make a span eligible for stats (replaces the default list).",
        ),
        "stats_max_keys_per_bucket": (
            lib.dp_exporter_builder_set_stats_max_keys_per_bucket,
            _size,
            "Distinct stats keys per bucket before the tracer_blocked_value overflow key (default 7000).",
        ),
        "stats_client_computed_top_level": (
            lib.dp_exporter_builder_set_stats_client_computed_top_level,
            _flag,
            "True when the tracer marks top-level spans itself (_dd.top_level).",
        ),
    }
)
# Normalization and obfuscation options (data_pipeline.obfuscate).
OPTIONS.update(PROCESSING_OPTIONS)

# Background exporter (see Exporter.enqueue).
OPTIONS.update(
    {
        "batch_max_bytes": (
            lib.dp_exporter_builder_set_batch_max_bytes,
            _size,
            "Background: a batch goes out once this many bytes are queued (default 1 MiB).",
        ),
        "batch_max_delay": (
            lib.dp_exporter_builder_set_batch_max_delay,
            _millis,
            "Background: the longest a payload waits for its batch, in seconds (default 1.0).",
        ),
        "queue_max_bytes": (
            lib.dp_exporter_builder_set_queue_max_bytes,
            _size,
            "Background: memory bound of the queue; beyond it payloads are dropped (default 32 MiB).",
        ),
        "statsd_url": (
            lib.dp_exporter_builder_set_statsd_url,
            _text,
            "Background: DogStatsD address for health metrics (``udp://host:port``, ``unix:///path``).",
        ),
    }
)

_PYTHON_DEFAULTS = {
    "language": "python",
    "language_version": platform.python_version(),
    "language_interpreter": platform.python_implementation(),
}


class ExporterBuilder(Handle):
    """Collects exporter options; :meth:`build` turns it into an :class:`Exporter` (and consumes it).

    Options are keyword arguments (see :data:`OPTIONS`), given to the constructor, to :meth:`set`, or
    one at a time with ``set_<option>(value)``; every setter returns the builder. Timeouts are in
    seconds. ``language``, ``language_version`` and ``language_interpreter`` default to the running
    Python; an option given as ``None`` keeps the library's default. Values are validated by
    :meth:`build`, except types and ranges, checked at once.
    """

    __slots__ = ()
    _kind = "exporter builder"

    def __init__(self, **options: Any) -> None:
        super().__init__(lib.dp_exporter_builder_new())
        self.set(**{**_PYTHON_DEFAULTS, **options})

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_exporter_builder_free(ptr)

    def set(self, **options: Any) -> "ExporterBuilder":
        """Sets several options at once; an unknown keyword is a TypeError."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(
                f"unknown exporter option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}"
            )
        for name, value in options.items():
            if value is None:
                continue
            setter, convert, _doc = OPTIONS[name]
            arg = convert(value, name)
            with self._lock:
                _check(setter(self._live(), arg))
        return self

    def build(self) -> "Exporter":
        """Validates the options and creates the exporter. Consumes the builder, also on error."""
        ptr = self._take("consumed by build()")
        out = _ffi.out_ptr(_ffi.dp_exporter)
        _check(lib.dp_exporter_builder_build(ptr, ctypes.byref(out)))
        return Exporter(out)


def _make_setter(name: str, doc: str) -> Callable[[ExporterBuilder, Any], ExporterBuilder]:
    def setter(self: ExporterBuilder, value: Any) -> ExporterBuilder:
        return self.set(**{name: value})

    setter.__name__ = setter.__qualname__ = f"set_{name}"
    setter.__doc__ = f"{doc} Returns the builder."
    return setter


for _name, (_fn, _conv, _doc) in OPTIONS.items():
    setattr(ExporterBuilder, f"set_{_name}", _make_setter(_name, _doc))
del _name, _fn, _conv, _doc


class Response(Handle):
    """The agent's answer to a send: :attr:`status`, :attr:`body`, :meth:`sampling_rate`.

    Holds the library's response until :meth:`close` (or garbage collection).
    """

    __slots__ = ("_body",)
    _kind = "response"

    def __init__(self, ptr: Any) -> None:
        super().__init__(ptr)
        self._body: Optional[bytes] = None

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_response_free(ptr)

    @property
    def status(self) -> int:
        """The HTTP status (2xx: error statuses raise :class:`~data_pipeline.errors.HttpError`)."""
        ptr = self._borrow()
        try:
            return lib.dp_response_status(ptr)
        finally:
            self._unborrow()

    @property
    def body(self) -> bytes:
        """The raw body (JSON for trace endpoints), copied out of the library once."""
        if self._body is None:
            ptr = self._borrow()
            try:
                view = lib.dp_response_body(ptr)
                self._body = ctypes.string_at(view.ptr, view.len) if view.len else b""
            finally:
                self._unborrow()
        return self._body

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def sampling_rate(self, service: str, env: str = "") -> float:
        """The rate the agent asks for traces of (``service``, ``env``), else its default rate.

        Raises :class:`~data_pipeline.errors.NotFoundError` when the answer had neither.
        """
        s, e = to_name(service, "service"), to_name(env, "env")
        out = ctypes.c_double()
        ptr = self._borrow()
        try:
            _check(lib.dp_response_sampling_rate(ptr, s, e, ctypes.byref(out)))
        finally:
            self._unborrow()
        return out.value

    def __repr__(self) -> str:
        if self.closed:
            return "<Response closed>"
        return f"<Response status={self.status} body={self.body[:60]!r}>"


class Exporter(Handle):
    """Sends trace payloads to one agent. Thread-safe: threads may send through it at once.

    Sends block (with the GIL released) until the agent answered, bounded by ``send_timeout``.
    ``close()`` while other threads are sending takes effect when the last of them returns.

    Background sending (:meth:`enqueue`, :meth:`flush`, :meth:`health`, and :meth:`shutdown`)
    never waits for the agent; see the section at the end of the class. It survives ``os.fork()``
    and ``multiprocessing`` with the fork start method: a child starts with an empty queue and its
    own worker, and the parent's queued traces stay the parent's.
    """

    __slots__ = ()
    _kind = "exporter"

    def __init__(self, ptr: Any) -> None:
        super().__init__(ptr)
        _LIVE_EXPORTERS.add(self)

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_exporter_free(ptr)

    @classmethod
    def build(cls, **options: Any) -> "Exporter":
        """``ExporterBuilder(**options).build()``: one keyword per option, see :data:`OPTIONS`."""
        return ExporterBuilder(**options).build()

    def send(self, payload: Union[bytes, bytearray, memoryview]) -> Response:
        """Sends one payload (a msgpack array of traces in the input format); returns the answer.

        ``bytes`` and writable buffers are passed without copying.
        """
        view, keep = to_bytes(payload, "payload")
        out = _ffi.out_ptr(_ffi.dp_response)
        ptr = self._borrow()
        try:
            _check(lib.dp_exporter_send(ptr, view, ctypes.byref(out)))
        finally:
            self._unborrow()
        del keep
        return Response(out)

    def normalize_counts(self) -> Dict[str, int]:
        """What normalization fixed and dropped so far: ``{agent reason name: count}`` (non-zero)."""
        return normalize_counts(self)

    def send_traces(self, traces: Union[Trace, Iterable[Trace]]) -> Response:
        """Encodes trace chunks built with the span API in the output format and sends them as one
        payload. The chunks are only read: they stay usable (and are not freed)."""
        chunks = [traces] if isinstance(traces, Trace) else list(traces)
        for t in chunks:
            if not isinstance(t, Trace):
                raise TypeError(f"send_traces expects Trace objects, got {type(t).__name__}")
        borrowed = []
        try:
            for t in chunks:
                borrowed.append((t, t._borrow()))
            array = (ctypes.POINTER(_ffi.dp_trace) * len(borrowed))(*(p for _, p in borrowed))
            out = _ffi.out_ptr(_ffi.dp_response)
            ptr = self._borrow()
            try:
                _check(lib.dp_exporter_send_traces(ptr, array, len(borrowed), ctypes.byref(out)))
            finally:
                self._unborrow()
        finally:
            for t, _ in borrowed:
                t._unborrow()
        return Response(out)

    # --- client-side stats and sampling feedback (data-pipeline-ffi/src/stats.rs) ------------------

    @property
    def stats_state(self) -> StatsState:
        """What the exporter does about client-side stats now (changes with the agent's /info)."""
        out = _ffi.dp_stats_state()
        ptr = self._borrow()
        try:
            _check(lib.dp_exporter_stats_state(ptr, ctypes.byref(out)))
        finally:
            self._unborrow()
        return StatsState(out.value)

    @property
    def stats_enabled(self) -> bool:
        """True while client-side stats are computed."""
        return self.stats_state is StatsState.ENABLED

    def sampling_rate(self, service: str, env: str = "") -> float:
        """The rate the agent asked for (``service``, ``env``) in its last answer that carried rates,
        else its default rate, else 1.0 (no feedback yet)."""
        s, e = to_name(service, "service"), to_name(env, "env")
        out = ctypes.c_double()
        ptr = self._borrow()
        try:
            _check(lib.dp_exporter_sampling_rate(ptr, s, e, ctypes.byref(out)))
        finally:
            self._unborrow()
        return out.value

    def flush_stats(self, force: bool = False, timeout: float = 5.0) -> None:
        """Sends the complete stats buckets now (every bucket when ``force``), within ``timeout`` s."""
        ms = _millis(timeout, "timeout")
        ptr = self._borrow()
        try:
            _check(lib.dp_exporter_flush_stats(ptr, _flag(force, "force"), ms))
        finally:
            self._unborrow()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stops background work within ``timeout`` seconds: the queued traces go out first (see
        :meth:`enqueue`), then every stats bucket (stats are off afterwards). Always returns in
        time; raises :class:`~data_pipeline.errors.DataPipelineTimeoutError` when something was left
        (queued traces are then dropped and counted in ``health().dropped_shutdown``). Later
        enqueues raise ShutdownError; :meth:`send` keeps working. Call it before :meth:`close`,
        which never blocks and drops what is left."""
        ms = _millis(timeout, "timeout")
        ptr = self._borrow()
        try:
            _check(lib.dp_exporter_shutdown(ptr, ms))
        finally:
            self._unborrow()

    # ---- background ------------------------------------------------------------------------------
    # One worker thread per exporter (started by the first enqueue) batches payloads and delivers
    # them: retries, backoff, a circuit breaker while the agent is unreachable, and memory bounded by
    # ``queue_max_bytes`` (beyond it payloads are dropped and counted, never blocked on). Call
    # :meth:`shutdown` (above) before :meth:`close` to send what is queued; ``close()`` never waits.

    def enqueue(self, payload: Union[bytes, bytearray, memoryview]) -> None:
        """Queues one payload (a msgpack array of traces in the input format) and returns at once.

        The payload is copied. Raises :class:`~data_pipeline.errors.DecodeError` for a payload that
        is not an array of traces, :class:`~data_pipeline.errors.DataPipelineOverflowError` when
        the queue is full (the payload is dropped and counted), and
        :class:`~data_pipeline.errors.ShutdownError` after :meth:`shutdown`.
        """
        view, keep = to_bytes(payload, "payload")
        ptr = self._borrow()
        try:
            _check(lib.dp_exporter_enqueue(ptr, view))
        finally:
            self._unborrow()
        del keep

    def enqueue_traces(self, traces: Union[Trace, Iterable[Trace]]) -> None:
        """Queues trace chunks built with the span API. They are encoded during the call and only
        read: they stay usable."""
        chunks = [traces] if isinstance(traces, Trace) else list(traces)
        for t in chunks:
            if not isinstance(t, Trace):
                raise TypeError(f"enqueue_traces expects Trace objects, got {type(t).__name__}")
        borrowed = []
        try:
            for t in chunks:
                borrowed.append((t, t._borrow()))
            array = (ctypes.POINTER(_ffi.dp_trace) * len(borrowed))(*(p for _, p in borrowed))
            ptr = self._borrow()
            try:
                _check(lib.dp_exporter_enqueue_traces(ptr, array, len(borrowed)))
            finally:
                self._unborrow()
        finally:
            for t, _ in borrowed:
                t._unborrow()

    def flush(self, timeout: Union[float, datetime.timedelta] = 5.0) -> None:
        """Sends what was enqueued before the call now and waits until it is delivered or dropped,
        at most ``timeout`` seconds (the GIL is released meanwhile). Raises
        :class:`~data_pipeline.errors.DataPipelineTimeoutError` when traces were still pending."""
        ms = _millis(timeout, "timeout")
        ptr = self._borrow()
        try:
            _check(lib.dp_exporter_flush(ptr, ms))
        finally:
            self._unborrow()

    def health(self) -> "Health":
        """A snapshot of the background counters (see :class:`Health`)."""
        out = _ffi.dp_health()
        out.size = ctypes.sizeof(out)
        ptr = self._borrow()
        try:
            _check(lib.dp_exporter_health(ptr, ctypes.byref(out)))
        finally:
            self._unborrow()
        return Health._from_c(out)


@dataclasses.dataclass(frozen=True)
class Health:
    """The background exporter's counters (``dp_health``), since the exporter was created or,
    in a forked child, since the fork. The account always balances, in traces:
    ``traces_enqueued == traces_sent + dropped + traces_pending`` (see :meth:`balanced`).
    A field the loaded library does not know (an older library) is ``None``."""

    payloads_enqueued: Optional[int] = None
    traces_enqueued: Optional[int] = None
    spans_enqueued: Optional[int] = None
    bytes_enqueued: Optional[int] = None
    requests_sent: Optional[int] = None
    traces_sent: Optional[int] = None
    bytes_sent: Optional[int] = None
    dropped_queue_full: Optional[int] = None
    dropped_breaker_open: Optional[int] = None
    dropped_http_4xx: Optional[int] = None
    dropped_retries_exhausted: Optional[int] = None
    dropped_shutdown: Optional[int] = None
    dropped_invalid: Optional[int] = None
    dropped_p0: Optional[int] = None
    bytes_dropped: Optional[int] = None
    retries: Optional[int] = None
    requests_failed: Optional[int] = None
    payloads_pending: Optional[int] = None
    traces_pending: Optional[int] = None
    bytes_pending: Optional[int] = None
    breaker_state: Optional[int] = None
    breaker_opened: Optional[int] = None
    forks: Optional[int] = None
    worker_running: Optional[int] = None

    @classmethod
    def _from_c(cls, c: Any) -> "Health":
        values = {}
        offset = ctypes.sizeof(ctypes.c_uint64)  # past `size`
        for name, ctype in c._fields_[1:]:
            if offset + ctypes.sizeof(ctype) > c.size:
                break
            values[name] = getattr(c, name)
            offset += ctypes.sizeof(ctype)
        return cls(**values)

    @property
    def dropped(self) -> int:
        """Traces dropped, all reasons together."""
        return sum(
            v or 0
            for k, v in dataclasses.asdict(self).items()
            if k.startswith("dropped_")
        )

    def balanced(self) -> bool:
        """True when every enqueued trace is delivered, dropped or pending."""
        return self.traces_enqueued == (self.traces_sent or 0) + self.dropped + (
            self.traces_pending or 0
        )

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# ---- fork --------------------------------------------------------------------------------------------
# os.fork() (and multiprocessing's fork start method) run the library's process-wide hooks: the
# workers pause at a safe point before the fork and resume in the parent; in the child every
# exporter is reset at once (empty queue, new worker on the next enqueue). The child also gets fresh
# handle locks: a Python thread of the parent may have held one at the instant of the fork, and
# that thread does not exist in the child.

_LIVE_EXPORTERS: "weakref.WeakSet[Exporter]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    lib.dp_after_fork_child()
    for exporter in list(_LIVE_EXPORTERS):
        exporter._lock = threading.Lock()
        exporter._borrows = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=lib.dp_before_fork,
        after_in_parent=lib.dp_after_fork_parent,
        after_in_child=_after_fork_in_child,
    )
