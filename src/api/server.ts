import { timingSafeEqual, createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { BlockList, isIP } from 'node:net'
import { LeptonError } from '../errors.ts'
import { silentLogger } from '../log.ts'
import { API_PREFIX, MAX_BODY_BYTES } from './constants.ts'
import { AddressInUseError, ApiError, PublicApiError, BadRequestError, MethodNotAllowedError, NotFoundError, PayloadTooLargeError, UnauthorizedError } from './errors.ts'
import type { Logger } from '../log.ts'
import type { IncomingMessage, ServerResponse } from 'node:http'

export interface ApiServerInit {
  host: string
  port: number
  token: string
  routes: Route[]
  log?: Logger
  /**
   * Allow a non-loopback `host` (logged as a warning). Without it such a host
   * is refused with PublicApiError.
   * @default false
   */
  allowPublic?: boolean
}

export interface ApiServer {
  /** HOST:PORT actually bound (the port is chosen by the OS when 0 was asked). */
  readonly address: string
  close(): Promise<void>
}

export interface RouteContext {
  query: URLSearchParams
  /** The JSON body (undefined when empty); BadRequestError if it is not JSON. */
  json(): Promise<unknown>
  req: IncomingMessage
  res: ServerResponse
}

/** Returned by a handler that wrote the response itself (a byte stream). */
export const RESPONDED = Symbol('responded')

export interface Route {
  method: 'GET' | 'POST'
  /** Path under /v1, e.g. "/peers". */
  path: string
  handler(ctx: RouteContext): Promise<unknown>
  /** Runs once the answer has left (e.g. shutting the server down). */
  after?(): void
}

/** HTTP status for named errors from the modules below the API. */
const STATUS_BY_NAME: Record<string, number> = {
  InvalidCidError: 400,
  UsageError: 400,
  ConfigError: 400,
  ContentNotFoundError: 404,
  BlockNotFoundError: 404,
  NotPinnedError: 404,
  InvalidJobError: 400,
  InvalidModuleError: 400,
  JobNotFoundError: 404,
  NotConnectedError: 409,
  RttTimeoutError: 504,
  DiskFullError: 507
}

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6')

/**
 * True for addresses only this machine can reach: 127.0.0.0/8, ::1 (and its
 * IPv4-mapped form), and the name localhost. 0.0.0.0 and :: are every
 * interface, hence not loopback; so is any other name.
 */
export function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  if (h === 'localhost') return true
  const family = isIP(h)
  if (family === 4) return LOOPBACK.check(h, 'ipv4')
  if (family === 6) return LOOPBACK.check(h, 'ipv6')
  return false
}

/**
 * The bind rule of the control API: loopback only, unless the operator opted
 * in. Throws PublicApiError (one line, with the way out) for a non-loopback
 * host without `allowPublic`; returns whether the bind is public.
 */
export function checkApiBind (host: string, port: number, allowPublic: boolean): { public: boolean } {
  if (isLoopbackHost(host)) return { public: false }
  if (!allowPublic) {
    throw new PublicApiError(`refusing to serve the control API on ${formatHost(host)}:${port}: not a loopback address, so anyone who can reach it and has the token would control this daemon; use --api 127.0.0.1:${port}, or add --api-public (config "apiPublic": true) if you mean it`)
  }
  return { public: true }
}

function formatHost (host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

/** Compares through fixed-length digests so neither content nor length leaks by timing. */
function tokenMatches (given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

async function readJsonBody (req: IncomingMessage): Promise<unknown> {
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
  const bind = checkApiBind(init.host, init.port, init.allowPublic === true)
  const routes = new Map<string, Map<string, Route>>()
  for (const route of init.routes) {
    const byMethod = routes.get(route.path) ?? new Map<string, Route>()
    byMethod.set(route.method, route)
    routes.set(route.path, byMethod)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const auth = req.headers.authorization ?? ''
    const given = auth.startsWith('Bearer ') ? auth.slice(7) : ''
    if (!tokenMatches(given, init.token)) throw new UnauthorizedError('missing or wrong API token (the token is in the repo\'s api.token file)')
    const url = new URL(req.url ?? '/', 'http://localhost')
    const byMethod = url.pathname.startsWith(API_PREFIX) ? routes.get(url.pathname.slice(API_PREFIX.length)) : undefined
    if (byMethod == null) throw new NotFoundError(`no such API route: ${req.method ?? ''} ${url.pathname}`)
    const route = byMethod.get(req.method ?? '')
    if (route == null) throw new MethodNotAllowedError(`${url.pathname} accepts ${[...byMethod.keys()].join(', ')}`)
    const result = await route.handler({ query: url.searchParams, json: async () => await readJsonBody(req), req, res })
    if (route.after != null) res.once('finish', route.after)
    if (result !== RESPONDED) send(res, 200, result ?? {})
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      const status = err instanceof ApiError ? err.status : STATUS_BY_NAME[err.name] ?? 500
      if (!(err instanceof LeptonError)) log.error('API request failed', { url: req.url, err })
      const name = err instanceof LeptonError ? err.name : 'InternalError'
      if (!res.headersSent) send(res, status, { error: { name, message: err.message } })
      else res.destroy()
    })
  })
  // uploads of big files take as long as they take; idle sockets still time out
  server.requestTimeout = 0
  // requests Node's HTTP parser rejects (malformed, headers too large) get a JSON error too
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') { socket.destroy(); return }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
    const body = JSON.stringify({ error: { name: 'BadRequestError', message: `malformed HTTP request (${err.code ?? err.message})` } })
    socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  })

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
  const host = formatHost(init.host)
  if (bind.public) {
    log.warn('control API listens beyond loopback: anyone who can reach this port and has the token controls this daemon (run jobs, read and delete content, stop it); firewall it', { address: `${host}:${port}` })
  }
  return {
    address: `${host}:${port}`,
    async close () {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}
