/* Data Streams Monitoring over Kafka, in C, with librdkafka: a producer service writes orders to a
 * topic, a consumer service reads them in a consumer group. The pathway context travels in the
 * message headers through the library's callback carrier (dp_pathway_context_inject / _extract over
 * rd_kafka_headers_t); the producer tracks the offsets of its delivery reports, the consumer the
 * offsets it commits.
 *
 *   dsm_kafka AGENT_URL BOOTSTRAP [MESSAGES]
 *
 * Topic and group: $DSM_TOPIC (default dsm-example-orders-c, created by the broker on first use) and
 * $DSM_GROUP (default dsm-example-billing-c). $DP_TEST_SESSION_TOKEN, when set, tags the payloads for
 * the Datadog test agent. Build: needs librdkafka (Debian: librdkafka-dev). Exit status: 0 ok,
 * 1 error, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data-pipeline.h"

static bool failed(dp_error *err, const char *what) {
  if (err == NULL) return false;
  fprintf(stderr, "error: %s: %s: %s\n", what, dp_status_name(dp_error_code(err)), dp_error_message(err));
  dp_error_free(err);
  return true;
}

static dp_data_streams *start(const char *agent_url, const char *service) {
  dp_data_streams_builder *b = dp_data_streams_builder_new();
  if (failed(dp_data_streams_builder_set_url(b, dp_str_from_cstr(agent_url)), "url") ||
      failed(dp_data_streams_builder_set_service(b, dp_str_from_cstr(service)), "service") ||
      failed(dp_data_streams_builder_set_env(b, DP_STR("demo")), "env") ||
      failed(dp_data_streams_builder_set_language(b, DP_STR("c")), "language") ||
      failed(dp_data_streams_builder_set_tracer_version(b, DP_STR("example")), "tracer_version") ||
      failed(dp_data_streams_builder_set_test_session_token(b, dp_str_from_cstr(getenv("DP_TEST_SESSION_TOKEN"))),
             "token")) {
    dp_data_streams_builder_free(b);
    return NULL;
  }
  dp_data_streams *ds = NULL;
  if (failed(dp_data_streams_builder_build(b, &ds), "build")) return NULL;
  return ds;
}

/* The carrier callbacks over librdkafka's header list (user_data = rd_kafka_headers_t *). The
 * library calls them on this thread, during the inject/extract call only. Keys are NUL-terminated. */
static void header_set(void *user_data, dp_str key, dp_str value) {
  rd_kafka_headers_t *hdrs = (rd_kafka_headers_t *)user_data;
  rd_kafka_header_remove(hdrs, key.ptr);
  rd_kafka_header_add(hdrs, key.ptr, (ssize_t)key.len, value.ptr, (ssize_t)value.len);
}

static bool header_get(void *user_data, dp_str key, dp_bytes *value) {
  const void *v = NULL;
  size_t size = 0;
  if (rd_kafka_header_get_last((const rd_kafka_headers_t *)user_data, key.ptr, &v, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      v == NULL) {
    return false;
  }
  *value = DP_BYTES(v, size);
  return true;
}

/* Key + value + every header (name and value): the message size data streams reports. */
static int64_t message_size(const rd_kafka_message_t *msg, const rd_kafka_headers_t *hdrs) {
  int64_t size = (int64_t)msg->key_len + (int64_t)msg->len;
  const char *name;
  const void *v;
  size_t vsize;
  for (size_t i = 0; hdrs != NULL && rd_kafka_header_get_all(hdrs, i, &name, &v, &vsize) == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
    size += (int64_t)(strlen(name) + vsize);
  }
  return size;
}

/* Delivery reports (from rd_kafka_poll/flush, on this thread): the produce offset backlog. */
static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
  (void)rk;
  dp_data_streams *ds = (dp_data_streams *)opaque;
  if (msg->err) {
    fprintf(stderr, "error: delivery: %s\n", rd_kafka_err2str(msg->err));
    return;
  }
  const char *topic = rd_kafka_topic_name(msg->rkt);
  failed(dp_data_streams_track_kafka_produce_offset(ds, dp_str_from_cstr(topic), DP_STR(""), msg->partition, msg->offset),
         "track produce offset");
  printf("produced %.*s -> partition %" PRId32 " offset %" PRId64 "\n", (int)msg->key_len, (const char *)msg->key,
         msg->partition, msg->offset);
}

static int produce(dp_data_streams *ds, const char *bootstrap, const char *topic, int count) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "error: %s\n", err);
    rd_kafka_conf_destroy(conf);
    return 1;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, delivered);
  rd_kafka_conf_set_opaque(conf, ds);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == NULL) {
    fprintf(stderr, "error: %s\n", err);
    return 1;
  }
  int rc = 0;
  for (int i = 0; i < count && rc == 0; i++) {
    char key[32], value[64];
    int klen = snprintf(key, sizeof key, "order-%d", i);
    int vlen = snprintf(value, sizeof value, "{\"order\": %d, \"amount\": %d}", i, 10 * i);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
    rd_kafka_header_add(hdrs, "app", -1, "dsm-example-c", -1);
    /* The checkpoint counts key + value + the headers so far; it adds the context header itself. */
    int64_t size = klen + vlen + (int64_t)strlen("app") + (int64_t)strlen("dsm-example-c");
    dp_pathway_context *ctx = NULL;
    if (failed(dp_data_streams_kafka_produce(ds, NULL, dp_str_from_cstr(topic), DP_STR(""), size, &ctx), "produce") ||
        failed(dp_pathway_context_inject(ctx, header_set, hdrs), "inject")) {
      rd_kafka_headers_destroy(hdrs);
      dp_pathway_context_free(ctx);
      rc = 1;
      break;
    }
    printf("produce %s: context hash %" PRIu64 "\n", key, dp_pathway_context_hash(ctx));
    dp_pathway_context_free(ctx);
    rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, (size_t)klen),
                                              RD_KAFKA_V_VALUE(value, (size_t)vlen), RD_KAFKA_V_HEADERS(hdrs),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e) { /* on success librdkafka owns hdrs */
      fprintf(stderr, "error: produce: %s\n", rd_kafka_err2str(e));
      rd_kafka_headers_destroy(hdrs);
      rc = 1;
    }
    rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fprintf(stderr, "error: messages not delivered within 30 s\n");
    rc = 1;
  }
  rd_kafka_destroy(rk);
  return rc;
}

