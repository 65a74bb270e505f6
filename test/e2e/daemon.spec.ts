/**
 * The headline flows with real `lepton daemon` processes on 127.0.0.1, driven
 * through the CLI exactly as a user would.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LocalMesh, cliJson, runCli, startDaemon } from '../../scripts/local-mesh.ts'
import { Client } from '../../src/api/index.ts'
import type { IdInfo, PeerInfo, RouteInfo, RttReport, StatusInfo } from '../../src/api/index.ts'
import type { DaemonProcess } from '../../scripts/local-mesh.ts'

interface ApiErrorBody { error: { name: string, message: string } }

async function peersOf (d: DaemonProcess): Promise<PeerInfo[]> {
  return await cliJson<PeerInfo[]>(['peers', '--repo', d.repo])
}

describe('a mesh of six daemons', () => {
  let mesh: LocalMesh

  beforeAll(async () => {
    mesh = await LocalMesh.start(6)
  })
  afterAll(async () => {
    await mesh?.stop()
  })

  it('every daemon finds the five others within 10 s, with only the first as bootstrap', async () => {
    const ids = mesh.daemons.map(d => d.peerId)
    const expected = ids.map(self => ids.filter(id => id !== self).sort())
    // watch through the client (cheap), then check what `lepton peers --json` prints
    const clients = await Promise.all(mesh.daemons.map(async d => await Client.connect({ repo: d.repo })))
    const started = performance.now()
    await expect.poll(async () => {
      const tables = await Promise.all(clients.map(async c => await c.peers()))
      return tables.map(t => t.map(p => p.peerId).sort())
    }, { timeout: 10_000, interval: 100 }).toEqual(expected)
    console.log(`every table complete ${Math.round(performance.now() - started)} ms after the test began watching`)
    const tables = await Promise.all(mesh.daemons.map(peersOf))
    expect(tables.map(t => t.map(p => p.peerId).sort())).toEqual(expected)
  })

  it('lists peers with dialable addresses and a measured RTT', async () => {
    await expect.poll(async () => (await peersOf(mesh.daemons[2] as DaemonProcess)).every(p => p.rttMs != null), { timeout: 10_000, interval: 500 }).toBe(true)
    const table = await peersOf(mesh.daemons[2] as DaemonProcess)
    for (const p of table) {
      expect(p.rttMs).toBeGreaterThan(0)
      expect(p.addresses.length).toBeGreaterThan(0)
      expect(p.addresses[0]).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${p.peerId}$`))
    }
  })

  it('lepton rtt measures a peer now; a bad peer id or an unconnected peer is a clear error', async () => {
    const [a, b] = mesh.daemons as [DaemonProcess, DaemonProcess]
    const report = await cliJson<RttReport>(['rtt', b.peerId, '--count', '3', '--repo', a.repo])
    expect(report.peerId).toBe(b.peerId)
    expect(report.samplesMs).toHaveLength(3)
    for (const ms of report.samplesMs) expect(ms).toBeGreaterThan(0)
    expect(report.filteredRttMs).toBeGreaterThan(0)
    let res = await runCli(['rtt', 'nonsense', '--repo', a.repo])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/^lepton: "nonsense" is not a valid peer id/)
    res = await runCli(['rtt', '12D3KooWCdjKpRzcJ1meAiy47iEcjCFZsf5Z7tMEmAuan8uXWWYA', '--repo', a.repo])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/^lepton: not connected to 12D3KooWCdjK/)
  })

  it('lepton routes --json shows every peer with a path and an RTT', async () => {
    const d = mesh.daemons[4] as DaemonProcess
    const others = mesh.daemons.filter(x => x !== d).map(x => x.peerId).sort()
    await expect.poll(async () => (await cliJson<RouteInfo[]>(['routes', '--repo', d.repo])).map(r => r.peerId).sort(), { timeout: 15_000, interval: 500 }).toEqual(others)
    for (const r of await cliJson<RouteInfo[]>(['routes', '--repo', d.repo])) {
      expect(r.path.length).toBeGreaterThanOrEqual(1)
      expect(r.path.at(-1)).toBe(r.peerId)
      expect(r.rttMs).toBeGreaterThan(0)
    }
  })

  it('lepton id and status describe the daemon', async () => {
    const d = mesh.daemons[1] as DaemonProcess
    const id = await cliJson<IdInfo>(['id', '--repo', d.repo])
    expect(id.peerId).toBe(d.peerId)
    expect(id.addresses).toEqual(d.addresses)
    expect(id.addresses.every(a => a.endsWith(`/p2p/${d.peerId}`))).toBe(true)
    const status = await cliJson<StatusInfo>(['status', '--repo', d.repo])
    expect(status).toMatchObject({ peerId: d.peerId, peerCount: 5, listenAddresses: d.addresses, api: d.api })
    expect(status.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(status.uptimeMs).toBeGreaterThan(0)
  })

  it('the daemon re-executes itself with its V8 flags and glibc malloc settings (same pid) and loads the malloc_trim helper', async (ctx) => {
    const d = mesh.daemons[1] as DaemonProcess
    const cmdline = await readFile(`/proc/${d.process.pid}/cmdline`, 'utf8').catch(() => null)
    if (cmdline == null) ctx.skip() // no /proc: nothing to read them from
    const environ = await readFile(`/proc/${d.process.pid}/environ`, 'utf8')
    expect(cmdline?.split('\0')).toEqual(expect.arrayContaining(['--max-semi-space-size=8', '--heap-growing-percent=50', 'daemon']))
    expect(environ.split('\0')).toContain('MALLOC_ARENA_MAX=2')
    // and it loaded the malloc_trim helper (npm ci builds it), which it calls every 30 s
    expect(await readFile(`/proc/${d.process.pid}/maps`, 'utf8')).toContain('malloc_trim.node')
  })

  it('a restarted daemon keeps its peer id and rejoins without --bootstrap', async () => {
    const old = mesh.daemons[3] as DaemonProcess
    const { code, ms } = await old.kill('SIGTERM')
    expect(code).toBe(0)
    expect(ms).toBeLessThan(3000)
    // no daemon now: the CLI says so and how to start one
    const none = await runCli(['peers', '--repo', old.repo])
    expect(none.code).not.toBe(0)
    expect(none.stderr).toMatch(/no lepton daemon is running.*lepton daemon --repo/)
    const again = await startDaemon({ repo: old.repo })
    mesh.daemons[3] = again
    expect(again.peerId).toBe(old.peerId)
    const others = mesh.daemons.filter(d => d !== again).map(d => d.peerId).sort()
    await expect.poll(async () => (await peersOf(again)).map(p => p.peerId).sort(), { timeout: 15_000, interval: 500 }).toEqual(others)
  })

  it('a second daemon on a locked repo exits at once, naming the running one', async () => {
    const d = mesh.daemons[0] as DaemonProcess
    const res = await runCli(['daemon', '--repo', d.repo, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    expect(res.code).not.toBe(0)
    expect(res.stderr.trim().split('\n')).toHaveLength(1)
    expect(res.stderr).toContain(`pid ${d.process.pid ?? ''}`)
    expect(res.stderr).toContain(d.peerId)
    expect(res.stderr).not.toMatch(/\n\s+at /)
  })

  it('the control API answers 401 without the token, 404 on unknown routes, always JSON', async () => {
    const d = mesh.daemons[0] as DaemonProcess
    const token = (await readFile(join(d.repo, 'api.token'), 'utf8')).trim()
    const noToken = await fetch(`http://${d.api}/v1/peers`)
    expect(noToken.status).toBe(401)
    expect((await noToken.json() as ApiErrorBody).error.name).toBe('UnauthorizedError')
    const wrong = await fetch(`http://${d.api}/v1/peers`, { headers: { authorization: `Bearer ${token.slice(1)}x` } })
    expect(wrong.status).toBe(401)
    const ok = await fetch(`http://${d.api}/v1/id`, { headers: { authorization: `Bearer ${token}` } })
    expect(ok.status).toBe(200)
    expect((await ok.json() as IdInfo).peerId).toBe(d.peerId)
    const missing = await fetch(`http://${d.api}/v1/nope`, { headers: { authorization: `Bearer ${token}` } })
    expect(missing.status).toBe(404)
    expect((await missing.json() as ApiErrorBody).error.name).toBe('NotFoundError')
    const tooBig = await fetch(`http://${d.api}/v1/stop`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'x'.repeat(2 * 1024 * 1024) })
    expect(tooBig.status).toBe(413)
    expect((await tooBig.json() as ApiErrorBody).error.name).toBe('PayloadTooLargeError')
  })

  it('an API or swarm port already in use is a clear one-line error', async () => {
    const d = mesh.daemons[0] as DaemonProcess
    const dir = await mkdtemp(join(tmpdir(), 'lepton-port-'))
    try {
      const swarm = await runCli(['daemon', '--repo', join(dir, 's'), '--listen', (d.addresses[0] as string).replace(/\/p2p\/.*$/, ''), '--api', '127.0.0.1:0'])
      expect(swarm.code).not.toBe(0)
      expect(swarm.stderr).toMatch(/^lepton: swarm address already in use .*--listen/m)
      expect(swarm.stderr).not.toMatch(/\n\s+at /)
      const res = await runCli(['daemon', '--repo', join(dir, 'r'), '--listen', '/ip4/127.0.0.1/tcp/0', '--api', d.api])
      expect(res.code).not.toBe(0)
      expect(res.stderr).toMatch(/^lepton: API address .* is already in use .*--api/m)
      expect(res.stderr.split('\n').filter(l => l.startsWith('lepton:'))).toHaveLength(1)
      expect(res.stderr).not.toMatch(/\n\s+at /)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('daemon start-up', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'lepton-e2e-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('stays up and retries with backoff while the bootstrap peer is unreachable; SIGINT stops it within 3 s', async () => {
    // a port nobody listens on, with a well-formed peer id
    const bogus = '/ip4/127.0.0.1/tcp/9/p2p/12D3KooWCdjKpRzcJ1meAiy47iEcjCFZsf5Z7tMEmAuan8uXWWYA'
    const d = await startDaemon({ repo: join(dir, 'lonely'), bootstrap: [bogus] })
    try {
      await expect.poll(() => (d.log().match(/bootstrap unreachable/g) ?? []).length, { timeout: 15_000, interval: 200 }).toBeGreaterThanOrEqual(2)
      expect(d.log()).toMatch(/retryInS=1\b/)
      expect(d.log()).toMatch(/retryInS=2\b/)
      expect(d.log()).not.toMatch(/\n\s+at /)
      const status = await cliJson<StatusInfo>(['status', '--repo', d.repo])
      expect(status.peerCount).toBe(0)
    } finally {
      const { code, ms } = await d.kill('SIGINT')
      expect(code).toBe(0)
      expect(ms).toBeLessThan(3000)
    }
  })

  it('lepton stop shuts the daemon down and frees the repo', async () => {
    const d = await startDaemon({ repo: join(dir, 'stoppable') })
    const res = await runCli(['stop', '--repo', d.repo])
    expect(res.code).toBe(0)
    expect((await d.kill()).code).toBe(0)
    const again = await startDaemon({ repo: d.repo })
    expect(again.peerId).toBe(d.peerId)
    await again.kill()
  })

  it('refuses a corrupt or newer-version config with a clear error', async () => {
    const repo = join(dir, 'configs')
    expect((await runCli(['init', '--repo', repo])).code).toBe(0)
    const good = await readFile(join(repo, 'config.json'), 'utf8')
    await writeFile(join(repo, 'config.json'), '{ "version": 1, "listen": [')
    let res = await runCli(['daemon', '--repo', repo])
    expect(res.code).not.toBe(0)
    expect(res.stderr).toMatch(/^lepton: config file .*config\.json is not valid JSON/)
    await writeFile(join(repo, 'config.json'), good.replace('"version": 1', '"version": 99'))
    res = await runCli(['daemon', '--repo', repo])
    expect(res.code).not.toBe(0)
    expect(res.stderr).toMatch(/version 99, newer than this lepton understands.*upgrade lepton/)
  })

  it('bad input: malformed multiaddr, unknown command or flag', async () => {
    let res = await runCli(['daemon', '--repo', join(dir, 'x'), '--bootstrap', '/ip4/nonsense'])
    expect(res.code).not.toBe(0)
    expect(res.stderr).toMatch(/^lepton: malformed --bootstrap multiaddr "\/ip4\/nonsense"/)
    res = await runCli(['frobnicate'])
    expect(res.code).toBe(2)
    expect(res.stderr).toMatch(/unknown command "frobnicate".*lepton --help/)
    res = await runCli(['peers', '--verbose'])
    expect(res.code).toBe(2)
    expect(res.stderr).toMatch(/Unknown option '--verbose'.*lepton peers --help/)
    for (const r of [res]) expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})
