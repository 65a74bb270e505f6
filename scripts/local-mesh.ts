/**
 * Starts real `lepton daemon` processes on 127.0.0.1, each with its own repo in
 * a temporary folder, and drives them through the CLI. Used by the demo, the
 * end-to-end tests, the benchmarks and the soak.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { ChildProcess } from 'node:child_process'

// the CLI as users run it: bin/lepton.js runs the build (npm test and npm start build it first)
export const CLI = resolve(import.meta.dirname, '../bin/lepton.js')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs `lepton ARGS...` to completion. */
export async function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 30_000 }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

/** Runs `lepton ARGS... --json` and parses what it prints; throws on failure. */
export async function cliJson<T> (args: string[]): Promise<T> {
  const res = await runCli([...args, '--json'])
  if (res.code !== 0) throw new Error(`lepton ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`)
  return JSON.parse(res.stdout) as T
}

export interface DaemonProcess {
  repo: string
  peerId: string
  addresses: string[]
  api: string
  process: ChildProcess
  /** Everything the daemon logged so far. */
  log(): string
  /** Sends a signal and waits for the exit; resolves with the exit code and the ms it took. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null, ms: number }>
}

export interface StartDaemonOptions {
  repo: string
  bootstrap?: string[]
  extraArgs?: string[]
  timeoutMs?: number
}

/** Starts `lepton daemon` and resolves once it prints "ready". */
export async function startDaemon (options: StartDaemonOptions): Promise<DaemonProcess> {
  const args = [CLI, 'daemon', '--repo', options.repo, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0',
    ...(options.bootstrap ?? []).flatMap(b => ['--bootstrap', b]), ...(options.extraArgs ?? []),
    // LEPTON_TEST_LOG_LEVEL=debug: every test daemon logs at that level (their logs are printed when a test fails)
    ...(process.env.LEPTON_TEST_LOG_LEVEL != null ? ['--log-level', process.env.LEPTON_TEST_LOG_LEVEL] : [])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`daemon on ${options.repo} not ready in time: ${stderr}`)) }, options.timeoutMs ?? 20_000)
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      if (/^ready$/m.test(stdout)) {
        clearTimeout(timer)
        resolve()
      }
    })
    exited.then(code => {
      clearTimeout(timer)
      reject(new Error(`daemon on ${options.repo} exited with ${code}: ${stderr.trim()}`))
    }).catch(() => {})
  })
  const peerId = /^peer id: (\S+)$/m.exec(stdout)?.[1] ?? ''
  const addresses = [...stdout.matchAll(/^ {2}(\/\S+)$/mg)].map(m => m[1] as string)
  const api = /^api: (\S+)$/m.exec(stdout)?.[1] ?? ''
  return {
    repo: options.repo,
    peerId,
    addresses,
    api,
    process: child,
    log: () => stderr,
    async kill (signal = 'SIGTERM') {
      const started = Date.now()
      if (child.exitCode == null && child.signalCode == null) child.kill(signal)
      const code = await exited
      return { code, ms: Date.now() - started }
    }
  }
}

/** N daemons, all bootstrapped only to the first, in a temporary folder. */
export class LocalMesh {
  readonly dir: string
  readonly daemons: DaemonProcess[] = []

  private constructor (dir: string) {
    this.dir = dir
  }

  /** `argsFor(i)`: extra daemon flags of peer i, after `extraArgs` (e.g. a submitter with --slots 0). */
  /**
   * `concurrency`: daemons started at once (on 2 cores, 20 at once starve each other);
   * `timeoutMs`: how long each may take to print "ready".
   */
  static async start (count: number, options: { extraArgs?: string[], argsFor?: (i: number) => string[], concurrency?: number, timeoutMs?: number } = {}): Promise<LocalMesh> {
    const mesh = new LocalMesh(await mkdtemp(join(tmpdir(), 'lepton-mesh-')))
    const args = (i: number): string[] => [...(options.extraArgs ?? []), ...(options.argsFor?.(i) ?? [])]
    const timeoutMs = options.timeoutMs
    try {
      const first = await startDaemon({ repo: mesh.repoPath(0), extraArgs: args(0), timeoutMs })
      mesh.daemons.push(first)
      const bootstrap = [first.addresses[0] as string]
      const batch = options.concurrency ?? count
      for (let i = 1; i < count; i += batch) {
        const indexes = Array.from({ length: Math.min(batch, count - i) }, (_, k) => i + k)
        // each daemon is remembered as soon as it is up, so stop() ends it even if another fails
        await Promise.all(indexes.map(async j => {
          const d = await startDaemon({ repo: mesh.repoPath(j), bootstrap, extraArgs: args(j), timeoutMs })
          mesh.daemons[j] = d
        }))
      }
    } catch (err) {
      await mesh.stop().catch(() => {})
      throw err
    }
    return mesh
  }

  repoPath (i: number): string {
    return join(this.dir, `peer${i}`)
  }

  /** Stops every daemon (SIGTERM) and removes the folder. */
  async stop (): Promise<void> {
    await Promise.all(this.daemons.filter(d => d != null).map(async d => await d.kill('SIGTERM')))
    await rm(this.dir, { recursive: true, force: true, maxRetries: 5 })
  }
}

/** Resident memory of a process in MiB (Linux /proc). */
export async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

/** Polls a process's RSS until stopped; resolves with the peak in MiB. */
export function watchRss (pid: number): { stop(): Promise<number> } {
  let peak = 0
  const state = { running: true }
  const loop = (async () => {
    while (state.running) {
      peak = Math.max(peak, await rssMiB(pid))
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })()
  return { stop: async () => { state.running = false; await loop; return peak } }
}
