"""Building spans through the API: :class:`Span`, :class:`SpanLink`, :class:`SpanEvent`,
:class:`Trace`.

Each object owns a library handle; every value given to it is copied by the library, so the Python
objects passed in may change afterwards. A span moves into a trace with :meth:`Trace.push`; a link or
an event moves into a span with :meth:`Span.add_link` / :meth:`Span.add_event`. A moved object is
closed: using it again raises :class:`~data_pipeline.errors.ShutdownError`.

Ids are Python ints: ``trace_id`` may be 128-bit (the high half travels in meta ``_dd.p.tid``), span
ids are 64-bit. Times are integer nanoseconds (``time.time_ns()``). Out-of-range numbers raise
``OverflowError`` (ctypes would silently truncate them).
"""

from __future__ import annotations

import ctypes
from typing import Any, Iterable, Mapping, Optional, Sequence

from . import _ffi
from ._ffi import I32, I64, U8, U64, U128, Handle, _check, check_range, lib, to_bytes, to_name, to_str
from .errors import ShutdownError

__all__ = ["Span", "SpanLink", "SpanEvent", "Trace"]


def _split_trace_id(trace_id: Any) -> tuple:
    n = check_range(trace_id, "trace_id", U128)
    return n >> 64, n & 0xFFFF_FFFF_FFFF_FFFF


def _msgpack_doc(value: Any, key: str) -> Any:
    """Bytes-like values are taken as one msgpack document; other objects are packed with the
    ``msgpack`` package when it is installed (the binding itself needs only the standard library)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return value
    try:
        import msgpack  # type: ignore[import-not-found]
    except ImportError:
        raise TypeError(
            f"meta_struct[{key!r}] must be msgpack bytes (install `msgpack` to pass "
            f"{type(value).__name__} objects)"
        ) from None
    return msgpack.packb(value, use_bin_type=True)


class SpanLink(Handle):
    """A link from a span to another span (``trace_id`` may be 128-bit)."""

    __slots__ = ()
    _kind = "span link"

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        *,
        tracestate: Optional[str] = None,
        flags: Optional[int] = None,
        attributes: Optional[Mapping[str, str]] = None,
    ) -> None:
        high, low = _split_trace_id(trace_id)
        span_id = check_range(span_id, "span_id", U64)
        super().__init__(lib.dp_span_link_new(high, low, span_id))
        if tracestate is not None:
            self.set_tracestate(tracestate)
        if flags is not None:
            self.set_flags(flags)
        for k, v in (attributes or {}).items():
            self.set_attribute(k, v)

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_span_link_free(ptr)

    def set_tracestate(self, tracestate: str) -> "SpanLink":
        """The W3C tracestate of the linked context."""
        s = to_str(tracestate, "tracestate")
        with self._lock:
            _check(lib.dp_span_link_set_tracestate(self._live(), s))
        return self

    def set_flags(self, flags: int) -> "SpanLink":
        """The W3C trace flags (e.g. 1 = sampled)."""
        f = check_range(flags, "flags", U8)
        with self._lock:
            _check(lib.dp_span_link_set_flags(self._live(), f))
        return self

    def set_attribute(self, key: str, value: str) -> "SpanLink":
        """A string attribute of the link."""
        k, v = to_name(key, "key"), to_str(value, "value")
        with self._lock:
            _check(lib.dp_span_link_set_attribute(self._live(), k, v))
        return self


class SpanEvent(Handle):
    """An event inside a span: a time, a name and typed attributes."""

    __slots__ = ()
    _kind = "span event"

    def __init__(
        self,
        time_unix_nano: int,
        name: Optional[str] = None,
        attributes: Optional[Mapping[str, Any]] = None,
    ) -> None:
        t = check_range(time_unix_nano, "time_unix_nano", U64)
        super().__init__(lib.dp_span_event_new(t))
        if name is not None:
            self.set_name(name)
        for k, v in (attributes or {}).items():
            self.set_attribute(k, v)

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_span_event_free(ptr)

    def set_name(self, name: str) -> "SpanEvent":
        """The event's name."""
        s = to_str(name, "name")
        with self._lock:
            _check(lib.dp_span_event_set_name(self._live(), s))
        return self

    def set_attribute(self, key: str, value: Any) -> "SpanEvent":
        """An attribute, typed from the Python value: ``str``, ``bool``, ``int`` (64-bit),
        ``float``, or a list/tuple of one of those (an empty list is an empty string array; ints
        mixed with floats make a float array)."""
        k = to_name(key, "key")
        with self._lock:
            ptr = self._live()
            if isinstance(value, str):
                err = lib.dp_span_event_set_attribute_string(ptr, k, to_str(value, "value"))
            elif isinstance(value, bool):
                err = lib.dp_span_event_set_attribute_bool(ptr, k, value)
            elif isinstance(value, int):
                err = lib.dp_span_event_set_attribute_int(ptr, k, check_range(value, "value", I64))
            elif isinstance(value, float):
                err = lib.dp_span_event_set_attribute_double(ptr, k, value)
            elif isinstance(value, (list, tuple)):
                err = self._set_array(ptr, k, value)
            else:
                raise TypeError(
                    f"event attribute {key!r}: unsupported type {type(value).__name__} "
                    "(str, bool, int, float or a list of them)"
                )
        _check(err)
        return self

    @staticmethod
    def _set_array(ptr: Any, k: Any, values: Sequence[Any]) -> Any:
        n = len(values)
        if all(isinstance(v, str) for v in values):  # also the empty list
            arr: Any = (_ffi.dp_str * n)(*(to_str(v, "value") for v in values))
            return lib.dp_span_event_set_attribute_string_array(ptr, k, arr, n)
        if all(isinstance(v, bool) for v in values):
            arr = (ctypes.c_bool * n)(*values)
            return lib.dp_span_event_set_attribute_bool_array(ptr, k, arr, n)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            arr = (ctypes.c_int64 * n)(*(check_range(v, "value", I64) for v in values))
            return lib.dp_span_event_set_attribute_int_array(ptr, k, arr, n)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            arr = (ctypes.c_double * n)(*(float(v) for v in values))
            return lib.dp_span_event_set_attribute_double_array(ptr, k, arr, n)
        raise TypeError("an event attribute array holds values of one type: str, bool, int or float")


