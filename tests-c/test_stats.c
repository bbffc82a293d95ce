/* Client-side stats, P0 dropping and sampling feedback through the C ABI: every stats setter and
 * getter with NULL arguments, bad UTF-8 and out-of-range values (refused by the setter, or by
 * build); the stats state and the sampling rate before any answer; flush towards a closed port.
 * With DP_TEST_AGENT_URL set (a real Datadog test agent): spans sent with stats in Auto mode get
 * their stats to the agent (read back from /test/session/stats), P0 chunks are dropped and counted
 * in the request headers (/test/session/requests) and in dp_health.dropped_p0 on the background
 * path, the agent's rates are returned by dp_exporter_sampling_rate, and shutdown turns stats off. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "check.h"

static const char bad_utf8[] = {(char)0xc3, (char)0x28};
static const dp_str BAD = {bad_utf8, sizeof bad_utf8};

/* Room for one answer of the test agent (the sessions here hold a few small requests). */
#define ANSWER_CAP (1u << 20)

/* GET `path` from the test agent at `url`; the whole answer (status line, headers, body),
 * NUL-terminated, which must be a 200. The caller frees it. */
static char *agent_get_raw(const char *url, const char *path) {
  char *buf = malloc(ANSWER_CAP);
  CHECK(buf != NULL);
  CHECK(agent_get(url, path, buf, ANSWER_CAP) == 200);
  return buf;
}

static void lowercase(char *s) {
  for (; *s != '\0'; s++) *s = (char)tolower((unsigned char)*s);
}

/* As agent_get_raw, lowercased (JSON keys and header names compared without case). */
static char *agent_get_lower(const char *url, const char *path) {
  char *doc = agent_get_raw(url, path);
  lowercase(doc);
  return doc;
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decodes base64 from `in` up to the first character that is not base64 (padding included) into
 * `out` (at least 3/4 of the input long); returns the decoded length. */
static size_t b64_decode(const char *in, unsigned char *out) {
  size_t n = 0;
  unsigned acc = 0;
  int bits = 0;
  for (; b64_value(*in) >= 0; in++) {
    acc = (acc << 6) | (unsigned)b64_value(*in);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (unsigned char)((acc >> bits) & 0xff);
    }
  }
  return n;
}

static bool contains_bytes(const unsigned char *hay, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; i++) {
    if (memcmp(hay + i, needle, n) == 0) return true;
  }
  return false;
}

/* True when some `/v0.6/stats` request body of the raw `/test/session/requests` answer `doc`
 * contains `needle` (the bodies are msgpack: strings appear as they are). */
static bool stats_body_contains(const char *doc, const char *needle) {
  /* Each request is {"headers": {...}, "body": "BASE64", "url": "...", "method": ...}. */
  for (const char *p = strstr(doc, "\"body\": \""); p != NULL; p = strstr(p + 1, "\"body\": \"")) {
    const char *b64 = p + strlen("\"body\": \"");
    const char *url = strstr(b64, "\"url\": \"");
    const char *end = url != NULL ? strchr(url + 8, '"') : NULL;
    if (end == NULL) break;
    const char *stats = strstr(url, "/v0.6/stats");
    if (stats == NULL || stats > end) continue;
    size_t len = (size_t)(url - b64);
    unsigned char *body = malloc(len + 1);
    CHECK(body != NULL);
    size_t n = b64_decode(b64, body);
    bool found = contains_bytes(body, n, needle);
    free(body);
    if (found) return true;
  }
  return false;
}

/* `doc` must contain `needle`; prints the start of `doc` when it does not. */
#define CHECK_HAS(doc, needle)                                                      \
  do {                                                                              \
    if (strstr((doc), (needle)) == NULL) {                                          \
      fprintf(stderr, "%s:%d: %s not found in: %.3000s\n", __FILE__, __LINE__,      \
              (needle), (doc));                                                     \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

/* Occurrences of `needle` in `hay`. */
static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) n++;
  return n;
}

