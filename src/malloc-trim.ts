/**
 * malloc_trim(0) through the project's native helper (native/malloc-trim,
 * built by `npm ci`): glibc keeps freed pages that lie between live
 * allocations, and the daemon calls this now and then to give them back.
 */
import { createRequire } from 'node:module'

const HELPER = '../native/malloc-trim/build/Release/malloc_trim.node'

/** The helper's trim function (true when memory was released), or undefined where it is not built or not Linux. */
export function loadMallocTrim (): (() => boolean) | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    // the same relative path from src/ and from dist/
    const helper = createRequire(import.meta.url)(HELPER) as { mallocTrim?: () => boolean }
    return typeof helper.mallocTrim === 'function' ? helper.mallocTrim : undefined
  } catch {
    return undefined
  }
}
