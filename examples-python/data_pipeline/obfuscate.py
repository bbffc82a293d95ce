"""Normalization and obfuscation with the Datadog agent's rules.

Standalone functions on one value (what the library's ``dp_obfuscate_*`` / ``dp_normalize_*`` do),
the exporter's processing options (``normalize``, ``obfuscate``, ``obfuscation_*``, ``replace_tags``:
they are also in :data:`data_pipeline.exporter.OPTIONS`) and :func:`normalize_counts`.

>>> from data_pipeline import obfuscate as ob
>>> ob.obfuscate_sql("SELECT * FROM users WHERE id = 42")
'SELECT * FROM users WHERE id = ?'
>>> ob.obfuscate_sql("UPDATE t SET a = 1", table_names=True, with_tables=True)
('UPDATE t SET a = ?', 't')
>>> ob.obfuscate_http_url("http://u:p@host/1/2?q=x", remove_query_string=True)
'http://host/1/2?'
"""

from __future__ import annotations

import ctypes
import enum
import json
from typing import Any, Callable, Dict, Iterable, Tuple, Union

from . import _ffi
from ._ffi import Handle, _check, lib, to_str

__all__ = [
    "CreditCardMode",
    "NormalizeReason",
    "SqlConfig",
    "obfuscate_sql",
    "obfuscate_redis",
    "quantize_redis",
    "obfuscate_memcached",
    "obfuscate_http_url",
    "obfuscate_json",
    "is_credit_card",
    "normalize_service",
    "normalize_name",
    "normalize_tag",
    "normalize_tag_value",
    "normalize_counts",
    "PROCESSING_OPTIONS",
]


class CreditCardMode(enum.IntEnum):
    """Credit card obfuscation in span tags (``DP_CREDIT_CARDS_*``); options also accept
    ``"off"`` / ``"on"`` / ``"luhn"`` and ``False`` / ``True``."""

    OFF = _ffi.DP_CREDIT_CARDS_OFF
    ON = _ffi.DP_CREDIT_CARDS_ON
    LUHN = _ffi.DP_CREDIT_CARDS_LUHN


class NormalizeReason(enum.IntEnum):
    """Why normalization fixed a span or dropped a chunk (``DP_NORMALIZE_*``)."""

    EMPTY_TRACE = _ffi.DP_NORMALIZE_EMPTY_TRACE
    TRACE_ID_ZERO = _ffi.DP_NORMALIZE_TRACE_ID_ZERO
    SPAN_ID_ZERO = _ffi.DP_NORMALIZE_SPAN_ID_ZERO
    FOREIGN_SPAN = _ffi.DP_NORMALIZE_FOREIGN_SPAN
    DUPLICATE_SPAN_ID = _ffi.DP_NORMALIZE_DUPLICATE_SPAN_ID
    SERVICE_EMPTY = _ffi.DP_NORMALIZE_SERVICE_EMPTY
    SERVICE_TRUNCATE = _ffi.DP_NORMALIZE_SERVICE_TRUNCATE
    SERVICE_INVALID = _ffi.DP_NORMALIZE_SERVICE_INVALID
    PEER_SERVICE_TRUNCATE = _ffi.DP_NORMALIZE_PEER_SERVICE_TRUNCATE
    PEER_SERVICE_INVALID = _ffi.DP_NORMALIZE_PEER_SERVICE_INVALID
    BASE_SERVICE_TRUNCATE = _ffi.DP_NORMALIZE_BASE_SERVICE_TRUNCATE
    BASE_SERVICE_INVALID = _ffi.DP_NORMALIZE_BASE_SERVICE_INVALID
    SPAN_NAME_EMPTY = _ffi.DP_NORMALIZE_SPAN_NAME_EMPTY
    SPAN_NAME_TRUNCATE = _ffi.DP_NORMALIZE_SPAN_NAME_TRUNCATE
    SPAN_NAME_INVALID = _ffi.DP_NORMALIZE_SPAN_NAME_INVALID
    RESOURCE_EMPTY = _ffi.DP_NORMALIZE_RESOURCE_EMPTY
    TYPE_TRUNCATE = _ffi.DP_NORMALIZE_TYPE_TRUNCATE
    INVALID_START_DATE = _ffi.DP_NORMALIZE_INVALID_START_DATE
    INVALID_DURATION = _ffi.DP_NORMALIZE_INVALID_DURATION
    INVALID_HTTP_STATUS_CODE = _ffi.DP_NORMALIZE_INVALID_HTTP_STATUS_CODE

    @property
    def agent_name(self) -> str:
        """The agent's name of the reason (its ``reason:`` tag), e.g. ``"service_empty"``."""
        return (lib.dp_normalize_reason_name(self.value) or b"").decode("ascii")


