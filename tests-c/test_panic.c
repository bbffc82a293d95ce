/* A panic inside the library becomes DP_STATUS_PANIC with the panic's text; the process goes on. */
#include "check.h"

int main(void) {
  for (int i = 0; i < 3; i++) {
    dp_error *err = dp_debug_panic(DP_STR("forced panic for the test"));
    CHECK(err != NULL);
    CHECK(dp_error_code(err) == DP_STATUS_PANIC);
    CHECK(strcmp(dp_error_message(err), "forced panic for the test") == 0);
    dp_error_free(err);
  }
  dp_error *err = dp_debug_panic(DP_STR(""));
  CHECK(dp_error_code(err) == DP_STATUS_PANIC);
  CHECK(strcmp(dp_error_message(err), "dp_debug_panic") == 0);
  dp_error_free(err);

  /* The library still works after panics. */
  dp_span *span = dp_span_new();
  CHECK(span != NULL);
  CHECK_OK(dp_span_set_name(span, DP_STR("after.panic")));
  dp_span_free(span);
  puts("test_panic: ok");
  return 0;
}
