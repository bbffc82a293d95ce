/* Data Streams Monitoring over HTTP, in C: a client service calls a server service on 127.0.0.1.
 * The client checkpoints each request (direction:out, type:http) and injects the pathway context
 * into a header (dp_pathway_context_inject_http); the server thread parses the request's headers,
 * extracts the context (dp_pathway_context_extract_http) and checkpoints (direction:in, type:http).
 * Each service has its own dp_data_streams; both send their stats to the agent at the end.
 *
 *   dsm_http AGENT_URL [REQUESTS]
 *
 * Prints one line per request: the client's context hash, the hash the server extracted (the same)
 * and the server's hash. $DP_TEST_SESSION_TOKEN, when set, tags the payloads for the Datadog test
 * agent. Exit status: 0 ok, 1 error, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "data-pipeline.h"

#define MAX_HEADERS 32

/* Prints and frees an error; returns true when there was one. */
static bool failed(dp_error *err, const char *what) {
  if (err == NULL) return false;
  fprintf(stderr, "error: %s: %s: %s\n", what, dp_status_name(dp_error_code(err)), dp_error_message(err));
  dp_error_free(err);
  return true;
}

static dp_data_streams *start(const char *agent_url, const char *service) {
  dp_data_streams_builder *b = dp_data_streams_builder_new();
  const char *token = getenv("DP_TEST_SESSION_TOKEN");
  if (failed(dp_data_streams_builder_set_url(b, dp_str_from_cstr(agent_url)), "url") ||
      failed(dp_data_streams_builder_set_service(b, dp_str_from_cstr(service)), "service") ||
      failed(dp_data_streams_builder_set_env(b, DP_STR("demo")), "env") ||
      failed(dp_data_streams_builder_set_language(b, DP_STR("c")), "language") ||
      failed(dp_data_streams_builder_set_tracer_version(b, DP_STR("example")), "tracer_version") ||
      failed(dp_data_streams_builder_set_test_session_token(b, dp_str_from_cstr(token)), "token")) {
    dp_data_streams_builder_free(b);
    return NULL;
  }
  dp_data_streams *ds = NULL;
  if (failed(dp_data_streams_builder_build(b, &ds), "build")) return NULL; /* build consumed b */
  return ds;
}

struct server {
  int listener;
  int requests;
  dp_data_streams *ds;
  int errors;
};

/* Reads one request (head + Content-Length body) into buf; returns its length, or -1. */
static ssize_t read_request(int fd, char *buf, size_t cap, size_t *head_len, size_t *body_len) {
  size_t used = 0;
  char *end = NULL;
  while (end == NULL) {
    if (used + 1 >= cap) return -1;
    ssize_t n = read(fd, buf + used, cap - 1 - used);
    if (n <= 0) return -1;
    used += (size_t)n;
    buf[used] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  *head_len = (size_t)(end - buf) + 4;
  *body_len = 0;
  for (const char *line = strstr(buf, "\r\n"); line != NULL && line < end; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "Content-Length:", 15) == 0) *body_len = strtoul(line + 17, NULL, 10);
  }
  while (used < *head_len + *body_len) {
    if (used + 1 >= cap) return -1;
    ssize_t n = read(fd, buf + used, cap - 1 - used);
    if (n <= 0) return -1;
    used += (size_t)n;
  }
  return (ssize_t)used;
}

/* Splits the header lines of a request head into views (the buffer is not modified). */
static size_t parse_headers(const char *head, size_t head_len, dp_http_header *out, size_t cap) {
  size_t n = 0;
  const char *line = strstr(head, "\r\n"); /* skip the request line */
  const char *end = head + head_len - 2;
  while (line != NULL && line + 2 < end && n < cap) {
    line += 2;
    const char *eol = strstr(line, "\r\n");
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    if (colon != NULL) {
      const char *value = colon + 1;
      while (*value == ' ') value++;
      out[n].name = (dp_str){line, (size_t)(colon - line)};
      out[n].value = (dp_str){value, (size_t)(eol - value)};
      n++;
    }
    line = eol;
  }
  return n;
}