# ---- owned strings ---------------------------------------------------------------------------------


def _string_call(fn: Callable[..., Any], *args: Any) -> str:
    """Calls ``fn(*args, &out)`` and returns the text of ``out`` (freed)."""
    out = _ffi.out_ptr(_ffi.dp_string)
    _check(fn(*args, ctypes.byref(out)))
    return _take_text(out)


def _take_text(s: Any) -> str:
    try:
        view = lib.dp_string_view(s)
        return ctypes.string_at(view.ptr, view.len).decode("utf-8")
    finally:
        lib.dp_string_free(s)


# ---- SQL -------------------------------------------------------------------------------------------

_SQL_FLAGS = tuple(_ffi._SQL_CONFIG_FLAGS)


class SqlConfig(Handle):
    """SQL obfuscation settings (the agent's ``SQLConfig``): ``dbms``, ``obfuscation_mode`` ("" =
    legacy, ``obfuscate_only``, ``normalize_only``, ``obfuscate_and_normalize``) and the boolean
    flags (``table_names``, ``replace_digits``, ``keep_sql_alias``, ...). Reusable and thread-safe
    to read; an unknown mode raises :class:`~data_pipeline.errors.InvalidArgumentError` at once."""

    __slots__ = ()
    _kind = "SQL config"

    def __init__(self, dbms: str = "", obfuscation_mode: str = "", **flags: bool) -> None:
        super().__init__(lib.dp_sql_config_new())
        unknown = sorted(set(flags) - set(_SQL_FLAGS))
        if unknown:
            raise TypeError(f"unknown SQL option(s) {', '.join(unknown)}; known: {', '.join(_SQL_FLAGS)}")
        with self._lock:
            ptr = self._live()
            if dbms:
                _check(lib.dp_sql_config_set_dbms(ptr, to_str(dbms, "dbms")))
            if obfuscation_mode:
                _check(lib.dp_sql_config_set_obfuscation_mode(ptr, to_str(obfuscation_mode, "obfuscation_mode")))
            for name, value in flags.items():
                if not isinstance(value, bool):
                    raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
                _check(getattr(lib, f"dp_sql_config_set_{name}")(ptr, value))

    @classmethod
    def _free(cls, ptr: Any) -> None:
        lib.dp_sql_config_free(ptr)


def _sql_config(config: Union[SqlConfig, None], settings: Dict[str, Any]) -> Tuple[Any, Any]:
    """``(pointer, owner)`` for a config given as an object or as keywords (None = defaults)."""
    if config is not None and settings:
        raise TypeError("give either config= or SQL keywords, not both")
    if config is None and settings:
        config = SqlConfig(**settings)
    if config is None:
        return None, None
    return config._borrow(), config


def obfuscate_sql(query: str, config: Union[SqlConfig, None] = None, *, with_tables: bool = False, **settings: Any) -> Any:
    """The agent's SQL obfuscation of ``query`` (``config`` or keywords as :class:`SqlConfig`).

    Returns the query, or ``(query, tables_csv)`` with ``with_tables=True``. A query the legacy
    obfuscator cannot parse raises :class:`~data_pipeline.errors.InvalidArgumentError` (the agent then
    reports ``Non-parsable SQL query``)."""
    ptr, owner = _sql_config(config, settings)
    out = _ffi.out_ptr(_ffi.dp_string)
    tables = _ffi.out_ptr(_ffi.dp_string)
    try:
        _check(
            lib.dp_obfuscate_sql(
                to_str(query, "query"), ptr, ctypes.byref(out), ctypes.byref(tables) if with_tables else None
            )
        )
    finally:
        if owner is not None:
            owner._unborrow()
            if config is None:
                owner.close()
    text = _take_text(out)
    return (text, _take_text(tables)) if with_tables else text


def obfuscate_redis(command: str, remove_all_args: bool = False) -> str:
    """Obfuscates a Redis/Valkey command (``redis.raw_command``)."""
    return _string_call(lib.dp_obfuscate_redis, to_str(command, "command"), bool(remove_all_args))


