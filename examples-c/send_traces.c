/* Sends traces to a Datadog agent through the data-pipeline C ABI, both ways a tracer can:
 *   1. spans built with the span API (dp_span_*, dp_trace_*) and dp_exporter_send_traces;
 *   2. a msgpack v0.4 payload the tracer encoded itself, with dp_exporter_send.
 * Then prints the agent's answer and the sampling rate it asks for.
 *
 *   send_traces [AGENT_URL]      default: $DP_AGENT_URL, else http://localhost:8126
 * Env DP_TEST_SESSION_TOKEN (optional) is sent as the test agent's session token.
 * Exit status 0 when both sends succeeded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data-pipeline.h"

/* Prints and frees an error; returns 1 if there was one. */
static int failed(const char *what, dp_error *err) {
  if (err == NULL) {
    return 0;
  }
  fprintf(stderr, "%s: %s (%s)\n", what, dp_error_message(err), dp_status_name(dp_error_code(err)));
  dp_error_free(err);
  return 1;
}

static int64_t now_ns(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- 1. the span API --------------------------------------------------------------------------- */

static dp_span *make_span(uint64_t trace_id, uint64_t span_id, uint64_t parent_id, const char *name,
                          const char *resource, int64_t start, int64_t duration) {
  dp_span *span = dp_span_new();
  if (span == NULL) {
    return NULL;
  }
  if (failed("service", dp_span_set_service(span, DP_STR("example-c"))) ||
      failed("name", dp_span_set_name(span, dp_str_from_cstr(name))) ||
      failed("resource", dp_span_set_resource(span, dp_str_from_cstr(resource))) ||
      failed("type", dp_span_set_type(span, DP_STR("web"))) ||
      failed("trace id", dp_span_set_trace_id(span, 0, trace_id)) ||
      failed("span id", dp_span_set_span_id(span, span_id)) ||
      failed("parent id", dp_span_set_parent_id(span, parent_id)) ||
      failed("start", dp_span_set_start(span, start)) ||
      failed("duration", dp_span_set_duration(span, duration)) ||
      failed("env", dp_span_set_meta(span, DP_STR("env"), DP_STR("example"))) ||
      failed("priority", dp_span_set_metric(span, DP_STR("_sampling_priority_v1"), 1.0))) {
    dp_span_free(span);
    return NULL;
  }
  return span;
}

static int send_with_span_api(const dp_exporter *exporter) {
  int64_t start = now_ns() - 5000000;
  uint64_t trace_id = (uint64_t)start ^ 0x5bd1e995u;
  dp_trace *trace = dp_trace_new();
  dp_span *root = make_span(trace_id, 1, 0, "http.request", "GET /hello", start, 5000000);
  dp_span *child = make_span(trace_id, 2, 1, "db.query", "SELECT ?", start + 1000000, 2000000);
  if (trace == NULL || root == NULL || child == NULL) {
    dp_trace_free(trace);
    dp_span_free(root);
    dp_span_free(child);
    return 1;
  }
  dp_span_event *event = dp_span_event_new((uint64_t)start + 1500000);
  if (failed("event", dp_span_event_set_name(event, DP_STR("cache.miss"))) ||
      failed("event attribute", dp_span_event_set_attribute_string(event, DP_STR("key"), DP_STR("user:42")))) {
    dp_span_event_free(event);
    event = NULL;
  }
  /* dp_span_add_event and dp_trace_push_span consume their argument, also on error. */
  int rc = (event != NULL && failed("add event", dp_span_add_event(child, event))) |
           failed("push root", dp_trace_push_span(trace, root)) |
           failed("push child", dp_trace_push_span(trace, child));
  if (rc == 0) {
    const dp_trace *traces[1] = {trace};
    dp_response *response = NULL;
    rc = failed("dp_exporter_send_traces", dp_exporter_send_traces(exporter, traces, 1, &response));
    if (rc == 0) {
      double rate = 1.0;
      dp_error *err = dp_response_sampling_rate(response, DP_STR("example-c"), DP_STR("example"), &rate);
      if (dp_error_code(err) == DP_STATUS_NOT_FOUND) {
        rate = 1.0; /* the agent sent no rate: keep everything */
      } else {
        rc = failed("sampling rate", err);
        err = NULL;
      }
      dp_error_free(err);
      dp_bytes body = dp_response_body(response);
      printf("span API: %zu spans sent, agent answered %u: %.*s (sampling rate %.2f)\n",
             dp_trace_len(trace), (unsigned)dp_response_status(response), (int)body.len,
             (const char *)body.ptr, rate);
      dp_response_free(response);
    }
  }
  dp_trace_free(trace); /* send_traces only borrowed it */
  return rc;
}

/* --- 2. a payload encoded by the tracer (msgpack v0.4) ------------------------------------------- */

struct buf {
  uint8_t data[512];
  size_t len;
};

static void put(struct buf *b, const void *p, size_t n) {
  if (b->len + n <= sizeof b->data) {
    memcpy(b->data + b->len, p, n);
    b->len += n;
  }
}
static void put_u8(struct buf *b, uint8_t v) { put(b, &v, 1); }
static void put_be(struct buf *b, uint8_t tag, uint64_t v) { /* tag + 8 big-endian bytes */
  put_u8(b, tag);
  for (int i = 7; i >= 0; i--) {
    put_u8(b, (uint8_t)(v >> (8 * i)));
  }
}
static void put_str(struct buf *b, const char *s) { /* fixstr, < 32 bytes */
  size_t n = strlen(s);
  put_u8(b, (uint8_t)(0xa0 | n));
  put(b, s, n);
}

static int send_encoded(const dp_exporter *exporter) {
  int64_t start = now_ns() - 3000000;
  struct buf b = {{0}, 0};
  put_u8(&b, 0x91); /* one trace */
  put_u8(&b, 0x91); /* of one span */
  put_u8(&b, 0x89); /* a map of 9 fields */
  put_str(&b, "service");   put_str(&b, "example-c");
  put_str(&b, "name");      put_str(&b, "encoded.by.tracer");
  put_str(&b, "resource");  put_str(&b, "batch-job");
  put_str(&b, "trace_id");  put_be(&b, 0xcf, (uint64_t)start ^ 0x1234u);
  put_str(&b, "span_id");   put_be(&b, 0xcf, 7);
  put_str(&b, "parent_id"); put_be(&b, 0xcf, 0);
  put_str(&b, "start");     put_be(&b, 0xd3, (uint64_t)start);
  put_str(&b, "duration");  put_be(&b, 0xd3, 3000000);
  put_str(&b, "error");     put_u8(&b, 0x00);

  dp_response *response = NULL;
  if (failed("dp_exporter_send", dp_exporter_send(exporter, DP_BYTES(b.data, b.len), &response))) {
    return 1;
  }
  printf("encoded payload: %zu bytes sent, agent answered %u\n", b.len,
         (unsigned)dp_response_status(response));
  dp_response_free(response);
  return 0;
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : getenv("DP_AGENT_URL");
  if (url == NULL) {
    url = "http://localhost:8126";
  }
  const char *token = getenv("DP_TEST_SESSION_TOKEN");
  printf("data-pipeline %s (header %s), agent %s\n", dp_version(), DP_VERSION_STRING, url);

  dp_exporter_builder *builder = dp_exporter_builder_new();
  if (failed("url", dp_exporter_builder_set_url(builder, dp_str_from_cstr(url))) ||
      failed("language", dp_exporter_builder_set_language(builder, DP_STR("c"))) ||
      failed("tracer version", dp_exporter_builder_set_tracer_version(builder, DP_STR("0.0.1"))) ||
      failed("service", dp_exporter_builder_set_service(builder, DP_STR("example-c"))) ||
      failed("env", dp_exporter_builder_set_env(builder, DP_STR("example"))) ||
      failed("timeout", dp_exporter_builder_set_send_timeout(builder, 3000)) ||
      (token != NULL &&
       failed("token", dp_exporter_builder_set_test_session_token(builder, dp_str_from_cstr(token))))) {
    dp_exporter_builder_free(builder);
    return 1;
  }
  dp_exporter *exporter = NULL;
  if (failed("build", dp_exporter_builder_build(builder, &exporter))) { /* builder consumed */
    return 1;
  }
  int rc = send_with_span_api(exporter) | send_encoded(exporter);
  dp_exporter_free(exporter);
  return rc;
}
