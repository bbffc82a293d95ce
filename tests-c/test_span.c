/* Builds spans with every setter, links, events and trace chunks, and checks the consume rules:
 * dp_trace_push_span / dp_span_add_link / dp_span_add_event consume their argument also on error, so
 * freeing it afterwards would be a double free (ASan/valgrind would report it) and not freeing it
 * must not leak. */
#include "check.h"

static dp_span *full_span(uint64_t span_id, uint64_t parent_id) {
  dp_span *span = dp_span_new();
  CHECK(span != NULL);
  CHECK_OK(dp_span_set_service(span, DP_STR("web")));
  CHECK_OK(dp_span_set_name(span, DP_STR("http.request")));
  CHECK_OK(dp_span_set_resource(span, DP_STR("GET /users/?")));
  CHECK_OK(dp_span_set_type(span, DP_STR("web")));
  CHECK_OK(dp_span_set_trace_id(span, 0x0123456789abcdefULL, 0xfedcba9876543210ULL));
  CHECK_OK(dp_span_set_span_id(span, span_id));
  CHECK_OK(dp_span_set_parent_id(span, parent_id));
  CHECK_OK(dp_span_set_start(span, 1700000000000000000LL));
  CHECK_OK(dp_span_set_duration(span, 2500000));
  CHECK_OK(dp_span_set_error(span, 0));
  CHECK_OK(dp_span_set_meta(span, DP_STR("env"), DP_STR("test")));
  CHECK_OK(dp_span_set_meta(span, dp_str_from_cstr("http.method"), dp_str_from_cstr("GET")));
  CHECK_OK(dp_span_set_metric(span, DP_STR("_sampling_priority_v1"), 1.0));
  static const uint8_t msgpack_map[] = {0x81, 0xa1, 'a', 0x01}; /* {"a": 1} */
  CHECK_OK(dp_span_set_meta_struct(span, DP_STR("appsec"), DP_BYTES(msgpack_map, sizeof msgpack_map)));

  dp_span_link *link = dp_span_link_new(0, 77, 78);
  CHECK(link != NULL);
  CHECK_OK(dp_span_link_set_tracestate(link, DP_STR("dd=s:1")));
  CHECK_OK(dp_span_link_set_flags(link, 1));
  CHECK_OK(dp_span_link_set_attribute(link, DP_STR("link.kind"), DP_STR("follows_from")));
  CHECK_OK(dp_span_add_link(span, link)); /* consumed */

  dp_span_event *event = dp_span_event_new(1700000000000001000ULL);
  CHECK(event != NULL);
  CHECK_OK(dp_span_event_set_name(event, DP_STR("exception")));
  CHECK_OK(dp_span_event_set_attribute_string(event, DP_STR("exception.type"), DP_STR("IOError")));
  CHECK_OK(dp_span_event_set_attribute_bool(event, DP_STR("handled"), true));
  CHECK_OK(dp_span_event_set_attribute_int(event, DP_STR("retries"), 3));
  CHECK_OK(dp_span_event_set_attribute_double(event, DP_STR("ratio"), 0.25));
  dp_str tags[2] = {DP_STR("a"), DP_STR("b")};
  CHECK_OK(dp_span_event_set_attribute_string_array(event, DP_STR("tags"), tags, 2));
  bool flags[3] = {true, false, true};
  CHECK_OK(dp_span_event_set_attribute_bool_array(event, DP_STR("flags"), flags, 3));
  int64_t codes[2] = {200, 503};
  CHECK_OK(dp_span_event_set_attribute_int_array(event, DP_STR("codes"), codes, 2));
  double ratios[1] = {0.5};
  CHECK_OK(dp_span_event_set_attribute_double_array(event, DP_STR("ratios"), ratios, 1));
  CHECK_OK(dp_span_add_event(span, event)); /* consumed */
  return span;
}

int main(void) {
  dp_trace *trace = dp_trace_new();
  CHECK(trace != NULL);
  CHECK(dp_trace_len(trace) == 0);
  CHECK_OK(dp_trace_push_span(trace, full_span(1, 0)));
  CHECK_OK(dp_trace_push_span(trace, full_span(2, 1)));
  CHECK(dp_trace_len(trace) == 2);
  CHECK(dp_trace_len(NULL) == 0);

  /* Consumed on error: no free afterwards, and no leak. */
  CHECK_STATUS(dp_trace_push_span(NULL, full_span(3, 1)), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_span_add_link(NULL, dp_span_link_new(1, 2, 3)), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_span_add_event(NULL, dp_span_event_new(5)), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_trace_push_span(trace, NULL), DP_STATUS_NULL_ARGUMENT);
  CHECK(dp_trace_len(trace) == 2);

  /* A span never pushed is freed by its owner. */
  dp_span *lonely = full_span(9, 0);
  dp_span_free(lonely);

  dp_trace_free(trace); /* frees both spans with their links and events */
  puts("test_span: ok");
  return 0;
}
