/* Fork safety of the background exporter from C, with real fork(). While a parent thread keeps
 * enqueueing, the parent forks DP_TEST_FORKS children (default 200, at most 8 alive at once). Each
 * child enqueues its own traces (span API and raw msgpack), flushes, checks its own health counters,
 * shuts down, frees the exporter it inherited and exits. Even forks use the explicit hooks
 * (dp_before_fork / dp_after_fork_parent / dp_after_fork_child); odd ones rely on detection at the
 * next call.
 *
 * The traces go to a loopback sink in the parent, which sums X-Datadog-Trace-Count. In the end it
 * must have received exactly the parent's delivered traces plus every child's, with nothing twice.
 * So no child re-sent the parent's queued traces. Watchdogs: alarm() in every process, and a bounded
 * wait for each child. No agent is needed.
 *
 * Under AddressSanitizer the parent is quiesced around each fork: the enqueuer pauses, the parent
 * flushes so its worker idles, the hooks are used, and one child lives at a time. The reason is
 * GCC 12's libasan, which does not lock its own allocator across fork(). A child forked while
 * another thread is inside ASan's malloc can hang in its first allocation from a new thread.
 * (Newer compiler-rt locks the allocator in an atfork handler; glibc's malloc always did.) The
 * plain and valgrind runs keep the full concurrency: valgrind runs one thread at a time under its
 * own lock, so fork() cannot happen in the middle of a malloc.
 *
 * The exact count assumes no request times out after the sink received it (that would be resent:
 * at-least-once). Request timeouts are therefore generous, so that valgrind's slowness does not
 * cause resends. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "check.h"

#define CHILD_CHUNKS 3    /* traces a child builds with the span API */
#define CHILD_RAW 2       /* traces a child enqueues as raw msgpack */
#define CHILD_TRACES (CHILD_CHUNKS + CHILD_RAW)
/* Children alive at once: DP_TEST_FORK_ALIVE (default 8; CMake sets 2 under valgrind, where every
 * process is ~50x slower on the same cores), 1 under ASan (see above). */
#define MAX_ALIVE_LIMIT 64
#if defined(__SANITIZE_ADDRESS__)
#define QUIESCE 1
#else
#define QUIESCE 0
#endif

/* ---- a loopback HTTP sink ---------------------------------------------------------------------- */

static atomic_ulong sink_traces;
static atomic_ulong sink_requests;
static int sink_fd = -1;
static atomic_int sink_stop;
/* Connection threads, joined at the end (a thread still running at exit would look leaked). */
#define MAX_CONNS 4096
static pthread_t conns[MAX_CONNS];
static int n_conns; /* written by the accept thread only; read after it is joined */

/* Case-insensitive search for header `name` in the request head; its value as a number, or 0. */
static unsigned long header_number(const char *head, const char *name) {
  size_t n = strlen(name);
  for (const char *p = head; *p; p++) {
    if ((p == head || p[-1] == '\n') && strncasecmp(p, name, n) == 0 && p[n] == ':') {
      return strtoul(p + n + 1, NULL, 10);
    }
  }
  return 0;
}

/* The end of the request head ("\r\n\r\n") in buf[0..have], or NULL. */
static char *head_end(char *buf, size_t have) {
  for (size_t i = 0; i + 4 <= have; i++) {
    if (memcmp(buf + i, "\r\n\r\n", 4) == 0) return buf + i;
  }
  return NULL;
}

static void *serve(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[1 << 16];
  size_t have = 0;
  for (;;) {
    char *end = NULL;
    while ((end = head_end(buf, have)) == NULL) {
      if (have == sizeof buf) goto done;
      ssize_t r = read(fd, buf + have, sizeof buf - have);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && !atomic_load(&sink_stop))
        continue; /* receive timeout: check the stop flag */
      if (r <= 0) goto done;
      have += (size_t)r;
    }
    size_t head_len = (size_t)(end - buf) + 4;
    char head[4096];
    size_t copy = head_len < sizeof head - 1 ? head_len : sizeof head - 1;
    memcpy(head, buf, copy);
    head[copy] = 0;
    unsigned long body = header_number(head, "content-length");
    unsigned long traces = header_number(head, "x-datadog-trace-count");
    int is_traces = strstr(head, "/traces") != NULL;
    /* Consume the body (possibly larger than the buffer). */
    size_t in_buf = have - head_len;
    size_t take = in_buf < body ? in_buf : body;
    memmove(buf, buf + head_len + take, in_buf - take);
    have = in_buf - take;
    unsigned long left = body - take;
    while (left > 0) {
      char sink[1 << 16];
      ssize_t r = read(fd, sink, left < sizeof sink ? left : sizeof sink);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && !atomic_load(&sink_stop))
        continue;
      if (r <= 0) goto done;
      left -= (unsigned long)r;
    }
    const char *json = is_traces ? "{\"rate_by_service\":{\"service:,env:\":1.0}}"
                                 : "{\"endpoints\":[\"/v0.4/traces\"]}";
    char answer[256];
    int n = snprintf(answer, sizeof answer,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(json), json);
    if (is_traces) {
      atomic_fetch_add(&sink_traces, traces);
      atomic_fetch_add(&sink_requests, 1);
    }
    if (write(fd, answer, (size_t)n) != n) goto done;
  }
