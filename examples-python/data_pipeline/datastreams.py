"""Data Streams Monitoring: :class:`DataStreams` (checkpoints, Kafka and HTTP helpers, offsets) and
:class:`PathwayContext` (where a message is in its pathway, and how it travels in headers).

>>> with DataStreams(url="http://127.0.0.1:8126", service="orders-api", env="prod") as dsm:
...     headers = []                                        # a confluent-kafka header list
...     dsm.produce("orders", headers, key=b"42", value=payload)
...     producer.produce("orders", value=payload, key=b"42", headers=headers)
...
>>> ctx = dsm.consume_message(msg, group="billing")         # on the consumer side, or
>>> ctx = dsm.consume("orders", "billing", msg.headers(), key=msg.key(), value=msg.value())
>>> dsm.produce("invoices", out_headers, parent=ctx, value=invoice)

Start it from an exporter's settings with ``DataStreams(exporter=exporter, ...)`` (agent URL, service,
env, versions, language, test session token) or standalone with keyword options. Checkpoints never do
I/O; a background thread sends the 10 s buckets (``flush_interval``), :meth:`DataStreams.flush` sends
now, and leaving the ``with`` block (or :meth:`DataStreams.shutdown`) sends what is left.
"""

from __future__ import annotations

import ctypes
import datetime
import logging
import math
import platform
from ctypes import byref, c_size_t, c_uint8
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _ffi
from ._ffi import I32, I64, U64, Handle, _check, check_range, lib, to_bytes, to_name, to_str
from .errors import DataPipelineError

__all__ = ["DataStreams", "PathwayContext", "PROPAGATION_KEY", "LEGACY_PROPAGATION_KEY"]

_log = logging.getLogger("data_pipeline.datastreams")


def _key(fn: Callable[[], Any]) -> str:
    view = fn()
    return ctypes.string_at(view.ptr, view.len).decode("ascii")


#: The header / carrier key of the base64 context (the only one written).
PROPAGATION_KEY = _key(lib.dp_pathway_context_key)
#: The legacy key of the binary context (read only).
LEGACY_PROPAGATION_KEY = _key(lib.dp_pathway_context_legacy_key)
_KEY_BYTES = PROPAGATION_KEY.encode()
_LEGACY_BYTES = LEGACY_PROPAGATION_KEY.encode()

Headers = Union[List[Tuple[str, Any]], MutableMapping[str, Any]]


