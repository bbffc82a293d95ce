/* Small assertion helpers shared by the C tests. */
#ifndef DP_TESTS_CHECK_H
#define DP_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data-pipeline.h"

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

/* The call must succeed (return NULL). */
#define CHECK_OK(call)                                                              \
  do {                                                                              \
    dp_error *check_err_ = (call);                                                  \
    if (check_err_ != NULL) {                                                       \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,      \
              dp_status_name(dp_error_code(check_err_)),                            \
              dp_error_message(check_err_));                                        \
      dp_error_free(check_err_);                                                    \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

/* The call must fail with `expected`; the error is freed. */
#define CHECK_STATUS(call, expected)                                                \
  do {                                                                              \
    dp_error *check_err_ = (call);                                                  \
    dp_status check_got_ = dp_error_code(check_err_);                               \
    if (check_got_ != (dp_status)(expected)) {                                      \
      fprintf(stderr, "%s:%d: %s: expected %s, got %s (%s)\n", __FILE__, __LINE__,  \
              #call, dp_status_name(expected), dp_status_name(check_got_),          \
              dp_error_message(check_err_));                                        \
      dp_error_free(check_err_);                                                    \
      exit(1);                                                                      \
    }                                                                               \
    dp_error_free(check_err_);                                                      \
  } while (0)

/* Exit code CTest treats as "skipped". */
#define SKIP_EXIT 77

#endif
