"""The raw C ABI: ctypes declarations for every function of ``include/data-pipeline.h``.

Everything here mirrors the header exactly (a test parses the header and compares): opaque handle
types, the ``dp_str``/``dp_bytes`` views, the typedefs and macros, and ``argtypes``/``restype`` for each
function in :data:`DECLARATIONS`. On top of that, three pieces every wrapper uses:

- :class:`Handle`: owns one library pointer; ``close()`` is idempotent, works as a context manager and
  from ``__del__``; a use after ``close()`` (or after a C function consumed the pointer) raises
  :class:`~data_pipeline.errors.ShutdownError` instead of touching freed memory. It also guards
  against threads: mutations hold the handle's lock for the call, and calls that may run concurrently
  (sends, which release the GIL) *borrow* the pointer so that a ``close()`` from another thread is
  deferred until the last borrower returns.
- :func:`_check`: turns a non-NULL ``dp_error *`` into the typed exception and frees it.
- :func:`to_str` / :func:`to_bytes`: Python values to borrowed views, without copying ``bytes``.
"""

from __future__ import annotations

import ctypes
import operator
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_double,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any, Dict, List, Tuple

from . import _library
from .errors import PanicError, ShutdownError, error_class

# ---- the library -----------------------------------------------------------------------------------

lib, LIBRARY_SOURCE = _library.load()

# ---- macros of the header --------------------------------------------------------------------------

#: The header version this binding was written against (``DP_VERSION_*``).
DP_VERSION_MAJOR = 0
DP_VERSION_MINOR = 1
DP_VERSION_PATCH = 0
DP_VERSION_STRING = "0.1.0"

DP_FORMAT_V04 = 4
DP_FORMAT_V05 = 5

DP_LOG_LEVEL_OFF = 0
DP_LOG_LEVEL_ERROR = 1
DP_LOG_LEVEL_WARN = 2
DP_LOG_LEVEL_INFO = 3
DP_LOG_LEVEL_DEBUG = 4
DP_LOG_LEVEL_TRACE = 5

# ---- types -----------------------------------------------------------------------------------------


class dp_error(Structure):
    """Opaque ``struct dp_error``."""


class dp_exporter(Structure):
    """Opaque ``struct dp_exporter``."""


class dp_exporter_builder(Structure):
    """Opaque ``struct dp_exporter_builder``."""


class dp_response(Structure):
    """Opaque ``struct dp_response``."""


class dp_span(Structure):
    """Opaque ``struct dp_span``."""


class dp_span_event(Structure):
    """Opaque ``struct dp_span_event``."""


class dp_span_link(Structure):
    """Opaque ``struct dp_span_link``."""


class dp_trace(Structure):
    """Opaque ``struct dp_trace``."""


class dp_str(Structure):
    """``struct dp_str {const char *ptr; size_t len;}``: a borrowed UTF-8 string."""

    _fields_ = [("ptr", c_char_p), ("len", c_size_t)]


class dp_bytes(Structure):
    """``struct dp_bytes {const uint8_t *ptr; size_t len;}``: borrowed binary data."""

    _fields_ = [("ptr", POINTER(c_uint8)), ("len", c_size_t)]


dp_status = c_uint32
dp_format = c_uint32
dp_log_level = c_uint32
dp_log_callback = CFUNCTYPE(None, c_void_p, dp_log_level, dp_str, dp_str)
dp_user_data_free = CFUNCTYPE(None, c_void_p)

P = POINTER
ERR = P(dp_error)