done:
  close(fd);
  return NULL;
}

static void *accept_loop(void *arg) {
  (void)arg;
  for (;;) {
    int c = accept(sink_fd, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR) continue;
      return NULL; /* the listening socket was shut down */
    }
    struct timeval tv = {0, 200 * 1000};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (n_conns == MAX_CONNS || pthread_create(&conns[n_conns], NULL, serve, (void *)(intptr_t)c) != 0) {
      close(c);
      continue;
    }
    n_conns++;
  }
}

/* Stops the sink and joins its threads. */
static void stop_sink(pthread_t accept_thread) {
  atomic_store(&sink_stop, 1);
  shutdown(sink_fd, SHUT_RDWR);
  CHECK(pthread_join(accept_thread, NULL) == 0);
  close(sink_fd);
  for (int i = 0; i < n_conns; i++) CHECK(pthread_join(conns[i], NULL) == 0);
}

static unsigned start_sink(pthread_t *thread) {
  unsigned port = 0;
  sink_fd = bind_loopback(&port);
  CHECK(listen(sink_fd, 256) == 0);
  CHECK(pthread_create(thread, NULL, accept_loop, NULL) == 0);
  return port;
}

/* ---- payloads ---------------------------------------------------------------------------------- */

static void put_str(uint8_t **p, const char *s) {
  size_t n = strlen(s);
  *(*p)++ = (uint8_t)(0xa0 | n);
  memcpy(*p, s, n);
  *p += n;
}

static void put_u64(uint8_t **p, uint64_t v) {
  *(*p)++ = 0xcf;
  for (int i = 7; i >= 0; i--) *(*p)++ = (uint8_t)(v >> (8 * i));
}

/* A v0.4 payload of `n` (< 16) one-span traces with ids from `first`; returns its length. */
static size_t raw_payload(uint8_t *buf, unsigned n, uint64_t first) {
  uint8_t *p = buf;
  *p++ = (uint8_t)(0x90 | n);
  for (unsigned t = 0; t < n; t++) {
    *p++ = 0x91;
    *p++ = 0x87; /* 7 fields */
    put_str(&p, "service"); put_str(&p, "fork-test");
    put_str(&p, "name"); put_str(&p, "raw.op");
    put_str(&p, "resource"); put_str(&p, "raw");
    put_str(&p, "trace_id"); put_u64(&p, first + t);
    put_str(&p, "span_id"); put_u64(&p, 1);
    put_str(&p, "start"); put_u64(&p, 1700000000000000000ull);
    put_str(&p, "duration"); put_u64(&p, 1000);
  }
  return (size_t)(p - buf);
}

static dp_trace *chunk(uint64_t trace_id) {
  dp_trace *t = dp_trace_new();
  CHECK(t != NULL);
  for (uint64_t s = 1; s <= 2; s++) {
    dp_span *span = dp_span_new();
    CHECK(span != NULL);
    CHECK_OK(dp_span_set_service(span, DP_STR("fork-test")));
    CHECK_OK(dp_span_set_name(span, DP_STR("child.op")));
    CHECK_OK(dp_span_set_resource(span, DP_STR("child")));
    CHECK_OK(dp_span_set_trace_id(span, 0, trace_id));
    CHECK_OK(dp_span_set_span_id(span, s));
    CHECK_OK(dp_span_set_parent_id(span, s - 1));
    CHECK_OK(dp_span_set_start(span, 1700000000000000000ll));
    CHECK_OK(dp_span_set_duration(span, 1000));
    CHECK_OK(dp_trace_push_span(t, span));
  }
  return t;
}

