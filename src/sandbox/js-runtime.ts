/**
 * JavaScript tasks in V8 isolates (isolated-vm).
 *
 * - An isolate is warm for one (module source, memory cap), whatever job runs
 *   it: creating one and compiling the module costs ~2.5-5 ms, and a worker
 *   (or a submitter's reduce) that gets job after job of the same code keeps
 *   its isolates instead of making and dropping one a job. Idle isolates wait
 *   in a small LRU and go after ISOLATE_IDLE_MS unused; concurrent runs each
 *   take their own isolate, so slots run in parallel on isolated-vm's threads
 *   while the host's event loop stays free.
 * - A context is never shared by two code ids (a worker's code id names the
 *   job): every task gets a fresh context (~1 ms), or with reuseContexts the
 *   next task of the same code id gets the context its last one used. So no
 *   global or module state crosses from one job to another. To keep that cost
 *   off the call path, an idle isolate prepares a fresh context in the
 *   background.
 * - An isolate is retired after ISOLATE_MAX_CONTEXTS contexts: the garbage of
 *   old contexts and the compiled code it collects stay bounded.
 * - A run that hits a limit, or is aborted, disposes its isolate.
 */
import ivm from 'isolated-vm'
import { BOOTSTRAP } from './js-bootstrap.ts'
import { createHash } from 'node:crypto'
import { INSPECT_CACHE_ENTRIES, INSPECT_LIMITS, ISOLATE_IDLE_MS, ISOLATE_MAX_CONTEXTS, MIN_ISOLATE_MIB, REDUCE_SEED, TASK_FUNCTIONS, WATCHDOG_GRACE_MS } from './constants.ts'
import { InvalidModuleError, MemoryLimitError, SandboxAbortedError, TaskFailedError, TimeLimitError } from './errors.ts'
import type { ModuleInfo, RunRequest, TaskFunction, TaskLimits } from './index.ts'

const FILENAME = 'file:///job.js'

/** Evicted code ids remembered while their isolates finish a run (a bound: each is one job). */
const ENDED_KEPT = 256

interface PreparedContext {
  context: ivm.Context
  module: ivm.Module
  call: ivm.Reference<(fn: string, input: unknown, ctx: unknown, seed: number) => Promise<string>>
  exports: TaskFunction[]
}

interface WarmIsolate {
  /** Memory cap and a digest of the source: isolates with the same key run the same module. */
  key: string
  isolate: ivm.Isolate
  source: string
  memoryMiB: number
  cachedData?: ivm.ExternalCopy<ArrayBuffer>
  /** The context for the next task, being prepared while the isolate is idle. */
  next?: Promise<PreparedContext>
  /** The code id whose tasks used `next` already (reuseContexts); undefined while it is fresh. */
  nextOwner?: string
  /** Contexts created in this isolate. */
  contexts: number
  /** When it last went idle (Date.now()). */
  idleSince: number
}

/** Tuning, for tests: how long an idle isolate is kept, and after how many contexts one is retired. */
export interface JsRuntimeOptions {
  idleMs?: number
  maxContexts?: number
}

/** What ended a run, when the host ended it. */
type Verdict = 'timeout' | 'aborted' | undefined

export class JsRuntime {
  private readonly idle: WarmIsolate[] = []
  private readonly busy = new Set<WarmIsolate>()
  private readonly maxIdle: number
  private readonly reuseContexts: boolean
  private readonly idleMs: number
  private readonly maxContexts: number
  private readonly inflight = new Set<(why: Verdict) => void>()
  /**
   * Code ids evicted (their job ended), newest last: a context one of them
   * is using when evicted is released when its run ends instead of waiting
   * for a next task of that job that will not come.
   */
  private readonly ended = new Set<string>()
  /** Modules inspected before, by digest of their source: a submitter sends the same module again and again. */
  private readonly inspected = new Map<string, ModuleInfo>()
  private sweepTimer?: NodeJS.Timeout
  private closed = false
  /** Isolates created so far (inspections included). */
  created = 0

  constructor (maxIdle: number, reuseContexts: boolean, options: JsRuntimeOptions = {}) {
    this.maxIdle = maxIdle
    this.reuseContexts = reuseContexts
    this.idleMs = options.idleMs ?? ISOLATE_IDLE_MS
    this.maxContexts = options.maxContexts ?? ISOLATE_MAX_CONTEXTS
  }