#: ``name -> (restype, argtypes)`` for every function the header declares, in header order.
DECLARATIONS: Dict[str, Tuple[Any, List[Any]]] = {
    "dp_debug_panic": (ERR, [dp_str]),
    "dp_error_code": (dp_status, [P(dp_error)]),
    "dp_error_message": (c_char_p, [P(dp_error)]),
    "dp_error_http_status": (c_uint16, [P(dp_error)]),
    "dp_error_free": (None, [P(dp_error)]),
    "dp_status_name": (c_char_p, [c_uint32]),
    "dp_exporter_free": (None, [P(dp_exporter)]),
    "dp_exporter_send": (ERR, [P(dp_exporter), dp_bytes, P(P(dp_response))]),
    "dp_exporter_send_traces": (ERR, [P(dp_exporter), P(P(dp_trace)), c_size_t, P(P(dp_response))]),
    "dp_exporter_builder_new": (P(dp_exporter_builder), []),
    "dp_exporter_builder_free": (None, [P(dp_exporter_builder)]),
    "dp_exporter_builder_build": (ERR, [P(dp_exporter_builder), P(P(dp_exporter))]),
    "dp_exporter_builder_set_url": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_url_from_env": (ERR, [P(dp_exporter_builder), c_bool]),
    "dp_exporter_builder_set_language": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_language_version": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_language_interpreter": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_tracer_version": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_service": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_env": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_app_version": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_hostname": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_container_id": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_input_format": (ERR, [P(dp_exporter_builder), dp_format]),
    "dp_exporter_builder_set_output_format": (ERR, [P(dp_exporter_builder), dp_format]),
    "dp_exporter_builder_set_connect_timeout": (ERR, [P(dp_exporter_builder), c_uint64]),
    "dp_exporter_builder_set_request_timeout": (ERR, [P(dp_exporter_builder), c_uint64]),
    "dp_exporter_builder_set_send_timeout": (ERR, [P(dp_exporter_builder), c_uint64]),
    "dp_exporter_builder_set_max_retries": (ERR, [P(dp_exporter_builder), c_uint32]),
    "dp_exporter_builder_set_test_session_token": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_set_log_callback": (ERR, [dp_log_callback, c_void_p, dp_user_data_free, dp_log_level]),
    "dp_response_status": (c_uint16, [P(dp_response)]),
    "dp_response_body": (dp_bytes, [P(dp_response)]),
    "dp_response_sampling_rate": (ERR, [P(dp_response), dp_str, dp_str, P(c_double)]),
    "dp_response_free": (None, [P(dp_response)]),
    "dp_span_new": (P(dp_span), []),
    "dp_span_free": (None, [P(dp_span)]),
    "dp_span_set_service": (ERR, [P(dp_span), dp_str]),
    "dp_span_set_name": (ERR, [P(dp_span), dp_str]),
    "dp_span_set_resource": (ERR, [P(dp_span), dp_str]),
    "dp_span_set_type": (ERR, [P(dp_span), dp_str]),
    "dp_span_set_trace_id": (ERR, [P(dp_span), c_uint64, c_uint64]),
    "dp_span_set_span_id": (ERR, [P(dp_span), c_uint64]),
    "dp_span_set_parent_id": (ERR, [P(dp_span), c_uint64]),
    "dp_span_set_start": (ERR, [P(dp_span), c_int64]),
    "dp_span_set_duration": (ERR, [P(dp_span), c_int64]),
    "dp_span_set_error": (ERR, [P(dp_span), c_int32]),
    "dp_span_set_meta": (ERR, [P(dp_span), dp_str, dp_str]),
    "dp_span_set_metric": (ERR, [P(dp_span), dp_str, c_double]),
    "dp_span_set_meta_struct": (ERR, [P(dp_span), dp_str, dp_bytes]),
    "dp_span_add_link": (ERR, [P(dp_span), P(dp_span_link)]),
    "dp_span_add_event": (ERR, [P(dp_span), P(dp_span_event)]),
    "dp_span_link_new": (P(dp_span_link), [c_uint64, c_uint64, c_uint64]),
    "dp_span_link_free": (None, [P(dp_span_link)]),
    "dp_span_link_set_tracestate": (ERR, [P(dp_span_link), dp_str]),
    "dp_span_link_set_flags": (ERR, [P(dp_span_link), c_uint8]),
    "dp_span_link_set_attribute": (ERR, [P(dp_span_link), dp_str, dp_str]),
    "dp_span_event_new": (P(dp_span_event), [c_uint64]),
    "dp_span_event_free": (None, [P(dp_span_event)]),
    "dp_span_event_set_name": (ERR, [P(dp_span_event), dp_str]),
    "dp_span_event_set_attribute_string": (ERR, [P(dp_span_event), dp_str, dp_str]),
    "dp_span_event_set_attribute_bool": (ERR, [P(dp_span_event), dp_str, c_bool]),
    "dp_span_event_set_attribute_int": (ERR, [P(dp_span_event), dp_str, c_int64]),
    "dp_span_event_set_attribute_double": (ERR, [P(dp_span_event), dp_str, c_double]),
    "dp_span_event_set_attribute_string_array": (
        ERR,
        [P(dp_span_event), dp_str, P(dp_str), c_size_t],
    ),
    "dp_span_event_set_attribute_bool_array": (
        ERR,
        [P(dp_span_event), dp_str, P(c_bool), c_size_t],
    ),
    "dp_span_event_set_attribute_int_array": (
        ERR,
        [P(dp_span_event), dp_str, P(c_int64), c_size_t],
    ),
    "dp_span_event_set_attribute_double_array": (
        ERR,
        [P(dp_span_event), dp_str, P(c_double), c_size_t],
    ),
    "dp_trace_new": (P(dp_trace), []),
    "dp_trace_push_span": (ERR, [P(dp_trace), P(dp_span)]),
    "dp_trace_len": (c_size_t, [P(dp_trace)]),
    "dp_trace_free": (None, [P(dp_trace)]),
    "dp_version": (c_char_p, []),
}