static dp_health health_of(const dp_exporter *ex) {
  dp_health h;
  memset(&h, 0, sizeof h);
  h.size = sizeof h;
  CHECK_OK(dp_exporter_health(ex, &h));
  CHECK(h.size == sizeof h);
  return h;
}

static uint64_t dropped(const dp_health *h) {
  return h->dropped_queue_full + h->dropped_breaker_open + h->dropped_http_4xx +
         h->dropped_retries_exhausted + h->dropped_shutdown + h->dropped_invalid + h->dropped_p0;
}

/* ---- the child --------------------------------------------------------------------------------- */

/* Exit codes tell the parent which check failed (no printing from a forked child: another thread of
 * the parent may have held stdio's lock at the fork). */
static int child_main(dp_exporter *ex, uint64_t base, int hooks) {
  alarm(300);
  if (hooks) dp_after_fork_child();
  dp_health h = health_of(ex);
  if (h.traces_enqueued != 0 || h.traces_pending != 0 || h.traces_sent != 0) return 10;
  if (h.forks < 1) return 11;
  dp_trace *chunks[CHILD_CHUNKS];
  for (int i = 0; i < CHILD_CHUNKS; i++) chunks[i] = chunk(base + (uint64_t)i);
  dp_error *err = dp_exporter_enqueue_traces(ex, (const dp_trace *const *)chunks, CHILD_CHUNKS);
  for (int i = 0; i < CHILD_CHUNKS; i++) dp_trace_free(chunks[i]);
  if (err) { dp_error_free(err); return 12; }
  uint8_t raw[512];
  size_t n = raw_payload(raw, CHILD_RAW, base + 100);
  err = dp_exporter_enqueue(ex, DP_BYTES(raw, n));
  if (err) { dp_error_free(err); return 13; }
  err = dp_exporter_flush(ex, 120000);
  if (err) {
    /* Failing anyway: say why (stdio is a risk only on this path). */
    h = health_of(ex);
    fprintf(stderr, "child %llu: flush: %s; enqueued %llu sent %llu pending %llu failed %llu breaker %llu worker %llu\n",
            (unsigned long long)base, dp_error_message(err), (unsigned long long)h.traces_enqueued,
            (unsigned long long)h.traces_sent, (unsigned long long)h.traces_pending,
            (unsigned long long)h.requests_failed, (unsigned long long)h.breaker_state,
            (unsigned long long)h.worker_running);
    dp_error_free(err);
    return 14;
  }
  h = health_of(ex);
  if (h.traces_enqueued != CHILD_TRACES || h.traces_sent != CHILD_TRACES) return 15;
  if (h.spans_enqueued != 2 * CHILD_CHUNKS || h.traces_pending != 0 || dropped(&h) != 0) return 16;
  err = dp_exporter_shutdown(ex, 60000);
  if (err) { dp_error_free(err); return 17; }
  /* The inherited handle can be freed in the child: the parent's state is left alone. */
  dp_exporter_free(ex);
  return 0;
}

/* ---- the parent -------------------------------------------------------------------------------- */

static dp_exporter *the_exporter;
static atomic_int stop_enqueuer;
static atomic_ulong parent_enqueued;
static atomic_int pause_enqueuer; /* QUIESCE: asked to pause */
static atomic_int enqueuer_paused; /* QUIESCE: acknowledged */

static void *enqueuer(void *arg);

static void start_enqueuer(pthread_t *thread) {
  CHECK(pthread_create(thread, NULL, enqueuer, NULL) == 0);
}

