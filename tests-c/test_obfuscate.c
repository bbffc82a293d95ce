/* The standalone obfuscation and normalization functions, and the exporter's processing options:
 * results are the agent's, every returned dp_string is freed (valgrind/ASan check it), errors are
 * codes and leave out-params alone. */
#include "check.h"

/* Compares a returned string with `want`, then frees it. */
static void expect_text(dp_string *s, const char *want) {
  dp_str v = dp_string_view(s);
  CHECK(v.len == strlen(want));
  CHECK(memcmp(v.ptr, want, v.len) == 0);
  CHECK(v.ptr[v.len] == '\0');
  dp_string_free(s);
}

int main(void) {
  dp_string *out = NULL;
  dp_string *tables = NULL;

  /* SQL: defaults (NULL config), a config with table names, the agent's parse error. */
  CHECK_OK(dp_obfuscate_sql(DP_STR("SELECT * FROM users WHERE id = 42"), NULL, &out, NULL));
  expect_text(out, "SELECT * FROM users WHERE id = ?");
  dp_sql_config *cfg = dp_sql_config_new();
  CHECK(cfg != NULL);
  CHECK_OK(dp_sql_config_set_table_names(cfg, true));
  CHECK_OK(dp_sql_config_set_dbms(cfg, DP_STR("postgresql")));
  CHECK_OK(dp_obfuscate_sql(DP_STR("UPDATE orders SET total = 10 WHERE id = 3"), cfg, &out, &tables));
  expect_text(out, "UPDATE orders SET total = ? WHERE id = ?");
  expect_text(tables, "orders");
  CHECK_STATUS(dp_sql_config_set_obfuscation_mode(cfg, DP_STR("turbo")), DP_STATUS_INVALID_ARGUMENT);
  CHECK_OK(dp_sql_config_set_obfuscation_mode(cfg, DP_STR("obfuscate_and_normalize")));
  CHECK_OK(dp_obfuscate_sql(DP_STR("SELECT a FROM t WHERE b = 'x' -- note"), cfg, &out, NULL));
  expect_text(out, "SELECT a FROM t WHERE b = ?");
  out = NULL;
  CHECK_STATUS(dp_obfuscate_sql(DP_STR("SELECT * FROM users WHERE id = '' AND '"), NULL, &out, NULL),
               DP_STATUS_INVALID_ARGUMENT);
  CHECK(out == NULL);
  CHECK_STATUS(dp_obfuscate_sql(DP_STR("SELECT 1"), cfg, NULL, NULL), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_sql_config_set_keep_null(NULL, true), DP_STATUS_NULL_ARGUMENT);
  dp_sql_config_free(cfg);
  dp_sql_config_free(NULL);

  /* Redis, Memcached, HTTP, JSON, credit cards. */
  CHECK_OK(dp_obfuscate_redis(DP_STR("AUTH my-secret"), false, &out));
  expect_text(out, "AUTH ?");
  CHECK_OK(dp_obfuscate_redis(DP_STR("SET key val"), true, &out));
  expect_text(out, "SET ?");
  CHECK_OK(dp_quantize_redis(DP_STR("SET k v\nGET k"), &out));
  expect_text(out, "SET GET");
  CHECK_OK(dp_obfuscate_memcached(DP_STR("set key 0 0 0\r\nvalue"), true, &out));
  expect_text(out, "set key 0 0 0");
  CHECK_OK(dp_obfuscate_http_url(DP_STR("http://user:pw@mysite.mydomain/1/2?q=asd"), true, true, &out));
  expect_text(out, "http://mysite.mydomain/?/??");
  CHECK_OK(dp_obfuscate_json(DP_STR("{\"query\": \"select 1\", \"keep\": \"x\", \"other\": 3}"),
                             DP_STR("keep"), DP_STR("query"), NULL, &out));
  expect_text(out, "{\"query\":\"select ?\",\"keep\":\"x\",\"other\":\"?\"}");
  bool is_card = false;
  CHECK_OK(dp_is_credit_card(DP_STR("4001 0200 0000 0009"), true, &is_card));
  CHECK(is_card);
  CHECK_OK(dp_is_credit_card(DP_STR("4001 0200 0000 0008"), true, &is_card));
  CHECK(!is_card);
  static const char bad_bytes[] = {'a', (char)0xff};
  dp_str bad = {bad_bytes, sizeof bad_bytes};
  CHECK_STATUS(dp_obfuscate_http_url(bad, false, false, &out), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_is_credit_card(bad, false, &is_card), DP_STATUS_INVALID_UTF8);

  /* Normalization. */
  CHECK_OK(dp_normalize_service(DP_STR(""), DP_STR("cpp"), &out));
  expect_text(out, "unnamed-cpp-service");
  CHECK_OK(dp_normalize_name(DP_STR("Handle Request"), &out));
  expect_text(out, "Handle_Request");
  CHECK_OK(dp_normalize_tag(DP_STR("Env:Prod!"), &out));
  expect_text(out, "env:prod");
  CHECK_OK(dp_normalize_tag_value(DP_STR("1.2"), &out));
  expect_text(out, "1.2");
  CHECK(strcmp(dp_normalize_reason_name(DP_NORMALIZE_SERVICE_EMPTY), "service_empty") == 0);
  CHECK(strcmp(dp_normalize_reason_name(1000), "") == 0);
  dp_str empty = dp_string_view(NULL);
  CHECK(empty.ptr == NULL && empty.len == 0);
  dp_string_free(NULL);

  /* The exporter's processing options. */
  dp_exporter_builder *b = dp_exporter_builder_new();
  CHECK_OK(dp_exporter_builder_set_normalize(b, true));
  CHECK_OK(dp_exporter_builder_set_obfuscate(b, true));
  CHECK_OK(dp_exporter_builder_set_obfuscation_sql_mode(b, DP_STR("obfuscate_only")));
  CHECK_OK(dp_exporter_builder_set_obfuscation_credit_cards(b, DP_CREDIT_CARDS_LUHN));
  CHECK_STATUS(dp_exporter_builder_set_obfuscation_credit_cards(b, 9), DP_STATUS_INVALID_ARGUMENT);
  CHECK_OK(dp_exporter_builder_set_replace_tags(
      b, DP_STR("[{\"name\": \"http.url\", \"pattern\": \"token=[^&]+\", \"repl\": \"token=?\"}]")));
  dp_exporter *ex = NULL;
  CHECK_OK(dp_exporter_builder_build(b, &ex));
  CHECK(dp_exporter_normalize_count(ex, DP_NORMALIZE_TRACE_ID_ZERO) == 0);
  dp_exporter_free(ex);
  b = dp_exporter_builder_new();
  CHECK_OK(dp_exporter_builder_set_replace_tags(b, DP_STR("not json")));
  ex = NULL;
  CHECK_STATUS(dp_exporter_builder_build(b, &ex), DP_STATUS_INVALID_ARGUMENT);
  CHECK(ex == NULL);

  puts("test_obfuscate: ok");
  return 0;
}
