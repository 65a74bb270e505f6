/**
 * V8's full collection as a function for the daemon's memory upkeep, taken
 * from a throwaway vm context created while --expose-gc is set for that
 * moment only: `gc` is never a global of the daemon, nor of any context made
 * later (the sandbox's task contexts included).
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** A synchronous full (mark-compact) collection, or undefined where V8 refuses the flag. */
export function loadFullGc (): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    if (typeof gc !== 'function') return undefined
    return () => { (gc as () => void)() }
  } catch {
    return undefined
  } finally {
    setFlagsFromString('--no-expose-gc')
  }
}
