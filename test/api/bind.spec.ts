/**
 * The control API's bind rule (loopback only unless the operator opts in, with
 * a warning) and the protections of its request handling that need more than
 * a fake backend: constant-time token compare, JSON for malformed HTTP.
 */
import { connect } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { API_PREFIX } from '../../src/api/constants.ts'
import { checkApiBind, isLoopbackHost, startApiServer } from '../../src/api/server.ts'
import { createLogger } from '../../src/log.ts'
import { catchSync, rejection } from '../helpers/errors.ts'
import type { ApiServer, Route } from '../../src/api/server.ts'

// spy on the comparison the server must use for the token (see "constant time" below)
const timingSafeEqual = vi.hoisted(() => ({ calls: 0 }))
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>()
  return {
    ...actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView): boolean => {
      timingSafeEqual.calls++
      return actual.timingSafeEqual(a, b)
    }
  }
})

const TOKEN = 'bind-test-token-0123456789'
const ROUTES: Route[] = [{ method: 'GET', path: '/id', handler: async () => ({ ok: true }) }]
const servers: ApiServer[] = []

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

function captureLog (): { lines: string[], log: ReturnType<typeof createLogger> } {
  const lines: string[] = []
  return { lines, log: createLogger({ level: 'info', write: (l) => { lines.push(l) } }) }
}

describe('isLoopbackHost', () => {
  it('loopback: 127.0.0.0/8, ::1 (bracketed too), its IPv4-mapped form, localhost', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) {
      expect({ h, loopback: isLoopbackHost(h) }).toEqual({ h, loopback: true })
    }
  })

  it('not loopback: every interface, LAN and public addresses, other names', () => {
    for (const h of ['0.0.0.0', '::', '[::]', '10.0.0.5', '192.168.1.10', '8.8.8.8', '::ffff:10.0.0.1', 'fe80::1', '128.0.0.1', 'example.com', 'localhost.evil.com', '']) {
      expect({ h, loopback: isLoopbackHost(h) }).toEqual({ h, loopback: false })
    }
  })
})

describe('checkApiBind', () => {
  it('loopback is allowed without the opt-in and is not public', () => {
    expect(checkApiBind('127.0.0.1', 4681, false)).toEqual({ public: false })
    expect(checkApiBind('::1', 4681, true)).toEqual({ public: false })
  })

  it('a non-loopback host without the opt-in: PublicApiError, one line, saying why and how', () => {
    const err = catchSync(() => checkApiBind('0.0.0.0', 4681, false))
    expect(err.name).toBe('PublicApiError')
    expect(err.message).not.toContain('\n')
    expect(err.message).toContain('0.0.0.0:4681')
    expect(err.message).toContain('token')
    expect(err.message).toContain('--api 127.0.0.1:4681')
    expect(err.message).toContain('--api-public')
    expect(err.message).toContain('"apiPublic": true')
    expect(catchSync(() => checkApiBind('::', 1, false)).message).toContain('[::]:1')
  })

  it('a non-loopback host with the opt-in is allowed and reported public', () => {
    expect(checkApiBind('0.0.0.0', 4681, true)).toEqual({ public: true })
  })
})

describe('startApiServer bind rule', () => {
  it('refuses 0.0.0.0 without allowPublic, before binding anything', async () => {
    const { lines, log } = captureLog()
    const err = await rejection(startApiServer({ host: '0.0.0.0', port: 0, token: TOKEN, routes: ROUTES, log }))
    expect(err.name).toBe('PublicApiError')
    expect(lines).toEqual([])
  })

  it('with allowPublic binds 0.0.0.0, logs the warning once, and still wants the token', async () => {
    const { lines, log } = captureLog()
    const server = await startApiServer({ host: '0.0.0.0', port: 0, token: TOKEN, routes: ROUTES, log, allowPublic: true })
    servers.push(server)
    expect(server.address).toMatch(/^0\.0\.0\.0:\d+$/)
    const warnings = lines.filter(l => l.includes(' warn '))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('anyone who can reach this port and has the token controls this daemon')
    expect(warnings[0]).toContain(server.address)
    const port = server.address.split(':')[1] as string
    expect((await fetch(`http://127.0.0.1:${port}${API_PREFIX}/id`)).status).toBe(401)
    const ok = await fetch(`http://127.0.0.1:${port}${API_PREFIX}/id`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(await ok.json()).toEqual({ ok: true })
  })

  it('a loopback bind logs no warning', async () => {
    const { lines, log } = captureLog()
    servers.push(await startApiServer({ host: '127.0.0.1', port: 0, token: TOKEN, routes: ROUTES, log, allowPublic: true }))
    expect(lines).toEqual([])
  })
})

describe('token compare', () => {
  it('runs in constant time: every request, right or wrong token of any length, goes through timingSafeEqual', async () => {
    const server = await startApiServer({ host: '127.0.0.1', port: 0, token: TOKEN, routes: ROUTES })
    servers.push(server)
    const tokens = [TOKEN, 'x', TOKEN.slice(0, -1), TOKEN + 'x', '', 'y'.repeat(10_000)]
    const before = timingSafeEqual.calls
    const statuses: number[] = []
    for (const t of tokens) {
      statuses.push((await fetch(`http://${server.address}${API_PREFIX}/id`, { headers: { authorization: `Bearer ${t}` } })).status)
    }
    expect(statuses).toEqual([200, 401, 401, 401, 401, 401])
    expect(timingSafeEqual.calls - before).toBe(tokens.length)
  })
})

describe('malformed HTTP', () => {
  async function raw (address: string, request: string): Promise<string> {
    const [host, port] = address.split(':')
    return await new Promise((resolve, reject) => {
      const socket = connect(Number(port), host as string, () => { socket.write(request) })
      let text = ''
      socket.setEncoding('utf8').on('data', (d: string) => { text += d })
      socket.on('end', () => { resolve(text) })
      socket.on('error', reject)
    })
  }

  it('a request the HTTP parser rejects gets a JSON 400 BadRequestError, and the server keeps serving', async () => {
    const server = await startApiServer({ host: '127.0.0.1', port: 0, token: TOKEN, routes: ROUTES })
    servers.push(server)
    const text = await raw(server.address, 'THIS IS NOT HTTP\r\n\r\n')
    expect(text).toMatch(/^HTTP\/1\.1 400 /)
    expect(text.toLowerCase()).toContain('content-type: application/json')
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))
    expect(body.error.name).toBe('BadRequestError')
    const big = await raw(server.address, `GET ${API_PREFIX}/id HTTP/1.1\r\nhost: x\r\nx-pad: ${'a'.repeat(64 * 1024)}\r\n\r\n`)
    expect(big).toMatch(/^HTTP\/1\.1 431 /)
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)).error.name).toBe('BadRequestError')
    expect((await fetch(`http://${server.address}${API_PREFIX}/id`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
  })
})