def _size(value: Any) -> int:
    """Bytes of a key, value or header part: str as UTF-8, bytes-like as is, None as 0."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return memoryview(value).nbytes


def _pairs(headers: Any) -> Iterable[Tuple[Any, Any]]:
    """(name, value) pairs of a header list, a dict or an ``email.message.Message``."""
    if headers is None:
        return ()
    items = getattr(headers, "items", None)
    return items() if callable(items) else headers


def _name(key: Any) -> bytes:
    return key.encode("utf-8", "surrogatepass") if isinstance(key, str) else bytes(key)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return bytes(value)


def _seconds_to_ms(value: Any, arg: str) -> int:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{arg} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{arg}={value!r}: expected a finite number of seconds >= 0")
    return check_range(math.ceil(value * 1000), arg, U64)


# ---- pathway contexts -----------------------------------------------------------------------------


class PathwayContext(Handle):
    """Where a message is in its pathway: :attr:`hash`, :attr:`pathway_start_ns` (the pathway's
    first checkpoint) and :attr:`edge_start_ns` (the previous checkpoint), ns since the epoch.

    Immutable and thread-safe: one context may be the parent of any number of checkpoints. Get one
    from a checkpoint, :meth:`decode_base64`, :meth:`extract_kafka` / :meth:`extract_http` /
    :meth:`extract`, or build one with :meth:`new`. Decoders and extractors return ``None`` for
    "no context" (never raise on bad content). Two contexts are equal when their three fields are.
    """

    __slots__ = ("_fields",)
    _kind = "pathway context"

    def __init__(self, ptr: Any) -> None:
        super().__init__(ptr)
        self._fields: Optional[Tuple[int, int, int]] = None

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_pathway_context_free(ptr)

    @classmethod
    def _from_out(cls, out: Any) -> Optional["PathwayContext"]:
        return cls(out) if out else None

    @classmethod
    def new(cls, hash: int, pathway_start_ns: int, edge_start_ns: int) -> "PathwayContext":
        """A context with these fields (for tracers that keep them, and tests)."""
        return cls(
            lib.dp_pathway_context_new(
                check_range(hash, "hash", U64),
                check_range(pathway_start_ns, "pathway_start_ns", I64),
                check_range(edge_start_ns, "edge_start_ns", I64),
            )
        )

    def _read(self) -> Tuple[int, int, int]:
        if self._fields is None:
            ptr = self._borrow()
            try:
                self._fields = (
                    lib.dp_pathway_context_hash(ptr),
                    lib.dp_pathway_context_pathway_start_ns(ptr),
                    lib.dp_pathway_context_edge_start_ns(ptr),
                )
            finally:
                self._unborrow()
        return self._fields

    @property
    def hash(self) -> int:
        """The pathway hash (unsigned 64-bit, as in the payloads)."""
        return self._read()[0]

    @property
    def pathway_start_ns(self) -> int:
        """When the pathway started, ns since the epoch (a multiple of 1 ms once decoded)."""
        return self._read()[1]

    @property
    def edge_start_ns(self) -> int:
        """When the previous checkpoint happened, ns since the epoch."""
        return self._read()[2]

    def encode_base64(self) -> str:
        """The base64 text carried under :data:`PROPAGATION_KEY` (28 characters today)."""
        buf = ctypes.create_string_buffer(_ffi.DP_PATHWAY_CONTEXT_BASE64_CAPACITY)
        n = c_size_t()
        ptr = self._borrow()
        try:
            _check(lib.dp_pathway_context_encode_base64(ptr, buf, len(buf), byref(n)))
        finally:
            self._unborrow()
        return buf.raw[: n.value].decode("ascii")

    def encode(self) -> bytes:
        """The binary form (what the legacy key carries): 8 bytes of hash, two varints."""
        buf = (c_uint8 * _ffi.DP_PATHWAY_CONTEXT_ENCODED_CAPACITY)()
        n = c_size_t()
        ptr = self._borrow()
        try:
            _check(lib.dp_pathway_context_encode(ptr, buf, len(buf), byref(n)))
        finally:
            self._unborrow()
        return bytes(buf[: n.value])

    @classmethod
    def decode_base64(cls, text: Union[str, bytes, bytearray, memoryview, None]) -> Optional["PathwayContext"]:
        """Decodes the base64 text; ``None`` when it is not a context (empty, bad base64, ...)."""
        if text is None:
            return None
        view, keep = to_bytes(_as_bytes(text) if isinstance(text, str) else text, "text")
        out = _ffi.out_ptr(_ffi.dp_pathway_context)
        _check(lib.dp_pathway_context_decode_base64(view, byref(out)))
        del keep
        return cls._from_out(out)

    @classmethod
    def decode(cls, data: Union[bytes, bytearray, memoryview, None]) -> Optional["PathwayContext"]:
        """Decodes the binary form; ``None`` when it is not a context."""
        if data is None:
            return None
        view, keep = to_bytes(data, "data")
        out = _ffi.out_ptr(_ffi.dp_pathway_context)
        _check(lib.dp_pathway_context_decode(view, byref(out)))
        del keep
        return cls._from_out(out)

    @staticmethod
    def merge(contexts: Iterable[Optional["PathwayContext"]]) -> Optional["PathwayContext"]:
        """Fan-in: of several incoming contexts (``None`` entries skipped), the one whose pathway
        started first (ties: earlier edge start, then lower hash), as a new object; ``None`` when
        there is none."""
        items = [c for c in contexts if c is not None]
        borrowed = []
        try:
            for c in items:
                borrowed.append((c, c._borrow()))
            arr = (ctypes.POINTER(_ffi.dp_pathway_context) * max(1, len(borrowed)))(
                *[p for _, p in borrowed]
            )
            out = _ffi.out_ptr(_ffi.dp_pathway_context)
            _check(lib.dp_pathway_context_merge(arr, len(borrowed), byref(out)))
        finally:
            for c, _ in borrowed:
                c._unborrow()
        return PathwayContext._from_out(out)

    # -- carriers --

    def inject_kafka(self, headers: Headers) -> None:
        """Puts the context into a confluent-kafka header list (``[(key, value), ...]``, replacing
        any earlier context header) or dict."""
        value = self.encode_base64().encode("ascii")
        if isinstance(headers, list):
            headers[:] = [h for h in headers if _name(h[0]) != _KEY_BYTES]
            headers.append((PROPAGATION_KEY, value))
        else:
            headers[PROPAGATION_KEY] = value

    @classmethod
    def extract_kafka(cls, headers: Any) -> Optional["PathwayContext"]:
        """The context in a confluent-kafka header list or dict (keys compared exactly, the last
        wins; the legacy binary key as a fallback), or ``None``."""
        return cls._extract_pairs(headers, fold_case=False)

    def inject_http(self, headers: MutableMapping[str, Any]) -> None:
        """Sets the context header in an HTTP header mapping (a dict, ``http.client`` headers, an
        ``email.message.Message``), removing the same name in any other case first."""
        for name in [k for k in list(headers.keys()) if str(k).lower() == PROPAGATION_KEY]:
            del headers[name]
        headers[PROPAGATION_KEY] = self.encode_base64()

    @classmethod
    def extract_http(cls, headers: Any) -> Optional["PathwayContext"]:
        """The context in HTTP headers (a mapping, an ``email.message.Message`` as
        ``http.server`` gives, or ``(name, value)`` pairs; names compared case-insensitively), or
        ``None``."""
        return cls._extract_pairs(headers, fold_case=True)

    @classmethod
    def _extract_pairs(cls, headers: Any, fold_case: bool) -> Optional["PathwayContext"]:
        """Shared by the Kafka and HTTP extractors: the last ``dd-pathway-ctx-base64`` value that
        decodes, else the legacy binary one (names lower-cased first with ``fold_case``)."""
        current = legacy = None
        for k, v in _pairs(headers):
            if v is None:
                continue
            name = _name(k).lower() if fold_case else _name(k)
            if name == _KEY_BYTES:
                current = v
            elif name == _LEGACY_BYTES:
                legacy = v
        ctx = cls.decode_base64(current) if current is not None else None
        if ctx is None and legacy is not None:
            ctx = cls.decode(_as_bytes(legacy))
        return ctx

    def inject(self, set_header: Callable[[str, str], Any]) -> None:
        """Injects into any carrier: calls ``set_header(PROPAGATION_KEY, text)`` once (through the
        library's callback carrier, on this thread)."""
        failure: List[BaseException] = []

        def cb(_user_data: Any, key: _ffi.dp_str, value: _ffi.dp_str) -> None:
            try:
                set_header(
                    ctypes.string_at(key.ptr, key.len).decode(),
                    ctypes.string_at(value.ptr, value.len).decode(),
                )
            except BaseException as e:  # never unwind through C
                failure.append(e)

        c_cb = _ffi.dp_carrier_set(cb)
        ptr = self._borrow()
        try:
            _check(lib.dp_pathway_context_inject(ptr, c_cb, None))
        finally:
            self._unborrow()
        if failure:
            raise failure[0]

    @classmethod
    def extract(cls, get_header: Callable[[str], Any]) -> Optional["PathwayContext"]:
        """Extracts from any carrier: ``get_header(key)`` returns the value (str or bytes) or
        ``None``; asked for :data:`PROPAGATION_KEY`, then the legacy key (through the library's
        callback carrier, on this thread)."""
        failure: List[BaseException] = []
        keep: List[Any] = []

        def cb(_user_data: Any, key: _ffi.dp_str, value: Any) -> bool:
            try:
                v = get_header(ctypes.string_at(key.ptr, key.len).decode())
                if v is None:
                    return False
                view, held = to_bytes(_as_bytes(v), "value")
                keep.append(held)  # alive until extract returns
                value[0] = view
                return True
            except BaseException as e:  # never unwind through C
                failure.append(e)
                return False

        c_cb = _ffi.dp_carrier_get(cb)
        out = _ffi.out_ptr(_ffi.dp_pathway_context)
        _check(lib.dp_pathway_context_extract(c_cb, None, byref(out)))
        if failure:
            if out:
                lib.dp_pathway_context_free(out)
            raise failure[0]
        return cls._from_out(out)

    # -- value semantics --

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PathwayContext):
            return NotImplemented
        return self._read() == other._read()

    def __hash__(self) -> int:
        return hash(self._read())

    def __repr__(self) -> str:
        if self.closed:
            return "<PathwayContext closed>"
        h, p, e = self._read()
        return f"<PathwayContext hash={h} pathway_start_ns={p} edge_start_ns={e}>"


