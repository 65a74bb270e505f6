import { request as httpRequest } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { API_PREFIX, MAX_BODY_BYTES } from '../../src/api/constants.ts'
import { Client } from '../../src/api/client.ts'
import { AddressInUseError, DaemonNotRunningError, RemoteError } from '../../src/api/errors.ts'
import { apiRoutes } from '../../src/api/routes.ts'
import { startApiServer } from '../../src/api/server.ts'
import { initRepo, openRepo } from '../../src/repo/index.ts'
import type { ApiServer, Route } from '../../src/api/server.ts'
import type { ApiBackend, IdInfo, PeerInfo, StatusInfo } from '../../src/api/types.ts'
import type { RepoLock } from '../../src/repo/index.ts'
import type { Store } from '../../src/store/index.ts'
import { rejection } from '../helpers/errors.ts'

const TOKEN = 'test-token-0123456789abcdef'

const ID: IdInfo = { peerId: '12D3KooWFakePeer', addresses: ['/ip4/127.0.0.1/tcp/4680/p2p/12D3KooWFakePeer'] }
const PEERS: PeerInfo[] = [{ peerId: '12D3KooWOther', addresses: ['/ip4/10.0.0.2/tcp/4680'], rttMs: 12.5 }]
const STATUS: StatusInfo = {
  peerId: ID.peerId,
  version: '0.0.0-test',
  uptimeMs: 1234,
  peerCount: 1,
  listenAddresses: ['/ip4/127.0.0.1/tcp/4680'],
  repo: '/nowhere',
  api: '127.0.0.1:0',
  private: false
}

interface FakeBackend extends ApiBackend {
  stop: ReturnType<typeof vi.fn<() => Promise<void>>>
}

function fakeBackend (): FakeBackend {
  return {
    id: () => ID,
    peers: async () => PEERS,
    status: () => STATUS,
    routes: () => [],
    rtt: async (peerId, count) => ({ peerId, samplesMs: Array.from({ length: count }, () => 0.25), medianMs: 0.25, filteredRttMs: 0.3, jitterMs: 0.01, lossRate: 0 }),
    stop: vi.fn(async () => {}),
    // job routes are covered by the jobs tests through real daemons
    jobs: {} as unknown as ApiBackend['jobs'],
    // the store routes are not exercised except for body parsing, which fails before the store is reached
    store: {
      pinRm: vi.fn(async () => {}),
      pinLs: vi.fn(async () => [])
    } as unknown as Store
  }
}

interface JsonResponse {
  status: number
  body: any
}

let servers: ApiServer[] = []
let dirs: string[] = []
let locks: RepoLock[] = []

async function start (backend: ApiBackend, routes: Route[] = apiRoutes(backend), port = 0): Promise<ApiServer> {
  const server = await startApiServer({ host: '127.0.0.1', port, token: TOKEN, routes })
  servers.push(server)
  return server
}

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lepton-api-'))
  dirs.push(dir)
  return dir
}

async function call (server: ApiServer, method: string, path: string, init: { token?: string | null, body?: string, headers?: Record<string, string> } = {}): Promise<JsonResponse> {
  const headers: Record<string, string> = { ...init.headers }
  const token = init.token === undefined ? TOKEN : init.token
  if (token != null) headers.authorization = `Bearer ${token}`
  if (init.body != null) headers['content-type'] ??= 'application/json'
  const res = await fetch(`http://${server.address}${path}`, { method, headers, body: init.body })
  const text = await res.text()
  expect(res.headers.get('content-type')).toBe('application/json')
  return { status: res.status, body: JSON.parse(text) }
}

/** POSTs `chunks` with chunked transfer encoding (no content-length), so the server must count while reading. */
async function postChunked (server: ApiServer, path: string, chunks: Buffer[]): Promise<JsonResponse> {
  const [host, port] = server.address.split(':')
  return await new Promise((resolve, reject) => {
    const req = httpRequest({
      host,
      port: Number(port),
      method: 'POST',
      path,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' }
    }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString('utf8')) }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    const write = (i: number): void => {
      if (i === chunks.length) { req.end(); return }
      if (req.destroyed) return
      req.write(chunks[i], () => { write(i + 1) })
    }
    write(0)
  })
}

