/* The exporter ABI: every builder setter, build's consume rule, out-params untouched on error, a
 * network error from a closed port; with DP_TEST_AGENT_URL set (a real Datadog test agent), sends
 * built spans and raw payloads and reads the response (status, body, sampling rates). */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "check.h"

static dp_exporter *build(const char *url, const char *token) {
  dp_exporter_builder *b = dp_exporter_builder_new();
  CHECK(b != NULL);
  CHECK_OK(dp_exporter_builder_set_url(b, dp_str_from_cstr(url)));
  CHECK_OK(dp_exporter_builder_set_language(b, DP_STR("c")));
  CHECK_OK(dp_exporter_builder_set_language_version(b, DP_STR("11")));
  CHECK_OK(dp_exporter_builder_set_language_interpreter(b, DP_STR("gcc")));
  CHECK_OK(dp_exporter_builder_set_tracer_version(b, DP_STR("0.0.1")));
  CHECK_OK(dp_exporter_builder_set_service(b, DP_STR("c-tests")));
  CHECK_OK(dp_exporter_builder_set_env(b, DP_STR("test")));
  CHECK_OK(dp_exporter_builder_set_app_version(b, DP_STR("1.0")));
  CHECK_OK(dp_exporter_builder_set_hostname(b, DP_STR("localhost")));
  CHECK_OK(dp_exporter_builder_set_container_id(b, DP_STR("")));
  CHECK_OK(dp_exporter_builder_set_input_format(b, DP_FORMAT_V04));
  CHECK_OK(dp_exporter_builder_set_output_format(b, DP_FORMAT_V04));
  CHECK_OK(dp_exporter_builder_set_connect_timeout(b, 500));
  CHECK_OK(dp_exporter_builder_set_request_timeout(b, 2000));
  CHECK_OK(dp_exporter_builder_set_send_timeout(b, 3000));
  CHECK_OK(dp_exporter_builder_set_max_retries(b, 0));
  CHECK_OK(dp_exporter_builder_set_url_from_env(b, false));
  CHECK_OK(dp_exporter_builder_set_test_session_token(b, dp_str_from_cstr(token)));
  dp_exporter *exporter = NULL;
  CHECK_OK(dp_exporter_builder_build(b, &exporter));
  CHECK(exporter != NULL);
  return exporter;
}

static void builder_rules(void) {
  /* An invalid option value is refused by its setter. */
  dp_exporter_builder *b = dp_exporter_builder_new();
  CHECK_STATUS(dp_exporter_builder_set_output_format(b, 3), DP_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_input_format(b, 0), DP_STATUS_INVALID_ARGUMENT);
  static const char bad[] = {(char)0xfe};
  dp_str bad_str = {bad, 1};
  CHECK_STATUS(dp_exporter_builder_set_url(b, bad_str), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_exporter_builder_set_service(NULL, DP_STR("x")), DP_STATUS_NULL_ARGUMENT);

  /* A failed build consumes the builder and leaves *out alone. */
  CHECK_OK(dp_exporter_builder_set_url(b, DP_STR("not a url")));
  static char marker;
  dp_exporter *sentinel = (dp_exporter *)(void *)&marker;
  dp_exporter *out = sentinel;
  CHECK_STATUS(dp_exporter_builder_build(b, &out), DP_STATUS_INVALID_ARGUMENT);
  CHECK(out == sentinel);

  /* A NULL out-param is an error, and the builder is still consumed (no leak). */
  b = dp_exporter_builder_new();
  CHECK_STATUS(dp_exporter_builder_build(b, NULL), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_build(NULL, &out), DP_STATUS_NULL_ARGUMENT);
  CHECK(out == sentinel);

  /* A zero timeout is refused at build time. */
  b = dp_exporter_builder_new();
  CHECK_OK(dp_exporter_builder_set_send_timeout(b, 0));
  CHECK_STATUS(dp_exporter_builder_build(b, &out), DP_STATUS_INVALID_ARGUMENT);

  /* A builder never built is freed by its owner. */
  dp_exporter_builder_free(dp_exporter_builder_new());
  dp_exporter_builder_free(NULL);
  dp_exporter_free(NULL);
  dp_response_free(NULL);
  CHECK(dp_response_status(NULL) == 0);
  CHECK(dp_response_body(NULL).len == 0);
}

static void network_error(void) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u", closed_port());
  dp_exporter *exporter = build(url, "");
  static const uint8_t empty[] = {0x90};
  static char marker;
  dp_response *sentinel = (dp_response *)(void *)&marker;
  dp_response *response = sentinel;
  CHECK_STATUS(dp_exporter_send(exporter, DP_BYTES(empty, 1), &response), DP_STATUS_NETWORK);
  CHECK(response == sentinel);
  CHECK_STATUS(dp_exporter_send(exporter, DP_BYTES(empty, 1), NULL), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_send(NULL, DP_BYTES(empty, 1), &response), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_send_traces(exporter, NULL, 1, &response), DP_STATUS_NULL_ARGUMENT);
  const dp_trace *null_trace[1] = {NULL};
  CHECK_STATUS(dp_exporter_send_traces(exporter, null_trace, 1, &response), DP_STATUS_NULL_ARGUMENT);
  dp_exporter_free(exporter);
}

