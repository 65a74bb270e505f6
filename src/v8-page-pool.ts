/**
 * Gives back the memory V8 keeps in its page pool.
 *
 * When a collection shrinks V8's heap (or an isolate is disposed), the pages
 * it gives up go to a page pool for reuse, and they stay resident there. V8
 * empties the pool only in a collection meant to reduce memory, which by
 * default comes when the process looks idle: a busy daemon never does. Its
 * RSS then follows the heap's high-water mark, not its size: a heap grown to
 * ~100 MiB and collected back to ~21 kept ~96 MiB resident for as long as the
 * process ran, and in a 20-daemon soak the pool was the 10-29 MiB of
 * anonymous memory that was neither V8's heap nor malloc's.
 *
 * V8's memory saver mode makes every full collection reduce memory (and
 * empty the pool), but kept on for good it cost the soak 17% more CPU a job.
 * So `lepton daemon --memory-saver` turns it on now and then (every 30 s),
 * and off again after the next two full collections (the first may have
 * started marking before the mode was on, and a collection's kind is fixed
 * when its marking starts). V8
 * reads the flag when a collection starts, so `v8.setFlagsFromString` at run
 * time works for it (checked on Node 24: the pool of the example above was
 * released at the next full collection after the flag was set). In three
 * soaks that cut ~10 MiB of RSS a daemon for 10-45% more CPU a job, so it
 * is off by default.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks'
import type { PerformanceEntry } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { givenFlagNames } from './cli/node-flags.ts'

/** Full collections to wait for once armed: the first may have begun before. */
const COLLECTIONS = 2

export interface PagePoolRelease {
  /** Turns memory saver mode on until COLLECTIONS full collections have run (a no-op while already on). */
  arm(): void
  /** Whether the mode is on now. */
  readonly armed: boolean
  /** Times the mode went off again after its collections. */
  readonly releases: number
}

/**
 * The release switch, or undefined when the user set V8's memory saver mode
 * on or off themselves (command line or NODE_OPTIONS): then it is theirs.
 */
export function pagePoolRelease (execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): PagePoolRelease | undefined {
  if (givenFlagNames(execArgv, nodeOptions).includes('--memory-saver-mode')) return undefined
  let armed = false
  let releases = 0
  let seen = 0
  let observer: PerformanceObserver | undefined
  const disarm = (): void => {
    observer?.disconnect()
    observer = undefined
    setFlagsFromString('--no-memory-saver-mode')
    armed = false
  }
  return {
    arm () {
      if (armed) return
      seen = 0
      // watched only while armed: a gc entry for every scavenge costs a little
      observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) seen++
        }
        if (seen >= COLLECTIONS && armed) {
          disarm()
          releases++
        }
      })
      observer.observe({ entryTypes: ['gc'] })
      setFlagsFromString('--memory-saver-mode')
      armed = true
    },
    get armed () { return armed },
    get releases () { return releases }
  }
}
