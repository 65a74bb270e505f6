import { RepoNotFoundError, readApiToken, readLock, resolveRepoPath } from '../repo/index.ts'
import { API_PREFIX, CLIENT_TIMEOUT_MS } from './constants.ts'
import { DaemonNotRunningError, RemoteError } from './errors.ts'
import { existsSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'
import type { IdInfo, PeerInfo, RouteInfo, RttReport, StatusInfo } from './types.ts'
import { Job } from './job-handle.ts'
import type { AddResult, GcResult, PinInfo, StatResult } from '../store/index.ts'
import type { JobDetail, JobSummary, SubmitRequest } from '../jobs/index.ts'

export interface ClientOptions {
  /** Repo of the daemon to talk to (--repo, $LEPTON_REPO, ~/.lepton). */
  repo?: string
  /** HOST:PORT of the API; read from the repo's lock file when absent. */
  address?: string
  /** Bearer token; read from the repo when absent. */
  token?: string
  /** Milliseconds before a call gives up. @default 30000 */
  timeoutMs?: number
}

/**
 * The TypeScript client of a local lepton daemon. The CLI uses nothing else.
 *
 *   const client = await Client.connect({ repo: '/path/to/repo' })
 *   console.log(await client.peers())
 */
export class Client {
  readonly address: string
  private readonly token: string
  private readonly timeoutMs: number
  private readonly repo: string

  private constructor (address: string, token: string, timeoutMs: number, repo: string) {
    this.address = address
    this.token = token
    this.timeoutMs = timeoutMs
    this.repo = repo
  }

  static async connect (options: ClientOptions = {}): Promise<Client> {
    const repo = resolveRepoPath(options.repo)
    let token = options.token
    try {
      token ??= await readApiToken(repo)
    } catch (err) {
      if (err instanceof RepoNotFoundError) throw notRunning(repo)
      throw err
    }
    let address = options.address
    if (address == null) {
      const lock = await readLock(repo)
      if (lock?.api == null) throw notRunning(repo)
      address = lock.api
    }
    return new Client(address, token, options.timeoutMs ?? CLIENT_TIMEOUT_MS, repo)
  }

  async id (): Promise<IdInfo> {
    return await this.call<IdInfo>('GET', '/id')
  }

  async peers (): Promise<PeerInfo[]> {
    return await this.call<PeerInfo[]>('GET', '/peers')
  }

  /** Our route to every reachable peer: direct or through detours, with E. */
  async routes (): Promise<RouteInfo[]> {
    return await this.call<RouteInfo[]>('GET', '/routes')
  }

  /** Measures the RTT to a connected peer now. */
  async rtt (peerId: string, count = 5): Promise<RttReport> {
    return await this.call<RttReport>('GET', '/rtt', { query: { peer: peerId, count } })
  }

  async status (): Promise<StatusInfo> {
    return await this.call<StatusInfo>('GET', '/status')
  }

  /** Asks the daemon to shut down cleanly. */
  async stop (): Promise<void> {
    await this.call('POST', '/stop')
  }

  // --- content-addressed store ---

  /**
   * Adds a file or folder (by path: the daemon reads it) or a byte stream.
   * Pins it on this daemon; with `replicas` > 1 other peers fetch and pin it too.
   */
  async add (source: string | AsyncIterable<Uint8Array>, options: StoreCallOptions & { replicas?: number } = {}): Promise<AddResult> {
    if (typeof source === 'string') {
      return await this.call<AddResult>('POST', '/add', { body: { path: resolvePath(source), replicas: options.replicas }, signal: options.signal, timeoutMs: 0 })
    }
    return await this.call<AddResult>('POST', '/add', { stream: source, query: { replicas: options.replicas }, signal: options.signal, timeoutMs: 0 })
  }

  /** The bytes of a file, fetched from the mesh if need be. */
  async * cat (cid: string, options: StoreCallOptions = {}): AsyncGenerator<Uint8Array> {
    const res = await this.request('GET', '/cat', { query: { cid, timeoutMs: options.timeoutMs }, signal: options.signal, timeoutMs: 0 })
    if (!res.ok) await this.fail(res)
    if (res.body == null) return
    for await (const chunk of res.body) yield chunk
  }

  /** Fetches a file or folder and has the daemon write it to `output` (a path on this machine). */
  async get (cid: string, output: string, options: StoreCallOptions = {}): Promise<{ size: number }> {
    return await this.call('POST', '/get', { body: { cid, output: resolvePath(output), timeoutMs: options.timeoutMs }, signal: options.signal, timeoutMs: 0 })
  }

  async stat (cid: string, options: StoreCallOptions = {}): Promise<StatResult> {
    return await this.call('GET', '/stat', { query: { cid, timeoutMs: options.timeoutMs } })
  }

  async providers (cid: string, options: StoreCallOptions = {}): Promise<Array<{ peerId: string }>> {
    return await this.call('GET', '/providers', { query: { cid, timeoutMs: options.timeoutMs } })
  }

  async pinAdd (cid: string, options: StoreCallOptions = {}): Promise<void> {
    await this.call('POST', '/pin/add', { body: { cid, timeoutMs: options.timeoutMs }, signal: options.signal, timeoutMs: 0 })
  }

  async pinRm (cid: string): Promise<void> {
    await this.call('POST', '/pin/rm', { body: { cid } })
  }

  async pinLs (): Promise<PinInfo[]> {
    return await this.call('GET', '/pin/ls')
  }

  async gc (): Promise<GcResult> {
    return await this.call('POST', '/gc', { timeoutMs: 0 })
  }

  // --- jobs ---

  /**
   * Submits a map/reduce job. Paths (module, input, reduceModule) are resolved
   * here; an input that is not an existing path is taken as a CID.
   *
   *   const job = await client.submit({ module: 'examples/wordcount.js', input: 'data.txt', partitions: 8 })
   *   job.on('progress', (d) => console.log(d.tasks.done, '/', d.tasks.total))
   *   const { result } = await job.result()
   */
  async submit (request: SubmitRequest, options: { signal?: AbortSignal } = {}): Promise<Job> {
    const body: SubmitRequest = { ...request, module: resolvePath(request.module) }
    if (request.reduceModule != null) body.reduceModule = resolvePath(request.reduceModule)
    if (request.input != null && request.input !== '' && (existsSync(request.input) || /[/\\]/.test(request.input))) body.input = resolvePath(request.input)
    const summary = await this.call<JobSummary>('POST', '/jobs/submit', { body, signal: options.signal, timeoutMs: 0 })
    return this.jobHandle(summary.jobId)
  }

  /** A handle on a job submitted earlier (by id or a unique prefix of at least 4 characters). */
  jobHandle (id: string): Job {
    return new Job(id, {
      wait: async (jobId, waitMs, signal) => await this.call<JobSummary | JobDetail>('GET', '/jobs/wait', { query: { id: jobId, waitMs }, signal, timeoutMs: waitMs + this.timeoutMs }),
      cancel: async (jobId) => await this.cancel(jobId)
    })
  }

  /** Jobs this daemon submitted, newest first. */
  async jobs (): Promise<JobSummary[]> {
    return await this.call('GET', '/jobs')
  }

  /** One job with every task's state and worker. */
  async job (id: string): Promise<JobDetail> {
    return await this.call('GET', '/jobs/get', { query: { id } })
  }

  async cancel (id: string): Promise<JobSummary> {
    return await this.call('POST', '/jobs/cancel', { body: { id } })
  }

  private async request (method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const query = new URLSearchParams()
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) query.set(k, String(v))
    const timeoutMs = options.timeoutMs ?? this.timeoutMs
    const signals = [...(options.signal != null ? [options.signal] : []), ...(timeoutMs > 0 ? [AbortSignal.timeout(timeoutMs)] : [])]
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` }
    let body: RequestInit['body']
    if (options.stream != null) {
      headers['content-type'] = 'application/octet-stream'
      body = ReadableStream.from(options.stream) as unknown as RequestInit['body']
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(options.body)
    }
    try {
      return await fetch(`http://${this.address}${API_PREFIX}${path}${query.size > 0 ? `?${query.toString()}` : ''}`, {
        method,
        headers,
        body,
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
        ...(options.stream != null ? { duplex: 'half' } : {})
      } as RequestInit)
    } catch (err) {
      const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code
      if (code === 'ECONNREFUSED' || code === 'ECONNRESET') throw notRunning(this.repo)
      if ((err as Error).name === 'TimeoutError') throw new DaemonNotRunningError(`the daemon at ${this.address} did not answer within ${timeoutMs} ms`)
      throw err
    }
  }

  private async fail (res: Response): Promise<never> {
    const text = await res.text()
    let error: { name?: string, message?: string } | undefined
    try {
      error = (JSON.parse(text) as { error?: { name?: string, message?: string } }).error
    } catch {}
    throw new RemoteError(error?.name ?? 'RemoteError', error?.message ?? `HTTP ${res.status}`, res.status)
  }

  private async call<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, options)
    if (!res.ok) await this.fail(res)
    const text = await res.text()
    try {
      return (text.length > 0 ? JSON.parse(text) : undefined) as T
    } catch {
      throw new RemoteError('BadResponseError', `the daemon sent a response that is not JSON (HTTP ${res.status})`, res.status)
    }
  }
}

export interface StoreCallOptions {
  /** Milliseconds allowed to find who holds a CID (the daemon's default: 30000). */
  timeoutMs?: number
  signal?: AbortSignal
}

interface RequestOptions {
  body?: unknown
  stream?: AsyncIterable<Uint8Array>
  query?: Record<string, string | number | undefined>
  signal?: AbortSignal
  /** 0: no client-side timeout (long transfers). */
  timeoutMs?: number
}

function notRunning (repo: string): DaemonNotRunningError {
  return new DaemonNotRunningError(`no lepton daemon is running on repo ${repo}; start one with "lepton daemon --repo ${repo}"`)
}