static void *serve(void *arg) {
  struct server *s = (struct server *)arg;
  static const dp_str in_tags[2] = {{"direction:in", 12}, {"type:http", 9}};
  for (int i = 0; i < s->requests; i++) {
    int fd = accept(s->listener, NULL, NULL);
    if (fd < 0) {
      s->errors++;
      break;
    }
    char buf[8192];
    size_t head_len = 0, body_len = 0;
    char answer[256];
    int status = 400;
    int len = snprintf(answer, sizeof answer, "{}");
    if (read_request(fd, buf, sizeof buf, &head_len, &body_len) > 0) {
      dp_http_header headers[MAX_HEADERS];
      size_t n = parse_headers(buf, head_len, headers, MAX_HEADERS);
      dp_pathway_context *received = NULL, *ctx = NULL;
      if (!failed(dp_pathway_context_extract_http(headers, n, &received), "extract") &&
          !failed(dp_data_streams_set_checkpoint(s->ds, received, in_tags, 2, (int64_t)body_len, &ctx),
                  "server checkpoint")) {
        status = 200;
        len = snprintf(answer, sizeof answer, "{\"received_hash\": %" PRIu64 ", \"server_hash\": %" PRIu64 "}",
                       dp_pathway_context_hash(received), dp_pathway_context_hash(ctx));
      } else {
        s->errors++;
      }
      dp_pathway_context_free(received); /* NULL when the request carried no context */
      dp_pathway_context_free(ctx);
    }
    char response[512];
    int rlen = snprintf(response, sizeof response,
                        "HTTP/1.0 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                        status, len, answer);
    if (write(fd, response, (size_t)rlen) != rlen) s->errors++;
    close(fd);
  }
  return NULL;
}

/* One request from the client: checkpoint, inject, send, read the answer. */
static int call(dp_data_streams *ds, unsigned port, int i) {
  static const dp_str out_tags[2] = {{"direction:out", 13}, {"type:http", 9}};
  char body[64];
  int body_len = snprintf(body, sizeof body, "{\"order\": %d}", i);
  dp_pathway_context *ctx = NULL;
  if (failed(dp_data_streams_set_checkpoint(ds, NULL, out_tags, 2, body_len, &ctx), "client checkpoint")) return 1;

  char length[16];
  snprintf(length, sizeof length, "%d", body_len);
  dp_http_header headers[4] = {
      {DP_STR("Host"), DP_STR("127.0.0.1")},
      {DP_STR("Content-Type"), DP_STR("application/json")},
      {DP_STR("Content-Length"), dp_str_from_cstr(length)},
  };
  size_t n = 3;
  char ctx_value[DP_PATHWAY_CONTEXT_BASE64_CAPACITY];
  if (failed(dp_pathway_context_inject_http(ctx, headers, &n, 4, ctx_value, sizeof ctx_value), "inject")) {
    dp_pathway_context_free(ctx);
    return 1;
  }
  char request[1024];
  size_t used = (size_t)snprintf(request, sizeof request, "POST /orders HTTP/1.0\r\n");
  for (size_t h = 0; h < n; h++) {
    used += (size_t)snprintf(request + used, sizeof request - used, "%.*s: %.*s\r\n", (int)headers[h].name.len,
                             headers[h].name.ptr, (int)headers[h].value.len, headers[h].value.ptr);
  }
  used += (size_t)snprintf(request + used, sizeof request - used, "\r\n%s", body);

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((uint16_t)port);
  char answer[1024] = {0};
  size_t got = 0;
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      write(fd, request, used) != (ssize_t)used) {
    perror("request");
    if (fd >= 0) close(fd);
    dp_pathway_context_free(ctx);
    return 1;
  }
  for (ssize_t r; got + 1 < sizeof answer && (r = read(fd, answer + got, sizeof answer - 1 - got)) > 0;) got += (size_t)r;
  close(fd);
  const char *json = strstr(answer, "\r\n\r\n");
  unsigned long long received = 0, server = 0;
  if (json == NULL || sscanf(json + 4, "{\"received_hash\": %llu, \"server_hash\": %llu}", &received, &server) != 2) {
    fprintf(stderr, "error: unexpected answer: %s\n", answer);
    dp_pathway_context_free(ctx);
    return 1;
  }
  printf("request %d: client hash=%" PRIu64 " server received=%llu server hash=%llu\n", i, dp_pathway_context_hash(ctx),
         received, server);
  dp_pathway_context_free(ctx);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: %s AGENT_URL [REQUESTS]   (e.g. http://127.0.0.1:8126 3)\n", argv[0]);
    return 2;
  }
  int requests = argc == 3 ? atoi(argv[2]) : 3;
  dp_data_streams *server_ds = start(argv[1], "dsm-http-server-c");
  dp_data_streams *client_ds = server_ds != NULL ? start(argv[1], "dsm-http-client-c") : NULL;
  if (client_ds == NULL) {
    dp_data_streams_free(server_ds);
    return 1;
  }

  struct server s = {socket(AF_INET, SOCK_STREAM, 0), requests, server_ds, 0};
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only, a free port */
  socklen_t alen = sizeof addr;
  if (s.listener < 0 || bind(s.listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s.listener, 8) != 0 ||
      getsockname(s.listener, (struct sockaddr *)&addr, &alen) != 0) {
    perror("listen");
    return 1;
  }
  pthread_t thread;
  pthread_create(&thread, NULL, serve, &s);
  int rc = 0;
  for (int i = 0; i < requests && rc == 0; i++) rc = call(client_ds, ntohs(addr.sin_port), i);
  if (rc != 0) shutdown(s.listener, SHUT_RDWR); /* unblock the server's accept */
  pthread_join(thread, NULL);
  close(s.listener);
  if (s.errors) rc = 1;

  /* Send what each service saw (bounded), then free (never blocks). */
  if (failed(dp_data_streams_shutdown(server_ds, 5000), "server flush")) rc = 1;
  if (failed(dp_data_streams_shutdown(client_ds, 5000), "client flush")) rc = 1;
  printf("sent: client %" PRIu64 " payload(s), server %" PRIu64 " payload(s)\n",
         dp_data_streams_stat(client_ds, DP_DATA_STREAMS_STAT_PAYLOADS_SENT),
         dp_data_streams_stat(server_ds, DP_DATA_STREAMS_STAT_PAYLOADS_SENT));
  dp_data_streams_free(client_ds);
  dp_data_streams_free(server_ds);
  return rc;
}
