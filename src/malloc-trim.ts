/**
 * glibc malloc through the project's native helper (native/malloc-trim,
 * built by `npm ci`): glibc keeps freed pages that lie between live
 * allocations, and the daemon calls malloc_trim now and then to give them
 * back; its memory log reports malloc's own accounting.
 */
import { createRequire } from 'node:module'

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
