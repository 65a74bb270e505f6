/** The control API's routes: each parses its input, calls the daemon or the store, answers JSON or bytes. */
import { isAbsolute } from 'node:path'
import { parseCid } from '../store/index.ts'
import { BadRequestError } from './errors.ts'
import { RESPONDED } from './server.ts'
import type { Route, RouteContext } from './server.ts'
import type { ApiBackend } from './types.ts'
import type { SubmitRequest } from '../jobs/index.ts'

function cidParam (ctx: RouteContext, body?: Record<string, unknown>): ReturnType<typeof parseCid> {
  const value = body?.cid ?? ctx.query.get('cid')
  if (typeof value !== 'string' || value === '') throw new BadRequestError('missing "cid"')
  return parseCid(value)
}

/** Optional positive integer from the body or query string. */
function intParam (ctx: RouteContext, name: string, body?: Record<string, unknown>): number | undefined {
  const raw = body?.[name] ?? ctx.query.get(name)
  if (raw == null || raw === '') return undefined
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new BadRequestError(`"${name}" must be a positive integer`)
  return n
}

async function jsonObject (ctx: RouteContext): Promise<Record<string, unknown>> {
  const body = await ctx.json()
  if (body === undefined) return {}
  if (body == null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('request body must be a JSON object')
  return body as Record<string, unknown>
}

/** Aborts the work of a request whose client went away. */
function clientGone (ctx: RouteContext): AbortSignal {
  const controller = new AbortController()
  ctx.res.once('close', () => { if (!ctx.res.writableFinished) controller.abort(new Error('client disconnected')) })
  return controller.signal
}

function jobIdParam (ctx: RouteContext, body?: Record<string, unknown>): string {
  const value = body?.id ?? ctx.query.get('id')
  if (typeof value !== 'string' || value === '') throw new BadRequestError('missing job "id"')
  return value
}

export function apiRoutes (backend: ApiBackend): Route[] {
  const { store, jobs } = backend
  return [
    { method: 'GET', path: '/id', handler: async () => backend.id() },
    { method: 'GET', path: '/peers', handler: async () => await backend.peers() },
    { method: 'GET', path: '/routes', handler: async () => backend.routes() },
    {
      method: 'GET',
      path: '/rtt',
      handler: async (ctx) => {
        const peer = ctx.query.get('peer')
        if (peer == null || peer === '') throw new BadRequestError('missing "peer"')
        return await backend.rtt(peer, intParam(ctx, 'count') ?? 5)
      }
    },
    { method: 'GET', path: '/status', handler: async () => backend.status() },
    { method: 'POST', path: '/stop', handler: async (ctx) => { await jsonObject(ctx); return { stopping: true } }, after: () => { backend.stop().catch(() => {}) } },

    {
      // a byte stream (application/octet-stream) or JSON { path } of a file or folder on this machine
      method: 'POST',
      path: '/add',
      handler: async (ctx) => {
        const type = ctx.req.headers['content-type'] ?? ''
        const signal = clientGone(ctx)
        if (type.startsWith('application/json')) {
          const body = await jsonObject(ctx)
          if (typeof body.path !== 'string' || !isAbsolute(body.path)) throw new BadRequestError('"path" must be an absolute path')
          return await store.add(body.path, { replicas: intParam(ctx, 'replicas', body), signal })
        }
        return await store.add(ctx.req, { replicas: intParam(ctx, 'replicas'), signal })
      }
    },
    {
      method: 'GET',
      path: '/cat',
      handler: async (ctx) => {
        const signal = clientGone(ctx)
        const chunks = store.cat(cidParam(ctx), { timeoutMs: intParam(ctx, 'timeoutMs'), signal })
        // the first chunk comes after the fetch: errors until then are still JSON
        let next = await chunks.next()
        ctx.res.writeHead(200, { 'content-type': 'application/octet-stream' })
        while (next.done !== true) {
          if (!ctx.res.write(next.value)) await new Promise(resolve => ctx.res.once('drain', resolve))
          next = await chunks.next()
        }
        ctx.res.end()
        return RESPONDED
      }
    },
    {
      method: 'POST',
      path: '/get',
      handler: async (ctx) => {
        const body = await jsonObject(ctx)
        if (typeof body.output !== 'string' || !isAbsolute(body.output)) throw new BadRequestError('"output" must be an absolute path')
        return await store.get(cidParam(ctx, body), body.output, { timeoutMs: intParam(ctx, 'timeoutMs', body), signal: clientGone(ctx) })
      }
    },
    { method: 'GET', path: '/stat', handler: async (ctx) => await store.stat(cidParam(ctx), { timeoutMs: intParam(ctx, 'timeoutMs') }) },
    {
      method: 'GET',
      path: '/providers',
      handler: async (ctx) => (await store.findProviders(cidParam(ctx), { timeoutMs: intParam(ctx, 'timeoutMs') })).map(p => ({ peerId: p.toString() }))
    },
    {
      method: 'POST',
      path: '/pin/add',
      handler: async (ctx) => {
        const body = await jsonObject(ctx)
        const cid = cidParam(ctx, body)
        await store.pinAdd(cid, { timeoutMs: intParam(ctx, 'timeoutMs', body), signal: clientGone(ctx) })
        return { cid: cid.toString(), pinned: true }
      }
    },
    {
      method: 'POST',
      path: '/pin/rm',
      handler: async (ctx) => {
        const cid = cidParam(ctx, await jsonObject(ctx))
        await store.pinRm(cid)
        return { cid: cid.toString(), pinned: false }
      }
    },
    { method: 'GET', path: '/pin/ls', handler: async () => await store.pinLs() },
    { method: 'POST', path: '/gc', handler: async () => await store.gc() },

    {
      // body: SubmitRequest with absolute paths; answers once the job is planned and started
      method: 'POST',
      path: '/jobs/submit',
      handler: async (ctx) => await jobs.submit(await jsonObject(ctx) as unknown as SubmitRequest, clientGone(ctx))
    },
    { method: 'GET', path: '/jobs', handler: async () => jobs.list() },
    { method: 'GET', path: '/jobs/get', handler: async (ctx) => jobs.get(jobIdParam(ctx)) },
    { method: 'POST', path: '/jobs/cancel', handler: async (ctx) => await jobs.cancel(jobIdParam(ctx, await jsonObject(ctx))) },
    {
      // long poll: answers when the job ends (its detail) or after waitMs (default 10 s; its summary)
      method: 'GET',
      path: '/jobs/wait',
      handler: async (ctx) => await jobs.poll(jobIdParam(ctx), Math.min(intParam(ctx, 'waitMs') ?? 10_000, 60_000))
    }
  ]
}