def _declare() -> None:
    missing = []
    for name, (restype, argtypes) in DECLARATIONS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise ImportError(
            f"data_pipeline: {LIBRARY_SOURCE} lacks {len(missing)} function(s) of the header this "
            f"binding was written for ({', '.join(missing)}): the library is older than the binding"
        )


_declare()


def _check_version() -> str:
    version = (lib.dp_version() or b"").decode("ascii", "replace")
    parts = version.split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise ImportError(f"data_pipeline: {LIBRARY_SOURCE} reports a malformed version {version!r}")
    # While the major version is 0 a minor release may break the ABI (see the SONAME).
    if major != DP_VERSION_MAJOR or (major == 0 and minor != DP_VERSION_MINOR):
        raise ImportError(
            f"data_pipeline: {LIBRARY_SOURCE} is version {version}, whose ABI differs from the "
            f"{DP_VERSION_STRING} this binding was written for"
        )
    return version


LIBRARY_VERSION = _check_version()

# ---- errors ----------------------------------------------------------------------------------------


def _check(err: Any) -> None:
    """Raises the typed exception for a non-NULL ``dp_error *`` (and frees it); NULL is success."""
    if not err:
        return
    try:
        code = lib.dp_error_code(err)
        message = (lib.dp_error_message(err) or b"").decode("utf-8", "replace")
        http_status = lib.dp_error_http_status(err)
        status_name = (lib.dp_status_name(code) or b"").decode("ascii", "replace")
    finally:
        lib.dp_error_free(err)
    raise error_class(code)(
        message, code=code, status_name=status_name, http_status=http_status
    )


# ---- strings and bytes -----------------------------------------------------------------------------

_EMPTY_STR = dp_str(None, 0)


def to_str(value: Any, arg: str) -> dp_str:
    """A ``dp_str`` view of ``value`` (``str`` as UTF-8, or ``bytes`` as they are).

    The view references the encoded bytes, which the returned struct keeps alive. A ``str`` holding
    lone surrogates is encoded with ``surrogatepass``, i.e. as invalid UTF-8, so the *library*
    rejects it with ``InvalidUtf8Error`` naming the argument: one error path for every binding.
    """
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    elif isinstance(value, bytes):
        data = value
    elif isinstance(value, (bytearray, memoryview)):
        data = bytes(value)
    else:
        raise TypeError(f"{arg} must be str or bytes, not {type(value).__name__}")
    return dp_str(data, len(data))


_NAMES: Dict[Any, dp_str] = {}
_NAMES_MAX = 4096


def to_name(value: Any, arg: str) -> dp_str:
    """:func:`to_str` for low-cardinality strings (tag keys, service and operation names): the view
    is cached, which saves encoding and building it on every call (a benchmark shows ~0.8 us per
    call). The library only borrows views, so one view may serve any number of calls and threads.
    The cache is bounded: it is emptied when full."""
    view = _NAMES.get(value) if type(value) in (str, bytes) else None
    if view is None:
        view = to_str(value, arg)
        if type(value) in (str, bytes):
            if len(_NAMES) >= _NAMES_MAX:
                _NAMES.clear()
            _NAMES[value] = view
    return view


def to_bytes(value: Any, arg: str) -> Tuple[dp_bytes, Any]:
    """A ``dp_bytes`` view of a bytes-like ``value`` and the object that must outlive the call.

    ``bytes``, ``bytearray`` and writable contiguous buffers are viewed in place (no copy); other
    buffers (e.g. read-only memoryviews of non-bytes objects) are copied once.
    """
    if isinstance(value, bytes):
        keep: Any = value
        ptr = ctypes.cast(value, POINTER(c_uint8))
        return dp_bytes(ptr, len(value)), keep
    if isinstance(value, (bytearray, memoryview)):
        view = memoryview(value)
        if view.contiguous and not view.readonly:
            view = view.cast("B")
            if view.nbytes == 0:
                return dp_bytes(None, 0), view
            # A pointer to the first byte, viewing the buffer in place. (Not ctypes.cast: it makes a
            # reference cycle that would keep the buffer exported, e.g. a bytearray unresizable,
            # until the next garbage collection.)
            first = c_uint8.from_buffer(view)
            return dp_bytes(POINTER(c_uint8)(first), view.nbytes), (view, first)
        if isinstance(view.obj, bytes) and view.contiguous and view.nbytes == len(view.obj):
            return to_bytes(view.obj, arg)
        return to_bytes(view.tobytes(), arg)
    raise TypeError(f"{arg} must be bytes-like, not {type(value).__name__}")


# ---- handles ---------------------------------------------------------------------------------------


