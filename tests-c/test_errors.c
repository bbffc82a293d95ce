/* NULL arguments, NULL views with a length, bad UTF-8: each is an error code, never a crash, and a
 * failed setter changes nothing. */
#include "check.h"

int main(void) {
  /* NULL handles. */
  CHECK_STATUS(dp_span_set_service(NULL, DP_STR("web")), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_span_set_span_id(NULL, 1), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_span_link_set_flags(NULL, 1), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_span_event_set_attribute_int(NULL, DP_STR("k"), 1), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_trace_push_span(NULL, NULL), DP_STATUS_NULL_ARGUMENT);

  /* The message names the argument. */
  dp_error *err = dp_span_set_name(NULL, DP_STR("x"));
  CHECK(err != NULL);
  CHECK(dp_error_code(err) == DP_STATUS_NULL_ARGUMENT);
  CHECK(strstr(dp_error_message(err), "span") != NULL);
  CHECK(dp_error_http_status(err) == 0);
  dp_error_free(err);

  dp_span *span = dp_span_new();
  CHECK(span != NULL);

  /* {NULL, 0} is the empty string; {NULL, n > 0} is an error. */
  dp_str null_empty = {NULL, 0};
  CHECK_OK(dp_span_set_resource(span, null_empty));
  dp_str null_len = {NULL, 4};
  CHECK_STATUS(dp_span_set_resource(span, null_len), DP_STATUS_NULL_ARGUMENT);
  dp_bytes null_bytes = {NULL, 2};
  CHECK_STATUS(dp_span_set_meta_struct(span, DP_STR("k"), null_bytes), DP_STATUS_NULL_ARGUMENT);

  /* Invalid UTF-8 in any string argument. */
  static const char bad_bytes[] = {'o', 'k', (char)0xff, 'x'};
  dp_str bad = {bad_bytes, sizeof bad_bytes};
  CHECK_STATUS(dp_span_set_service(span, bad), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_span_set_meta(span, bad, DP_STR("v")), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_span_set_meta(span, DP_STR("k"), bad), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_span_set_metric(span, bad, 1.0), DP_STATUS_INVALID_UTF8);
  err = dp_span_set_name(span, bad);
  CHECK(dp_error_code(err) == DP_STATUS_INVALID_UTF8);
  CHECK(strstr(dp_error_message(err), "offset 2") != NULL);
  dp_error_free(err);
  /* A truncated multi-byte sequence. */
  static const char cut[] = {(char)0xc3};
  dp_str truncated = {cut, 1};
  CHECK_STATUS(dp_span_set_type(span, truncated), DP_STATUS_INVALID_UTF8);

  /* Arrays: NULL with n > 0 is an error, NULL with n == 0 is an empty array. */
  dp_span_event *event = dp_span_event_new(1);
  CHECK_STATUS(dp_span_event_set_attribute_double_array(event, DP_STR("k"), NULL, 3), DP_STATUS_NULL_ARGUMENT);
  CHECK_OK(dp_span_event_set_attribute_double_array(event, DP_STR("k"), NULL, 0));
  dp_str strs[2] = {DP_STR("fine"), {bad_bytes, sizeof bad_bytes}};
  CHECK_STATUS(dp_span_event_set_attribute_string_array(event, DP_STR("k"), strs, 2), DP_STATUS_INVALID_UTF8);
  dp_span_event_free(event);

  /* A NULL log callback switches logging off; the level is then ignored. */
  CHECK_OK(dp_set_log_callback(NULL, NULL, NULL, 99));

  dp_span_free(span);
  puts("test_errors: ok");
  return 0;
}