  async run (req: RunRequest, source: string): Promise<unknown> {
    const memoryMiB = Math.max(MIN_ISOLATE_MIB, req.limits.memoryMiB)
    const warm = this.acquire(req.codeId, source, memoryMiB)
    let verdict: Verdict
    const stop = (why: Verdict): void => {
      verdict ??= why
      if (!warm.isolate.isDisposed) warm.isolate.dispose()
    }
    this.inflight.add(stop)
    // isolated-vm's timeout covers synchronous execution; the watchdog also
    // covers a promise that never settles
    const watchdog = setTimeout(() => { stop('timeout') }, req.limits.timeMs + WATCHDOG_GRACE_MS)
    const onAbort = (): void => { stop('aborted') }
    req.signal?.addEventListener('abort', onAbort)
    let healthy = false
    try {
      const prepared = await this.contextFor(warm, req.codeId, req.limits)
      let tagged: string
      try {
        if (!prepared.exports.includes(req.fn)) {
          throw new InvalidModuleError(`the module exports no ${req.fn}() function (it exports ${prepared.exports.join(', ')})`)
        }
        const input = req.fn === 'map' ? mapInput(req.input) : req.input
        const ctx = req.fn === 'map' ? (req.ctx ?? { task: 0, tasks: 1, seed: 0, args: {} }) : undefined
        const seed = req.fn === 'map' ? (ctx?.seed ?? 0) : REDUCE_SEED
        tagged = await prepared.call.apply(undefined, [req.fn, input, ctx, seed], {
          arguments: { copy: true },
          result: { copy: true, promise: true },
          timeout: req.limits.timeMs
        })
      } catch (err) {
        releaseContext(prepared)
        throw err
      }
      // fresh: the context is thrown away; reused: it serves this code id's next task
      if (this.reuseContexts && !this.ended.has(req.codeId)) {
        warm.next = Promise.resolve(prepared)
        warm.nextOwner = req.codeId
      } else {
        releaseContext(prepared)
      }
      healthy = !isAllocationFailure(tagged)
      return decode(tagged, req.fn, memoryMiB)
    } catch (err) {
      throw classify(err, verdict, warm.isolate, req.limits, memoryMiB)
    } finally {
      clearTimeout(watchdog)
      this.inflight.delete(stop)
      req.signal?.removeEventListener('abort', onAbort)
      this.release(warm, healthy, req.limits)
    }
  }

  /**
   * The context for a task of `codeId`: the one prepared while the isolate
   * was idle if it is fresh or already this code id's; another code id's
   * is released and a fresh one made.
   */
  private async contextFor (warm: WarmIsolate, codeId: string, limits: TaskLimits): Promise<PreparedContext> {
    const next = warm.next
    const owner = warm.nextOwner
    warm.next = undefined
    warm.nextOwner = undefined
    if (next != null && (owner == null || owner === codeId)) return await next
    if (next != null) next.then(releaseContext, () => {})
    return await this.prepare(warm, limits)
  }

  /**
   * The module's task functions, from an isolate of its own that is disposed
   * at once (an inspection's memory cap is not a run's, so its isolate would
   * serve no run), and remembered by the source's digest: a submitter that
   * sends the same module again inspects it once. Failures are not kept.
   */
  async inspect (_codeId: string, source: string): Promise<ModuleInfo> {
    const digest = sourceDigest(source)
    const known = this.inspected.get(digest)
    if (known != null) {
      this.inspected.delete(digest)
      this.inspected.set(digest, known)
      return { runtime: known.runtime, exports: [...known.exports] }
    }
    const limits = INSPECT_LIMITS
    const warm = this.newWarm(`inspect:${digest}`, source, limits.memoryMiB)
    this.busy.add(warm)
    try {
      const prepared = await this.prepare(warm, limits)
      const info: ModuleInfo = { runtime: 'js', exports: prepared.exports }
      this.inspected.set(digest, info)
      if (this.inspected.size > INSPECT_CACHE_ENTRIES) this.inspected.delete(this.inspected.keys().next().value as string)
      return { runtime: info.runtime, exports: [...info.exports] }
    } catch (err) {
      throw classify(err, undefined, warm.isolate, limits, limits.memoryMiB)
    } finally {
      this.busy.delete(warm)
      dispose(warm)
    }
  }

