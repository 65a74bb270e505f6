/**
 * glibc malloc through the project's native helper (native/malloc-trim,
 * built by `npm ci`): glibc keeps freed pages that lie between live
 * allocations, and the daemon calls malloc_trim now and then to give them
 * back; its memory log reports malloc's own accounting.
 */
import { createRequire } from 'node:module'
import { PerformanceObserver, constants } from 'node:perf_hooks'

const HELPER = '../native/malloc-trim/build/Release/malloc_trim.node'

/** glibc's mallinfo2 over all arenas, in bytes. */
export interface MallocInfo {
  /** obtained from the system for the heaps (sbrk and arena mappings) */
  heap: number
  /** of those, in live allocations */
  inUse: number
  /** of those, free chunks (resident or not: malloc_trim releases their pages but they stay counted) */
  free: number
  /** large allocations mapped on their own */
  mmapped: number
}

interface Helper { mallocTrim?: () => boolean, mallocInfo?: () => MallocInfo }

function loadHelper (): Helper {
  if (process.platform !== 'linux') return {}
  try {
    // the same relative path from src/ and from dist/
    return createRequire(import.meta.url)(HELPER) as Helper
  } catch {
    return {}
  }
}

/** The helper's trim function (true when memory was released), or undefined where it is not built or not Linux. */
export function loadMallocTrim (): (() => boolean) | undefined {
  const { mallocTrim } = loadHelper()
  return typeof mallocTrim === 'function' ? mallocTrim : undefined
}

/** malloc's accounting now, or undefined where the helper is not built (or is an older build without it). */
export function loadMallocInfo (): (() => MallocInfo) | undefined {
  const { mallocInfo } = loadHelper()
  return typeof mallocInfo === 'function' ? mallocInfo : undefined
}

/**
 * Calls `trim` once, `delayMs` after a full V8 collection (several within the
 * delay: once). Returns a function that stops it.
 *
 * Why: V8's mark-compact mallocs scratch memory of its own (marking worklists,
 * slot sets of the pages it evacuates) and frees it when done: in a soak
 * submitter's 2 s memory log, glibc's arena rose ~6 MiB in the sample where
 * V8's heap total fell after a full collection, then fell back only partly.
 * Left to the periodic trim, the freed scratch sits in the heap while other
 * allocations settle around it.
 */
export function trimAfterMajorGc (trim: () => unknown, delayMs: number, onMajorGc: (callback: () => void) => () => void = observeMajorGc): () => void {
  let timer: NodeJS.Timeout | undefined
  const stopObserving = onMajorGc(() => {
    if (timer != null) return
    timer = setTimeout(() => {
      timer = undefined
      trim()
    }, delayMs)
    timer.unref()
  })
  return () => {
    stopObserving()
    clearTimeout(timer)
    timer = undefined
  }
}

/**
 * Full (mark-compact) collections of this isolate, through perf_hooks' gc
 * entries. Node hands them over on the event loop's next turn: a busy daemon
 * sees them at once, an idle one when it next wakes.
 */
function observeMajorGc (callback: () => void): () => void {
  const observer = new PerformanceObserver(list => {
    if (list.getEntries().some(e => (e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) callback()
  })
  observer.observe({ entryTypes: ['gc'] })
  return () => { observer.disconnect() }
}
