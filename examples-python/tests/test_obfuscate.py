"""Normalization and obfuscation through the binding: the standalone functions give the agent's
results, the exporter options reach the library (a send with obfuscation on arrives obfuscated at the
real test agent) and the normalization counters come back."""

import pytest

import data_pipeline as dp
from data_pipeline import obfuscate as ob
from data_pipeline.errors import InvalidArgumentError, InvalidUtf8Error

START = 1_700_000_000_000_000_000


def test_sql():
    assert ob.obfuscate_sql("SELECT * FROM users WHERE id = 42") == "SELECT * FROM users WHERE id = ?"
    assert ob.obfuscate_sql("UPDATE orders SET a = 1", table_names=True, with_tables=True) == (
        "UPDATE orders SET a = ?",
        "orders",
    )
    cfg = ob.SqlConfig(dbms="postgresql", obfuscation_mode="obfuscate_only", keep_null=True)
    assert ob.obfuscate_sql("SELECT a FROM t WHERE b IS NULL AND c = 'x'", cfg) == "SELECT a FROM t WHERE b IS NULL AND c = ?"
    cfg.close()
    with pytest.raises(InvalidArgumentError):
        ob.obfuscate_sql("SELECT * FROM users WHERE id = '' AND '")
    with pytest.raises(InvalidArgumentError):
        ob.SqlConfig(obfuscation_mode="fast")
    with pytest.raises(TypeError):
        ob.SqlConfig(no_such_flag=True)


def test_other_obfuscators_and_normalizers():
    assert ob.obfuscate_redis("SET key val") == "SET key ?"
    assert ob.obfuscate_redis("SET key val", remove_all_args=True) == "SET ?"
    assert ob.quantize_redis("SET k v\nGET k") == "SET GET"
    assert ob.obfuscate_memcached("set key 0 0 0\r\nvalue") == ""
    assert ob.obfuscate_memcached("set key 0 0 0\r\nvalue", keep_command=True) == "set key 0 0 0"
    assert ob.obfuscate_http_url("http://mysite.mydomain/1/2?q=asd", True, True) == "http://mysite.mydomain/?/??"
    assert ob.obfuscate_http_url("http://u:p@host/1/2?q=x", remove_query_string=True) == "http://host/1/2?"
    assert (
        ob.obfuscate_json('{"query": "select 1", "keep": "x", "n": 3}', keep_keys=["keep"], sql_keys="query")
        == '{"query":"select ?","keep":"x","n":"?"}'
    )
    assert ob.is_credit_card("5105-1051-0510-5100")
    assert not ob.is_credit_card("4001 0200 0000 0008", luhn=True)
    assert ob.normalize_service("", "python") == "unnamed-python-service"
    assert ob.normalize_name("") == "unnamed_operation"
    assert ob.normalize_tag("Env:Prod!") == "env:prod"
    assert ob.normalize_tag_value("1.2") == "1.2"
    assert ob.NormalizeReason.SERVICE_EMPTY.agent_name == "service_empty"
    with pytest.raises(InvalidUtf8Error):
        ob.obfuscate_redis("\ud800")


def test_processing_options_are_exporter_options():
    assert set(ob.PROCESSING_OPTIONS) <= set(dp.OPTIONS)
    b = dp.ExporterBuilder(obfuscate=True, obfuscation_credit_cards="luhn", obfuscation_sql_mode="obfuscate_only")
    b.set_replace_tags([{"name": "a", "pattern": "b", "repl": "c"}]).build().close()
    with pytest.raises(ValueError):
        dp.ExporterBuilder(obfuscation_credit_cards="sometimes")
    with pytest.raises(InvalidArgumentError):
        dp.ExporterBuilder(replace_tags="not json").build()


def test_send_with_obfuscation_and_normalization(test_agent, session_token, exporter_options):
    options = dict(
        exporter_options,
        normalize=True,
        obfuscate=True,
        obfuscation_http_remove_query_string=True,
        obfuscation_http_remove_paths_with_digits=True,
    )
    with dp.Exporter.build(**options) as exporter:
        web = dp.Span(service="", name="http.request", resource="GET /", type="web", trace_id=3, span_id=1,
                      start=START, duration=1000,
                      meta={"http.url": "http://mysite.mydomain/1/2?q=asd", "card.number": "5105-1051-0510-5100"})
        sql = dp.Span(service="py-tests", name="db", resource="SELECT * FROM users WHERE id = 42", type="sql",
                      trace_id=3, span_id=2, parent_id=1, start=START, duration=10)
        bad = dp.Span(service="py-tests", name="x", trace_id=4, span_id=0, start=START, duration=1)
        assert exporter.send_traces([dp.Trace([web, sql]), dp.Trace([bad])]).status == 200
        counts = exporter.normalize_counts()
    assert counts == {"span_id_zero": 1, "service_empty": 1}
    spans = {s["span_id"]: s for s in test_agent.spans(session_token)}
    assert sorted(spans) == [1, 2]
    assert spans[1]["service"] == "unnamed-python-service"
    assert spans[1]["meta"]["http.url"] == "http://mysite.mydomain/?/??"
    assert spans[1]["meta"]["card.number"] == "?"
    assert spans[2]["resource"] == "SELECT * FROM users WHERE id = ?"
