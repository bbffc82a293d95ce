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

#include "data-pipeline.h"

/* --- a minimal msgpack writer ------------------------------------------------------------------ */
struct out {
  uint8_t *p;
  size_t len, cap;
};
static void put(struct out *o, const void *d, size_t n) {
  if (o->len + n > o->cap) {
    while (o->len + n > o->cap) o->cap = o->cap ? o->cap * 2 : 4096;
    o->p = realloc(o->p, o->cap);
  }
  memcpy(o->p + o->len, d, n);
  o->len += n;
}
static void u8(struct out *o, uint8_t v) { put(o, &v, 1); }
static void be(struct out *o, uint8_t tag, uint64_t v, int bytes) {
  u8(o, tag);
  for (int i = bytes - 1; i >= 0; i--) u8(o, (uint8_t)(v >> (8 * i)));
}
static void str(struct out *o, const char *s) {
  size_t n = strlen(s);
  if (n < 32) u8(o, (uint8_t)(0xa0 | n)); else be(o, 0xd9, n, 1);
  put(o, s, n);
}
static void arr(struct out *o, uint32_t n) { if (n < 16) u8(o, (uint8_t)(0x90 | n)); else be(o, 0xdd, n, 4); }
static void uint(struct out *o, uint64_t v) { if (v < 128) u8(o, (uint8_t)v); else be(o, 0xcf, v, 8); }
static void sint(struct out *o, int64_t v) { if (v >= 0 && v < 128) u8(o, (uint8_t)v); else be(o, 0xd3, (uint64_t)v, 8); }

static struct out payload(uint32_t traces, uint32_t spans) {
  struct out o = {NULL, 0, 0};
  arr(&o, traces);
  for (uint32_t t = 0; t < traces; t++) {
    arr(&o, spans);
    for (uint32_t i = 0; i < spans; i++) {
      u8(&o, 0x8c); /* 12 fields */
      str(&o, "service"); str(&o, "bench-service");
      str(&o, "name"); str(&o, "http.request");
      str(&o, "resource"); str(&o, "GET /users/{id}");
      str(&o, "type"); str(&o, "web");
      str(&o, "trace_id"); uint(&o, t + 1);
      str(&o, "span_id"); uint(&o, i + 1);
      str(&o, "parent_id"); uint(&o, i);
      str(&o, "start"); sint(&o, 1700000000000000000LL + i);
      str(&o, "duration"); sint(&o, 12345);
      str(&o, "error"); sint(&o, 0);
      str(&o, "meta"); u8(&o, 0x82);
      str(&o, "env"); str(&o, "prod");
      str(&o, "http.method"); str(&o, "GET");
      str(&o, "metrics"); u8(&o, 0x81);
      str(&o, "_sampling_priority_v1");
      {
        double one = 1.0;
        uint64_t bits;
        memcpy(&bits, &one, 8);
        be(&o, 0xcb, bits, 8);
      }
    }
  }
  return o;
}

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

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(listener, 16) != 0 || getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
    perror("stalled agent");
    return 1;
  }

  struct out p = payload(traces, spans);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
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