class Span(Handle):
    """A span under construction. Every field is a keyword of the constructor and has a setter
    (``set_service``, ..., ``set_meta(key, value)``) returning the span, for chaining."""

    __slots__ = ()
    _kind = "span"

    def __init__(
        self,
        *,
        service: Optional[str] = None,
        name: Optional[str] = None,
        resource: Optional[str] = None,
        type: Optional[str] = None,
        trace_id: Optional[int] = None,
        span_id: Optional[int] = None,
        parent_id: Optional[int] = None,
        start: Optional[int] = None,
        duration: Optional[int] = None,
        error: Optional[bool] = None,
        meta: Optional[Mapping[str, str]] = None,
        metrics: Optional[Mapping[str, float]] = None,
        meta_struct: Optional[Mapping[str, Any]] = None,
        links: Iterable[SpanLink] = (),
        events: Iterable[SpanEvent] = (),
    ) -> None:
        super().__init__(lib.dp_span_new())
        for value, setter in (
            (service, self.set_service),
            (name, self.set_name),
            (resource, self.set_resource),
            (type, self.set_type),
            (trace_id, self.set_trace_id),
            (span_id, self.set_span_id),
            (parent_id, self.set_parent_id),
            (start, self.set_start),
            (duration, self.set_duration),
            (error, self.set_error),
        ):
            if value is not None:
                setter(value)
        for k, v in (meta or {}).items():
            self.set_meta(k, v)
        for k, m in (metrics or {}).items():
            self.set_metric(k, m)
        for k, doc in (meta_struct or {}).items():
            self.set_meta_struct(k, doc)
        for link in links:
            self.add_link(link)
        for event in events:
            self.add_event(event)

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_span_free(ptr)

    def _set_text(self, fn: Any, value: Any, arg: str, view: Any = to_str) -> "Span":
        s = view(value, arg)
        with self._lock:
            err = fn(self._live(), s)
        if err:
            _check(err)
        return self

    def _set_int(self, fn: Any, value: Any, arg: str, bounds: tuple) -> "Span":
        n = check_range(value, arg, bounds)
        with self._lock:
            err = fn(self._live(), n)
        if err:
            _check(err)
        return self

    def set_service(self, service: str) -> "Span":
        """The service name."""
        return self._set_text(lib.dp_span_set_service, service, "service", to_name)

    def set_name(self, name: str) -> "Span":
        """The operation name."""
        return self._set_text(lib.dp_span_set_name, name, "name", to_name)

    def set_resource(self, resource: str) -> "Span":
        """The resource (SQL query, HTTP route, ...)."""
        return self._set_text(lib.dp_span_set_resource, resource, "resource")

    def set_type(self, type_: str) -> "Span":
        """The span type (``web``, ``sql``, ...); empty for none."""
        return self._set_text(lib.dp_span_set_type, type_, "type", to_name)

    def set_trace_id(self, trace_id: int) -> "Span":
        """The trace id, up to 128 bits."""
        high, low = _split_trace_id(trace_id)
        with self._lock:
            _check(lib.dp_span_set_trace_id(self._live(), high, low))
        return self

    def set_span_id(self, span_id: int) -> "Span":
        """The span id (64-bit)."""
        return self._set_int(lib.dp_span_set_span_id, span_id, "span_id", U64)

    def set_parent_id(self, parent_id: int) -> "Span":
        """The parent's span id; 0 for a root span."""
        return self._set_int(lib.dp_span_set_parent_id, parent_id, "parent_id", U64)

    def set_start(self, start_unix_nano: int) -> "Span":
        """Start time, nanoseconds since the Unix epoch."""
        return self._set_int(lib.dp_span_set_start, start_unix_nano, "start", I64)

    def set_duration(self, duration_nano: int) -> "Span":
        """Duration in nanoseconds."""
        return self._set_int(lib.dp_span_set_duration, duration_nano, "duration", I64)

    def set_error(self, error: Any) -> "Span":
        """The error flag (a bool, or the int the wire carries)."""
        return self._set_int(lib.dp_span_set_error, int(error), "error", I32)

    def set_meta(self, key: str, value: str) -> "Span":
        """A string tag (replaces an existing value)."""
        k, v = to_name(key, "key"), to_str(value, "value")
        with self._lock:
            err = lib.dp_span_set_meta(self._live(), k, v)
        if err:
            _check(err)
        return self

    def set_metric(self, key: str, value: float) -> "Span":
        """A numeric tag (replaces an existing value)."""
        k = to_name(key, "key")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric {key!r} must be a number, not {type(value).__name__}")
        v = float(value)
        with self._lock:
            err = lib.dp_span_set_metric(self._live(), k, v)
        if err:
            _check(err)
        return self

    def set_meta_struct(self, key: str, value: Any) -> "Span":
        """A structured tag: msgpack bytes, or any object when ``msgpack`` is installed. The agent
        expects a map. Travels in v0.4 payloads only."""
        k = to_name(key, "key")
        view, keep = to_bytes(_msgpack_doc(value, key), "value")
        with self._lock:
            _check(lib.dp_span_set_meta_struct(self._live(), k, view))
        del keep
        return self

    def add_link(self, link: SpanLink) -> "Span":
        """Moves ``link`` into the span (the link object is closed afterwards)."""
        if not isinstance(link, SpanLink):
            raise TypeError(f"add_link expects a SpanLink, not {type(link).__name__}")
        with self._lock:
            ptr = self._live()
            _check(lib.dp_span_add_link(ptr, link._take("moved into a span")))
        return self

    def add_event(self, event: SpanEvent) -> "Span":
        """Moves ``event`` into the span (the event object is closed afterwards)."""
        if not isinstance(event, SpanEvent):
            raise TypeError(f"add_event expects a SpanEvent, not {type(event).__name__}")
        with self._lock:
            ptr = self._live()
            _check(lib.dp_span_add_event(ptr, event._take("moved into a span")))
        return self