# ---- the processor --------------------------------------------------------------------------------


class _Builder(Handle):
    __slots__ = ()
    _kind = "data streams builder"

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_data_streams_builder_free(ptr)


def _text(setter: Callable[..., Any]) -> Callable[[Any, Any, str], None]:
    def apply(ptr: Any, value: Any, arg: str) -> None:
        _check(setter(ptr, to_str(value, arg)))

    return apply


def _millis_option(setter: Callable[..., Any]) -> Callable[[Any, Any, str], None]:
    def apply(ptr: Any, value: Any, arg: str) -> None:
        _check(setter(ptr, 0 if value is None else _seconds_to_ms(value, arg)))

    return apply


def _headers_option(ptr: Any, value: Any, arg: str) -> None:
    for name, v in _pairs(value):
        _check(lib.dp_data_streams_builder_add_header(ptr, to_str(name, arg), to_str(v, arg)))


def _tags_option(ptr: Any, value: Any, arg: str) -> None:
    if isinstance(value, str):
        raise TypeError(f"{arg} must be a list of 'key:value' strings, not a str")
    for tag in value:
        _check(lib.dp_data_streams_builder_add_process_tag(ptr, to_str(tag, arg)))


def _bool_option(ptr: Any, value: Any, arg: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{arg} must be a bool, not {type(value).__name__}")
    _check(lib.dp_data_streams_builder_set_hash_process_tags(ptr, value))


#: Every option of :class:`DataStreams`: ``keyword -> (apply, doc)``.
OPTIONS: Dict[str, Tuple[Callable[[Any, Any, str], None], str]] = {
    "url": (_text(lib.dp_data_streams_builder_set_url), "Agent address (http:// or unix://)."),
    "service": (_text(lib.dp_data_streams_builder_set_service), "Service of the checkpoints."),
    "env": (_text(lib.dp_data_streams_builder_set_env), "Environment (hashed as is)."),
    "app_version": (_text(lib.dp_data_streams_builder_set_app_version), "Application version."),
    "language": (_text(lib.dp_data_streams_builder_set_language), "Tracer language (`python`)."),
    "language_version": (_text(lib.dp_data_streams_builder_set_language_version), "Language version."),
    "tracer_version": (_text(lib.dp_data_streams_builder_set_tracer_version), "Tracer version."),
    "container_id": (_text(lib.dp_data_streams_builder_set_container_id), "Container id."),
    "test_session_token": (
        _text(lib.dp_data_streams_builder_set_test_session_token),
        "Datadog test agent session token.",
    ),
    "headers": (_headers_option, "Extra HTTP headers sent with every payload (dict or pairs)."),
    "process_tags": (_tags_option, "Process tags (`key:value`), sent in `ProcessTags`."),
    "hash_process_tags": (_bool_option, "Whether process tags are part of the pathway hash."),
    "flush_interval": (
        _millis_option(lib.dp_data_streams_builder_set_flush_interval),
        "Seconds between background sends (default 10; 0 or None: no background thread).",
    ),
    "bucket_duration": (
        _millis_option(lib.dp_data_streams_builder_set_bucket_duration),
        "Bucket duration in seconds (default 10; for tests).",
    ),
    "connect_timeout": (
        _millis_option(lib.dp_data_streams_builder_set_connect_timeout),
        "Connection timeout in seconds.",
    ),
    "request_timeout": (
        _millis_option(lib.dp_data_streams_builder_set_request_timeout),
        "Request timeout in seconds.",
    ),
}

_STANDALONE_DEFAULTS = {"language": "python", "language_version": platform.python_version()}

#: Cached ``dp_str`` arrays of edge-tag tuples (tag sets are few; bounded like the name cache).
_TAGSETS: Dict[Tuple[Any, ...], Tuple[Any, int, Any]] = {}
_TAGSETS_MAX = 4096


def _tag_array(tags: Sequence[Any]) -> Tuple[Any, int, Any]:
    key = tuple(tags)
    entry = _TAGSETS.get(key)
    if entry is None:
        views = [to_name(t, "edge_tags") for t in key]
        arr = (_ffi.dp_str * max(1, len(views)))(*views)
        entry = (arr, len(views), views)
        if len(_TAGSETS) >= _TAGSETS_MAX:
            _TAGSETS.clear()
        _TAGSETS[key] = entry
    return entry


_OUT_PC = ctypes.POINTER(_ffi.dp_pathway_context)


class DataStreams(Handle):
    """The Data Streams Monitoring processor (``dp_data_streams``). Thread-safe.

    ``DataStreams(exporter=exporter, **overrides)`` takes the exporter's settings (agent URL,
    service, env, versions, language, test session token, timeouts); ``DataStreams(**options)``
    configures it standalone (see :data:`OPTIONS`; durations in seconds). Use it as a context
    manager: leaving the block sends what is left (:meth:`shutdown`, errors logged, not raised) and
    frees it. :meth:`close` alone never waits for the network (unsent data is dropped).
    """

    __slots__ = ("shutdown_timeout",)
    _kind = "data streams"

    def __init__(self, *, exporter: Any = None, shutdown_timeout: float = 5.0, **options: Any) -> None:
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise TypeError(f"unknown data streams option(s): {', '.join(sorted(unknown))}")
        if exporter is not None:
            ex_ptr = exporter._borrow()
            try:
                out = _ffi.out_ptr(_ffi.dp_data_streams_builder)
                _check(lib.dp_data_streams_builder_new_from_exporter(ex_ptr, byref(out)))
            finally:
                exporter._unborrow()
            builder = _Builder(out)
        else:
            builder = _Builder(lib.dp_data_streams_builder_new())
            options = {**_STANDALONE_DEFAULTS, **options}
        with builder:
            with builder._lock:
                ptr = builder._live()
                for name, value in options.items():
                    OPTIONS[name][0](ptr, value, name)
            ptr = builder._take("consumed by build")
            out = _ffi.out_ptr(_ffi.dp_data_streams)
            _check(lib.dp_data_streams_builder_build(ptr, byref(out)))
        super().__init__(out)
        self.shutdown_timeout = shutdown_timeout

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_data_streams_free(ptr)

    @classmethod
    def from_exporter(cls, exporter: Any, **overrides: Any) -> "DataStreams":
        """Data streams with ``exporter``'s settings, changed by ``overrides``."""
        return cls(exporter=exporter, **overrides)

    # -- checkpoints --

    def checkpoint(
        self,
        edge_tags: Sequence[str],
        parent: Optional[PathwayContext] = None,
        payload_size: int = 0,
        now_ns: Optional[int] = None,
    ) -> PathwayContext:
        """Records a checkpoint (``edge_tags`` such as ``("direction:out", "type:kafka",
        "topic:orders")``) of a message of ``payload_size`` bytes following ``parent`` (``None``:
        a new pathway), now or at ``now_ns``; returns the new context."""
        arr, n, _views = _tag_array(edge_tags)
        out = _OUT_PC()
        ptr = self._borrow()
        parent_ptr = parent._borrow() if parent is not None else None
        try:
            if now_ns is None:
                err = lib.dp_data_streams_set_checkpoint(ptr, parent_ptr, arr, n, payload_size, byref(out))
            else:
                err = lib.dp_data_streams_set_checkpoint_at(
                    ptr, parent_ptr, arr, n, payload_size, now_ns, byref(out)
                )
        finally:
            if parent is not None:
                parent._unborrow()
            self._unborrow()
        _check(err)
        return PathwayContext(out)

    # -- Kafka --

    def produce(
        self,
        topic: str,
        headers: Headers,
        *,
        parent: Optional[PathwayContext] = None,
        key: Any = None,
        value: Any = None,
        payload_size: Optional[int] = None,
        cluster_id: str = "",
    ) -> PathwayContext:
        """Kafka produce: checkpoint ``direction:out, topic:<topic>, type:kafka[,
        kafka_cluster_id:]`` and inject the new context into ``headers`` (a confluent-kafka
        header list, changed in place, or a dict). The parent is ``parent``, else the context
        already in ``headers``, else a new pathway. The payload size is ``payload_size``, else key
        + value + headers; the context header is counted too. Returns the new context."""
        extracted = None
        if parent is None:
            extracted = parent = PathwayContext.extract_kafka(headers)
        if payload_size is None:
            payload_size = _size(key) + _size(value)
            for k, v in _pairs(headers):
                if _name(k) != _KEY_BYTES:
                    payload_size += _size(k) + _size(v)
        out = _OUT_PC()
        ptr = self._borrow()
        parent_ptr = parent._borrow() if parent is not None else None
        try:
            err = lib.dp_data_streams_kafka_produce(
                ptr, parent_ptr, to_name(topic, "topic"), to_name(cluster_id, "cluster_id"),
                payload_size, byref(out),
            )
        finally:
            if parent is not None:
                parent._unborrow()
            self._unborrow()
        _check(err)
        ctx = PathwayContext(out)
        if extracted is not None:
            extracted.close()
        ctx.inject_kafka(headers)
        return ctx

    def consume(
        self,
        topic: str,
        group: str,
        headers: Any,
        *,
        key: Any = None,
        value: Any = None,
        payload_size: Optional[int] = None,
        cluster_id: str = "",
    ) -> PathwayContext:
        """Kafka consume of a message of ``topic`` read by consumer group ``group`` (``""``: none):
        extract the context from ``headers`` (a confluent-kafka header list, a dict, or ``None``) and
        checkpoint ``direction:in, group:<group>, topic:<topic>, type:kafka[, kafka_cluster_id:]``
        (``group:`` left out when empty). The payload size is
        ``payload_size``, else key + value + every header. Returns the context of the work that
        follows (pass it as ``parent`` of what it produces)."""
        ctx = PathwayContext.extract_kafka(headers)
        if payload_size is None:
            payload_size = _size(key) + _size(value)
            for k, v in _pairs(headers):
                payload_size += _size(k) + _size(v)
        out = _OUT_PC()
        ptr = self._borrow()
        ctx_ptr = ctx._borrow() if ctx is not None else None
        try:
            err = lib.dp_data_streams_kafka_consume(
                ptr, ctx_ptr, to_name(topic, "topic"), to_name(group, "group"),
                to_name(cluster_id, "cluster_id"), payload_size, byref(out),
            )
        finally:
            if ctx is not None:
                ctx._unborrow()
                ctx.close()
            self._unborrow()
        _check(err)
        return PathwayContext(out)

    def consume_message(self, message: Any, group: str = "", cluster_id: str = "") -> PathwayContext:
        """:meth:`consume` of a confluent-kafka ``Message`` (topic, headers, key and value taken
        from it)."""
        return self.consume(
            message.topic(),
            group,
            message.headers() or [],
            key=message.key(),
            value=message.value(),
            cluster_id=cluster_id,
        )

    def track_kafka_produce_offset(self, topic: str, partition: int, offset: int, cluster_id: str = "") -> None:
        """Records the offset of a produced message (from its delivery report): backlog
        ``type:kafka_produce``."""
        ptr = self._borrow()
        try:
            _check(
                lib.dp_data_streams_track_kafka_produce_offset(
                    ptr, to_name(topic, "topic"), to_name(cluster_id, "cluster_id"),
                    check_range(partition, "partition", I32), check_range(offset, "offset", I64),
                )
            )
        finally:
            self._unborrow()

    def track_kafka_commit_offset(
        self, group: str, topic: str, partition: int, offset: int, cluster_id: str = ""
    ) -> None:
        """Records the offset ``group`` committed (the next one it will read): backlog
        ``type:kafka_commit``."""
        ptr = self._borrow()
        try:
            _check(
                lib.dp_data_streams_track_kafka_commit_offset(
                    ptr, to_name(group, "group"), to_name(topic, "topic"),
                    to_name(cluster_id, "cluster_id"), check_range(partition, "partition", I32),
                    check_range(offset, "offset", I64),
                )
            )
        finally:
            self._unborrow()

    # -- HTTP --

    def http_out(
        self,
        headers: MutableMapping[str, Any],
        parent: Optional[PathwayContext] = None,
        payload_size: int = 0,
        tags: Sequence[str] = (),
    ) -> PathwayContext:
        """An outgoing HTTP request: checkpoint ``direction:out, type:http`` (plus ``tags``) and
        inject the context into ``headers``. Returns the new context."""
        ctx = self.checkpoint(("direction:out", "type:http", *tags), parent, payload_size)
        ctx.inject_http(headers)
        return ctx

    def http_in(self, headers: Any, payload_size: int = 0, tags: Sequence[str] = ()) -> PathwayContext:
        """An incoming HTTP request: extract the caller's context from ``headers`` and checkpoint
        ``direction:in, type:http`` (plus ``tags``). Returns the context of the handling work."""
        parent = PathwayContext.extract_http(headers)
        try:
            return self.checkpoint(("direction:in", "type:http", *tags), parent, payload_size)
        finally:
            if parent is not None:
                parent.close()

    # -- sending --

    def flush(self, timeout: float = 5.0) -> None:
        """Sends every bucket now, within ``timeout`` seconds. Raises (e.g. ``NetworkError``,
        ``DataPipelineTimeoutError``, ``UnsupportedError`` for an agent without data streams);
        the data is dropped either way."""
        ms = _seconds_to_ms(timeout, "timeout")
        ptr = self._borrow()
        try:
            _check(lib.dp_data_streams_flush(ptr, ms))
        finally:
            self._unborrow()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stops aggregating, sends what is left and stops the background thread, within
        ``timeout`` seconds. Later checkpoints still return contexts. Idempotent."""
        ms = _seconds_to_ms(timeout, "timeout")
        ptr = self._borrow()
        try:
            _check(lib.dp_data_streams_shutdown(ptr, ms))
        finally:
            self._unborrow()

    def __exit__(self, *exc_info: Any) -> None:
        try:
            if not self.closed:
                self.shutdown(self.shutdown_timeout)
        except DataPipelineError as e:
            _log.warning("data streams: the last payloads were not delivered: %s", e)
        finally:
            self.close()

    # -- introspection --

    @property
    def service(self) -> str:
        """The service checkpoints are attributed to."""
        ptr = self._borrow()
        try:
            view = lib.dp_data_streams_service(ptr)
            return ctypes.string_at(view.ptr, view.len).decode("utf-8")
        finally:
            self._unborrow()

    _STATS = {
        "checkpoints": _ffi.DP_DATA_STREAMS_STAT_CHECKPOINTS,
        "dropped_points": _ffi.DP_DATA_STREAMS_STAT_DROPPED_POINTS,
        "payloads_sent": _ffi.DP_DATA_STREAMS_STAT_PAYLOADS_SENT,
        "send_errors": _ffi.DP_DATA_STREAMS_STAT_SEND_ERRORS,
        "agent_too_old": _ffi.DP_DATA_STREAMS_STAT_AGENT_TOO_OLD,
        "payloads_dropped": _ffi.DP_DATA_STREAMS_STAT_PAYLOADS_DROPPED,
        "buckets_flushed": _ffi.DP_DATA_STREAMS_STAT_BUCKETS_FLUSHED,
    }

    @property
    def stats(self) -> Dict[str, int]:
        """The counters: checkpoints, dropped_points, payloads_sent, send_errors, agent_too_old,
        payloads_dropped, buckets_flushed."""
        ptr = self._borrow()
        try:
            return {name: lib.dp_data_streams_stat(ptr, which) for name, which in self._STATS.items()}
        finally:
            self._unborrow()
