/* Benchmark (not a test): the latency of dp_exporter_enqueue from C while the agent is stalled
 * (it accepts connections and never answers, so the worker is stuck on its first request and the
 * queue only grows). Each call is timed alone with clock_gettime(CLOCK_MONOTONIC); the cap is large
 * enough that nothing is dropped. Prints p50/p90/p99/p99.9/max, and the cost of the timer itself
 * (included in every figure). Payload: T traces x S spans, v0.4, as bench_send.c.
 *
 *   cmake --build build --target bench_enqueue
 *   build/tests-c/bench_enqueue [TRACES SPANS CALLS]      default: 1 10 200000
 *
 * The stalled agent is a socket in this process listening on 127.0.0.1 (a port picked by the
 * kernel) that is never accept()ed: the kernel completes the connection and takes the request. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "data-pipeline.h"
#include "payload.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static void must(dp_error *err) {
  if (err != NULL) {
    fprintf(stderr, "error: %s\n", dp_error_message(err));
    exit(1);
  }
}

static double pct(const uint64_t *v, size_t n, double p) { return (double)v[(size_t)((double)(n - 1) * p)]; }

int main(int argc, char **argv) {
  uint32_t traces = argc > 1 ? (uint32_t)atoi(argv[1]) : 1;
  uint32_t spans = argc > 2 ? (uint32_t)atoi(argv[2]) : 10;
  size_t calls = argc > 3 ? (size_t)atol(argv[3]) : 200000;

  unsigned port = 0;
  int listener = bind_loopback(&port);
  if (listen(listener, 16) != 0) {
    perror("stalled agent");
    return 1;
  }

  struct out p = payload(traces, spans);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
  dp_exporter_builder *b = dp_exporter_builder_new();
  must(dp_exporter_builder_set_url(b, dp_str_from_cstr(url)));
  must(dp_exporter_builder_set_request_timeout(b, 3600 * 1000));
  must(dp_exporter_builder_set_batch_max_delay(b, 0));
  /* Room for every call (payload plus the queue's per-payload overhead, generously). */
  must(dp_exporter_builder_set_queue_max_bytes(b, (calls + 1024) * (p.len + 256)));
  dp_exporter *exporter = NULL;
  must(dp_exporter_builder_build(b, &exporter));

  dp_bytes bytes = {p.p, p.len};
  /* Start the worker and let it get stuck on its first request. */
  must(dp_exporter_enqueue(exporter, bytes));
  struct timespec pause = {0, 100 * 1000 * 1000};
  nanosleep(&pause, NULL);

  uint64_t *t = calloc(calls, sizeof *t);
  uint64_t *timer = calloc(calls, sizeof *timer);
  if (t == NULL || timer == NULL) return 1;
  for (size_t i = 0; i < calls; i++) {
    uint64_t a = now_ns();
    uint64_t z = now_ns();
    timer[i] = z - a;
  }
  for (size_t i = 0; i < calls; i++) {
    uint64_t a = now_ns();
    dp_error *err = dp_exporter_enqueue(exporter, bytes);
    uint64_t z = now_ns();
    if (err != NULL) {
      fprintf(stderr, "call %zu: %s\n", i, dp_error_message(err));
      return 1;
    }
    t[i] = z - a;
  }
  dp_health h;
  memset(&h, 0, sizeof h);
  h.size = sizeof h;
  must(dp_exporter_health(exporter, &h));
  qsort(t, calls, sizeof *t, cmp_u64);
  qsort(timer, calls, sizeof *timer, cmp_u64);
  printf("bench_enqueue: %ux%u spans, %zu bytes, %zu calls from C, agent stalled: "
         "p50 %.0f ns, p90 %.0f ns, p99 %.0f ns, p99.9 %.0f ns, max %.0f ns "
         "(timer alone: p50 %.0f ns, p99 %.0f ns); traces sent %llu, dropped (queue full) %llu, "
         "pending %llu\n",
         traces, spans, p.len, calls, pct(t, calls, 0.5), pct(t, calls, 0.9), pct(t, calls, 0.99),
         pct(t, calls, 0.999), (double)t[calls - 1], pct(timer, calls, 0.5), pct(timer, calls, 0.99),
         (unsigned long long)h.traces_sent, (unsigned long long)h.dropped_queue_full,
         (unsigned long long)h.traces_pending);
  free(t);
  free(timer);
  dp_exporter_free(exporter); /* never blocks: the worker is told to stop */
  close(listener);
  free(p.p);
  return h.dropped_queue_full == 0 ? 0 : 2;
}
