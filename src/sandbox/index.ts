/**
 * Runs job code safely and deterministically: JavaScript modules in V8
 * isolates (isolated-vm), WebAssembly WASI commands in worker threads. Every
 * run has a memory cap and a time limit; hitting one ends that run with an
 * error that names the limit, and the sandbox keeps serving. See
 * docs/SANDBOX.md for the execution model and the determinism rules.
 */
import { DefaultSandbox } from './sandbox.ts'

export * from './errors.ts'
export { detectRuntime } from './sandbox.ts'

export type Runtime = 'js' | 'wasm'
export type TaskFunction = 'map' | 'combine' | 'reduce'

export interface TaskLimits {
  /** JS: the isolate's heap (isolated-vm memoryLimit, at least 8). wasm: linear memory. */
  memoryMiB: number
  /** Wall-clock time of the call, in ms. */
  timeMs: number
}

export interface TaskContext {
  /** Index of this task in the job (0-based). */
  task: number
  /** Number of map tasks in the job. */
  tasks: number
  /** Seeds Math.random (JS) or random_get (wasm) for this task. */
  seed: number
  /** The job's `--arg key=value` pairs. */
  args: Record<string, string>
}

export interface RunRequest {
  runtime: Runtime
  /** JS: ESM module source as UTF-8; wasm: a WASI command module binary. */
  code: Uint8Array
  /** Stable id of the code (its CID): warm isolates and compiled modules are cached by it. */
  codeId: string
  /** wasm supports only 'map'. */
  fn: TaskFunction
  /** map: partition bytes; combine/reduce: array of JSON values. */
  input: Uint8Array | unknown[]
  /** Second argument of map. @default { task: 0, tasks: 1, seed: 0, args: {} } */
  ctx?: TaskContext
  limits: TaskLimits
  signal?: AbortSignal
}

export interface ModuleInfo {
  runtime: Runtime
  /** Task functions the module exports ('map' always; wasm: only 'map'). */
  exports: TaskFunction[]
}

export interface Sandbox {
  /** Runs one task function; resolves to its JSON value (already parsed). */
  run(req: RunRequest): Promise<unknown>
  /** Validates a module and lists its task functions; throws InvalidModuleError. */
  inspect(runtime: Runtime, code: Uint8Array, codeId: string): Promise<ModuleInfo>
  /** Drops the warm JS isolates of `codeId` (the code will not run again soon, e.g. its job ended). */
  evict(codeId: string): void
  /** Warm isolates and workers and the bytes of the isolates' own heaps (not in the host's process.memoryUsage()). */
  memory(): Promise<SandboxMemory>
  /** Ends every warm isolate and worker; runs in flight are aborted. */
  close(): Promise<void>
}

export interface SandboxMemory {
  isolates: number
  /** JS isolates created since the sandbox started (a submitter makes one a job for its reduce; inspections of a module it saw before make none). */
  isolatesCreated: number
  workers: number
  /** Sums over the warm isolates, in bytes. */
  isolateHeap: { total: number, used: number, external: number }
}

export interface SandboxInit {
  /**
   * Idle JS isolates kept warm for reuse, across all code ids (least recently
   * used dropped first). Each holds a ready context for its next task.
   * @default 4
   */
  warmIsolates?: number
  /**
   * Run every JS task in a fresh context (false), or reuse a code's context
   * for its next tasks on this worker (true). A fresh context costs ~1.9 ms of
   * isolate CPU per task (prepared ahead while the isolate is idle) and
   * guarantees that no global or module-level state survives between tasks:
   * an output depends only on code, input and ctx. Reuse costs ~0.1 ms but
   * module state persists, so a module that keeps state between calls gives
   * results that depend on which tasks a worker ran before.
   * @default false
   */
  reuseContexts?: boolean
  /**
   * Idle wasm worker threads kept for reuse (starting one costs ~15 ms).
   * @default 2
   */
  warmWorkers?: number
  /**
   * Compiled wasm modules cached by code id and memory cap.
   * @default 16
   */
  wasmModuleCache?: number
}

export function createSandbox (init: SandboxInit = {}): Sandbox {
  return new DefaultSandbox(init)
}
