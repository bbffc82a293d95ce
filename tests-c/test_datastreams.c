/* The data streams ABI: builder rules (consume on error, out-params untouched), NULL and bad UTF-8
 * arguments, context codecs (forgiving decode), merge, carriers over header arrays and callbacks,
 * checkpoints shared by several threads, a fork; with DP_TEST_AGENT_URL set (a real Datadog test
 * agent), a produce -> consume -> produce pipeline started from an exporter's settings is flushed
 * and the agent is asked what it received. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "check.h"

#define T0 INT64_C(1700000000000000000) /* ns */
#define SEC INT64_C(1000000000)

static dp_data_streams *standalone(const char *url) {
  dp_data_streams_builder *b = dp_data_streams_builder_new();
  CHECK(b != NULL);
  CHECK_OK(dp_data_streams_builder_set_url(b, dp_str_from_cstr(url)));
  CHECK_OK(dp_data_streams_builder_set_service(b, DP_STR("svc-a")));
  CHECK_OK(dp_data_streams_builder_set_env(b, DP_STR("prod")));
  CHECK_OK(dp_data_streams_builder_set_app_version(b, DP_STR("1.0")));
  CHECK_OK(dp_data_streams_builder_set_language(b, DP_STR("c")));
  CHECK_OK(dp_data_streams_builder_set_language_version(b, DP_STR("11")));
  CHECK_OK(dp_data_streams_builder_set_tracer_version(b, DP_STR("0.0.1")));
  CHECK_OK(dp_data_streams_builder_set_container_id(b, DP_STR("")));
  CHECK_OK(dp_data_streams_builder_set_test_session_token(b, DP_STR("")));
  CHECK_OK(dp_data_streams_builder_add_header(b, DP_STR("X-Test"), DP_STR("1")));
  CHECK_OK(dp_data_streams_builder_add_process_tag(b, DP_STR("entrypoint.name:c-test")));
  CHECK_OK(dp_data_streams_builder_set_hash_process_tags(b, false));
  CHECK_OK(dp_data_streams_builder_set_flush_interval(b, 0));
  CHECK_OK(dp_data_streams_builder_set_bucket_duration(b, 10000));
  CHECK_OK(dp_data_streams_builder_set_connect_timeout(b, 500));
  CHECK_OK(dp_data_streams_builder_set_request_timeout(b, 2000));
  dp_data_streams *ds = NULL;
  CHECK_OK(dp_data_streams_builder_build(b, &ds));
  CHECK(ds != NULL);
  return ds;
}