static dp_exporter_builder *base_builder(const char *url, const char *token) {
  dp_exporter_builder *b = dp_exporter_builder_new();
  CHECK(b != NULL);
  CHECK_OK(dp_exporter_builder_set_url(b, dp_str_from_cstr(url)));
  CHECK_OK(dp_exporter_builder_set_language(b, DP_STR("c")));
  CHECK_OK(dp_exporter_builder_set_tracer_version(b, DP_STR("0.0.1")));
  CHECK_OK(dp_exporter_builder_set_service(b, DP_STR("c-stats")));
  CHECK_OK(dp_exporter_builder_set_env(b, DP_STR("test")));
  CHECK_OK(dp_exporter_builder_set_hostname(b, DP_STR("c-host")));
  CHECK_OK(dp_exporter_builder_set_connect_timeout(b, 500));
  CHECK_OK(dp_exporter_builder_set_request_timeout(b, 2000));
  CHECK_OK(dp_exporter_builder_set_send_timeout(b, 5000));
  CHECK_OK(dp_exporter_builder_set_max_retries(b, 0));
  CHECK_OK(dp_exporter_builder_set_test_session_token(b, dp_str_from_cstr(token)));
  return b;
}

static dp_exporter *build(dp_exporter_builder *b) {
  dp_exporter *exporter = NULL;
  CHECK_OK(dp_exporter_builder_build(b, &exporter));
  CHECK(exporter != NULL);
  return exporter;
}

static void build_fails(dp_exporter_builder *b) {
  static char marker;
  dp_exporter *sentinel = (dp_exporter *)(void *)&marker;
  dp_exporter *out = sentinel;
  CHECK_STATUS(dp_exporter_builder_build(b, &out), DP_STATUS_INVALID_ARGUMENT);
  CHECK(out == sentinel);
}

static void setters(void) {
  const dp_str keys[2] = {DP_STR("db.name"), DP_STR("peer.hostname")};
  const dp_str bad_list[2] = {DP_STR("server"), BAD};

  /* NULL builder: every setter refuses it. */
  CHECK_STATUS(dp_exporter_builder_set_runtime_id(NULL, DP_STR("rt")), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_stats(NULL, DP_STATS_MODE_AUTO), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_stats_bucket_size(NULL, 10000), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_stats_peer_tags(NULL, keys, 2), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_stats_span_kinds(NULL, keys, 2), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_stats_max_keys_per_bucket(NULL, 10), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_stats_client_computed_top_level(NULL, true),
               DP_STATUS_NULL_ARGUMENT);

  dp_exporter_builder *b = dp_exporter_builder_new();
  CHECK(b != NULL);
  /* Bad values. */
  CHECK_STATUS(dp_exporter_builder_set_stats(b, 3), DP_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_stats(b, 0xffffffffu), DP_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_runtime_id(b, BAD), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_exporter_builder_set_stats_peer_tags(b, bad_list, 2), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_exporter_builder_set_stats_span_kinds(b, bad_list, 2), DP_STATUS_INVALID_UTF8);
  /* A NULL list is only accepted with length 0. */
  CHECK_STATUS(dp_exporter_builder_set_stats_peer_tags(b, NULL, 1), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_builder_set_stats_span_kinds(b, NULL, 3), DP_STATUS_NULL_ARGUMENT);
  CHECK_OK(dp_exporter_builder_set_stats_peer_tags(b, NULL, 0));
  CHECK_OK(dp_exporter_builder_set_stats_span_kinds(b, NULL, 0));
  /* A view with a NULL pointer and a length. */
  const dp_str null_view[1] = {{NULL, 4}};
  CHECK_STATUS(dp_exporter_builder_set_stats_peer_tags(b, null_view, 1), DP_STATUS_NULL_ARGUMENT);
  /* Good values. */
  CHECK_OK(dp_exporter_builder_set_runtime_id(b, DP_STR("rt-1")));
  CHECK_OK(dp_exporter_builder_set_stats(b, DP_STATS_MODE_OFF));
  CHECK_OK(dp_exporter_builder_set_stats(b, DP_STATS_MODE_ON));
  CHECK_OK(dp_exporter_builder_set_stats(b, DP_STATS_MODE_AUTO));
  CHECK_OK(dp_exporter_builder_set_stats_peer_tags(b, keys, 2));
  CHECK_OK(dp_exporter_builder_set_stats_span_kinds(b, keys, 1));
  CHECK_OK(dp_exporter_builder_set_stats_max_keys_per_bucket(b, 100));
  CHECK_OK(dp_exporter_builder_set_stats_client_computed_top_level(b, false));
  /* Out-of-range bucket sizes and key caps are refused by build (which consumes the builder). */
  CHECK_OK(dp_exporter_builder_set_stats_bucket_size(b, 0));
  build_fails(b);
  b = dp_exporter_builder_new();
  CHECK_OK(dp_exporter_builder_set_stats(b, DP_STATS_MODE_ON));
  CHECK_OK(dp_exporter_builder_set_stats_bucket_size(b, 3600u * 1000u + 1u));
  build_fails(b);
  b = dp_exporter_builder_new();
  CHECK_OK(dp_exporter_builder_set_stats(b, DP_STATS_MODE_ON));
  CHECK_OK(dp_exporter_builder_set_stats_max_keys_per_bucket(b, 0));
  build_fails(b);
  /* Checked even with stats off. */
  b = dp_exporter_builder_new();
  CHECK_OK(dp_exporter_builder_set_stats_max_keys_per_bucket(b, 0));
  build_fails(b);
}

