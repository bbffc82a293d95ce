/* Benchmark (not a test): dp_exporter_send from C to a loopback HTTP sink that answers 200 at once,
 * on the same payload shape as data-pipeline-ffi/benches/send.rs (v0.4, T traces x S spans, 12 fields
 * per span). Prints the median (p10, p90) and mean time per send.
 *
 *   cmake --build build --target bench_send
 *   build/tests-c/bench_send [TRACES SPANS ITERATIONS]      default: 1000 10 200
 *
 * The sink runs in this process (one thread, 127.0.0.1, a port picked by the kernel). */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "data-pipeline.h"
#include "payload.h"

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n"
    "{\"rate_by_service\":{\"service:,env:\":1.0}}";

/* Serves keep-alive connections one after the other: reads headers, skips Content-Length bytes,
 * answers 200. */
static void *sink(void *arg) {
  int listener = *(int *)arg;
  size_t cap = 1 << 16;
  char *buf = malloc(cap);
  buf[0] = '\0';
  for (;;) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) {
      break;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    size_t have = 0;
    for (;;) {
      char *end = NULL;
      while ((end = strstr(buf, "\r\n\r\n")) == NULL || have == 0) {
        if (have + 4096 + 1 > cap) {
          cap *= 2;
          buf = realloc(buf, cap);
        }
        ssize_t n = read(fd, buf + have, cap - have - 1);
        if (n <= 0) {
          goto next;
        }
        have += (size_t)n;
        buf[have] = '\0';
      }
      size_t header_len = (size_t)(end - buf) + 4;
      size_t body_len = 0;
      for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2) {
        if (strncasecmp(p, "content-length:", 15) == 0) {
          body_len = strtoul(p + 15, NULL, 10);
        }
      }
      size_t total = header_len + body_len;
      while (have < total) {
        if (total + 1 > cap) {
          while (total + 1 > cap) cap *= 2;
          buf = realloc(buf, cap);
        }
        ssize_t n = read(fd, buf + have, cap - have - 1);
        if (n <= 0) {
          goto next;
        }
        have += (size_t)n;
      }
      memmove(buf, buf + total, have - total);
      have -= total;
      buf[have] = '\0';
      if (write(fd, RESPONSE, sizeof RESPONSE - 1) < 0) {
        goto next;
      }
    }
  next:
    close(fd);
    buf[0] = '\0';
  }
  free(buf);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void must(dp_error *err) {
  if (err != NULL) {
    fprintf(stderr, "error: %s\n", dp_error_message(err));
    exit(1);
  }
}

int main(int argc, char **argv) {
  uint32_t traces = argc > 1 ? (uint32_t)atoi(argv[1]) : 1000;
  uint32_t spans = argc > 2 ? (uint32_t)atoi(argv[2]) : 10;
  int iterations = argc > 3 ? atoi(argv[3]) : 200;

  unsigned port = 0;
  int listener = bind_loopback(&port);
  if (listen(listener, 16) != 0) {
    perror("sink");
    return 1;
  }
  pthread_t thread;
  pthread_create(&thread, NULL, sink, &listener);
  pthread_detach(thread);

  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
  dp_exporter_builder *b = dp_exporter_builder_new();
  must(dp_exporter_builder_set_url(b, dp_str_from_cstr(url)));
  dp_exporter *exporter = NULL;
  must(dp_exporter_builder_build(b, &exporter));

  struct out p = payload(traces, spans);
  dp_bytes bytes = {p.p, p.len};
  int warmup = iterations / 10 + 1;
  double *times = calloc((size_t)iterations, sizeof *times);
  double start = 0, total = 0;
  for (int i = -warmup; i < iterations; i++) {
    start = now_s();
    dp_response *resp = NULL;
    must(dp_exporter_send(exporter, bytes, &resp));
    if (dp_response_status(resp) != 200) {
      fprintf(stderr, "status %u\n", (unsigned)dp_response_status(resp));
      return 1;
    }
    dp_response_free(resp);
    if (i >= 0) {
      times[i] = now_s() - start;
      total += times[i];
    }
  }
  qsort(times, (size_t)iterations, sizeof *times, cmp_double);
  double median = times[iterations / 2];
  printf("bench_send: %ux%u spans, %zu bytes, %d sends from C: median %.1f us (p10 %.1f, p90 %.1f), "
         "mean %.1f us, %.2f Mspans/s at the median\n",
         traces, spans, p.len, iterations, median * 1e6, times[iterations / 10] * 1e6,
         times[iterations * 9 / 10] * 1e6, total / iterations * 1e6, (double)traces * spans / median / 1e6);
  free(times);
  dp_exporter_free(exporter);
  free(p.p);
  return 0;
}
