import { describe, expect, it } from 'vitest'
import { DAEMON_NODE_FLAGS, daemonExecArgs, daemonExecEnv, mainIsolateOnlyResets } from '../../src/cli/node-flags.ts'

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
    expect(semi(daemonExecArgs(node, ['--no-max-semi-space-size'], argv))).toEqual([])
  })

  it('with --memory-saver, pins the main heap\'s young generation and sets that flag back for the isolates; a value the user chose is theirs', () => {
    const plain = [node, '/x/bin/lepton.js', 'daemon']
    const saver = [node, '/x/bin/lepton.js', 'daemon', '--memory-saver']
    expect(daemonExecArgs(node, [], plain)).not.toContain('--min-semi-space-size=8')
    const again = daemonExecArgs(node, [], saver) as string[]
    expect(again).toContain('--min-semi-space-size=8')
    const execArgv = again.slice(1, again.indexOf('/x/bin/lepton.js'))
    expect(daemonExecArgs(node, execArgv, saver)).toBeNull()
    expect(mainIsolateOnlyResets(execArgv, saver)).toEqual(['--min-semi-space-size=0'])
    expect(mainIsolateOnlyResets(execArgv, plain)).toEqual([])
    expect(mainIsolateOnlyResets(['--min-semi-space-size=4'], saver)).toEqual([])
    expect(daemonExecArgs(node, ['--min-semi-space-size=4'], saver)).not.toContain('--min-semi-space-size=8')
    expect(mainIsolateOnlyResets(execArgv, [node, '/x/bin/lepton.js', 'status', '--memory-saver'])).toEqual([])
  })

  it('limits glibc malloc arenas unless the environment says otherwise, and leaves the mmap threshold dynamic', () => {
    expect(daemonExecEnv({ PATH: '/bin' })).toEqual({ PATH: '/bin', MALLOC_ARENA_MAX: '2' })
    expect(daemonExecEnv({ MALLOC_ARENA_MAX: '8' }).MALLOC_ARENA_MAX).toBe('8')
    expect(daemonExecEnv({ MALLOC_MMAP_THRESHOLD_: '1048576' }).MALLOC_MMAP_THRESHOLD_).toBe('1048576')
  })
})
