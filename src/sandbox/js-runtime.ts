/**
 * JavaScript tasks in V8 isolates (isolated-vm).
 *
 * - An isolate is warm for one (code id, memory cap): creating one costs
 *   ~2.5-5 ms. Idle isolates wait in a small LRU; concurrent runs of the same
 *   code each take their own isolate, so slots run in parallel on
 *   isolated-vm's threads while the host's event loop stays free.
 * - Every task gets a fresh context (~1 ms), so no global or module state
 *   survives from one task to the next: an output depends only on the code,
 *   the input and ctx. To keep that cost off the call path, an idle isolate
 *   prepares the context for its next task in the background.
 * - A run that hits a limit, or is aborted, disposes its isolate.
 */
import ivm from 'isolated-vm'
import { BOOTSTRAP } from './js-bootstrap.ts'
import { createHash } from 'node:crypto'
import { INSPECT_CACHE_ENTRIES, INSPECT_LIMITS, MIN_ISOLATE_MIB, REDUCE_SEED, TASK_FUNCTIONS, WATCHDOG_GRACE_MS } from './constants.ts'
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
  key: string
  codeId: string
  isolate: ivm.Isolate
  source: string
  memoryMiB: number
  cachedData?: ivm.ExternalCopy<ArrayBuffer>
  /** The context for the next task, being prepared while the isolate is idle. */
  next?: Promise<PreparedContext>
}

/** What ended a run, when the host ended it. */
type Verdict = 'timeout' | 'aborted' | undefined

export class JsRuntime {
  private readonly idle: WarmIsolate[] = []
  private readonly busy = new Set<WarmIsolate>()
  private readonly maxIdle: number
  private readonly reuseContexts: boolean
  private readonly inflight = new Set<(why: Verdict) => void>()
  /**
   * Code ids evicted (their job ended), newest last: an isolate of one that
   * was busy at the time is disposed when its run ends instead of waiting
   * idle (with its next context prepared) until the LRU pushes it out.
   */
  private readonly ended = new Set<string>()
  /** Modules inspected before, by digest of their source: a submitter sends the same module again and again. */
  private readonly inspected = new Map<string, ModuleInfo>()
  private closed = false
  /** Isolates created so far (inspections included). */
  created = 0

  constructor (maxIdle: number, reuseContexts: boolean) {
    this.maxIdle = maxIdle
    this.reuseContexts = reuseContexts
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
      const prepared = await (warm.next ?? this.prepare(warm, req.limits))
      warm.next = undefined
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
      // fresh: the context is thrown away; reused: it serves the next task
      if (this.reuseContexts) warm.next = Promise.resolve(prepared)
      else releaseContext(prepared)
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
   * The module's task functions, from an isolate of its own that is disposed
   * at once: runs go by other ids (a worker keys them by job, a submitter's
   * inspection names its purpose), so a warm isolate left by an inspection
   * was never used again; it only held its heap (~3 MiB) until four newer
   * ones pushed it out. The answer is remembered by the source's digest: a
   * submitter that sends the same module again makes no isolate for it.
   * Failures are not remembered.
   */
  async inspect (codeId: string, source: string): Promise<ModuleInfo> {
    const digest = createHash('sha256').update(source).digest('base64url')
    const known = this.inspected.get(digest)
    if (known != null) {
      // most recently used last
      this.inspected.delete(digest)
      this.inspected.set(digest, known)
      return { runtime: known.runtime, exports: [...known.exports] }
    }
    const limits = INSPECT_LIMITS
    const warm: WarmIsolate = { key: `inspect:${codeId}`, codeId, source, memoryMiB: limits.memoryMiB, isolate: this.newIsolate(limits.memoryMiB) }
    this.busy.add(warm)
    try {
      const prepared = await this.prepare(warm, limits)
      this.inspected.set(digest, { runtime: 'js', exports: [...prepared.exports] })
      if (this.inspected.size > INSPECT_CACHE_ENTRIES) this.inspected.delete(this.inspected.keys().next().value as string)
      return { runtime: 'js', exports: prepared.exports }
    } catch (err) {
      throw classify(err, undefined, warm.isolate, limits, limits.memoryMiB)
    } finally {
      this.busy.delete(warm)
      dispose(warm)
    }
  }

  close (): void {
    this.closed = true
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

  private newIsolate (memoryMiB: number): ivm.Isolate {
    this.created++
    return new ivm.Isolate({ memoryLimit: memoryMiB })
  }

  private acquire (codeId: string, source: string, memoryMiB: number): WarmIsolate {
    const key = `${memoryMiB}:${codeId}`
    // most recently used first: its context is the likeliest to be ready
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const warm = this.idle[i] as WarmIsolate
      if (warm.key === key && warm.source === source) {
        this.idle.splice(i, 1)
        this.busy.add(warm)
        return warm
      }
    }
    // the code runs again (a job picked up after its stream closed): it is live, keep its isolates warm
    this.ended.delete(codeId)
    const warm: WarmIsolate = { key, codeId, source, memoryMiB, isolate: this.newIsolate(memoryMiB) }
    this.busy.add(warm)
    return warm
  }

  /** Disposes the isolates of `codeId` (its job ended: nothing will run there again): idle ones now, busy ones when their run ends. */
  evict (codeId: string): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const warm = this.idle[i] as WarmIsolate
      if (warm.codeId === codeId) {
        this.idle.splice(i, 1)
        dispose(warm)
      }
    }
    if ([...this.busy].some(w => w.codeId === codeId)) {
      this.ended.add(codeId)
      if (this.ended.size > ENDED_KEPT) this.ended.delete(this.ended.values().next().value as string)
    }
  }

  private release (warm: WarmIsolate, healthy: boolean, limits: TaskLimits): void {
    this.busy.delete(warm)
    if (!healthy || this.closed || warm.isolate.isDisposed || this.ended.has(warm.codeId)) {
      dispose(warm)
      return
    }
    this.idle.push(warm)
    while (this.idle.length > this.maxIdle) dispose(this.idle.shift() as WarmIsolate)
    if (warm.next == null) {
      const next = this.prepare(warm, limits)
      // a failure here (top level threw, isolate disposed) resurfaces at the next run
      next.catch(() => {})
      warm.next = next
    }
  }

  private async prepare (warm: WarmIsolate, limits: TaskLimits): Promise<PreparedContext> {
    const { isolate } = warm
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
  if (!warm.isolate.isDisposed) warm.isolate.dispose()
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
