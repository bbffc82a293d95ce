/* A v0.4 msgpack payload of `traces` x `spans` small web spans, written by hand for the C benchmarks
 * (no msgpack library needed). The caller frees `.p`. */
#ifndef DP_TESTS_PAYLOAD_H
#define DP_TESTS_PAYLOAD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

#endif
