/* Loopback helpers for the C tests: a bound loopback socket, a closed port, a minimal HTTP/1.0 GET
 * to the Datadog test agent. */
#ifndef DP_TESTS_AGENT_H
#define DP_TESTS_AGENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "check.h"

/* The IPv4 loopback address with `port` (host byte order). */
static inline struct sockaddr_in loopback_addr(unsigned port) {
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((uint16_t)port);
  return addr;
}

/* A TCP socket bound to a free loopback port, whose number is stored in `*port`. */
static inline int bind_loopback(unsigned *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  struct sockaddr_in addr = loopback_addr(0);
  CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
  socklen_t len = sizeof addr;
  CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
  *port = ntohs(addr.sin_port);
  return fd;
}

/* A loopback port with nothing listening (bound, then closed). */
static inline unsigned closed_port(void) {
  unsigned port = 0;
  close(bind_loopback(&port));
  return port;
}

/* GET `path` from the agent at `url` (http://127.0.0.1:PORT). The whole answer (status line,
 * headers, body) is stored NUL-terminated in `buf` (`cap` bytes; a longer answer fails the test).
 * Returns the HTTP status. */
static inline int agent_get(const char *url, const char *path, char *buf, size_t cap) {
  unsigned port = 0;
  CHECK(sscanf(url, "http://127.0.0.1:%u", &port) == 1);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  struct sockaddr_in addr = loopback_addr(port);
  CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
  char request[512];
  int n = snprintf(request, sizeof request, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
  CHECK(n > 0 && (size_t)n < sizeof request);
  CHECK(write(fd, request, (size_t)n) == n);
  size_t used = 0;
  for (;;) {
    CHECK(used < cap - 1);
    ssize_t got = read(fd, buf + used, cap - 1 - used);
    CHECK(got >= 0);
    if (got == 0) break;
    used += (size_t)got;
  }
  buf[used] = '\0';
  close(fd);
  int status = 0;
  CHECK(sscanf(buf, "HTTP/%*s %d", &status) == 1);
  return status;
}

#endif