function expectError (res: JsonResponse, status: number, name: string): void {
  expect(res.status).toBe(status)
  expect(res.body).toEqual({ error: { name, message: expect.any(String) } })
  expect(res.body.error.message.length).toBeGreaterThan(0)
}

beforeEach(() => {
  servers = []
  dirs = []
  locks = []
})

afterEach(async () => {
  for (const lock of locks) await lock.release()
  for (const server of servers) await server.close()
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
})

describe('API server', () => {
  it('binds 127.0.0.1 on a port chosen by the OS', async () => {
    const server = await start(fakeBackend())
    const [host, port] = server.address.split(':')
    expect(host).toBe('127.0.0.1')
    expect(Number(port)).toBeGreaterThan(0)
  })

  it('no token: 401 UnauthorizedError', async () => {
    const server = await start(fakeBackend())
    expectError(await call(server, 'GET', `${API_PREFIX}/id`, { token: null }), 401, 'UnauthorizedError')
  })

  it('wrong token: 401 UnauthorizedError', async () => {
    const server = await start(fakeBackend())
    expectError(await call(server, 'GET', `${API_PREFIX}/id`, { token: 'wrong' }), 401, 'UnauthorizedError')
    expectError(await call(server, 'GET', `${API_PREFIX}/id`, { token: TOKEN.slice(0, -1) }), 401, 'UnauthorizedError')
    expectError(await call(server, 'GET', `${API_PREFIX}/id`, { token: TOKEN + 'x' }), 401, 'UnauthorizedError')
  })

  it('a token sent with another scheme is refused', async () => {
    const server = await start(fakeBackend())
    expectError(await call(server, 'GET', `${API_PREFIX}/id`, { token: null, headers: { authorization: `Basic ${TOKEN}` } }), 401, 'UnauthorizedError')
    expectError(await call(server, 'GET', `${API_PREFIX}/id`, { token: null, headers: { authorization: TOKEN } }), 401, 'UnauthorizedError')
  })

  it('checks the token before the route: unknown routes without a token are 401, not 404', async () => {
    const server = await start(fakeBackend())
    expectError(await call(server, 'GET', `${API_PREFIX}/nope`, { token: null }), 401, 'UnauthorizedError')
  })

  it('GET /v1/id with the token answers the backend\'s value', async () => {
    const server = await start(fakeBackend())
    expect(await call(server, 'GET', `${API_PREFIX}/id`)).toEqual({ status: 200, body: ID })
    expect(await call(server, 'GET', `${API_PREFIX}/peers`)).toEqual({ status: 200, body: PEERS })
    expect(await call(server, 'GET', `${API_PREFIX}/status`)).toEqual({ status: 200, body: STATUS })
  })

  it('unknown route: 404 NotFoundError', async () => {
    const server = await start(fakeBackend())
    expectError(await call(server, 'GET', `${API_PREFIX}/nope`), 404, 'NotFoundError')
    expectError(await call(server, 'GET', '/id'), 404, 'NotFoundError')
    expectError(await call(server, 'GET', '/'), 404, 'NotFoundError')
  })

  it('wrong method: 405 MethodNotAllowedError naming the allowed one', async () => {
    const server = await start(fakeBackend())
    const res = await call(server, 'GET', `${API_PREFIX}/stop`)
    expectError(res, 405, 'MethodNotAllowedError')
    expect(res.body.error.message).toContain('POST')
    expectError(await call(server, 'POST', `${API_PREFIX}/id`), 405, 'MethodNotAllowedError')
  })

  it('a body over MAX_BODY_BYTES (declared length): 413 PayloadTooLargeError', async () => {
    const server = await start(fakeBackend())
    const body = JSON.stringify({ cid: 'x'.repeat(MAX_BODY_BYTES) })
    expectError(await call(server, 'POST', `${API_PREFIX}/pin/rm`, { body }), 413, 'PayloadTooLargeError')
  })

  it('a body over MAX_BODY_BYTES (chunked, no length): 413 PayloadTooLargeError', async () => {
    const server = await start(fakeBackend())
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    const chunks = Array.from({ length: Math.ceil(MAX_BODY_BYTES / chunk.byteLength) + 1 }, () => chunk)
    expectError(await postChunked(server, `${API_PREFIX}/pin/rm`, chunks), 413, 'PayloadTooLargeError')
  })

  it('a body of exactly MAX_BODY_BYTES is read (and then judged on its content)', async () => {
    const server = await start(fakeBackend())
    const json = JSON.stringify({ pad: '' })
    const body = json.replace('""', `"${'x'.repeat(MAX_BODY_BYTES - json.length)}"`)
    expect(Buffer.byteLength(body)).toBe(MAX_BODY_BYTES)
    // past the size check; fails on the missing cid instead
    const res = await call(server, 'POST', `${API_PREFIX}/pin/rm`, { body })
    expectError(res, 400, 'BadRequestError')
    expect(res.body.error.message).toContain('cid')
  })

  it('invalid JSON body on a JSON route: 400 BadRequestError', async () => {
    const server = await start(fakeBackend())
    const res = await call(server, 'POST', `${API_PREFIX}/pin/rm`, { body: '{"cid": ' })
    expectError(res, 400, 'BadRequestError')
    expect(res.body.error.message).toContain('JSON')
  })

  it('invalid JSON body on POST /v1/stop: 400 BadRequestError, and the daemon does not stop', async () => {
    const backend = fakeBackend()
    const server = await start(backend)
    expectError(await call(server, 'POST', `${API_PREFIX}/stop`, { body: '{not json' }), 400, 'BadRequestError')
    expect(backend.stop).not.toHaveBeenCalled()
  })

  it('POST /v1/stop answers {stopping:true} and calls backend.stop() only after the response', async () => {
    const backend = fakeBackend()
    const server = await start(backend)
    // like the daemon, stop() tears the API server down: had it run before the
    // answer was sent, the client would see a reset connection instead
    backend.stop.mockImplementation(async () => { await server.close() })
    const res = await call(server, 'POST', `${API_PREFIX}/stop`)
    expect(res).toEqual({ status: 200, body: { stopping: true } })
    await vi.waitFor(() => { expect(backend.stop).toHaveBeenCalledTimes(1) })
  })

  it('a route\'s after() runs once its answer is sent, and not at all when the handler fails', async () => {
    const order: string[] = []
    let fail = false
    const route: Route = {
      method: 'POST',
      path: '/bye',
      handler: async () => {
        order.push('handler')
        if (fail) throw new Error('handler failed')
        return { bye: true }
      },
      after: () => { order.push('after') }
    }
    const server = await start(fakeBackend(), [route])
    expect(await call(server, 'POST', `${API_PREFIX}/bye`)).toEqual({ status: 200, body: { bye: true } })
    await vi.waitFor(() => { expect(order).toEqual(['handler', 'after']) })

    fail = true
    expectError(await call(server, 'POST', `${API_PREFIX}/bye`), 500, 'InternalError')
    expect(order).toEqual(['handler', 'after', 'handler'])
  })

  it('a backend method throwing a plain Error: 500 InternalError', async () => {
    const backend = fakeBackend()
    backend.id = () => { throw new Error('kaboom') }
    backend.peers = async () => { throw new TypeError('no peers for you') }
    const server = await start(backend)
    const id = await call(server, 'GET', `${API_PREFIX}/id`)
    expectError(id, 500, 'InternalError')
    expect(id.body.error.message).toBe('kaboom')
    expectError(await call(server, 'GET', `${API_PREFIX}/peers`), 500, 'InternalError')
    // the server survives it
    expect((await call(server, 'GET', `${API_PREFIX}/status`)).status).toBe(200)
  })

  it('a second server on the same port: AddressInUseError', async () => {
    const first = await start(fakeBackend())
    const port = Number(first.address.split(':')[1])
    const err = await rejection(start(fakeBackend(), undefined, port))
    expect(err).toBeInstanceOf(AddressInUseError)
    expect(err.name).toBe('AddressInUseError')
    expect(err.message).toContain(String(port))
  })

  it('after close the port refuses connections', async () => {
    const server = await start(fakeBackend())
    await server.close()
    servers = servers.filter(s => s !== server)
    await expect(fetch(`http://${server.address}${API_PREFIX}/id`)).rejects.toThrow()
  })
})

