/**
 * Node/V8 flags of a long-running `lepton daemon`. A process cannot change
 * its heap configuration once it runs, so the daemon command re-executes
 * itself (same pid: process.execve) with them. This module imports nothing
 * but node:v8: bin/lepton.js loads it before the rest of the CLI.
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
 * memory saver mode is not among them: kept on, it cost the soak 17% more
 * CPU a job than a control run of the same hour; `lepton daemon
 * --memory-saver` turns it on now and then (src/v8-page-pool.ts).
 */
import { setFlagsFromString } from 'node:v8'

/**
 * With `lepton daemon --memory-saver` only, and for the daemon's own heap,
 * not the sandbox's isolates: on the command line, so the main isolate is
 * created with them, then set back (V8 reads heap flags when it creates an
 * isolate) before any task isolate exists.
 *
 * --min-semi-space-size=8: the young generation stays at 2 x 8 MiB. Each
 * memory-reducing collection (the memory saver asks for them every 30 s,
 * src/v8-page-pool.ts) otherwise shrinks it to 2 x 1-2 MiB, and it grows back
 * only as objects survive: in a soak 28% of the memory log's samples caught
 * it shrunk, 8-12 MiB of RSS up and down; pinned, 2%. For the isolates,
 * whose young generation isolated-vm sizes from their memory limit, the flag
 * doubled their heaps.
 */
const MEMORY_SAVER_MAIN_ONLY: ReadonlyArray<readonly [flag: string, reset: string]> = [['--min-semi-space-size=8', '--min-semi-space-size=0']]

/** Flags the daemon runs with, unless the user gave their own value of the same flag. */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--heap-growing-percent=50']

/** The flags of a daemon with this argv: DAEMON_NODE_FLAGS, and with --memory-saver the main-isolate-only ones. */
export function daemonFlags (argv: readonly string[]): string[] {
  return [...DAEMON_NODE_FLAGS, ...(argv.includes('--memory-saver') ? MEMORY_SAVER_MAIN_ONLY.map(([flag]) => flag) : [])]
}

/**
 * The argv (for process.execve) that runs this `lepton daemon` again with
 * daemonFlags, or null when there is nothing to add: not the daemon
 * command, or every flag is already set (by an earlier exec, the command
 * line or NODE_OPTIONS).
 */
export function daemonExecArgs (execPath: string, execArgv: readonly string[], argv: readonly string[], nodeOptions = ''): string[] | null {
  const [, script, command] = argv
  if (script == null || command !== 'daemon') return null
  const given = givenFlagNames(execArgv, nodeOptions)
  const missing = daemonFlags(argv.slice(3)).filter(f => !given.includes(flagName(f)))
  if (missing.length === 0) return null
  return [execPath, ...execArgv, ...missing, script, ...argv.slice(2)]
}

/** The names of the Node/V8 flags this process was given, on its command line or in NODE_OPTIONS, as flagName spells them. */
export function givenFlagNames (execArgv: readonly string[], nodeOptions = ''): string[] {
  return [...execArgv, ...nodeOptions.split(/\s+/)].map(flagName)
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

/**
 * The flags to set back once the daemon's main isolate exists: those of
 * MEMORY_SAVER_MAIN_ONLY that this process got from daemonFlags (a value the
 * user chose is theirs, for every isolate).
 */
export function mainIsolateOnlyResets (execArgv: readonly string[], argv: readonly string[]): string[] {
  if (argv[2] !== 'daemon' || !argv.includes('--memory-saver')) return []
  return MEMORY_SAVER_MAIN_ONLY.filter(([flag]) => execArgv.includes(flag)).map(([, reset]) => reset)
}

/**
 * Re-executes a `lepton daemon` with daemonFlags (never returns then;
 * a no-op where execve is missing); in the re-executed daemon, sets the
 * main-isolate-only flags back for the isolates to come.
 */
export function execDaemonWithFlags (): void {
  const args = daemonExecArgs(process.execPath, process.execArgv, process.argv, process.env.NODE_OPTIONS)
  if (args != null && typeof process.execve === 'function') process.execve(process.execPath, args, daemonExecEnv(process.env))
  for (const reset of mainIsolateOnlyResets(process.execArgv, process.argv)) setFlagsFromString(reset)
}
