/*
 * lepton's one native helper: malloc_trim(0) for the daemon (src/malloc-trim.ts).
 *
 * glibc's malloc gives freed memory back to the system only from the top of
 * its heap; free pages between live allocations stay resident. A daemon's
 * native heap (socket read buffers, crypto state and the like) churns, and
 * after minutes of jobs 2-14 MiB of a ~25 MiB heap were such free pages.
 * malloc_trim(0) releases them (madvise) and takes well under a millisecond.
 * mallocInfo() reports glibc's own accounting (mallinfo2, all arenas) for the
 * daemon's memory log: bytes in use, free inside the heap, and mmapped chunks.
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

static int SetBytes (napi_env env, napi_value obj, const char *name, size_t bytes) {
  napi_value v;
  if (napi_create_double(env, (double) bytes, &v) != napi_ok) return 0;
  return napi_set_named_property(env, obj, name, v) == napi_ok;
}

/* mallinfo2 (size_t fields) came with glibc 2.33; before it, mallinfo's int fields (exact below 2 GiB) */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define LEPTON_MALLINFO() mallinfo2()
typedef struct mallinfo2 lepton_mallinfo;
#else
#define LEPTON_MALLINFO() mallinfo()
typedef struct mallinfo lepton_mallinfo;
#endif

static napi_value Info (napi_env env, napi_callback_info info) {
  (void) info;
  lepton_mallinfo m = LEPTON_MALLINFO();
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  /* arena: bytes malloc got with sbrk/arena mmaps; uordblks of them in use, fordblks free; hblkhd: chunks mmapped on their own */
  if (!SetBytes(env, obj, "heap", (size_t) m.arena) || !SetBytes(env, obj, "inUse", (size_t) m.uordblks) ||
      !SetBytes(env, obj, "free", (size_t) m.fordblks) || !SetBytes(env, obj, "mmapped", (size_t) m.hblkhd)) return NULL;
  return obj;
}

NAPI_MODULE_INIT () {
  napi_value fn;
  napi_value info;
  if (napi_create_function(env, "mallocInfo", NAPI_AUTO_LENGTH, Info, NULL, &info) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "mallocInfo", info) != napi_ok) return NULL;
  if (napi_create_function(env, "mallocTrim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "mallocTrim", fn) != napi_ok) return NULL;
  return exports;
}