class Trace(Handle):
    """A trace chunk: the spans of one trace sent together. ``len(trace)`` counts its spans.

    Sending only reads it (:meth:`Exporter.send_traces`), so a trace can be sent again, and by
    several threads at once; it cannot be modified while a send is running.
    """

    __slots__ = ()
    _kind = "trace"

    def __init__(self, spans: Iterable[Span] = ()) -> None:
        super().__init__(lib.dp_trace_new())
        self.extend(spans)

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_trace_free(ptr)

    def push(self, span: Span) -> "Trace":
        """Moves ``span`` to the end of the chunk (the span object is closed afterwards)."""
        if not isinstance(span, Span):
            raise TypeError(f"push expects a Span, not {type(span).__name__}")
        with self._lock:
            ptr = self._live()
            _check(lib.dp_trace_push_span(ptr, span._take("moved into a trace")))
        return self

    append = push

    def extend(self, spans: Iterable[Span]) -> "Trace":
        """Pushes each span in order."""
        for span in spans:
            self.push(span)
        return self

    def __len__(self) -> int:
        with self._lock:
            if self._ptr is None or self._closing:
                raise ShutdownError(f"{self._kind} is {self._closed_reason}")
            # Reading the length is allowed while a send borrows the trace (both only read).
            return lib.dp_trace_len(self._ptr)