describe('Client', () => {
  it('Client.connect({ address, token }) calls the daemon', async () => {
    const backend = fakeBackend()
    const server = await start(backend)
    const client = await Client.connect({ address: server.address, token: TOKEN, repo: await tempDir() })
    expect(client.address).toBe(server.address)
    expect(await client.id()).toEqual(ID)
    expect(await client.peers()).toEqual(PEERS)
    expect(await client.status()).toEqual(STATUS)
    await client.stop()
    await vi.waitFor(() => { expect(backend.stop).toHaveBeenCalledTimes(1) })
  })

  it('with a wrong token the call rejects with the remote UnauthorizedError', async () => {
    const server = await start(fakeBackend())
    const client = await Client.connect({ address: server.address, token: 'wrong', repo: await tempDir() })
    const err = await rejection(client.id())
    expect(err).toBeInstanceOf(RemoteError)
    expect(err.name).toBe('UnauthorizedError')
    expect((err as RemoteError).status).toBe(401)
    expect(err.message).toContain('token')
  })

  it('carries the remote name of other errors too', async () => {
    const backend = fakeBackend()
    backend.status = () => { throw new Error('disk on fire') }
    const server = await start(backend)
    const client = await Client.connect({ address: server.address, token: TOKEN, repo: await tempDir() })
    const err = await rejection(client.status())
    expect(err.name).toBe('InternalError')
    expect(err.message).toBe('disk on fire')
    expect((err as RemoteError).status).toBe(500)
  })

  it('Client.connect({ repo }) on a folder with no repo: DaemonNotRunningError', async () => {
    const err = await rejection(Client.connect({ repo: await tempDir() }))
    expect(err).toBeInstanceOf(DaemonNotRunningError)
    expect(err.name).toBe('DaemonNotRunningError')
  })

  it('Client.connect({ repo }) on a repo with no running daemon: DaemonNotRunningError', async () => {
    const repo = join(await tempDir(), 'repo')
    await initRepo(repo)
    const err = await rejection(Client.connect({ repo }))
    expect(err.name).toBe('DaemonNotRunningError')
  })

  it('Client.connect({ repo }) finds the API address in the lock and the token in the repo', async () => {
    const repoPath = join(await tempDir(), 'repo')
    await initRepo(repoPath)
    const repo = await openRepo(repoPath)
    const server = await startApiServer({ host: '127.0.0.1', port: 0, token: repo.apiToken, routes: apiRoutes(fakeBackend()) })
    servers.push(server)
    const lock = await repo.lock()
    locks.push(lock)
    await lock.update({ api: server.address })
    const client = await Client.connect({ repo: repoPath })
    expect(client.address).toBe(server.address)
    expect(await client.id()).toEqual(ID)
  })

  it('a client pointed at a closed port: DaemonNotRunningError', async () => {
    const server = await startApiServer({ host: '127.0.0.1', port: 0, token: TOKEN, routes: [] })
    const address = server.address
    await server.close()
    const client = await Client.connect({ address, token: TOKEN, repo: await tempDir() })
    const err = await rejection(client.id())
    expect(err).toBeInstanceOf(DaemonNotRunningError)
    expect(err.name).toBe('DaemonNotRunningError')
  })
})