static void rules(void) {
  dp_data_streams_free(NULL);
  dp_data_streams_builder_free(NULL);
  dp_pathway_context_free(NULL);

  /* build consumes the builder, also on error; *out is untouched on error. */
  dp_data_streams_builder *b = dp_data_streams_builder_new();
  CHECK_OK(dp_data_streams_builder_set_url(b, DP_STR("not a url")));
  dp_data_streams *ds = (dp_data_streams *)&b; /* a sentinel */
  CHECK_STATUS(dp_data_streams_builder_build(b, &ds), DP_STATUS_INVALID_ARGUMENT);
  CHECK(ds == (dp_data_streams *)&b);
  b = dp_data_streams_builder_new();
  CHECK_STATUS(dp_data_streams_builder_build(b, NULL), DP_STATUS_NULL_ARGUMENT);
  b = dp_data_streams_builder_new();
  CHECK_OK(dp_data_streams_builder_set_connect_timeout(b, 0));
  CHECK_STATUS(dp_data_streams_builder_build(b, &ds), DP_STATUS_INVALID_ARGUMENT);
  /* A builder never built is freed. */
  b = dp_data_streams_builder_new();
  const char bad[] = {'s', (char)0xff};
  CHECK_STATUS(dp_data_streams_builder_set_service(b, (dp_str){bad, 2}), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_data_streams_builder_set_env(NULL, DP_STR("x")), DP_STATUS_NULL_ARGUMENT);
  dp_data_streams_builder_free(b);
  dp_data_streams_builder *from = NULL;
  CHECK_STATUS(dp_data_streams_builder_new_from_exporter(NULL, &from), DP_STATUS_NULL_ARGUMENT);
  CHECK(from == NULL);

  ds = standalone("unix:///nonexistent/dp-c-test.sock");
  dp_pathway_context *out = NULL;
  dp_str tags[2] = {DP_STR("type:x"), {bad, 2}};
  CHECK_STATUS(dp_data_streams_set_checkpoint(ds, NULL, tags, 2, 0, &out), DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_data_streams_set_checkpoint(ds, NULL, NULL, 1, 0, &out), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_data_streams_set_checkpoint(NULL, NULL, tags, 1, 0, &out), DP_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(dp_data_streams_set_checkpoint(ds, NULL, tags, 1, 0, NULL), DP_STATUS_NULL_ARGUMENT);
  CHECK(out == NULL);
  CHECK(dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_CHECKPOINTS) == 0);
  CHECK_STATUS(dp_data_streams_kafka_produce(ds, NULL, (dp_str){bad, 2}, DP_STR(""), 1, &out),
               DP_STATUS_INVALID_UTF8);
  CHECK_STATUS(dp_data_streams_track_kafka_commit_offset(ds, DP_STR("g"), (dp_str){NULL, 3}, DP_STR(""),
                                                          0, 1),
               DP_STATUS_NULL_ARGUMENT);
  /* No agent at that socket: a network error, reported, data dropped. */
  CHECK_OK(dp_data_streams_set_checkpoint(ds, NULL, tags, 1, 5, &out));
  CHECK(out != NULL);
  CHECK_STATUS(dp_data_streams_flush(ds, 2000), DP_STATUS_NETWORK);
  CHECK(dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_SEND_ERRORS) == 1);
  dp_str service = dp_data_streams_service(ds);
  CHECK(service.len == 5 && memcmp(service.ptr, "svc-a", 5) == 0);
  CHECK_OK(dp_data_streams_shutdown(ds, 1000));
  /* After shutdown, checkpoints still give contexts. */
  dp_pathway_context *after = NULL;
  CHECK_OK(dp_data_streams_set_checkpoint(ds, out, tags, 1, 5, &after));
  CHECK(dp_pathway_context_hash(after) != 0);
  dp_pathway_context_free(after);
  dp_pathway_context_free(out);
  dp_data_streams_free(ds);
  CHECK(dp_pathway_context_hash(NULL) == 0);
  CHECK(dp_data_streams_stat(NULL, 0) == 0);
}

static void codecs(void) {
  dp_pathway_context *ctx =
      dp_pathway_context_new(UINT64_C(0x0123456789abcdef), INT64_C(1700000000000) * 1000000,
                             INT64_C(1700000000500) * 1000000);
  char text[DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
  size_t len = 0;
  CHECK_OK(dp_pathway_context_encode_base64(ctx, text, sizeof text, &len));
  CHECK(len == 28 && strlen(text) == 28);
  char small[28];
  CHECK_STATUS(dp_pathway_context_encode_base64(ctx, small, sizeof small, &len), DP_STATUS_INVALID_ARGUMENT);
  dp_pathway_context *back = NULL;
  CHECK_OK(dp_pathway_context_decode_base64(DP_BYTES(text, len), &back));
  CHECK(back != NULL);
  CHECK(dp_pathway_context_hash(back) == UINT64_C(0x0123456789abcdef));
  CHECK(dp_pathway_context_pathway_start_ns(back) == INT64_C(1700000000000) * 1000000);
  CHECK(dp_pathway_context_edge_start_ns(back) == INT64_C(1700000000500) * 1000000);
  dp_pathway_context_free(back);

  uint8_t bin[DP_PATHWAY_CONTEXT_ENCODED_CAPACITY];
  CHECK_OK(dp_pathway_context_encode(ctx, bin, sizeof bin, &len));
  CHECK(len == 20);
  CHECK_OK(dp_pathway_context_decode(DP_BYTES(bin, len), &back));
  CHECK(dp_pathway_context_hash(back) == UINT64_C(0x0123456789abcdef));
  dp_pathway_context_free(back);

  /* Forgiving: no context is not an error. */
  const char *junk[] = {"", "!!!!", "AAAA", "ASNFZ4mrze_-_-_-_-_-_-_-_-_-"};
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
    back = (dp_pathway_context *)&len;
    CHECK_OK(dp_pathway_context_decode_base64(DP_BYTES(junk[i], strlen(junk[i])), &back));
    CHECK(back == NULL);
  }
  CHECK_OK(dp_pathway_context_decode(DP_BYTES(bin, 9), &back));
  CHECK(back == NULL);
  CHECK_STATUS(dp_pathway_context_decode(DP_BYTES(NULL, 3), &back), DP_STATUS_NULL_ARGUMENT);

  /* Fan-in: the oldest pathway wins; NULL inputs are skipped. */
  dp_pathway_context *a = dp_pathway_context_new(1, 5 * SEC, 9 * SEC);
  dp_pathway_context *b = dp_pathway_context_new(2, 3 * SEC, 9 * SEC);
  const dp_pathway_context *in[3] = {a, NULL, b};
  dp_pathway_context *merged = NULL;
  CHECK_OK(dp_pathway_context_merge(in, 3, &merged));
  CHECK(dp_pathway_context_hash(merged) == 2);
  dp_pathway_context_free(merged);
  const dp_pathway_context *none[1] = {NULL};
  CHECK_OK(dp_pathway_context_merge(none, 1, &merged));
  CHECK(merged == NULL);
  dp_pathway_context_free(a);
  dp_pathway_context_free(b);
  dp_pathway_context_free(ctx);
}

