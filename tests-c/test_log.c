/* The log callback: silent by default, receives records at or above its level, user_data_free runs
 * exactly once when the callback is replaced or removed. */
#include "check.h"

struct sink {
  int records;
  int info_install_seen;
  int freed;
};

static void on_log(void *user_data, dp_log_level level, dp_str target, dp_str message) {
  struct sink *sink = (struct sink *)user_data;
  sink->records++;
  CHECK(level >= DP_LOG_LEVEL_ERROR && level <= DP_LOG_LEVEL_TRACE);
  CHECK(target.ptr != NULL && target.ptr[target.len] == '\0');
  CHECK(message.ptr != NULL && message.ptr[message.len] == '\0');
  if (level == DP_LOG_LEVEL_INFO && strstr(message.ptr, "log callback installed") != NULL) {
    sink->info_install_seen++;
  }
}

static void free_sink(void *user_data) { ((struct sink *)user_data)->freed++; }

int main(void) {
  struct sink a = {0, 0, 0};
  struct sink b = {0, 0, 0};

  CHECK_STATUS(dp_set_log_callback(on_log, &a, free_sink, 42), DP_STATUS_INVALID_ARGUMENT);
  CHECK(a.freed == 0); /* on error the library keeps nothing */

  CHECK_OK(dp_set_log_callback(on_log, &a, free_sink, DP_LOG_LEVEL_INFO));
  CHECK(a.info_install_seen == 1);

  /* WARN level: the INFO install record is filtered out. Replacing frees the old user_data. */
  CHECK_OK(dp_set_log_callback(on_log, &b, free_sink, DP_LOG_LEVEL_WARN));
  CHECK(a.freed == 1);
  CHECK(b.records == 0);

  /* A panic in a fallible function is returned, not logged. */
  dp_error *err = dp_debug_panic(DP_STR("not logged"));
  CHECK(dp_error_code(err) == DP_STATUS_PANIC);
  dp_error_free(err);
  CHECK(b.records == 0);

  /* Removing the callback frees its user_data; the library is silent again. */
  CHECK_OK(dp_set_log_callback(NULL, NULL, NULL, DP_LOG_LEVEL_TRACE));
  CHECK(b.freed == 1);
  CHECK(a.freed == 1);
  puts("test_log: ok");
  return 0;
}