class Handle:
    """Owns one pointer to a library object and frees it exactly once.

    Subclasses set :attr:`_kind` (a name for messages) and implement :meth:`_free`. Methods use the
    pointer in one of three ways:

    - ``with self._lock: ptr = self._live()`` for a call that mutates the object or that must not
      overlap others (most setters): the lock serializes threads, so objects the C side declares
      "not for concurrent use" stay safe even when Python threads share them;
    - ``ptr = self._borrow()`` ... ``finally: self._unborrow()`` for calls that may overlap (sends,
      which release the GIL): a ``close()`` meanwhile only marks the handle closed, and the last
      borrower frees it;
    - ``ptr = self._take(reason)`` when a C function consumes the object: the handle becomes closed
      without freeing.
    """

    __slots__ = ("_ptr", "_lock", "_borrows", "_closing", "_closed_reason", "__weakref__")
    _kind = "handle"

    def __init__(self, ptr: Any) -> None:
        if not ptr:
            raise PanicError(f"the library returned no {self._kind} (it panicked)")
        self._ptr = ptr
        self._lock = threading.Lock()
        self._borrows = 0
        self._closing = False
        self._closed_reason = "closed"

    @classmethod
    def _free(cls, ptr: Any) -> None:
        """Frees a pointer of this type (each subclass calls its ``dp_*_free``)."""
        raise NotImplementedError

    # -- the three ways to use the pointer --

    def _live(self) -> Any:
        """The pointer; raises ShutdownError when closed. Call with ``self._lock`` held."""
        if self._ptr is None or self._closing:
            raise ShutdownError(f"{self._kind} is {self._closed_reason}")
        if self._borrows:
            raise RuntimeError(
                f"{self._kind} is in use by another thread (e.g. being sent): cannot modify it now"
            )
        return self._ptr

    def _borrow(self) -> Any:
        with self._lock:
            if self._ptr is None or self._closing:
                raise ShutdownError(f"{self._kind} is {self._closed_reason}")
            self._borrows += 1
            return self._ptr

    def _unborrow(self) -> None:
        ptr = None
        with self._lock:
            self._borrows -= 1
            if self._borrows == 0 and self._closing:
                ptr, self._ptr = self._ptr, None
        if ptr is not None:
            type(self)._free(ptr)

    def _take(self, reason: str) -> Any:
        with self._lock:
            ptr = self._live()
            self._ptr = None
            self._closed_reason = reason
            return ptr

    # -- public --

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (or once a C function consumed the object)."""
        return self._ptr is None or self._closing

    def close(self) -> None:
        """Frees the object. Idempotent; deferred while another thread is still using it."""
        with self._lock:
            if self._ptr is None or self._closing:
                return
            if self._borrows:
                self._closing = True
                return
            ptr, self._ptr = self._ptr, None
        type(self)._free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown, or __init__ failed before the slots were set
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {state}>"


def out_ptr(handle_type: Any) -> Any:
    """A NULL ``T *`` to pass (``byref``) as a ``T **`` out-param."""
    return POINTER(handle_type)()


def check_range(value: Any, arg: str, bounds: Tuple[int, int]) -> int:
    """``value`` as an int within ``bounds``: ctypes would silently truncate, so refuse instead."""
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{arg} must be an int, not {type(value).__name__}") from None
    lo, hi = bounds
    if not lo <= n <= hi:
        raise OverflowError(f"{arg}={n} is out of range [{lo}, {hi}]")
    return n


U8 = (0, 0xFF)
U32 = (0, 0xFFFF_FFFF)
U64 = (0, 0xFFFF_FFFF_FFFF_FFFF)
I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)
U128 = (0, 2**128 - 1)


def status_name(code: int) -> str:
    """The C name of a status code, from the library (``"DP_STATUS_UNKNOWN"`` if it does not know it)."""
    return (lib.dp_status_name(code) or b"").decode("ascii", "replace")


def version() -> str:
    """The library's version (``dp_version()``)."""
    return LIBRARY_VERSION


# ---- normalization and obfuscation (pipeline branch) -----------------------------------------------
# The exporter's processing options, the standalone obfuscation/normalization functions and the
# owned dp_string they return. Kept in one block so it merges apart from the rest.


class dp_sql_config(Structure):
    """Opaque ``struct dp_sql_config``."""


class dp_string(Structure):
    """Opaque ``struct dp_string``."""


dp_normalize_reason = c_uint32
dp_credit_card_mode = c_uint32

DP_CREDIT_CARDS_OFF = 0
DP_CREDIT_CARDS_ON = 1
DP_CREDIT_CARDS_LUHN = 2