def quantize_redis(resource: str) -> str:
    """Quantizes a Redis resource: the command names only (``"SET k v\\nGET k"`` -> ``"SET GET"``)."""
    return _string_call(lib.dp_quantize_redis, to_str(resource, "resource"))


def obfuscate_memcached(command: str, keep_command: bool = False) -> str:
    """Obfuscates a Memcached command: the value dropped, or everything without ``keep_command``."""
    return _string_call(lib.dp_obfuscate_memcached, to_str(command, "command"), bool(keep_command))


def obfuscate_http_url(url: str, remove_query_string: bool = False, remove_paths_with_digits: bool = False) -> str:
    """Obfuscates a URL (``http.url``): user info removed, query string / digit path segments optionally."""
    return _string_call(
        lib.dp_obfuscate_http_url, to_str(url, "url"), bool(remove_query_string), bool(remove_paths_with_digits)
    )


def _keys(keys: Union[str, Iterable[str]], arg: str) -> _ffi.dp_str:
    return to_str(keys if isinstance(keys, str) else ",".join(keys), arg)


def obfuscate_json(
    body: str,
    keep_keys: Union[str, Iterable[str]] = (),
    sql_keys: Union[str, Iterable[str]] = (),
    sql_config: Union[SqlConfig, None] = None,
) -> str:
    """Obfuscates a JSON body (Elasticsearch/OpenSearch/MongoDB): values become ``"?"`` except under
    ``keep_keys``; string values under ``sql_keys`` are obfuscated as SQL."""
    ptr = sql_config._borrow() if sql_config is not None else None
    try:
        return _string_call(
            lib.dp_obfuscate_json, to_str(body, "body"), _keys(keep_keys, "keep_keys"), _keys(sql_keys, "sql_keys"), ptr
        )
    finally:
        if sql_config is not None:
            sql_config._unborrow()


def is_credit_card(value: str, luhn: bool = False) -> bool:
    """Whether ``value`` looks like a card number by the agent's rules (with the Luhn check if asked)."""
    out = ctypes.c_bool(False)
    _check(lib.dp_is_credit_card(to_str(value, "value"), bool(luhn), ctypes.byref(out)))
    return out.value


# ---- normalization ---------------------------------------------------------------------------------


def normalize_service(service: str, lang: str = "") -> str:
    """The agent's service normalization (fallback ``unnamed-<lang>-service`` when unusable)."""
    return _string_call(lib.dp_normalize_service, to_str(service, "service"), to_str(lang, "lang"))


def normalize_name(name: str) -> str:
    """The agent's operation name normalization (``unnamed_operation`` when unusable)."""
    return _string_call(lib.dp_normalize_name, to_str(name, "name"))


def normalize_tag(tag: str) -> str:
    """The agent's ``key:value`` tag normalization."""
    return _string_call(lib.dp_normalize_tag, to_str(tag, "tag"))


def normalize_tag_value(value: str) -> str:
    """The agent's tag value normalization (as for ``env``)."""
    return _string_call(lib.dp_normalize_tag_value, to_str(value, "value"))


def normalize_counts(exporter: Any) -> Dict[str, int]:
    """What an exporter's normalization fixed and dropped so far: ``{agent reason name: count}``,
    non-zero counts only (:meth:`data_pipeline.Exporter.normalize_counts`)."""
    ptr = exporter._borrow()
    try:
        counts = {r.agent_name: lib.dp_exporter_normalize_count(ptr, r.value) for r in NormalizeReason}
    finally:
        exporter._unborrow()
    return {k: v for k, v in counts.items() if v}


# ---- exporter options ------------------------------------------------------------------------------


