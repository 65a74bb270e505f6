/**
 * WebAssembly tasks: WASI command modules run in worker threads, never on the
 * host's event loop. The memory cap is written into the module's memory
 * section before it is compiled (see wasm-binary.ts); the time limit
 * terminates the worker. Idle workers are kept for the next task.
 */
import { Worker } from 'node:worker_threads'
import { capMemory, capPages, WasmFormatError } from './wasm-binary.ts'
import { STDERR_TAIL_BYTES, WASM_PAGE_BYTES, WASM_PROGRAM_NAME } from './constants.ts'
import { InvalidModuleError, MemoryLimitError, SandboxAbortedError, TaskFailedError, TimeLimitError } from './errors.ts'
import { wasmApi } from './wasm-api.ts'
import type { RunRequest } from './index.ts'
import type { WasmModule } from './wasm-api.ts'
import type { WasmOutcome, WasmTask, WasmWorkerHello } from './wasm-worker.ts'

const WASI_MODULE = 'wasi_snapshot_preview1'
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './wasm-worker.ts' : './wasm-worker.js', import.meta.url)
/** What allocators print when memory.grow fails (Rust, Go, C runtimes). */
const OUT_OF_MEMORY = /out of memory|memory allocation of \d+ bytes failed|cannot allocate memory|ENOMEM/i

interface PooledWorker {
  worker: Worker
}

export interface WasmRuntimeInit {
  warmWorkers: number
  moduleCache: number
}

interface CompiledModule {
  module: WasmModule
  /** The cap lowered the module's own maximum. */
  lowered: boolean
}

export class WasmRuntime {
  private readonly init: WasmRuntimeInit
  private readonly idle: PooledWorker[] = []
  private readonly busy = new Map<PooledWorker, () => void>()
  /** Compiled, capped modules by `${pages}:${codeId}`, least recently used first. */
  private readonly modules = new Map<string, Promise<CompiledModule>>()
  private closed = false

  constructor (init: WasmRuntimeInit) {
    this.init = init
  }

  get workers (): number {
    return this.idle.length + this.busy.size
  }

  /** Validates a WASI command and compiles it with memory capped at `memoryMiB` (default: none). */
  async compile (code: Uint8Array, codeId: string, memoryMiB?: number): Promise<CompiledModule> {
    const pages = memoryMiB == null ? 65536 : capPages(memoryMiB)
    const key = `${pages}:${codeId}`
    let compiled = this.modules.get(key)
    if (compiled != null) {
      this.modules.delete(key) // re-inserted below as the most recent
    } else {
      compiled = compileCapped(code, pages, memoryMiB)
      compiled.catch(() => { this.modules.delete(key) })
    }
    this.modules.set(key, compiled)
    while (this.modules.size > this.init.moduleCache) this.modules.delete(this.modules.keys().next().value as string)
    return await compiled
  }

  async run (req: RunRequest): Promise<unknown> {
    const { memoryMiB, timeMs } = req.limits
    if (!(req.input instanceof Uint8Array)) throw new TypeError('a wasm map takes the partition bytes as a Uint8Array')
    const { module, lowered } = await this.compile(req.code, req.codeId, memoryMiB)
    const pooled = await this.acquire()
    const task: WasmTask = {
      module,
      stdin: req.input,
      seed: req.ctx?.seed ?? 0,
      programName: WASM_PROGRAM_NAME,
      maxOutputBytes: Math.floor(memoryMiB * 1024 * 1024),
      stderrTailBytes: STDERR_TAIL_BYTES
    }
    const outcome = await new Promise<WasmOutcome>((resolve, reject) => {
      const { worker } = pooled
      const finish = (result: WasmOutcome | Error, kill: boolean): void => {
        clearTimeout(timer)
        req.signal?.removeEventListener('abort', onAbort)
        worker.off('message', onMessage)
        worker.off('error', onError)
        worker.off('exit', onExit)
        this.busy.delete(pooled)
        if (kill || this.closed) this.kill(pooled).catch(() => {})
        else this.park(pooled)
        if (result instanceof Error) reject(result)
        else resolve(result)
      }
      const timer = setTimeout(() => { finish(new TimeLimitError(timeMs), true) }, timeMs)
      const onAbort = (): void => { finish(new SandboxAbortedError(), true) }
      const onMessage = (outcome: WasmOutcome): void => { finish(outcome, false) }
      const onError = (err: Error & { code?: string }): void => {
        finish(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? new MemoryLimitError(memoryMiB, 'the worker ran out of heap') : new TaskFailedError(`the wasm worker failed: ${err.message}`), true)
      }
      const onExit = (code: number): void => { finish(new TaskFailedError(`the wasm worker exited (code ${code})`), true) }
      this.busy.set(pooled, () => { finish(new SandboxAbortedError('the sandbox closed'), true) })
      req.signal?.addEventListener('abort', onAbort)
      worker.on('message', onMessage)
      worker.on('error', onError)
      worker.on('exit', onExit)
      worker.postMessage(task)
    })
    return interpret(outcome, lowered, memoryMiB)
  }