DP_NORMALIZE_EMPTY_TRACE = 0
DP_NORMALIZE_TRACE_ID_ZERO = 1
DP_NORMALIZE_SPAN_ID_ZERO = 2
DP_NORMALIZE_FOREIGN_SPAN = 3
DP_NORMALIZE_DUPLICATE_SPAN_ID = 4
DP_NORMALIZE_SERVICE_EMPTY = 5
DP_NORMALIZE_SERVICE_TRUNCATE = 6
DP_NORMALIZE_SERVICE_INVALID = 7
DP_NORMALIZE_PEER_SERVICE_TRUNCATE = 8
DP_NORMALIZE_PEER_SERVICE_INVALID = 9
DP_NORMALIZE_BASE_SERVICE_TRUNCATE = 10
DP_NORMALIZE_BASE_SERVICE_INVALID = 11
DP_NORMALIZE_SPAN_NAME_EMPTY = 12
DP_NORMALIZE_SPAN_NAME_TRUNCATE = 13
DP_NORMALIZE_SPAN_NAME_INVALID = 14
DP_NORMALIZE_RESOURCE_EMPTY = 15
DP_NORMALIZE_TYPE_TRUNCATE = 16
DP_NORMALIZE_INVALID_START_DATE = 17
DP_NORMALIZE_INVALID_DURATION = 18
DP_NORMALIZE_INVALID_HTTP_STATUS_CODE = 19

_B = P(dp_exporter_builder)
_STR_OUT = P(P(dp_string))
_PROCESSING_BOOL_OPTIONS = [
    "normalize",
    "obfuscate",
    "obfuscation_sql_replace_digits",
    "obfuscation_sql_keep_alias",
    "obfuscation_sql_dollar_quoted_func",
    "obfuscation_sql_table_names",
    "obfuscation_sql_cache",
    "obfuscation_redis",
    "obfuscation_redis_remove_all_args",
    "obfuscation_valkey",
    "obfuscation_valkey_remove_all_args",
    "obfuscation_memcached",
    "obfuscation_memcached_keep_command",
    "obfuscation_http_remove_query_string",
    "obfuscation_http_remove_paths_with_digits",
    "obfuscation_elasticsearch",
    "obfuscation_opensearch",
    "obfuscation_mongodb",
    "normalization_component_to_name",
]
_PROCESSING_STR_OPTIONS = [
    "obfuscation_sql_mode",
    "obfuscation_sql_dbms",
    "obfuscation_credit_cards_keep_values",
    "obfuscation_elasticsearch_keep_values",
    "obfuscation_elasticsearch_obfuscate_sql_values",
    "obfuscation_opensearch_keep_values",
    "obfuscation_opensearch_obfuscate_sql_values",
    "obfuscation_mongodb_keep_values",
    "obfuscation_mongodb_obfuscate_sql_values",
    "replace_tags",
]
_SQL_CONFIG_FLAGS = [
    "table_names",
    "collect_commands",
    "collect_comments",
    "collect_procedures",
    "replace_digits",
    "keep_sql_alias",
    "dollar_quoted_func",
    "remove_space_between_parentheses",
    "keep_null",
    "keep_boolean",
    "keep_positional_parameter",
    "keep_trailing_semicolon",
    "keep_identifier_quotation",
    "keep_json_path",
    "replace_bind_parameter",
]

PROCESSING_DECLARATIONS: Dict[str, Tuple[Any, List[Any]]] = {
    **{f"dp_exporter_builder_set_{n}": (ERR, [_B, c_bool]) for n in _PROCESSING_BOOL_OPTIONS},
    **{f"dp_exporter_builder_set_{n}": (ERR, [_B, dp_str]) for n in _PROCESSING_STR_OPTIONS},
    "dp_exporter_builder_set_obfuscation_credit_cards": (ERR, [_B, dp_credit_card_mode]),
    "dp_exporter_normalize_count": (c_uint64, [P(dp_exporter), dp_normalize_reason]),
    "dp_normalize_reason_name": (c_char_p, [dp_normalize_reason]),
    "dp_normalize_service": (ERR, [dp_str, dp_str, _STR_OUT]),
    "dp_normalize_name": (ERR, [dp_str, _STR_OUT]),
    "dp_normalize_tag": (ERR, [dp_str, _STR_OUT]),
    "dp_normalize_tag_value": (ERR, [dp_str, _STR_OUT]),
    "dp_sql_config_new": (P(dp_sql_config), []),
    "dp_sql_config_free": (None, [P(dp_sql_config)]),
    "dp_sql_config_set_dbms": (ERR, [P(dp_sql_config), dp_str]),
    "dp_sql_config_set_obfuscation_mode": (ERR, [P(dp_sql_config), dp_str]),
    **{f"dp_sql_config_set_{n}": (ERR, [P(dp_sql_config), c_bool]) for n in _SQL_CONFIG_FLAGS},
    "dp_obfuscate_sql": (ERR, [dp_str, P(dp_sql_config), _STR_OUT, _STR_OUT]),
    "dp_obfuscate_redis": (ERR, [dp_str, c_bool, _STR_OUT]),
    "dp_quantize_redis": (ERR, [dp_str, _STR_OUT]),
    "dp_obfuscate_memcached": (ERR, [dp_str, c_bool, _STR_OUT]),
    "dp_obfuscate_http_url": (ERR, [dp_str, c_bool, c_bool, _STR_OUT]),
    "dp_obfuscate_json": (ERR, [dp_str, dp_str, dp_str, P(dp_sql_config), _STR_OUT]),
    "dp_is_credit_card": (ERR, [dp_str, c_bool, P(c_bool)]),
    "dp_string_view": (dp_str, [P(dp_string)]),
    "dp_string_free": (None, [P(dp_string)]),
}
DECLARATIONS.update(PROCESSING_DECLARATIONS)
_declare()

