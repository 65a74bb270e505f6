/**
 * Worker thread running one WASI command at a time (node:wasi, preview1).
 *
 * node:wasi serves the long tail of WASI calls. Stdio and the sources of
 * nondeterminism are ours: stdin is read from the partition in memory, stdout
 * and stderr are collected in memory, clocks read 0 and random_get is a seeded
 * PRNG. node:wasi's own stdio fds point at /dev/null, and fds 0-2 cannot be
 * closed or renumbered, so the program never touches a real file.
 */
import { openSync } from 'node:fs'
import { parentPort } from 'node:worker_threads'
import { WASI } from 'node:wasi'
import { mulberry32 } from '../random.ts'
import { wasmApi } from './wasm-api.ts'
import type { WasmMemory, WasmModule } from './wasm-api.ts'

export interface WasmTask {
  module: WasmModule
  stdin: Uint8Array
  seed: number
  programName: string
  /** Stop collecting and fail when stdout + stderr exceed this. */
  maxOutputBytes: number
  stderrTailBytes: number
}

export type WasmOutcome =
  | { kind: 'exit', exitCode: number, stdout: Uint8Array, stderr: string, memoryBytes: number }
  | { kind: 'trap' | 'output' | 'link', message: string, stderr: string, memoryBytes: number }

/** First message of a worker: it is ready. */
export interface WasmWorkerHello { ready: true }

const ERRNO_SUCCESS = 0
const ERRNO_BADF = 8
const ERRNO_NOTSUP = 58

class OutputLimit extends Error {}

const devNull = [openSync('/dev/null', 'r'), openSync('/dev/null', 'w'), openSync('/dev/null', 'w')] as const
parentPort?.postMessage({ ready: true } satisfies WasmWorkerHello)

parentPort?.on('message', (task: WasmTask) => {
  parentPort?.postMessage(runTask(task))
})

function runTask (task: WasmTask): WasmOutcome {
  const wasi = new WASI({
    version: 'preview1',
    args: [task.programName],
    env: {},
    preopens: {},
    returnOnExit: true,
    stdin: devNull[0],
    stdout: devNull[1],
    stderr: devNull[2]
  })
  const base = (wasi.getImportObject() as Record<string, unknown>).wasi_snapshot_preview1 as Record<string, (...args: any[]) => number>
  let memory: WasmMemory | undefined
  const view = (): DataView => new DataView((memory as WasmMemory).buffer)
  const bytes = (): Uint8Array => new Uint8Array((memory as WasmMemory).buffer)
  let stdinAt = 0
  const stdout: Uint8Array[] = []
  let stderr = Buffer.alloc(0)
  let outputBytes = 0
  const random = mulberry32(task.seed)

  const imports: Record<string, (...args: any[]) => number> = {
    ...base,
    fd_read (fd: number, iovs: number, iovsLen: number, nreadPtr: number): number {
      if (fd !== 0) return base.fd_read?.(fd, iovs, iovsLen, nreadPtr) ?? ERRNO_BADF
      let nread = 0
      for (let i = 0; i < iovsLen; i++) {
        const ptr = view().getUint32(iovs + i * 8, true)
        const len = view().getUint32(iovs + i * 8 + 4, true)
        const chunk = task.stdin.subarray(stdinAt, stdinAt + len)
        bytes().set(chunk, ptr)
        stdinAt += chunk.byteLength
        nread += chunk.byteLength
        if (chunk.byteLength < len) break
      }
      view().setUint32(nreadPtr, nread, true)
      return ERRNO_SUCCESS
    },
    fd_write (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
      if (fd !== 1 && fd !== 2) return base.fd_write?.(fd, iovs, iovsLen, nwrittenPtr) ?? ERRNO_BADF
      let written = 0
      for (let i = 0; i < iovsLen; i++) {
        const ptr = view().getUint32(iovs + i * 8, true)
        const len = view().getUint32(iovs + i * 8 + 4, true)
        outputBytes += len
        if (outputBytes > task.maxOutputBytes) throw new OutputLimit(`the task wrote more than ${task.maxOutputBytes} bytes to stdout and stderr`)
        const chunk = bytes().slice(ptr, ptr + len)
        if (fd === 1) stdout.push(chunk)
        else stderr = Buffer.concat([stderr, chunk]).subarray(-task.stderrTailBytes)
        written += len
      }
      view().setUint32(nwrittenPtr, written, true)
      return ERRNO_SUCCESS
    },
    fd_close (fd: number): number {
      return fd <= 2 ? ERRNO_SUCCESS : (base.fd_close?.(fd) ?? ERRNO_BADF)
    },
    fd_renumber (): number {
      return ERRNO_NOTSUP
    },
    clock_time_get (_id: number, _precision: bigint, timePtr: number): number {
      view().setBigUint64(timePtr, 0n, true)
      return ERRNO_SUCCESS
    },
    random_get (buf: number, len: number): number {
      const target = bytes()
      for (let i = 0; i < len; i++) target[buf + i] = Math.floor(random() * 256)
      return ERRNO_SUCCESS
    }
  }

  const memoryBytes = (): number => memory?.buffer.byteLength ?? 0
  const stderrText = (): string => stderr.toString('utf8')
  let instance
  try {
    instance = new wasmApi.Instance(task.module, { wasi_snapshot_preview1: imports })
    memory = instance.exports.memory as WasmMemory
  } catch (err) {
    return { kind: 'link', message: (err as Error).message, stderr: '', memoryBytes: 0 }
  }
  try {
    const exitCode = wasi.start(instance) ?? 0
    return { kind: 'exit', exitCode, stdout: Buffer.concat(stdout), stderr: stderrText(), memoryBytes: memoryBytes() }
  } catch (err) {
    const kind = err instanceof OutputLimit ? 'output' : 'trap'
    return { kind, message: (err as Error).message, stderr: stderrText(), memoryBytes: memoryBytes() }
  }
}
