/* Handles are movable between threads: spans built on worker threads are pushed into traces on the
 * main thread; errors are created and freed on different threads. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "check.h"

#define THREADS 4
#define SPANS 200

struct work {
  uint64_t base;
  dp_span *spans[SPANS];
  dp_error *err;
};

static void *build(void *arg) {
  struct work *w = (struct work *)arg;
  for (int i = 0; i < SPANS; i++) {
    dp_span *span = dp_span_new();
    CHECK(span != NULL);
    CHECK_OK(dp_span_set_span_id(span, w->base + (uint64_t)i));
    CHECK_OK(dp_span_set_name(span, DP_STR("worker.op")));
    CHECK_OK(dp_span_set_meta(span, DP_STR("thread"), DP_STR("worker")));
    w->spans[i] = span;
  }
  w->err = dp_span_set_name(NULL, DP_STR("x")); /* freed by the main thread */
  return NULL;
}

int main(void) {
  static struct work works[THREADS];
  pthread_t threads[THREADS];
  for (int t = 0; t < THREADS; t++) {
    works[t].base = (uint64_t)t * 1000u;
    CHECK(pthread_create(&threads[t], NULL, build, &works[t]) == 0);
  }
  dp_trace *trace = dp_trace_new();
  for (int t = 0; t < THREADS; t++) {
    CHECK(pthread_join(threads[t], NULL) == 0);
    for (int i = 0; i < SPANS; i++) {
      CHECK_OK(dp_trace_push_span(trace, works[t].spans[i]));
    }
    CHECK(dp_error_code(works[t].err) == DP_STATUS_NULL_ARGUMENT);
    dp_error_free(works[t].err);
  }
  CHECK(dp_trace_len(trace) == (size_t)THREADS * SPANS);
  dp_trace_free(trace);
  puts("test_threads: ok");
  return 0;
}