__all__ = [name for name in globals() if name.startswith(("dp_", "DP_"))] + [
    "lib",
    "DECLARATIONS",
    "Handle",
    "_check",
    "to_str",
    "to_name",
    "to_bytes",
]


# =====================================================================================================
# Data streams (data_pipeline.datastreams): dp_data_streams*, dp_pathway_context*, carriers.
# One block, kept at the end of the file: its own types, macros and declarations, added to
# DECLARATIONS (so tests/test_drift.py checks them against the header) and declared on the library.
# =====================================================================================================

DP_PATHWAY_CONTEXT_BASE64_CAPACITY = 37
DP_PATHWAY_CONTEXT_ENCODED_CAPACITY = 26

DP_DATA_STREAMS_STAT_CHECKPOINTS = 0
DP_DATA_STREAMS_STAT_DROPPED_POINTS = 1
DP_DATA_STREAMS_STAT_PAYLOADS_SENT = 2
DP_DATA_STREAMS_STAT_SEND_ERRORS = 3
DP_DATA_STREAMS_STAT_AGENT_TOO_OLD = 4
DP_DATA_STREAMS_STAT_PAYLOADS_DROPPED = 5
DP_DATA_STREAMS_STAT_BUCKETS_FLUSHED = 6


class dp_data_streams(Structure):
    """Opaque ``struct dp_data_streams``."""


class dp_data_streams_builder(Structure):
    """Opaque ``struct dp_data_streams_builder``."""


class dp_pathway_context(Structure):
    """Opaque ``struct dp_pathway_context``."""


class dp_kafka_header(Structure):
    """``struct dp_kafka_header {dp_str key; dp_bytes value;}``."""

    _fields_ = [("key", dp_str), ("value", dp_bytes)]


class dp_http_header(Structure):
    """``struct dp_http_header {dp_str name; dp_str value;}``."""

    _fields_ = [("name", dp_str), ("value", dp_str)]


dp_data_streams_stat_id = c_uint32
dp_carrier_set = CFUNCTYPE(None, c_void_p, dp_str, dp_str)
dp_carrier_get = CFUNCTYPE(c_bool, c_void_p, dp_str, P(dp_bytes))

_DSB = P(dp_data_streams_builder)
_DS = P(dp_data_streams)
_PC = P(dp_pathway_context)

