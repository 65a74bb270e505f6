import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { DAEMON_NODE_FLAGS, daemonExecArgs, daemonExecEnv } from '../../src/cli/node-flags.ts'

describe('daemon node flags', () => {
  const node = '/usr/bin/node'

  it('re-runs `lepton daemon` with the flags before the script, keeping the other arguments', () => {
    expect(daemonExecArgs(node, ['--enable-source-maps'], [node, '/x/bin/lepton.js', 'daemon', '--repo', 'r'])).toEqual(
      [node, '--enable-source-maps', ...DAEMON_NODE_FLAGS, '/x/bin/lepton.js', 'daemon', '--repo', 'r'])
  })

  it('leaves other commands alone', () => {
    expect(daemonExecArgs(node, [], [node, '/x/bin/lepton.js', 'status'])).toBeNull()
    expect(daemonExecArgs(node, [], [node, '/x/bin/lepton.js'])).toBeNull()
  })

  it('does nothing once the flags are set: no exec loop, and a value the user chose wins', () => {
    const argv = [node, '/x/bin/lepton.js', 'daemon']
    const again = daemonExecArgs(node, [], argv) as string[]
    expect(daemonExecArgs(node, again.slice(1, 1 + DAEMON_NODE_FLAGS.length), argv)).toBeNull()
    const semi = (args: string[] | null): string[] => (args ?? []).filter(a => /^--max[-_]semi[-_]space[-_]size/.test(a))
    expect(semi(daemonExecArgs(node, ['--max-semi-space-size=64'], argv))).toEqual(['--max-semi-space-size=64'])
    expect(semi(daemonExecArgs(node, ['--max_semi_space_size=4'], argv))).toEqual(['--max_semi_space_size=4'])
    expect(semi(daemonExecArgs(node, [], argv, '--max-old-space-size=512 --max-semi-space-size=32'))).toEqual([])
    expect(daemonExecArgs(node, [], argv, DAEMON_NODE_FLAGS.join(' '))).toBeNull()
    // a flag the user turned off stays off
    expect(daemonExecArgs(node, ['--no-memory-saver-mode'], argv)).not.toContain('--memory-saver-mode')
  })

  it('with the flags, V8 gives back the pages of a heap that grew and shrank (its page pool does not keep them resident)', async () => {
    // grows the heap to ~100 MiB, lets go of it, then allocates short-lived
    // garbage until full collections have run; prints resident anonymous
    // memory and V8's heap size at the peak and at the end
    const script = `
      const { readFileSync } = require('node:fs')
      const { PerformanceObserver } = require('node:perf_hooks')
      const anon = () => Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024
      let majors = 0
      new PerformanceObserver(list => { for (const e of list.getEntries()) if (e.detail?.kind === 4) majors++ }).observe({ entryTypes: ['gc'] })
      let keep = []
      for (let i = 0; i < 600000; i++) keep.push({ i, s: 'x' + i, a: [i] })
      const peak = anon()
      keep = null
      const seen = majors
      let junk = []
      const step = () => {
        for (let k = 0; k < 50000; k++) junk.push({ k, s: 'y' + k })
        if (junk.length > 200000) junk = []
        if (majors < seen + 3) { setImmediate(step); return }
        console.log(JSON.stringify({ peak, end: anon(), heap: process.memoryUsage().heapTotal / 1048576 }))
        process.exit(0)
      }
      setImmediate(step)`
    const { stdout } = await promisify(execFile)(process.execPath, [...DAEMON_NODE_FLAGS, '-e', script], { timeout: 60_000 })
    const { peak, end, heap } = JSON.parse(stdout) as { peak: number, end: number, heap: number }
    expect(peak).toBeGreaterThan(80)
    // without --memory-saver-mode: ~96 MiB stay resident with a ~25 MiB heap
    expect(end).toBeLessThan(peak / 2)
    expect(end).toBeLessThan(heap + 30)
  }, 90_000)

  it('limits glibc malloc arenas unless the environment says otherwise, and leaves the mmap threshold dynamic', () => {
    expect(daemonExecEnv({ PATH: '/bin' })).toEqual({ PATH: '/bin', MALLOC_ARENA_MAX: '2' })
    expect(daemonExecEnv({ MALLOC_ARENA_MAX: '8' }).MALLOC_ARENA_MAX).toBe('8')
    expect(daemonExecEnv({ MALLOC_MMAP_THRESHOLD_: '1048576' }).MALLOC_MMAP_THRESHOLD_).toBe('1048576')
  })
})
