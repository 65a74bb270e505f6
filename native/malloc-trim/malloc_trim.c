/*
 * lepton's one native helper: malloc_trim(0) for the daemon (src/malloc-trim.ts).
 *
 * glibc's malloc gives freed memory back to the system only from the top of
 * its heap; free pages between live allocations stay resident. A daemon's
 * native heap (socket read buffers, crypto state and the like) churns, and
 * after minutes of jobs 2-14 MiB of a ~25 MiB heap were such free pages.
 * malloc_trim(0) releases them (madvise) and takes well under a millisecond.
 * Node-API only: one build runs on every Node version the project supports.
 */
#include <malloc.h>
#include <node_api.h>

static napi_value Trim (napi_env env, napi_callback_info info) {
  (void) info;
  napi_value released;
  if (napi_get_boolean(env, malloc_trim(0) != 0, &released) != napi_ok) return NULL;
  return released;
}

NAPI_MODULE_INIT () {
  napi_value fn;
  if (napi_create_function(env, "mallocTrim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "mallocTrim", fn) != napi_ok) return NULL;
  return exports;
}