/* A tiny carrier for the callbacks: up to 4 entries. */
struct carrier {
  char keys[4][32];
  char values[4][64];
  size_t lens[4];
  int n;
  int sets;
};

static void carrier_set(void *user_data, dp_str key, dp_str value) {
  struct carrier *c = (struct carrier *)user_data;
  CHECK(key.ptr[key.len] == '\0' && value.ptr[value.len] == '\0');
  CHECK(c->n < 4 && key.len < 32 && value.len < 64);
  memcpy(c->keys[c->n], key.ptr, key.len + 1);
  memcpy(c->values[c->n], value.ptr, value.len + 1);
  c->lens[c->n] = value.len;
  c->n++;
  c->sets++;
}

static bool carrier_get(void *user_data, dp_str key, dp_bytes *value) {
  struct carrier *c = (struct carrier *)user_data;
  CHECK(key.ptr[key.len] == '\0');
  for (int i = c->n - 1; i >= 0; i--) {
    if (strcmp(c->keys[i], key.ptr) == 0) {
      *value = DP_BYTES(c->values[i], c->lens[i]);
      return true;
    }
  }
  return false;
}

static void carriers(void) {
  dp_pathway_context *ctx = dp_pathway_context_new(42, T0, T0 + SEC);
  struct carrier c;
  memset(&c, 0, sizeof c);
  CHECK_OK(dp_pathway_context_inject(ctx, carrier_set, &c));
  CHECK(c.sets == 1 && strcmp(c.keys[0], "dd-pathway-ctx-base64") == 0 && c.lens[0] == 28);
  dp_str key = dp_pathway_context_key();
  CHECK(key.len == 21 && strcmp(key.ptr, "dd-pathway-ctx-base64") == 0);
  dp_pathway_context *got = NULL;
  CHECK_OK(dp_pathway_context_extract(carrier_get, &c, &got));
  CHECK(dp_pathway_context_hash(got) == 42);
  dp_pathway_context_free(got);
  /* Legacy binary key as a fallback. */
  struct carrier legacy;
  memset(&legacy, 0, sizeof legacy);
  dp_str lkey = dp_pathway_context_legacy_key();
  memcpy(legacy.keys[0], lkey.ptr, lkey.len + 1);
  CHECK_OK(dp_pathway_context_encode(ctx, (uint8_t *)legacy.values[0], sizeof legacy.values[0],
                                     &legacy.lens[0]));
  legacy.n = 1;
  CHECK_OK(dp_pathway_context_extract(carrier_get, &legacy, &got));
  CHECK(dp_pathway_context_hash(got) == 42);
  dp_pathway_context_free(got);
  struct carrier empty;
  memset(&empty, 0, sizeof empty);
  CHECK_OK(dp_pathway_context_extract(carrier_get, &empty, &got));
  CHECK(got == NULL);
  CHECK_STATUS(dp_pathway_context_extract(NULL, &empty, &got), DP_STATUS_NULL_ARGUMENT);

  /* Kafka header arrays: append, then replace. */
  dp_kafka_header headers[3] = {{DP_STR("app"), DP_BYTES("x", 1)}};
  size_t n = 1;
  char value[DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
  CHECK_OK(dp_pathway_context_inject_kafka(ctx, headers, &n, 3, value, sizeof value));
  CHECK(n == 2 && headers[1].key.len == 21 && headers[1].value.len == 28);
  dp_pathway_context *other = dp_pathway_context_new(43, T0, T0);
  char value2[DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
  CHECK_OK(dp_pathway_context_inject_kafka(other, headers, &n, 3, value2, sizeof value2));
  CHECK(n == 2);
  CHECK_OK(dp_pathway_context_extract_kafka(headers, n, &got));
  CHECK(dp_pathway_context_hash(got) == 43);
  dp_pathway_context_free(got);
  size_t full = 1;
  CHECK_STATUS(dp_pathway_context_inject_kafka(ctx, headers, &full, 1, value, sizeof value),
               DP_STATUS_INVALID_ARGUMENT);
  CHECK(full == 1);

  /* HTTP header arrays: names in any case. */
  dp_http_header http[2] = {{DP_STR("Host"), DP_STR("example")},
                            {DP_STR("DD-PATHWAY-CTX-BASE64"), DP_STR("stale")}};
  n = 2;
  CHECK_OK(dp_pathway_context_inject_http(ctx, http, &n, 2, value, sizeof value));
  CHECK(n == 2 && http[1].value.len == 28);
  CHECK_OK(dp_pathway_context_extract_http(http, n, &got));
  CHECK(dp_pathway_context_hash(got) == 42);
  dp_pathway_context_free(got);
  dp_pathway_context_free(other);
  dp_pathway_context_free(ctx);
}

#define THREADS 4
#define CHECKPOINTS 500

static void *worker(void *arg) {
  dp_data_streams *ds = (dp_data_streams *)arg;
  dp_pathway_context *parent = NULL;
  for (int i = 0; i < CHECKPOINTS; i++) {
    dp_str tags[3] = {i % 2 ? DP_STR("direction:in") : DP_STR("direction:out"), DP_STR("type:kafka"),
                      DP_STR("topic:orders")};
    dp_pathway_context *next = NULL;
    CHECK_OK(dp_data_streams_set_checkpoint(ds, parent, tags, 3, i, &next));
    dp_pathway_context_free(parent);
    parent = next;
  }
  dp_pathway_context_free(parent);
  return NULL;
}

static void threads(void) {
  dp_data_streams *ds = standalone("unix:///nonexistent/dp-c-test.sock");
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, worker, ds) == 0);
  for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
  CHECK(dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_CHECKPOINTS) == THREADS * CHECKPOINTS);
  dp_data_streams_free(ds);
}