DATA_STREAMS_DECLARATIONS: Dict[str, Tuple[Any, List[Any]]] = {
    "dp_data_streams_builder_new": (_DSB, []),
    "dp_data_streams_builder_new_from_exporter": (ERR, [P(dp_exporter), P(_DSB)]),
    "dp_data_streams_builder_free": (None, [_DSB]),
    "dp_data_streams_builder_build": (ERR, [_DSB, P(_DS)]),
    "dp_data_streams_new_from_exporter": (ERR, [P(dp_exporter), P(_DS)]),
    "dp_data_streams_builder_set_url": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_set_service": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_set_env": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_set_app_version": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_set_language": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_set_language_version": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_set_tracer_version": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_set_container_id": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_set_test_session_token": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_add_header": (ERR, [_DSB, dp_str, dp_str]),
    "dp_data_streams_builder_add_process_tag": (ERR, [_DSB, dp_str]),
    "dp_data_streams_builder_set_hash_process_tags": (ERR, [_DSB, c_bool]),
    "dp_data_streams_builder_set_flush_interval": (ERR, [_DSB, c_uint64]),
    "dp_data_streams_builder_set_bucket_duration": (ERR, [_DSB, c_uint64]),
    "dp_data_streams_builder_set_connect_timeout": (ERR, [_DSB, c_uint64]),
    "dp_data_streams_builder_set_request_timeout": (ERR, [_DSB, c_uint64]),
    "dp_data_streams_set_checkpoint": (ERR, [_DS, _PC, P(dp_str), c_size_t, c_int64, P(_PC)]),
    "dp_data_streams_set_checkpoint_at": (
        ERR,
        [_DS, _PC, P(dp_str), c_size_t, c_int64, c_int64, P(_PC)],
    ),
    "dp_data_streams_kafka_produce": (ERR, [_DS, _PC, dp_str, dp_str, c_int64, P(_PC)]),
    "dp_data_streams_kafka_consume": (ERR, [_DS, _PC, dp_str, dp_str, dp_str, c_int64, P(_PC)]),
    "dp_data_streams_track_kafka_produce_offset": (ERR, [_DS, dp_str, dp_str, c_int32, c_int64]),
    "dp_data_streams_track_kafka_commit_offset": (
        ERR,
        [_DS, dp_str, dp_str, dp_str, c_int32, c_int64],
    ),
    "dp_data_streams_flush": (ERR, [_DS, c_uint64]),
    "dp_data_streams_shutdown": (ERR, [_DS, c_uint64]),
    "dp_data_streams_free": (None, [_DS]),
    "dp_data_streams_service": (dp_str, [_DS]),
    "dp_data_streams_stat": (c_uint64, [_DS, dp_data_streams_stat_id]),
    "dp_pathway_context_new": (_PC, [c_uint64, c_int64, c_int64]),
    "dp_pathway_context_free": (None, [_PC]),
    "dp_pathway_context_hash": (c_uint64, [_PC]),
    "dp_pathway_context_pathway_start_ns": (c_int64, [_PC]),
    "dp_pathway_context_edge_start_ns": (c_int64, [_PC]),
    "dp_pathway_context_encode_base64": (ERR, [_PC, c_char_p, c_size_t, P(c_size_t)]),
    "dp_pathway_context_encode": (ERR, [_PC, P(c_uint8), c_size_t, P(c_size_t)]),
    "dp_pathway_context_decode_base64": (ERR, [dp_bytes, P(_PC)]),
    "dp_pathway_context_decode": (ERR, [dp_bytes, P(_PC)]),
    "dp_pathway_context_merge": (ERR, [P(_PC), c_size_t, P(_PC)]),
    "dp_pathway_context_key": (dp_str, []),
    "dp_pathway_context_legacy_key": (dp_str, []),
    "dp_pathway_context_inject": (ERR, [_PC, dp_carrier_set, c_void_p]),
    "dp_pathway_context_extract": (ERR, [dp_carrier_get, c_void_p, P(_PC)]),
    "dp_pathway_context_inject_kafka": (
        ERR,
        [_PC, P(dp_kafka_header), P(c_size_t), c_size_t, c_char_p, c_size_t],
    ),
    "dp_pathway_context_extract_kafka": (ERR, [P(dp_kafka_header), c_size_t, P(_PC)]),
    "dp_pathway_context_inject_http": (
        ERR,
        [_PC, P(dp_http_header), P(c_size_t), c_size_t, c_char_p, c_size_t],
    ),
    "dp_pathway_context_extract_http": (ERR, [P(dp_http_header), c_size_t, P(_PC)]),
}

DECLARATIONS.update(DATA_STREAMS_DECLARATIONS)
_declare()  # idempotent for the earlier declarations; raises ImportError if a symbol is missing
__all__ += [n for n in list(globals()) if n.startswith(("dp_", "DP_")) and n not in __all__]
__all__.append("DATA_STREAMS_DECLARATIONS")


# ---------------------------------------------------------------------------------------------------
# Client-side stats, P0 dropping and sampling feedback (data-pipeline-ffi/src/stats.rs).
# Kept in one block so the stats work merges without touching the declarations above.
# ---------------------------------------------------------------------------------------------------

dp_stats_mode = c_uint32
dp_stats_state = c_uint32

DP_STATS_MODE_OFF = 0
DP_STATS_MODE_AUTO = 1
DP_STATS_MODE_ON = 2

DP_STATS_STATE_DISABLED = 0
DP_STATS_STATE_WAITING_FOR_AGENT = 1
DP_STATS_STATE_NOT_SUPPORTED_BY_AGENT = 2
DP_STATS_STATE_ENABLED = 3

STATS_DECLARATIONS: Dict[str, Tuple[Any, List[Any]]] = {
    "dp_exporter_builder_set_runtime_id": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_builder_set_stats": (ERR, [P(dp_exporter_builder), dp_stats_mode]),
    "dp_exporter_builder_set_stats_bucket_size": (ERR, [P(dp_exporter_builder), c_uint64]),
    "dp_exporter_builder_set_stats_peer_tags": (ERR, [P(dp_exporter_builder), P(dp_str), c_size_t]),
    "dp_exporter_builder_set_stats_span_kinds": (ERR, [P(dp_exporter_builder), P(dp_str), c_size_t]),
    "dp_exporter_builder_set_stats_max_keys_per_bucket": (ERR, [P(dp_exporter_builder), c_size_t]),
    "dp_exporter_builder_set_stats_client_computed_top_level": (ERR, [P(dp_exporter_builder), c_bool]),
    "dp_exporter_stats_state": (ERR, [P(dp_exporter), P(dp_stats_state)]),
    "dp_exporter_sampling_rate": (ERR, [P(dp_exporter), dp_str, dp_str, P(c_double)]),
    "dp_exporter_flush_stats": (ERR, [P(dp_exporter), c_bool, c_uint64]),
    "dp_exporter_shutdown": (ERR, [P(dp_exporter), c_uint64]),
}
DECLARATIONS.update(STATS_DECLARATIONS)
_declare()