static void getters(void) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u", closed_port());

  /* Stats off. */
  dp_exporter *off = build(base_builder(url, ""));
  dp_stats_state state = 99;
  CHECK_OK(dp_exporter_stats_state(off, &state));
  CHECK(state == DP_STATS_STATE_DISABLED);
  CHECK_OK(dp_exporter_flush_stats(off, true, 100)); /* a no-op */
  double rate = -1.0;
  CHECK_OK(dp_exporter_sampling_rate(off, DP_STR("c-stats"), DP_STR("test"), &rate));
  CHECK(rate == 1.0); /* no feedback yet: keep everything */

  /* NULL and bad arguments: errors, out-params untouched. */
  state = 99;
  CHECK_STATUS(dp_exporter_stats_state(NULL, &state), DP_STATUS_NULL_ARGUMENT);
  CHECK(state == 99);
  CHECK_STATUS(dp_exporter_stats_state(off, NULL), DP_STATUS_NULL_ARGUMENT);
  rate = -1.0;
  CHECK_STATUS(dp_exporter_sampling_rate(NULL, DP_STR("a"), DP_STR("b"), &rate), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_sampling_rate(off, DP_STR("a"), DP_STR("b"), NULL), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_sampling_rate(off, BAD, DP_STR("b"), &rate), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_exporter_sampling_rate(off, DP_STR("a"), BAD, &rate), DP_STATUS_INVALID_UTF8);
  const dp_str null_view = {NULL, 3};
  CHECK_STATUS(dp_exporter_sampling_rate(off, null_view, DP_STR("b"), &rate), DP_STATUS_NULL_ARGUMENT);
  CHECK(rate == -1.0);
  /* Empty service and env: the default key (none yet). */
  CHECK_OK(dp_exporter_sampling_rate(off, DP_STR(""), DP_STR(""), &rate));
  CHECK(rate == 1.0);
  CHECK_STATUS(dp_exporter_flush_stats(NULL, true, 100), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_exporter_shutdown(NULL, 100), DP_STATUS_NULL_ARGUMENT);
  CHECK_OK(dp_exporter_shutdown(off, 100));
  dp_exporter_free(off);

  /* Auto mode towards nothing: waiting for the agent; On mode: enabled at once. */
  dp_exporter_builder *b = base_builder(url, "");
  CHECK_OK(dp_exporter_builder_set_stats(b, DP_STATS_MODE_AUTO));
  dp_exporter *ex = build(b);
  CHECK_OK(dp_exporter_stats_state(ex, &state));
  CHECK(state == DP_STATS_STATE_WAITING_FOR_AGENT);
  dp_exporter_free(ex);

  b = base_builder(url, "");
  CHECK_OK(dp_exporter_builder_set_stats(b, DP_STATS_MODE_ON));
  CHECK_OK(dp_exporter_builder_set_stats_bucket_size(b, 1000));
  ex = build(b);
  CHECK_OK(dp_exporter_stats_state(ex, &state));
  CHECK(state == DP_STATS_STATE_ENABLED);
  /* Nothing counted: nothing to deliver, even towards a closed port. */
  CHECK_OK(dp_exporter_flush_stats(ex, true, 200));
  CHECK_OK(dp_exporter_shutdown(ex, 200));
  CHECK_OK(dp_exporter_stats_state(ex, &state));
  CHECK(state == DP_STATS_STATE_DISABLED);
  dp_exporter_free(ex);
}