  close (): void {
    this.closed = true
    clearInterval(this.sweepTimer)
    for (const stop of this.inflight) stop('aborted')
    for (const warm of [...this.idle, ...this.busy]) dispose(warm)
    this.idle.length = 0
    this.busy.clear()
  }

  /** Warm isolates (idle + busy), for tests and the bench. */
  get isolates (): number {
    return this.idle.length + this.busy.size
  }

  /** Bytes held by the heaps of the warm isolates (their own V8 heaps, outside the host's). */
  async heapBytes (): Promise<{ total: number, used: number, external: number }> {
    const out = { total: 0, used: 0, external: 0 }
    for (const warm of [...this.idle, ...this.busy]) {
      try {
        const s = await warm.isolate.getHeapStatistics()
        out.total += s.total_heap_size
        out.used += s.used_heap_size
        out.external += s.externally_allocated_size
      } catch {} // disposed meanwhile
    }
    return out
  }

  private newWarm (key: string, source: string, memoryMiB: number): WarmIsolate {
    this.created++
    return { key, source, memoryMiB, isolate: new ivm.Isolate({ memoryLimit: memoryMiB }), contexts: 0, idleSince: 0 }
  }

  private acquire (codeId: string, source: string, memoryMiB: number): WarmIsolate {
    // the code runs again (a job picked up after its stream closed): its contexts may be kept again
    this.ended.delete(codeId)
    const key = `${memoryMiB}:${sourceDigest(source)}`
    // one whose context is this code id's, then one with a fresh context, then any; most recently used first
    let pick = -1
    let rank = 0
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const warm = this.idle[i] as WarmIsolate
      if (warm.key !== key || warm.source !== source) continue
      const r = warm.nextOwner === codeId ? 3 : warm.nextOwner == null ? 2 : 1
      if (r > rank) {
        rank = r
        pick = i
      }
      if (r === 3) break
    }
    const warm = pick >= 0 ? this.idle.splice(pick, 1)[0] as WarmIsolate : this.newWarm(key, source, memoryMiB)
    this.busy.add(warm)
    return warm
  }

  /**
   * `codeId` will not run again soon (its job ended): the contexts it kept
   * are released and their isolates stay warm for the same code under other
   * ids (a busy one's, when its run ends).
   */
  evict (codeId: string): void {
    for (const warm of this.idle) {
      if (warm.nextOwner !== codeId) continue
      const next = warm.next
      warm.next = undefined
      warm.nextOwner = undefined
      next?.then(releaseContext, () => {})
    }
    this.ended.add(codeId)
    if (this.ended.size > ENDED_KEPT) this.ended.delete(this.ended.values().next().value as string)
  }

  private release (warm: WarmIsolate, healthy: boolean, limits: TaskLimits): void {
    this.busy.delete(warm)
    if (!healthy || this.closed || warm.isolate.isDisposed || warm.contexts >= this.maxContexts) {
      dispose(warm)
      return
    }
    warm.idleSince = Date.now()
    this.idle.push(warm)
    while (this.idle.length > this.maxIdle) dispose(this.idle.shift() as WarmIsolate)
    if (warm.next == null) {
      const next = this.prepare(warm, limits)
      // a failure here (top level threw, isolate disposed) resurfaces at the next run
      next.catch(() => {})
      warm.next = next
    }
    this.sweepTimer ??= setInterval(() => { this.sweep() }, Math.max(50, Math.min(this.idleMs, ISOLATE_IDLE_MS) / 2)).unref()
  }

  /** Disposes isolates idle for longer than idleMs; stops once none is idle. */
  private sweep (): void {
    const before = Date.now() - this.idleMs
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const warm = this.idle[i] as WarmIsolate
      if (warm.idleSince > before) continue
      this.idle.splice(i, 1)
      dispose(warm)
    }
    if (this.idle.length === 0) {
      clearInterval(this.sweepTimer)
      this.sweepTimer = undefined
    }
  }

  private async prepare (warm: WarmIsolate, limits: TaskLimits): Promise<PreparedContext> {
    const { isolate } = warm
    warm.contexts++
    const context = await isolate.createContext()
    try {
      const bind = await context.evalClosure(BOOTSTRAP, [], { result: { reference: true } })
      let module: ivm.Module
      try {
        module = await isolate.compileModule(warm.source, warm.cachedData != null
          ? { filename: FILENAME, cachedData: warm.cachedData }
          : { filename: FILENAME, produceCachedData: true })
      } catch (err) {
        throw new InvalidModuleError(`the module does not compile: ${(err as Error).message}`)
      }
      const produced = (module as ivm.Module & ivm.CachedDataResult).cachedData
      if (warm.cachedData == null && produced != null) warm.cachedData = produced
      if (module.dependencySpecifiers.length > 0) {
        throw new InvalidModuleError(`the module imports ${module.dependencySpecifiers.map(s => `'${s}'`).join(', ')}: a job module may import nothing; bundle what it needs into one file`)
      }
      await module.instantiate(context, (specifier) => { throw new InvalidModuleError(`cannot import '${specifier}'`) })
      try {
        await module.evaluate({ timeout: limits.timeMs, promise: true })
      } catch (err) {
        if (isolate.isDisposed || /timed out/i.test((err as Error).message)) throw err
        throw new InvalidModuleError(`the module's top level threw: ${(err as Error).message}`)
      }
      const kinds = await context.evalClosure(
        `const out = {}; for (const n of ${JSON.stringify(TASK_FUNCTIONS)}) out[n] = typeof $0[n]; return JSON.stringify(out)`,
        [module.namespace.derefInto()], { result: { copy: true } })
      const types = JSON.parse(kinds as string) as Record<string, string>
      const exports = TASK_FUNCTIONS.filter(name => types[name] === 'function')
      if (!exports.includes('map')) {
        throw new InvalidModuleError('the module exports no map() function: a job module is ESM text with `export function map (input, ctx) { ... }`, `export function reduce (values) { ... }` and optionally combine')
      }
      const call = await bind.apply(undefined, [module.namespace.derefInto()], { result: { reference: true } }) as PreparedContext['call']
      bind.release()
      return { context, module, call, exports }
    } catch (err) {
      context.release()
      throw err
    }
  }
}

