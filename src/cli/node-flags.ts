/**
 * Node/V8 flags of a long-running `lepton daemon`. A process cannot change
 * its heap configuration once it runs, so the daemon command re-executes
 * itself (same pid: process.execve) with them. This module imports nothing:
 * bin/lepton.js loads it before the rest of the CLI.
 *
 * Why: V8 doubles the young generation (two semi-spaces) when allocation is
 * fast, up to 2 x 64 MiB on a machine with this much RAM, and keeps those
 * pages resident. A daemon's live heap is ~20-40 MiB; in a 12-daemon soak
 * the young generation alone went from 64 to 128 MiB the first time a
 * daemon got busy, the largest part of its RSS growth. Capping a semi-space
 * at 8 MiB keeps the young generation at <= 16 MiB; scavenges run more
 * often, and each stays short because the daemon keeps few young objects
 * alive (soak throughput did not drop). The old generation then grew to ~4x
 * its live size between full collections; --heap-growing-percent=50 lets it
 * grow by half. (The flags also apply to the sandbox's isolates.) V8's
 * memory saver mode is not among them: src/v8-page-pool.ts turns it on now
 * and then, as the flag kept on cost too much CPU.
 */

/** Flags the daemon runs with, unless the user gave their own value of the same flag. */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--heap-growing-percent=50']

/**
 * The argv (for process.execve) that runs this `lepton daemon` again with
 * DAEMON_NODE_FLAGS, or null when there is nothing to add: not the daemon
 * command, or every flag is already set (by an earlier exec, the command
 * line or NODE_OPTIONS).
 */
export function daemonExecArgs (execPath: string, execArgv: readonly string[], argv: readonly string[], nodeOptions = ''): string[] | null {
  const [, script, command] = argv
  if (script == null || command !== 'daemon') return null
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map(flagName)
  const missing = DAEMON_NODE_FLAGS.filter(f => !given.includes(flagName(f)))
  if (missing.length === 0) return null
  return [execPath, ...execArgv, ...missing, script, ...argv.slice(2)]
}

/** `--max-semi-space-size=16` -> `--max-semi-space-size` (V8 also accepts underscores); a user's `--no-foo` counts as a value of `--foo`. */
function flagName (flag: string): string {
  return (flag.split('=')[0] ?? '').replaceAll('_', '-').replace(/^--no-/, '--')
}

/**
 * The environment of the re-executed daemon, each glibc malloc setting only
 * unless already set (glibc reads them at process start, hence here):
 *
 * - MALLOC_ARENA_MAX=2. isolated-vm runs isolates on threads of its own, and
 *   glibc gives each thread its own malloc arena (up to 8 per core) that keeps
 *   freed pages; a 12-daemon soak's workers grew a median 10.0% after warm-up
 *   with the default and 2.9% with 2 arenas, at the same throughput.
 *
 * glibc's mmap threshold stays dynamic. A fixed MALLOC_MMAP_THRESHOLD_=131072
 * (eighth session) made every buffer of 128 KiB or more a mapping of its own,
 * faulted in when filled and unmapped when freed: hashing 256 KiB blocks with
 * WebCrypto (which copies its input) fell from ~1900 to ~240 MiB/s. Nor did
 * it keep freed memory from piling up between live allocations: after 4
 * minutes of jobs on 12 daemons, malloc_trim(0) still gave back 2-14 MiB
 * (median 8) of a daemon's ~25 MiB malloc heap with it, 2-12 MiB (median 7)
 * with a threshold of 64 KiB.
 */
export function daemonExecEnv (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { MALLOC_ARENA_MAX: '2', ...env }
}

/** Re-executes a `lepton daemon` with DAEMON_NODE_FLAGS (never returns then); a no-op where execve is missing. */
export function execDaemonWithFlags (): void {
  const args = daemonExecArgs(process.execPath, process.execArgv, process.argv, process.env.NODE_OPTIONS)
  if (args == null || typeof process.execve !== 'function') return
  process.execve(process.execPath, args, daemonExecEnv(process.env))
}