/* A child forked while data streams (with a background thread) exist can still checkpoint: its
 * first call builds the child's own state (aggregator, client, flush thread), with counters that
 * start at zero (the parent's checkpoint is not the child's to send). It can free the inherited
 * data streams (its own state is shut down; the parent's is left alone) and start and free its
 * own. */
static void fork_child(void) {
  dp_data_streams_builder *b = dp_data_streams_builder_new();
  CHECK_OK(dp_data_streams_builder_set_url(b, DP_STR("unix:///nonexistent/dp-c-test.sock")));
  CHECK_OK(dp_data_streams_builder_set_flush_interval(b, 50));
  dp_data_streams *ds = NULL;
  CHECK_OK(dp_data_streams_builder_build(b, &ds));
  dp_str tags[1] = {DP_STR("type:x")};
  dp_pathway_context *ctx = NULL;
  CHECK_OK(dp_data_streams_set_checkpoint(ds, NULL, tags, 1, 1, &ctx));
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    dp_pathway_context *next = NULL;
    dp_error *err = dp_data_streams_set_checkpoint(ds, ctx, tags, 1, 1, &next);
    int code = err == NULL && dp_pathway_context_hash(next) != 0 ? 0 : 3;
    dp_error_free(err);
    dp_pathway_context_free(next);
    /* Fresh counters: the parent's checkpoint is not counted (nor sent) by the child. */
    if (dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_CHECKPOINTS) != 1) code = 5;
    /* Bounded: shuts the child's own state down (its flush thread included). */
    dp_data_streams_free(ds);
    dp_data_streams *mine = standalone("unix:///nonexistent/dp-c-test.sock");
    err = dp_data_streams_set_checkpoint(mine, ctx, tags, 1, 1, &next);
    code = err == NULL ? code : 4;
    dp_error_free(err);
    dp_pathway_context_free(next);
    dp_data_streams_free(mine);
    /* The parent's state is left alone in the child (its thread does not exist here): end
     * through exec so that valgrind does not report that inherited memory as leaked. The exit
     * status carries the result. */
    if (code == 0) {
      execl("/bin/true", "true", (char *)NULL);
    } else {
      execl("/bin/false", "false", (char *)NULL);
    }
    _exit(code);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  dp_pathway_context_free(ctx);
  dp_data_streams_free(ds);
}

