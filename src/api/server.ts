import { timingSafeEqual, createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { LeptonError } from '../errors.ts'
import { silentLogger } from '../log.ts'
import { API_PREFIX, MAX_BODY_BYTES } from './constants.ts'
import { AddressInUseError, ApiError, BadRequestError, MethodNotAllowedError, NotFoundError, PayloadTooLargeError, UnauthorizedError } from './errors.ts'
import type { ApiBackend } from './types.ts'
import type { Logger } from '../log.ts'
import type { IncomingMessage, ServerResponse } from 'node:http'

export interface ApiServerInit {
  host: string
  port: number
  token: string
  backend: ApiBackend
  log?: Logger
}

export interface ApiServer {
  /** HOST:PORT actually bound (the port is chosen by the OS when 0 was asked). */
  readonly address: string
  close(): Promise<void>
}

type Handler = (body: unknown) => unknown

/** Compares through fixed-length digests so neither content nor length leaks by timing. */
function tokenMatches (given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

async function readBody (req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > MAX_BODY_BYTES) throw new PayloadTooLargeError(`request body over ${MAX_BODY_BYTES} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength
    if (size > MAX_BODY_BYTES) throw new PayloadTooLargeError(`request body over ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new BadRequestError('request body is not valid JSON')
  }
}

function send (res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/**
 * The local control API: JSON over HTTP on loopback, every request carrying
 * `Authorization: Bearer <token>` from the repo. Errors are
 * `{ "error": { "name", "message" } }` with a fitting status.
 */
export async function startApiServer (init: ApiServerInit): Promise<ApiServer> {
  const log = init.log ?? silentLogger
  const { backend } = init
  const routes = new Map<string, Map<string, Handler>>([
    ['/id', new Map([['GET', () => backend.id()]])],
    ['/peers', new Map([['GET', () => backend.peers()]])],
    ['/status', new Map([['GET', () => backend.status()]])],
    ['/stop', new Map([['POST', () => ({ stopping: true })]])]
  ])
  // run after the answer has left, or shutting the server down would cut it off
  const afterResponse = new Map<string, () => void>([['/stop', () => { backend.stop().catch((err: Error) => { log.error('stop failed', { err }) }) }]])

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const auth = req.headers.authorization ?? ''
    const given = auth.startsWith('Bearer ') ? auth.slice(7) : ''
    if (!tokenMatches(given, init.token)) throw new UnauthorizedError('missing or wrong API token (the token is in the repo\'s api.token file)')
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    const route = path.startsWith(API_PREFIX) ? routes.get(path.slice(API_PREFIX.length)) : undefined
    if (route == null) throw new NotFoundError(`no such API route: ${req.method ?? ''} ${path}`)
    const handler = route.get(req.method ?? '')
    if (handler == null) throw new MethodNotAllowedError(`${path} accepts ${[...route.keys()].join(', ')}`)
    const body = await readBody(req)
    const after = afterResponse.get(path.slice(API_PREFIX.length))
    if (after != null) res.once('finish', after)
    send(res, 200, await handler(body))
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      const status = err instanceof ApiError ? err.status : 500
      if (status === 500) log.error('API request failed', { url: req.url, err })
      const name = err instanceof LeptonError ? err.name : 'InternalError'
      if (!res.headersSent) send(res, status, { error: { name, message: err.message } })
      else res.destroy()
    })
  })
  server.requestTimeout = 60_000

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new AddressInUseError(`API address ${init.host}:${init.port} is already in use (another daemon?); pick another with --api 127.0.0.1:PORT`))
      else if (err.code === 'EADDRNOTAVAIL') reject(new AddressInUseError(`cannot bind the API to ${init.host}: no such local address`))
      else reject(err)
    })
    server.listen(init.port, init.host, resolve)
  })
  const bound = server.address()
  const port = typeof bound === 'object' && bound != null ? bound.port : init.port
  const host = init.host.includes(':') ? `[${init.host}]` : init.host
  return {
    address: `${host}:${port}`,
    async close () {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}