function releaseContext (prepared: PreparedContext): void {
  prepared.call.release()
  prepared.module.release()
  prepared.context.release()
}

function dispose (warm: WarmIsolate): void {
  warm.next = undefined
  warm.nextOwner = undefined
  if (!warm.isolate.isDisposed) warm.isolate.dispose()
}

/** A module's identity within this process (sha-256 of its text). */
function sourceDigest (source: string): string {
  return createHash('sha256').update(source).digest('base64url')
}

/** map's input: text when the partition is valid UTF-8, else the bytes. */
function mapInput (input: Uint8Array | unknown[]): string | Uint8Array {
  if (!(input instanceof Uint8Array)) throw new TypeError('map takes the partition bytes as a Uint8Array')
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input)
  } catch {
    return input
  }
}

const ALLOCATION_FAILED = 'Array buffer allocation failed'

function isAllocationFailure (tagged: string): boolean {
  return tagged.startsWith('e') && tagged.includes(ALLOCATION_FAILED)
}

function decode (tagged: string, fn: TaskFunction, memoryMiB: number): unknown {
  if (tagged.startsWith('o')) return JSON.parse(tagged.slice(1))
  const { message, where } = JSON.parse(tagged.slice(1)) as { message: string, where?: string }
  // large ArrayBuffers are allocated outside the heap: over the cap, the
  // allocation throws in the task instead of ending the isolate
  if (message === ALLOCATION_FAILED) throw new MemoryLimitError(memoryMiB, 'ArrayBuffer allocation refused')
  throw new TaskFailedError(`${fn}() failed: ${message}${where != null ? ` (${where})` : ''}`)
}

function classify (err: unknown, verdict: Verdict, isolate: ivm.Isolate, limits: TaskLimits, memoryMiB: number): Error {
  if (verdict === 'aborted') return new SandboxAbortedError()
  if (verdict === 'timeout') return new TimeLimitError(limits.timeMs)
  if (err instanceof InvalidModuleError || err instanceof TaskFailedError || err instanceof MemoryLimitError) return err
  const message = err instanceof Error ? err.message : String(err)
  if (/timed out/i.test(message)) return new TimeLimitError(limits.timeMs)
  if (/memory limit/i.test(message) || isolate.isDisposed) return new MemoryLimitError(memoryMiB)
  return new TaskFailedError(message)
}