static dp_trace *make_trace(uint64_t trace_id, int spans) {
  dp_trace *trace = dp_trace_new();
  for (int i = 0; i < spans; i++) {
    dp_span *span = dp_span_new();
    CHECK_OK(dp_span_set_service(span, DP_STR("c-tests")));
    CHECK_OK(dp_span_set_name(span, DP_STR("c.test.span")));
    CHECK_OK(dp_span_set_resource(span, DP_STR("resource")));
    CHECK_OK(dp_span_set_trace_id(span, 0, trace_id));
    CHECK_OK(dp_span_set_span_id(span, (uint64_t)i + 1));
    CHECK_OK(dp_span_set_parent_id(span, (uint64_t)i));
    CHECK_OK(dp_span_set_start(span, 1700000000000000000LL + i));
    CHECK_OK(dp_span_set_duration(span, 1000));
    CHECK_OK(dp_span_set_meta(span, DP_STR("env"), DP_STR("test")));
    CHECK_OK(dp_trace_push_span(trace, span));
  }
  return trace;
}

static void with_agent(const char *url) {
  /* A session whose agent answers a rate of 0.5 for (c-tests, test) and no default rate. */
  char token[64];
  snprintf(token, sizeof token, "c-tests-exporter-%ld", (long)getpid());
  char path[256];
  snprintf(path, sizeof path,
           "/test/session/start?test_session_token=%s&agent_sample_rate_by_service="
           "%%7B%%22service:c-tests,env:test%%22:0.5%%7D",
           token);
  static char answer[4096];
  CHECK(agent_get(url, path, answer, sizeof answer) == 200);
  dp_exporter *exporter = build(url, token);

  /* Spans built through the API. */
  const dp_trace *traces[2] = {make_trace(101, 3), make_trace(102, 1)};
  dp_response *response = NULL;
  CHECK_OK(dp_exporter_send_traces(exporter, traces, 2, &response));
  CHECK(response != NULL);
  CHECK(dp_response_status(response) == 200);
  dp_bytes body = dp_response_body(response);
  CHECK(body.ptr != NULL && body.len > 0);
  CHECK(memchr(body.ptr, '{', body.len) != NULL); /* JSON */
  double rate = -1.0;
  CHECK_OK(dp_response_sampling_rate(response, DP_STR("c-tests"), DP_STR("test"), &rate));
  CHECK(rate == 0.5);
  /* No rate for another service and no default: NOT_FOUND, and `rate` is left alone. */
  CHECK_STATUS(dp_response_sampling_rate(response, DP_STR("other"), DP_STR("test"), &rate), DP_STATUS_NOT_FOUND);
  CHECK(rate == 0.5);
  static const char bad[] = {(char)0xc0};
  dp_str bad_str = {bad, 1};
  CHECK_STATUS(dp_response_sampling_rate(response, bad_str, DP_STR("test"), &rate), DP_STATUS_INVALID_UTF8);
  dp_response_free(response);
  /* Borrowed, not consumed: the same chunks can be sent again. */
  response = NULL;
  CHECK_OK(dp_exporter_send_traces(exporter, traces, 1, &response));
  dp_response_free(response);
  dp_trace_free((dp_trace *)traces[0]);
  dp_trace_free((dp_trace *)traces[1]);

  /* A raw v0.4 payload: an empty array of traces. */
  static const uint8_t empty[] = {0x90};
  response = NULL;
  CHECK_OK(dp_exporter_send(exporter, DP_BYTES(empty, sizeof empty), &response));
  CHECK(dp_response_status(response) == 200);
  dp_response_free(response);

  /* Not msgpack: refused before anything is sent. */
  static const uint8_t garbage[] = {0xc1, 0x00};
  response = NULL;
  CHECK_STATUS(dp_exporter_send(exporter, DP_BYTES(garbage, sizeof garbage), &response), DP_STATUS_DECODE);
  CHECK(response == NULL);
  dp_exporter_free(exporter);
}

int main(void) {
  builder_rules();
  network_error();
  const char *url = getenv("DP_TEST_AGENT_URL");
  if (url != NULL && url[0] != '\0') {
    with_agent(url);
    puts("test_exporter: ok (with the test agent)");
  } else {
    puts("test_exporter: ok (agent part skipped: DP_TEST_AGENT_URL is not set)");
  }
  return 0;
}
