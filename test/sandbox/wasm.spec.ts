import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { assemble } from '../../scripts/wat2wasm.ts'
import { createSandbox } from '../../src/sandbox/index.ts'
import { capMemory, readLeb } from '../../src/sandbox/wasm-binary.ts'
import { rejection } from '../helpers/errors.ts'
import { codeIdOf, ticksDuring, utf8, wasiCommand } from './helpers.ts'
import type { RunRequest, TaskLimits } from '../../src/sandbox/index.ts'

const sandbox = createSandbox()
afterAll(async () => { await sandbox.close() })

const LIMITS: TaskLimits = { memoryMiB: 16, timeMs: 2000 }
const linecount = await readFile(join(import.meta.dirname, '../../examples/linecount.wasm'))

async function runWasm (code: Uint8Array, req: Partial<RunRequest> = {}): Promise<unknown> {
  return await sandbox.run({ runtime: 'wasm', code, codeId: codeIdOf(code), fn: 'map', input: new Uint8Array(0), limits: LIMITS, ...req })
}

function expectedCount (text: string): { lines: number, bytes: number } {
  const bytes = Buffer.byteLength(text)
  const newlines = text.split('\n').length - 1
  return { lines: newlines + (text.length > 0 && !text.endsWith('\n') ? 1 : 0), bytes }
}

const LOOP_FOREVER = wasiCommand('loop $spin\n br $spin\n end')
// grows 1 MiB at a time up to 256 MiB, traps if a grow fails, else exits 0
const GROW = wasiCommand(`loop $grow
  i32.const 16
  memory.grow
  i32.const -1
  i32.eq
  if
    unreachable
  end
  memory.size
  i32.const 4096
  i32.lt_u
  br_if $grow
end`)

describe('wasm runtime: WASI commands', () => {
  it('examples/linecount.wasm counts lines and bytes of stdin, and stdout comes back parsed', async () => {
    const texts = ['', 'one line', 'a\nb\n', 'a\nb', '\n\n\n', 'héllo wörld\n'.repeat(20_000), 'x'.repeat(200_000)]
    for (const text of texts) expect(await runWasm(linecount, { input: utf8(text) })).toEqual(expectedCount(text))
    expect(await sandbox.inspect('wasm', linecount, 'lc')).toEqual({ runtime: 'wasm', exports: ['map'] })
  })

  it('stdout that is not JSON comes back as a string', async () => {
    const hello = wasiCommand(`i32.const 0
i32.const 100
i32.store
i32.const 4
i32.const 5
i32.store
i32.const 1
i32.const 0
i32.const 1
i32.const 8
call $fd_write
drop`, '(data (i32.const 100) "hello")')
    expect(await runWasm(hello)).toBe('hello')
  })

  it('the program gets one argument (its name), no environment, and a clock at 0', async () => {
    // exit code = 10 * argc + envc + clock
    const probe = wasiCommand(`i32.const 0
i32.const 4
call $args_sizes_get
drop
i32.const 8
i32.const 12
call $environ_sizes_get
drop
i32.const 1
i64.const 0
i32.const 16
call $clock_time_get
drop
i32.const 0
i32.load
i32.const 10
i32.mul
i32.const 8
i32.load
i32.add
i32.const 16
i64.load
i32.wrap_i64
i32.add
call $proc_exit`, '(import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))')
    const err = await rejection(runWasm(probe))
    expect(err.name).toBe('TaskFailedError')
    expect(err.message).toContain('exited with code 10')
  })

  it('a non-zero exit is TaskFailedError with the tail of stderr', async () => {
    const fail = wasiCommand(`i32.const 0
i32.const 100
i32.store
i32.const 4
i32.const 22
i32.store
i32.const 2
i32.const 0
i32.const 1
i32.const 8
call $fd_write
drop
i32.const 3
call $proc_exit`, '(data (i32.const 100) "bad record at line 7\\n")')
    const err = await rejection(runWasm(fail))
    expect(err.name).toBe('TaskFailedError')
    expect(err.message).toContain('exited with code 3')
    expect(err.message).toContain('bad record at line 7')
  })

  it('refuses what is not a WASI command, and combine/reduce', async () => {
    const envImport = assemble('(module (import "env" "log" (func $log (param i32))) (memory (export "memory") 1) (func (export "_start")))')
    const noStart = assemble('(module (memory (export "memory") 1) (func (export "main") (result i32) i32.const 0))')
    const garbage = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x42, 0x42])
    for (const code of [envImport, noStart, garbage]) {
      const err = await rejection(runWasm(code))
      expect(err.name).toBe('InvalidModuleError')
      expect((await rejection(sandbox.inspect('wasm', code, codeIdOf(code)))).name).toBe('InvalidModuleError')
    }
    expect((await rejection(runWasm(envImport))).message).toContain('env.log')
    expect((await rejection(runWasm(noStart))).message).toContain('_start')
    expect((await rejection(runWasm(linecount, { fn: 'reduce', input: [] }))).name).toBe('InvalidModuleError')
  })
})

