import { JsRuntime } from './js-runtime.ts'
import { WasmRuntime } from './wasm-runtime.ts'
import { InvalidModuleError, SandboxAbortedError, SandboxClosedError } from './errors.ts'
import type { ModuleInfo, Runtime, RunRequest, Sandbox, SandboxInit, SandboxMemory } from './index.ts'

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d] // \0asm

/** 'wasm' when the bytes start with the WebAssembly magic number, else 'js'. */
export function detectRuntime (code: Uint8Array): Runtime {
  return WASM_MAGIC.every((byte, i) => code[i] === byte) ? 'wasm' : 'js'
}

export class DefaultSandbox implements Sandbox {
  private readonly js: JsRuntime
  private readonly wasm: WasmRuntime
  private closed = false

  constructor (init: SandboxInit) {
    this.js = new JsRuntime(init.warmIsolates ?? 4, init.reuseContexts ?? false)
    this.wasm = new WasmRuntime({ warmWorkers: init.warmWorkers ?? 2, moduleCache: init.wasmModuleCache ?? 16 })
  }

  async run (req: RunRequest): Promise<unknown> {
    if (this.closed) throw new SandboxClosedError()
    if (req.signal?.aborted === true) throw new SandboxAbortedError()
    checkLimits(req)
    if (req.runtime === 'js') return await this.js.run(req, jsSource(req.code))
    if (req.fn !== 'map') {
      throw new InvalidModuleError(`a WebAssembly module runs only map, not ${req.fn}: give the job a JS reducer for combine/reduce`)
    }
    return await this.wasm.run(req)
  }

  async inspect (runtime: Runtime, code: Uint8Array, codeId: string): Promise<ModuleInfo> {
    if (this.closed) throw new SandboxClosedError()
    if (runtime === 'js') return await this.js.inspect(codeId, jsSource(code))
    await this.wasm.compile(code, codeId)
    return { runtime: 'wasm', exports: ['map'] }
  }

  evict (codeId: string): void {
    this.js.evict(codeId)
  }

  async close (): Promise<void> {
    this.closed = true
    this.js.close()
    await this.wasm.close()
  }

  async memory (): Promise<SandboxMemory> {
    return { isolates: this.js.isolates, isolatesCreated: this.js.created, workers: this.wasm.workers, isolateHeap: await this.js.heapBytes() }
  }

  /** Warm JS isolates and wasm workers, for tests and the bench. */
  get warm (): { isolates: number, workers: number } {
    return { isolates: this.js.isolates, workers: this.wasm.workers }
  }
}

function jsSource (code: Uint8Array): string {
  if (detectRuntime(code) === 'wasm') throw new InvalidModuleError('this is a WebAssembly module, not JavaScript: run it with runtime \'wasm\'')
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(code)
  } catch {
    throw new InvalidModuleError('a JS job module must be UTF-8 text (ESM source)')
  }
}

function checkLimits (req: RunRequest): void {
  const { memoryMiB, timeMs } = req.limits
  if (!(Number.isFinite(memoryMiB) && memoryMiB > 0) || !(Number.isFinite(timeMs) && timeMs > 0)) {
    throw new RangeError(`task limits must be positive numbers (memoryMiB ${memoryMiB}, timeMs ${timeMs})`)
  }
}