static void *enqueuer(void *arg) {
  (void)arg;
  uint8_t raw[512];
  uint64_t id = 1;
  while (!atomic_load(&stop_enqueuer)) {
    if (atomic_load(&pause_enqueuer)) {
      atomic_store(&enqueuer_paused, 1);
      struct timespec ts = {0, 100 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    atomic_store(&enqueuer_paused, 0);
    size_t n = raw_payload(raw, 1, id++);
    dp_error *err = dp_exporter_enqueue(the_exporter, DP_BYTES(raw, n));
    if (err) {
      fprintf(stderr, "parent enqueue failed: %s\n", dp_error_message(err));
      dp_error_free(err);
      exit(1);
    }
    atomic_fetch_add(&parent_enqueued, 1);
    struct timespec ts = {0, 200 * 1000}; /* 200 us */
    nanosleep(&ts, NULL);
  }
  return NULL;
}

/* Waits for `pid` at most `seconds`; kills it and fails if it is still running then. */
static void reap(pid_t pid, int index, int seconds) {
  for (int waited_ms = 0;; waited_ms += 5) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child %d failed: %s %d\n", index,
                WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        exit(1);
      }
      return;
    }
    CHECK(r == 0);
    if (waited_ms >= seconds * 1000) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fprintf(stderr, "child %d hung (killed after %d s)\n", index, seconds);
      exit(1);
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

int main(void) {
  alarm(1800); /* whole-test watchdog (valgrind is slow) */
  int forks = 200;
  const char *env = getenv("DP_TEST_FORKS");
  if (env && *env) forks = atoi(env);
  CHECK(forks > 0);
  int max_alive = QUIESCE ? 1 : 8;
  env = getenv("DP_TEST_FORK_ALIVE");
  if (!QUIESCE && env && *env) max_alive = atoi(env);
  CHECK(max_alive > 0 && max_alive <= MAX_ALIVE_LIMIT);

  pthread_t sink_thread;
  unsigned port = start_sink(&sink_thread);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u", port);

  dp_exporter_builder *b = dp_exporter_builder_new();
  CHECK(b != NULL);
  CHECK_OK(dp_exporter_builder_set_url(b, dp_str_from_cstr(url)));
  CHECK_OK(dp_exporter_builder_set_language(b, DP_STR("c")));
  CHECK_OK(dp_exporter_builder_set_tracer_version(b, DP_STR("0.0.1-fork")));
  CHECK_OK(dp_exporter_builder_set_batch_max_delay(b, 10));
  CHECK_OK(dp_exporter_builder_set_connect_timeout(b, 30000));
  CHECK_OK(dp_exporter_builder_set_request_timeout(b, 120000));
  CHECK_OK(dp_exporter_builder_set_batch_max_bytes(b, 64 * 1024));
  CHECK_OK(dp_exporter_builder_set_queue_max_bytes(b, 64 * 1024 * 1024));
  CHECK_OK(dp_exporter_builder_build(b, &the_exporter));

  pthread_t enq;
  start_enqueuer(&enq);

  pid_t alive[MAX_ALIVE_LIMIT];
  int alive_index[MAX_ALIVE_LIMIT];
  int n_alive = 0;
  for (int i = 0; i < forks; i++) {
    if (n_alive == max_alive) {
      reap(alive[0], alive_index[0], 600);
      memmove(alive, alive + 1, sizeof alive[0] * (size_t)(max_alive - 1));
      memmove(alive_index, alive_index + 1, sizeof alive_index[0] * (size_t)(max_alive - 1));
      n_alive--;
    }
    int hooks = QUIESCE || i % 2 == 0;
    if (QUIESCE) {
      atomic_store(&pause_enqueuer, 1);
      while (!atomic_load(&enqueuer_paused)) {
        struct timespec ts = {0, 100 * 1000};
        nanosleep(&ts, NULL);
      }
      CHECK_OK(dp_exporter_flush(the_exporter, 120000));
    }
    if (hooks) dp_before_fork();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      _exit(child_main(the_exporter, (uint64_t)(i + 1) * 1000000u, hooks));
    }
    if (hooks) dp_after_fork_parent();
    if (QUIESCE) atomic_store(&pause_enqueuer, 0);
    alive[n_alive] = pid;
    alive_index[n_alive] = i;
    n_alive++;
  }
  for (int k = 0; k < n_alive; k++) reap(alive[k], alive_index[k], 600);

  atomic_store(&stop_enqueuer, 1);
  CHECK(pthread_join(enq, NULL) == 0);
  CHECK_OK(dp_exporter_shutdown(the_exporter, 120000));

  dp_health h = health_of(the_exporter);
  unsigned long mine = atomic_load(&parent_enqueued);
  CHECK(h.traces_enqueued == mine);
  CHECK(h.traces_sent == mine);
  CHECK(h.traces_pending == 0 && dropped(&h) == 0);
  CHECK(h.forks == 0);
  CHECK(h.worker_running == 0);
  dp_exporter_free(the_exporter);

  unsigned long want = mine + (unsigned long)forks * CHILD_TRACES;
  unsigned long got = atomic_load(&sink_traces);
  if (got != want) {
    fprintf(stderr, "the sink received %lu traces, expected %lu (parent %lu + %d children x %d)\n",
            got, want, mine, forks, CHILD_TRACES);
    return 1;
  }
  stop_sink(sink_thread);
  printf("test_fork: %d forks, %lu traces from the parent, %lu in %lu requests at the sink\n", forks,
         mine, got, atomic_load(&sink_requests));
  return 0;
}