static int consume(dp_data_streams *ds, const char *bootstrap, const char *topic, const char *group, int count) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *settings[][2] = {{"bootstrap.servers", bootstrap},
                               {"group.id", group},
                               {"auto.offset.reset", "earliest"},
                               {"enable.auto.commit", "false"}};
  for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
    if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof err) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "error: %s\n", err);
      rd_kafka_conf_destroy(conf);
      return 1;
    }
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == NULL) {
    fprintf(stderr, "error: %s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t *subscription = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subscription, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, subscription);
  rd_kafka_topic_partition_list_destroy(subscription);

  int got = 0, rc = 0;
  time_t deadline = time(NULL) + 60;
  while (got < count && rc == 0 && time(NULL) < deadline) {
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 1000);
    if (msg == NULL) continue;
    if (msg->err) {
      if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        fprintf(stderr, "error: consume: %s\n", rd_kafka_message_errstr(msg));
        rc = 1;
      }
      rd_kafka_message_destroy(msg);
      continue;
    }
    rd_kafka_headers_t *hdrs = NULL; /* owned by msg */
    rd_kafka_message_headers(msg, &hdrs);
    dp_pathway_context *received = NULL, *ctx = NULL;
    if (hdrs != NULL && failed(dp_pathway_context_extract(header_get, hdrs, &received), "extract")) rc = 1;
    if (rc == 0 && failed(dp_data_streams_kafka_consume(ds, received, dp_str_from_cstr(topic), dp_str_from_cstr(group),
                                                        DP_STR(""), message_size(msg, hdrs), &ctx),
                          "consume")) {
      rc = 1;
    }
    if (rc == 0) {
      double ms = (double)(dp_pathway_context_edge_start_ns(ctx) - dp_pathway_context_pathway_start_ns(ctx)) / 1e6;
      printf("consumed %.*s (partition %" PRId32 " offset %" PRId64 "): context hash %" PRIu64 ", %.1f ms since the produce\n",
             (int)msg->key_len, (const char *)msg->key, msg->partition, msg->offset, dp_pathway_context_hash(ctx), ms);
      rd_kafka_resp_err_t e = rd_kafka_commit_message(rk, msg, 0); /* synchronous */
      if (e) {
        fprintf(stderr, "error: commit: %s\n", rd_kafka_err2str(e));
        rc = 1;
      } else if (failed(dp_data_streams_track_kafka_commit_offset(ds, dp_str_from_cstr(group), dp_str_from_cstr(topic),
                                                                   DP_STR(""), msg->partition, msg->offset + 1),
                        "track commit offset")) {
        rc = 1;
      }
      got++;
    }
    dp_pathway_context_free(received);
    dp_pathway_context_free(ctx);
    rd_kafka_message_destroy(msg);
  }
  if (rc == 0 && got < count) {
    fprintf(stderr, "error: consumed %d of %d messages within 60 s\n", got, count);
    rc = 1;
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: %s AGENT_URL BOOTSTRAP [MESSAGES]\n", argv[0]);
    return 2;
  }
  int count = argc == 4 ? atoi(argv[3]) : 5;
  const char *topic = getenv("DSM_TOPIC") ? getenv("DSM_TOPIC") : "dsm-example-orders-c";
  const char *group = getenv("DSM_GROUP") ? getenv("DSM_GROUP") : "dsm-example-billing-c";
  dp_data_streams *producer = start(argv[1], "dsm-kafka-producer-c");
  dp_data_streams *consumer = producer != NULL ? start(argv[1], "dsm-kafka-consumer-c") : NULL;
  if (consumer == NULL) {
    dp_data_streams_free(producer);
    return 1;
  }
  int rc = produce(producer, argv[2], topic, count);
  if (rc == 0) rc = consume(consumer, argv[2], topic, group, count);
  if (failed(dp_data_streams_shutdown(producer, 5000), "producer flush")) rc = 1;
  if (failed(dp_data_streams_shutdown(consumer, 5000), "consumer flush")) rc = 1;
  printf("sent: producer %" PRIu64 " payload(s), consumer %" PRIu64 " payload(s)\n",
         dp_data_streams_stat(producer, DP_DATA_STREAMS_STAT_PAYLOADS_SENT),
         dp_data_streams_stat(consumer, DP_DATA_STREAMS_STAT_PAYLOADS_SENT));
  dp_data_streams_free(producer);
  dp_data_streams_free(consumer);
  return rc;
}