static int64_t now_ns(void) {
  struct timespec ts;
  CHECK(clock_gettime(CLOCK_REALTIME, &ts) == 0);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static dp_span *make_span(uint64_t trace_id, uint64_t span_id, uint64_t parent, const char *resource) {
  dp_span *span = dp_span_new();
  CHECK(span != NULL);
  CHECK_OK(dp_span_set_service(span, DP_STR("c-stats")));
  CHECK_OK(dp_span_set_name(span, DP_STR("c.stats.op")));
  CHECK_OK(dp_span_set_resource(span, dp_str_from_cstr(resource)));
  CHECK_OK(dp_span_set_trace_id(span, 0, trace_id));
  CHECK_OK(dp_span_set_span_id(span, span_id));
  CHECK_OK(dp_span_set_parent_id(span, parent));
  CHECK_OK(dp_span_set_start(span, now_ns() - 2000000));
  CHECK_OK(dp_span_set_duration(span, 1000000));
  return span;
}

/* Three chunks: a kept one (a server root and an SQL client child), a P0 one (dropped, its stats
 * still counted), a P0 one with an error (kept). `base` makes the trace ids unique per call. */
static void make_traces(uint64_t base, dp_trace *out[3]) {
  dp_trace *kept = dp_trace_new();
  dp_span *root = make_span(base + 1, 1, 0, "GET /c-stats");
  CHECK_OK(dp_span_set_meta(root, DP_STR("span.kind"), DP_STR("server")));
  CHECK_OK(dp_span_set_metric(root, DP_STR("_sampling_priority_v1"), 1.0));
  CHECK_OK(dp_trace_push_span(kept, root));
  dp_span *db = make_span(base + 1, 2, 1, "SELECT * FROM orders WHERE id = 42");
  CHECK_OK(dp_span_set_type(db, DP_STR("sql")));
  CHECK_OK(dp_span_set_meta(db, DP_STR("span.kind"), DP_STR("client")));
  CHECK_OK(dp_span_set_meta(db, DP_STR("peer.hostname"), DP_STR("db-1")));
  CHECK_OK(dp_trace_push_span(kept, db));

  dp_trace *p0 = dp_trace_new();
  dp_span *s = make_span(base + 2, 1, 0, "p0-dropped");
  CHECK_OK(dp_span_set_metric(s, DP_STR("_sampling_priority_v1"), 0.0));
  CHECK_OK(dp_trace_push_span(p0, s));

  dp_trace *p0_error = dp_trace_new();
  s = make_span(base + 3, 1, 0, "p0-error");
  CHECK_OK(dp_span_set_metric(s, DP_STR("_sampling_priority_v1"), 0.0));
  CHECK_OK(dp_span_set_error(s, 1));
  CHECK_OK(dp_trace_push_span(p0_error, s));
  out[0] = kept;
  out[1] = p0;
  out[2] = p0_error;
}

static void start_session(const char *url, const char *token) {
  char path[256];
  snprintf(path, sizeof path,
           "/test/session/start?test_session_token=%s&agent_sample_rate_by_service="
           "%%7B%%22service:c-stats,env:test%%22:0.25,%%22service:,env:%%22:0.75%%7D",
           token);
  free(agent_get_raw(url, path));
}

static char *session_get(const char *url, const char *what, const char *token) {
  char path[256];
  snprintf(path, sizeof path, "/test/session/%s?test_session_token=%s", what, token);
  return agent_get_lower(url, path);
}

static dp_exporter *stats_exporter(const char *url, const char *token) {
  dp_exporter_builder *b = base_builder(url, token);
  CHECK_OK(dp_exporter_builder_set_stats(b, DP_STATS_MODE_AUTO));
  CHECK_OK(dp_exporter_builder_set_runtime_id(b, DP_STR("rt-c-stats")));
  const dp_str peers[1] = {DP_STR("peer.hostname")};
  CHECK_OK(dp_exporter_builder_set_stats_peer_tags(b, peers, 1));
  const dp_str kinds[2] = {DP_STR("server"), DP_STR("client")};
  CHECK_OK(dp_exporter_builder_set_stats_span_kinds(b, kinds, 2));
  CHECK_OK(dp_exporter_builder_set_stats_max_keys_per_bucket(b, 1000));
  CHECK_OK(dp_exporter_builder_set_stats_bucket_size(b, 10000));
  CHECK_OK(dp_exporter_builder_set_stats_client_computed_top_level(b, false));
  return build(b);
}

/* The stats and requests of a session: 4 keys from the 3 chunks (the SQL one obfuscated, with
 * its peer tag), the P0 chunk dropped from the traces and counted in the headers. */
static void check_session(const char *url, const char *token, bool sync_headers) {
  /* The agent's decoded view (it leaves out the newer fields: runtime id, peer tags ...). */
  char *stats = session_get(url, "stats", token);
  CHECK_HAS(stats, "\"hostname\": \"c-host\"");
  CHECK_HAS(stats, "\"get /c-stats\"");
  CHECK_HAS(stats, "\"select * from orders where id = ?\"");
  CHECK_HAS(stats, "\"p0-dropped\"");
  CHECK_HAS(stats, "\"p0-error\"");
  CHECK(count(stats, "\"hits\": 1,") == 4);
  CHECK(count(stats, "\"errors\": 1,") == 1);
  free(stats);

  char *traces = session_get(url, "traces", token);
  CHECK_HAS(traces, "\"get /c-stats\"");
  CHECK_HAS(traces, "\"p0-error\"");
  CHECK(strstr(traces, "p0-dropped") == NULL);
  free(traces);

  char path[256];
  snprintf(path, sizeof path, "/test/session/requests?test_session_token=%s", token);
  char *requests = agent_get_raw(url, path);
  CHECK_HAS(requests, "/v0.6/stats");
  /* The raw stats bodies: runtime id and the SQL client span's peer tag. */
  CHECK(stats_body_contains(requests, "rt-c-stats"));
  CHECK(stats_body_contains(requests, "peer.hostname:db-1"));
  CHECK(stats_body_contains(requests, "c-stats"));
  CHECK(!stats_body_contains(requests, "no-such-string"));
  lowercase(requests);
  if (sync_headers) {
    CHECK_HAS(requests, "\"datadog-client-computed-stats\": \"true\"");
    CHECK_HAS(requests, "\"datadog-client-dropped-p0-traces\": \"1\"");
    CHECK_HAS(requests, "\"datadog-client-dropped-p0-spans\": \"1\"");
  }
  free(requests);
}

static void with_agent(const char *url) {
  char token[64];
  snprintf(token, sizeof token, "c-stats-sync-%ld", (long)getpid());
  start_session(url, token);
  dp_exporter *ex = stats_exporter(url, token);
  dp_stats_state state = 99;
  CHECK_OK(dp_exporter_stats_state(ex, &state));
  CHECK(state == DP_STATS_STATE_WAITING_FOR_AGENT);

  dp_trace *traces[3];
  make_traces(9000, traces);
  dp_response *response = NULL;
  CHECK_OK(dp_exporter_send_traces(ex, (const dp_trace *const *)traces, 3, &response));
  CHECK(dp_response_status(response) == 200);
  dp_response_free(response);
  for (int i = 0; i < 3; i++) dp_trace_free(traces[i]);

  /* The first send waited for /info: the test agent allows client stats. */
  CHECK_OK(dp_exporter_stats_state(ex, &state));
  CHECK(state == DP_STATS_STATE_ENABLED);
  /* Sampling feedback from that answer: the key, the default key for others. */
  double rate = -1.0;
  CHECK_OK(dp_exporter_sampling_rate(ex, DP_STR("c-stats"), DP_STR("test"), &rate));
  CHECK(rate == 0.25);
  CHECK_OK(dp_exporter_sampling_rate(ex, DP_STR("other"), DP_STR("test"), &rate));
  CHECK(rate == 0.75);

  CHECK_OK(dp_exporter_flush_stats(ex, true, 5000));
  CHECK_OK(dp_exporter_shutdown(ex, 5000));
  CHECK_OK(dp_exporter_stats_state(ex, &state));
  CHECK(state == DP_STATS_STATE_DISABLED);
  dp_exporter_free(ex);
  check_session(url, token, true);

  /* The background path: the same chunks enqueued; the P0 one counted in dp_health. */
  snprintf(token, sizeof token, "c-stats-bg-%ld", (long)getpid());
  start_session(url, token);
  ex = stats_exporter(url, token);
  make_traces(9100, traces);
  CHECK_OK(dp_exporter_enqueue_traces(ex, (const dp_trace *const *)traces, 3));
  for (int i = 0; i < 3; i++) dp_trace_free(traces[i]);
  CHECK_OK(dp_exporter_shutdown(ex, 10000));
  dp_health health;
  memset(&health, 0, sizeof health);
  health.size = sizeof health;
  CHECK_OK(dp_exporter_health(ex, &health));
  CHECK(health.dropped_p0 == 1);
  CHECK(health.traces_sent == 2);
  dp_exporter_free(ex);
  check_session(url, token, false);
}

int main(void) {
  setters();
  getters();
  const char *url = getenv("DP_TEST_AGENT_URL");
  if (url != NULL && url[0] != '\0') {
    with_agent(url);
    puts("test_stats: ok (with the test agent)");
  } else {
    puts("test_stats: ok (agent part skipped: DP_TEST_AGENT_URL is not set)");
  }
  return 0;
}
