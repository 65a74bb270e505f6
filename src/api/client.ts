import { RepoNotFoundError, readApiToken, readLock, resolveRepoPath } from '../repo/index.ts'
import { API_PREFIX, CLIENT_TIMEOUT_MS } from './constants.ts'
import { DaemonNotRunningError, RemoteError } from './errors.ts'
import type { IdInfo, PeerInfo, StatusInfo } from './types.ts'

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

  async status (): Promise<StatusInfo> {
    return await this.call<StatusInfo>('GET', '/status')
  }

  /** Asks the daemon to shut down cleanly. */
  async stop (): Promise<void> {
    await this.call('POST', '/stop')
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response
    try {
      res = await fetch(`http://${this.address}${API_PREFIX}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.timeoutMs)
      })
    } catch (err) {
      const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code
      if (code === 'ECONNREFUSED' || code === 'ECONNRESET') throw notRunning(this.repo)
      if ((err as Error).name === 'TimeoutError') throw new DaemonNotRunningError(`the daemon at ${this.address} did not answer within ${this.timeoutMs} ms`)
      throw err
    }
    const text = await res.text()
    let value: unknown
    try {
      value = text.length > 0 ? JSON.parse(text) : undefined
    } catch {
      throw new RemoteError('BadResponseError', `the daemon sent a response that is not JSON (HTTP ${res.status})`, res.status)
    }
    if (!res.ok) {
      const error = (value as { error?: { name?: string, message?: string } } | undefined)?.error
      throw new RemoteError(error?.name ?? 'RemoteError', error?.message ?? `HTTP ${res.status}`, res.status)
    }
    return value as T
  }
}

function notRunning (repo: string): DaemonNotRunningError {
  return new DaemonNotRunningError(`no lepton daemon is running on repo ${repo}; start one with "lepton daemon --repo ${repo}"`)
}
