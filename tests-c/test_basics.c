/* Version, error readers on NULL, status names, every _free(NULL), DP_STR and dp_str_from_cstr. */
#include "check.h"

int main(void) {
  char expected[64];
  snprintf(expected, sizeof expected, "%d.%d.%d", DP_VERSION_MAJOR, DP_VERSION_MINOR, DP_VERSION_PATCH);
  CHECK(strcmp(dp_version(), expected) == 0);
  CHECK(strcmp(dp_version(), DP_VERSION_STRING) == 0);

  /* Reading a NULL error is "no error". */
  CHECK(dp_error_code(NULL) == DP_STATUS_OK);
  CHECK(strcmp(dp_error_message(NULL), "") == 0);
  CHECK(dp_error_http_status(NULL) == 0);

  CHECK(strcmp(dp_status_name(DP_STATUS_OK), "DP_STATUS_OK") == 0);
  CHECK(strcmp(dp_status_name(DP_STATUS_INVALID_UTF8), "DP_STATUS_INVALID_UTF8") == 0);
  CHECK(strcmp(dp_status_name(DP_STATUS_PANIC), "DP_STATUS_PANIC") == 0);
  CHECK(strcmp(dp_status_name(4000000000u), "DP_STATUS_UNKNOWN") == 0);
  /* Stable numbers (ABI). */
  CHECK(DP_STATUS_INVALID_ARGUMENT == 1 && DP_STATUS_INTERNAL == 10);
  CHECK(DP_STATUS_NULL_ARGUMENT == 11 && DP_STATUS_INVALID_UTF8 == 12 && DP_STATUS_PANIC == 13);

  /* Every _free accepts NULL. */
  dp_error_free(NULL);
  dp_span_free(NULL);
  dp_span_link_free(NULL);
  dp_span_event_free(NULL);
  dp_trace_free(NULL);

  dp_str lit = DP_STR("héllo");
  CHECK(lit.len == 6 && memcmp(lit.ptr, "héllo", 6) == 0);
  dp_str empty = DP_STR("");
  CHECK(empty.len == 0);
  const char *c = "service";
  dp_str s = dp_str_from_cstr(c);
  CHECK(s.ptr == c && s.len == 7);
  dp_str none = dp_str_from_cstr(NULL);
  CHECK(none.ptr == NULL && none.len == 0);
  dp_bytes b = DP_BYTES("ab", 2);
  CHECK(b.len == 2 && b.ptr[0] == 'a');

  puts("test_basics: ok");
  return 0;
}