static void agent(const char *url) {
  static char answer[1 << 20];
  const char *token = "c-test-datastreams";
  char path[256];
  snprintf(path, sizeof path, "/test/session/start?test_session_token=%s", token);
  CHECK(agent_get(url, path, answer, sizeof answer) == 200);

  /* Data streams follow the exporter's settings (URL, service, token). */
  dp_exporter_builder *eb = dp_exporter_builder_new();
  CHECK_OK(dp_exporter_builder_set_url(eb, dp_str_from_cstr(url)));
  CHECK_OK(dp_exporter_builder_set_service(eb, DP_STR("c-dsm")));
  CHECK_OK(dp_exporter_builder_set_env(eb, DP_STR("test")));
  CHECK_OK(dp_exporter_builder_set_language(eb, DP_STR("c")));
  CHECK_OK(dp_exporter_builder_set_test_session_token(eb, dp_str_from_cstr(token)));
  dp_exporter *exporter = NULL;
  CHECK_OK(dp_exporter_builder_build(eb, &exporter));
  dp_data_streams *ds = NULL;
  CHECK_OK(dp_data_streams_new_from_exporter(exporter, &ds));

  dp_kafka_header headers[2] = {{DP_STR("k"), DP_BYTES("v", 1)}};
  size_t n = 1;
  char value[DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
  dp_pathway_context *produced = NULL, *extracted = NULL, *consumed = NULL, *forwarded = NULL;
  CHECK_OK(dp_data_streams_kafka_produce(ds, NULL, DP_STR("orders"), DP_STR(""), 100, &produced));
  CHECK_OK(dp_pathway_context_inject_kafka(produced, headers, &n, 2, value, sizeof value));
  CHECK_OK(dp_pathway_context_extract_kafka(headers, n, &extracted));
  CHECK(dp_pathway_context_hash(extracted) == dp_pathway_context_hash(produced));
  CHECK_OK(dp_data_streams_kafka_consume(ds, extracted, DP_STR("orders"), DP_STR("billing"), DP_STR(""),
                                         149, &consumed));
  CHECK_OK(dp_data_streams_kafka_produce(ds, consumed, DP_STR("invoices"), DP_STR(""), 10, &forwarded));
  CHECK_OK(dp_data_streams_track_kafka_produce_offset(ds, DP_STR("orders"), DP_STR(""), 0, 7));
  CHECK_OK(dp_data_streams_track_kafka_commit_offset(ds, DP_STR("billing"), DP_STR("orders"), DP_STR(""),
                                                     0, 8));
  CHECK_OK(dp_data_streams_flush(ds, 5000));
  CHECK(dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_PAYLOADS_SENT) == 1);
  CHECK(dp_data_streams_stat(ds, DP_DATA_STREAMS_STAT_CHECKPOINTS) == 3);

  snprintf(path, sizeof path, "/test/session/requests?test_session_token=%s", token);
  CHECK(agent_get(url, path, answer, sizeof answer) == 200);
  CHECK(strstr(answer, "/v0.1/pipeline_stats") != NULL);
  CHECK_OK(dp_data_streams_shutdown(ds, 2000));

  dp_pathway_context_free(produced);
  dp_pathway_context_free(extracted);
  dp_pathway_context_free(consumed);
  dp_pathway_context_free(forwarded);
  dp_data_streams_free(ds);
  dp_exporter_free(exporter);
}

int main(void) {
  rules();
  codecs();
  carriers();
  threads();
  fork_child();
  const char *url = getenv("DP_TEST_AGENT_URL");
  if (url == NULL || *url == '\0') {
    fprintf(stderr, "DP_TEST_AGENT_URL not set: agent part skipped\n");
    return SKIP_EXIT;
  }
  agent(url);
  return 0;
}