def _flag(value: Any, arg: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{arg} must be a bool, not {type(value).__name__}")
    return value


def _text(value: Any, arg: str) -> _ffi.dp_str:
    return to_str(value, arg)


def _key_list(value: Any, arg: str) -> _ffi.dp_str:
    return _keys(value, arg)


_CC_NAMES = {"off": CreditCardMode.OFF, "on": CreditCardMode.ON, "luhn": CreditCardMode.LUHN}


def _rules(value: Any, arg: str) -> _ffi.dp_str:
    """Replace rules as a JSON string, or as a list of ``{"name", "pattern", "repl"}`` dicts."""
    return to_str(value if isinstance(value, str) else json.dumps(list(value)), arg)


def _cc_mode(value: Any, arg: str) -> int:
    if isinstance(value, bool):
        return int(CreditCardMode.ON if value else CreditCardMode.OFF)
    if isinstance(value, str):
        try:
            return int(_CC_NAMES[value.lower()])
        except KeyError:
            raise ValueError(f"{arg}={value!r}: expected 'off', 'on' or 'luhn'") from None
    return _ffi.check_range(value, arg, _ffi.U32)


def _option(name: str, convert: Callable[[Any, str], Any], doc: str) -> Tuple[str, Tuple[Any, Any, str]]:
    return name, (getattr(lib, f"dp_exporter_builder_set_{name}"), convert, doc)


#: The exporter's processing options, ``keyword -> (C setter, converter, doc)``, merged into
#: :data:`data_pipeline.exporter.OPTIONS`. Towards a Datadog agent both stages default to off (the
#: agent normalizes and obfuscates with its own settings); the ``obfuscation_*`` defaults are the
#: deployed agent's.
PROCESSING_OPTIONS: Dict[str, Tuple[Any, Any, str]] = dict(
    [
        _option("normalize", _flag, "Normalize spans as the agent does; rejected chunks are dropped and counted."),
        _option("obfuscate", _flag, "Obfuscate spans as the agent does, with the obfuscation_* options."),
        _option("obfuscation_sql_mode", _text, "SQL obfuscator: '' (legacy), obfuscate_only, normalize_only, obfuscate_and_normalize."),
        _option("obfuscation_sql_dbms", _text, "Database system for SQL spans without db.type."),
        _option("obfuscation_sql_replace_digits", _flag, "Replace digits in SQL identifiers with '?'."),
        _option("obfuscation_sql_keep_alias", _flag, "Keep SQL 'AS alias'."),
        _option("obfuscation_sql_dollar_quoted_func", _flag, "Obfuscate $func$ bodies as SQL."),
        _option("obfuscation_sql_table_names", _flag, "Add sql.tables to SQL spans."),
        _option("obfuscation_sql_cache", _flag, "Keep SQL results by query text, bounded at 4 MB (default True)."),
        _option("obfuscation_redis", _flag, "Obfuscate redis.raw_command (default True)."),
        _option("obfuscation_redis_remove_all_args", _flag, "Replace every Redis argument with '?'."),
        _option("obfuscation_valkey", _flag, "Obfuscate valkey.raw_command (default True)."),
        _option("obfuscation_valkey_remove_all_args", _flag, "Replace every Valkey argument with '?'."),
        _option("obfuscation_memcached", _flag, "Obfuscate memcached.command (default True)."),
        _option("obfuscation_memcached_keep_command", _flag, "Keep the Memcached command without its value."),
        _option("obfuscation_http_remove_query_string", _flag, "Replace the query string of http.url with '?'."),
        _option("obfuscation_http_remove_paths_with_digits", _flag, "Replace http.url path segments with digits by '?'."),
        _option("obfuscation_credit_cards", _cc_mode, "Card numbers in tags: 'off', 'on' (default) or 'luhn'."),
        _option("obfuscation_credit_cards_keep_values", _key_list, "Tag keys never checked for card numbers."),
        _option("obfuscation_elasticsearch", _flag, "Obfuscate elasticsearch.body (default True)."),
        _option("obfuscation_elasticsearch_keep_values", _key_list, "Keys kept in elasticsearch.body."),
        _option("obfuscation_elasticsearch_obfuscate_sql_values", _key_list, "Keys of elasticsearch.body obfuscated as SQL."),
        _option("obfuscation_opensearch", _flag, "Obfuscate opensearch.body (default True)."),
        _option("obfuscation_opensearch_keep_values", _key_list, "Keys kept in opensearch.body."),
        _option("obfuscation_opensearch_obfuscate_sql_values", _key_list, "Keys of opensearch.body obfuscated as SQL."),
        _option("obfuscation_mongodb", _flag, "Obfuscate mongodb.query (default True)."),
        _option("obfuscation_mongodb_keep_values", _key_list, "Keys kept in mongodb.query."),
        _option("obfuscation_mongodb_obfuscate_sql_values", _key_list, "Keys of mongodb.query obfuscated as SQL."),
        _option("replace_tags", _rules, "Tag replacement rules: DD_APM_REPLACE_TAGS JSON, or a list of {name, pattern, repl} dicts."),
        _option("normalization_component_to_name", _flag, "The agent's component2name feature."),
    ]
)