describe('wasm runtime: limits', () => {
  it('an endless loop ends with TimeLimitError, off the main thread; the next task runs', async () => {
    const started = performance.now()
    const run = runWasm(LOOP_FOREVER, { limits: { memoryMiB: 16, timeMs: 300 } })
    expect(await ticksDuring(run)).toBeGreaterThan(10)
    const err = await rejection(run)
    expect(err.name).toBe('TimeLimitError')
    expect(err.message).toBe('time limit of 300 ms exceeded')
    expect(performance.now() - started).toBeLessThan(1500)
    expect(await runWasm(linecount, { input: utf8('a\n') })).toEqual({ lines: 1, bytes: 2 })
  })

  it('memory.grow past the cap ends with MemoryLimitError; the next task runs', async () => {
    const err = await rejection(runWasm(GROW, { limits: { memoryMiB: 16, timeMs: 5000 } }))
    expect(err.name).toBe('MemoryLimitError')
    expect(err.message).toContain('memory limit of 16 MiB exceeded')
    expect(await runWasm(linecount, { input: utf8('a') })).toEqual({ lines: 1, bytes: 1 })
  })

  it('a module that needs more than the cap at start is refused', async () => {
    const big = wasiCommand('nop', '', '(memory (export "memory") 512)') // 32 MiB
    expect((await rejection(runWasm(big, { limits: { memoryMiB: 16, timeMs: 1000 } }))).name).toBe('MemoryLimitError')
    expect(await runWasm(big, { limits: { memoryMiB: 64, timeMs: 1000 } })).toBe('')
  })

  it('an abort terminates the task with SandboxAbortedError', async () => {
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 100)
    const err = await rejection(runWasm(LOOP_FOREVER, { signal: controller.signal, limits: { memoryMiB: 16, timeMs: 10_000 } }))
    expect(err.name).toBe('SandboxAbortedError')
  })

  it('4 concurrent runs all give their own result', async () => {
    const texts = ['a\n', 'a\nb\n', 'a\nb\nc', 'x'.repeat(100_000)]
    expect(await Promise.all(texts.map(async text => await runWasm(linecount, { input: utf8(text) })))).toEqual(texts.map(expectedCount))
  })
})

describe('capMemory', () => {
  const memoryMax = (bytes: Uint8Array): number | undefined => capMemory(bytes, 65536).memories[0]?.max

  it('lowers a missing or larger maximum to the cap and keeps a smaller one', () => {
    const unbounded = assemble('(module (memory 1))')
    const capped = capMemory(unbounded, 256)
    expect(capped.lowered).toBe(true)
    expect(memoryMax(capped.bytes)).toBe(256)
    const small = assemble('(module (memory 1 4))')
    expect(capMemory(small, 256).lowered).toBe(false)
    expect(memoryMax(capMemory(small, 256).bytes)).toBe(4)
    expect(readLeb(Uint8Array.from([0xe5, 0x8e, 0x26]), 0)).toEqual([624485, 3])
  })
})