def str_array(values: Any, arg: str) -> Tuple[Any, int, List[dp_str]]:
    """``(dp_str array, length, views)`` for a list of strings; keep ``views`` alive for the call."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{arg} must be a list of strings, not a single {type(values).__name__}")
    views = [to_str(v, arg) for v in values]
    array = (dp_str * len(views))(*views) if views else None
    return array, len(views), views


__all__ += [name for name in STATS_DECLARATIONS] + [
    name for name in list(globals()) if name.startswith(("DP_STATS_", "dp_stats_"))
] + ["str_array"]


# ==================================================================================================
# Background exporter and fork hooks (data-pipeline-ffi/src/background.rs): enqueue, flush, health,
# and the process-wide dp_before_fork / dp_after_fork_parent / dp_after_fork_child. (Shutdown,
# which also stops the background worker, is dp_exporter_shutdown in the stats block above.)
# ==================================================================================================

DP_BREAKER_CLOSED = 0
DP_BREAKER_OPEN = 1
DP_BREAKER_HALF_OPEN = 2


class dp_health(Structure):
    """``struct dp_health``: a snapshot of the background exporter's counters. ``size`` comes first:
    set it to ``sizeof(dp_health)`` before ``dp_exporter_health``; the library writes at most that
    many bytes and sets it to how many it filled (fields are only ever appended)."""

    _fields_ = [
        ("size", c_uint64),
        ("payloads_enqueued", c_uint64),
        ("traces_enqueued", c_uint64),
        ("spans_enqueued", c_uint64),
        ("bytes_enqueued", c_uint64),
        ("requests_sent", c_uint64),
        ("traces_sent", c_uint64),
        ("bytes_sent", c_uint64),
        ("dropped_queue_full", c_uint64),
        ("dropped_breaker_open", c_uint64),
        ("dropped_http_4xx", c_uint64),
        ("dropped_retries_exhausted", c_uint64),
        ("dropped_shutdown", c_uint64),
        ("dropped_invalid", c_uint64),
        ("bytes_dropped", c_uint64),
        ("retries", c_uint64),
        ("requests_failed", c_uint64),
        ("payloads_pending", c_uint64),
        ("traces_pending", c_uint64),
        ("bytes_pending", c_uint64),
        ("breaker_state", c_uint64),
        ("breaker_opened", c_uint64),
        ("forks", c_uint64),
        ("worker_running", c_uint64),
        ("dropped_p0", c_uint64),
    ]


#: The background functions, declared like :data:`DECLARATIONS` (which they join).
BACKGROUND_DECLARATIONS: Dict[str, Tuple[Any, List[Any]]] = {
    "dp_exporter_builder_set_batch_max_bytes": (ERR, [P(dp_exporter_builder), c_size_t]),
    "dp_exporter_builder_set_batch_max_delay": (ERR, [P(dp_exporter_builder), c_uint64]),
    "dp_exporter_builder_set_queue_max_bytes": (ERR, [P(dp_exporter_builder), c_size_t]),
    "dp_exporter_builder_set_statsd_url": (ERR, [P(dp_exporter_builder), dp_str]),
    "dp_exporter_enqueue": (ERR, [P(dp_exporter), dp_bytes]),
    "dp_exporter_enqueue_traces": (ERR, [P(dp_exporter), P(P(dp_trace)), c_size_t]),
    "dp_exporter_flush": (ERR, [P(dp_exporter), c_uint64]),
    "dp_exporter_health": (ERR, [P(dp_exporter), P(dp_health)]),
    "dp_before_fork": (None, []),
    "dp_after_fork_parent": (None, []),
    "dp_after_fork_child": (None, []),
}


def _declare_background() -> None:
    missing = [name for name in BACKGROUND_DECLARATIONS if not hasattr(lib, name)]
    if missing:
        raise ImportError(
            f"data_pipeline: {LIBRARY_SOURCE} lacks {len(missing)} function(s) of the header this "
            f"binding was written for ({', '.join(missing)}): the library is older than the binding"
        )
    for name, (restype, argtypes) in BACKGROUND_DECLARATIONS.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    DECLARATIONS.update(BACKGROUND_DECLARATIONS)


_declare_background()

__all__ += ["DP_BREAKER_CLOSED", "DP_BREAKER_OPEN", "DP_BREAKER_HALF_OPEN", "dp_health"]
