import { assemble } from '../../scripts/wat2wasm.ts'
import type { RunRequest, Sandbox, TaskLimits } from '../../src/sandbox/index.ts'

export const LIMITS: TaskLimits = { memoryMiB: 32, timeMs: 2000 }

const encoder = new TextEncoder()
export const utf8 = (text: string): Uint8Array => encoder.encode(text)

let ids = 0

/** Runs `fn` of a JS module given as source text; a new code id per source. */
export async function runJs (sandbox: Sandbox, source: string, req: Partial<RunRequest> = {}): Promise<unknown> {
  return await sandbox.run({
    runtime: 'js',
    code: utf8(source),
    codeId: codeIdOf(source),
    fn: 'map',
    input: utf8(''),
    limits: LIMITS,
    ...req
  })
}

const codeIds = new Map<string, string>()
export function codeIdOf (source: string | Uint8Array): string {
  const key = typeof source === 'string' ? source : Buffer.from(source).toString('base64')
  let id = codeIds.get(key)
  if (id == null) {
    id = `code-${++ids}`
    codeIds.set(key, id)
  }
  return id
}

/** A WASI command from WAT text; `body` is the flat instructions of _start. */
export function wasiCommand (body: string, extra = '', memory = '(memory (export "memory") 1)'): Uint8Array {
  return assemble(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
    (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
    ${memory}
    ${extra}
    (func (export "_start") (local $i i32)
      ${body}))`)
}

/** Counts event-loop turns while `promise` runs: a blocked loop counts ~0. */
export async function ticksDuring (promise: Promise<unknown>, everyMs = 10): Promise<number> {
  let ticks = 0
  const timer = setInterval(() => { ticks++ }, everyMs)
  try {
    await promise.catch(() => {})
  } finally {
    clearInterval(timer)
  }
  return ticks
}
