/* Benchmark (not a test) of the data streams C ABI hot path: the cost of one checkpoint as a C tracer
 * pays it, through the exported functions, the returned context freed.
 *
 *   checkpoint [BATCH BATCHES]        default: 1000 300
 *
 * Cases (each call uses the real clock, the hash cache, the aggregator; no I/O):
 *   new_pathway      dp_data_streams_set_checkpoint, no parent, 3 edge tags
 *   with_parent      dp_data_streams_set_checkpoint, a parent, 4 edge tags (a consume)
 *   consume_produce  the sequence of bench/dsm/python_checkpoint.py: a consume checkpoint following a
 *                    context, then a produce checkpoint following the consume (2 calls, per pair)
 *   kafka_produce    dp_data_streams_kafka_produce (tags built by the library)
 *   inject_extract   base64 encode into a buffer + decode (what travels in the header)
 *
 * Each case runs BATCHES batches of BATCH calls; per-call time = batch time / BATCH. Prints the median,
 * p10 and p90 over batches, for wall time and for the thread's CPU time (on a shared, loaded machine
 * the wall time includes waiting for a CPU; the CPU time is what the code costs). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data-pipeline.h"

static int64_t now(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void check(dp_error *err) {
  if (err != NULL) {
    fprintf(stderr, "error: %s: %s\n", dp_status_name(dp_error_code(err)), dp_error_message(err));
    exit(1);
  }
}

static dp_data_streams *ds;
static dp_pathway_context *parent;
static const dp_str out_tags[3] = {{"direction:out", 13}, {"topic:orders", 12}, {"type:kafka", 10}};
static const dp_str in_tags[4] = {{"direction:in", 12}, {"group:billing", 13}, {"topic:orders", 12}, {"type:kafka", 10}};
static const dp_str fwd_tags[3] = {{"direction:out", 13}, {"topic:invoices", 14}, {"type:kafka", 10}};

static void new_pathway(void) {
  dp_pathway_context *out = NULL;
  check(dp_data_streams_set_checkpoint(ds, NULL, out_tags, 3, 120, &out));
  dp_pathway_context_free(out);
}

static void with_parent(void) {
  dp_pathway_context *out = NULL;
  check(dp_data_streams_set_checkpoint(ds, parent, in_tags, 4, 120, &out));
  dp_pathway_context_free(out);
}

static void consume_produce(void) {
  dp_pathway_context *consumed = NULL, *produced = NULL;
  check(dp_data_streams_set_checkpoint(ds, parent, in_tags, 4, 120, &consumed));
  check(dp_data_streams_set_checkpoint(ds, consumed, fwd_tags, 3, 300, &produced));
  dp_pathway_context_free(produced);
  dp_pathway_context_free(consumed);
}

static void kafka_produce(void) {
  dp_pathway_context *out = NULL;
  check(dp_data_streams_kafka_produce(ds, parent, DP_STR("orders"), DP_STR(""), 120, &out));
  dp_pathway_context_free(out);
}

static void inject_extract(void) {
  char buf[DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
  size_t len = 0;
  dp_pathway_context *back = NULL;
  check(dp_pathway_context_encode_base64(parent, buf, sizeof buf, &len));
  check(dp_pathway_context_decode_base64(DP_BYTES(buf, len), &back));
  dp_pathway_context_free(back);
}

static void run(const char *name, void (*fn)(void), int batch, int batches) {
  double *wall = malloc(sizeof(double) * (size_t)batches);
  double *cpu = malloc(sizeof(double) * (size_t)batches);
  for (int i = 0; i < batch * 10; i++) fn(); /* warm up: caches, allocator */
  for (int b = 0; b < batches; b++) {
    int64_t w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < batch; i++) fn();
    int64_t c1 = now(CLOCK_THREAD_CPUTIME_ID), w1 = now(CLOCK_MONOTONIC);
    wall[b] = (double)(w1 - w0) / batch;
    cpu[b] = (double)(c1 - c0) / batch;
  }
  qsort(wall, (size_t)batches, sizeof(double), cmp);
  qsort(cpu, (size_t)batches, sizeof(double), cmp);
  int p10 = batches / 10, p50 = batches / 2, p90 = batches * 9 / 10;
  printf("{\"case\": \"%s\", \"wall_ns\": {\"median\": %.1f, \"p10\": %.1f, \"p90\": %.1f}, "
         "\"cpu_ns\": {\"median\": %.1f, \"p10\": %.1f, \"p90\": %.1f}}\n",
         name, wall[p50], wall[p10], wall[p90], cpu[p50], cpu[p10], cpu[p90]);
  free(wall);
  free(cpu);
}

int main(int argc, char **argv) {
  int batch = argc > 1 ? atoi(argv[1]) : 1000;
  int batches = argc > 2 ? atoi(argv[2]) : 300;
  dp_data_streams_builder *b = dp_data_streams_builder_new();
  check(dp_data_streams_builder_set_url(b, DP_STR("unix:///nonexistent/dp-bench.sock")));
  check(dp_data_streams_builder_set_service(b, DP_STR("billing")));
  check(dp_data_streams_builder_set_env(b, DP_STR("prod")));
  check(dp_data_streams_builder_set_flush_interval(b, 0)); /* no background thread, no I/O */
  check(dp_data_streams_builder_build(b, &ds));
  check(dp_data_streams_set_checkpoint(ds, NULL, out_tags, 3, 120, &parent));

  run("new_pathway", new_pathway, batch, batches);
  run("with_parent", with_parent, batch, batches);
  run("consume_produce", consume_produce, batch, batches);
  run("kafka_produce", kafka_produce, batch, batches);
  run("inject_extract", inject_extract, batch, batches);

  dp_pathway_context_free(parent);
  dp_data_streams_free(ds);
  return 0;
}