  async close (): Promise<void> {
    this.closed = true
    for (const abort of [...this.busy.values()]) abort()
    const idle = this.idle.splice(0)
    await Promise.all(idle.map(async pooled => { await this.kill(pooled) }))
  }

  private async acquire (): Promise<PooledWorker> {
    const parked = this.idle.pop()
    if (parked != null) return parked
    const worker = new Worker(WORKER_URL, { execArgv: ['--no-warnings'], resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 } })
    await new Promise<WasmWorkerHello>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    worker.removeAllListeners('error')
    // an error after a run was settled (or while idle) must not crash the host
    worker.on('error', () => {})
    const pooled = { worker }
    worker.once('exit', () => {
      const at = this.idle.indexOf(pooled)
      if (at >= 0) this.idle.splice(at, 1)
    })
    return pooled
  }

  private park (pooled: PooledWorker): void {
    this.idle.push(pooled)
    while (this.idle.length > this.init.warmWorkers) this.kill(this.idle.shift() as PooledWorker).catch(() => {})
  }

  private async kill (pooled: PooledWorker): Promise<void> {
    // Node closes the fds a worker opened (its /dev/null) when it exits: closing
    // them here again could close a descriptor the process has reused since
    await pooled.worker.terminate()
  }
}

async function compileCapped (code: Uint8Array, pages: number, memoryMiB: number | undefined): Promise<CompiledModule> {
  let capped
  try {
    capped = capMemory(code, pages)
  } catch (err) {
    if (err instanceof WasmFormatError) throw new InvalidModuleError(`not a usable WebAssembly module: ${err.message}`)
    throw err
  }
  let module: WasmModule
  try {
    module = await wasmApi.compile(capped.bytes)
  } catch (err) {
    throw new InvalidModuleError(`not a valid WebAssembly module: ${(err as Error).message}`)
  }
  const advice = 'build a WASI command (preview1), e.g. `cargo build --target wasm32-wasip1` or `clang --target=wasm32-wasip1` with a main function'
  const foreign = wasmApi.Module.imports(module).filter(i => i.module !== WASI_MODULE || i.kind !== 'function')
  if (foreign.length > 0) {
    const names = foreign.slice(0, 3).map(i => `${i.module}.${i.name} (${i.kind})`).join(', ')
    throw new InvalidModuleError(`the module imports ${names}: a WASI command may import only ${WASI_MODULE} functions; ${advice}`)
  }
  const exports = wasmApi.Module.exports(module)
  if (!exports.some(e => e.name === '_start' && e.kind === 'function')) {
    throw new InvalidModuleError(`the module exports no _start function, so it is not a WASI command (a library or reactor?); ${advice}`)
  }
  if (!exports.some(e => e.name === 'memory' && e.kind === 'memory')) {
    throw new InvalidModuleError(`the module exports no memory named "memory"; ${advice}`)
  }
  const needed = Math.max(0, ...capped.memories.map(m => m.min))
  if (memoryMiB != null && needed > pages) {
    throw new MemoryLimitError(memoryMiB, `the module needs ${(needed * WASM_PAGE_BYTES / 1048576).toFixed(1)} MiB of memory at start`)
  }
  return { module, lowered: capped.lowered }
}

function interpret (outcome: WasmOutcome, lowered: boolean, memoryMiB: number): unknown {
  if (outcome.kind === 'exit' && outcome.exitCode === 0) {
    const text = new TextDecoder().decode(outcome.stdout)
    try {
      return JSON.parse(text)
    } catch {
      return text
    }
  }
  if (outcome.kind === 'link') throw new InvalidModuleError(`the module cannot be linked: ${outcome.message}; it may use a WASI function that preview1 does not have`)
  if (outcome.kind === 'output') throw new MemoryLimitError(memoryMiB, outcome.message)
  // a failed memory.grow is invisible from outside: judge by how full the
  // memory is, or by what the program's allocator said
  const capBytes = capPages(memoryMiB) * WASM_PAGE_BYTES
  const full = lowered && outcome.memoryBytes + Math.max(1048576, capBytes / 16) > capBytes
  const stderr = outcome.stderr.trim()
  if (full || OUT_OF_MEMORY.test(stderr)) {
    throw new MemoryLimitError(memoryMiB, `linear memory at ${(outcome.memoryBytes / 1048576).toFixed(1)} MiB`)
  }
  const what = outcome.kind === 'exit' ? `exited with code ${outcome.exitCode}` : `trapped: ${outcome.message}`
  throw new TaskFailedError(`the wasm task ${what}${stderr !== '' ? `; stderr: ${stderr.slice(-500)}` : ''}`)
}
