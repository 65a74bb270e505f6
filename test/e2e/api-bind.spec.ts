/**
 * `lepton daemon --api` on a non-loopback address: refused (one line, exit 1,
 * nothing created) unless `--api-public`, which starts it with a warning.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliJson, runCli, startDaemon } from '../../scripts/local-mesh.ts'
import type { DaemonProcess } from '../../scripts/local-mesh.ts'
import type { StatusInfo } from '../../src/api/index.ts'

describe('control API bind rule (real daemon)', () => {
  let dir: string
  const daemons: DaemonProcess[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lepton-apibind-'))
  })
  afterAll(async () => {
    await Promise.all(daemons.map(async d => await d.kill('SIGTERM')))
    await rm(dir, { recursive: true, force: true })
  })

  it('--api 0.0.0.0:PORT without --api-public exits 1 with one line saying why and how, creating nothing', async () => {
    const repo = join(dir, 'refused')
    const res = await runCli(['daemon', '--repo', repo, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '0.0.0.0:4681'])
    expect(res.code).toBe(1)
    const lines = res.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^lepton: refusing to serve the control API on 0\.0\.0\.0:4681: not a loopback address/)
    expect(lines[0]).toContain('--api-public')
    expect(await readdir(dir)).not.toContain('refused')
  })

  it('an existing repo whose config has a public api and no apiPublic is refused too', async () => {
    const repo = join(dir, 'config-public')
    expect((await runCli(['init', '--repo', repo, '--api', '0.0.0.0:0'])).code).toBe(0)
    const res = await runCli(['daemon', '--repo', repo, '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('refusing to serve the control API on 0.0.0.0:0')
  })

  it('with --api-public it starts on 0.0.0.0, logs the warning, and the CLI still works with the token', async () => {
    const d = await startDaemon({ repo: join(dir, 'public'), extraArgs: ['--api', '0.0.0.0:0', '--api-public'] })
    daemons.push(d)
    expect(d.api).toMatch(/^0\.0\.0\.0:\d+$/)
    expect(d.log()).toMatch(/warn .*control API listens beyond loopback: anyone who can reach this port and has the token controls this daemon/)
    const status = await cliJson<StatusInfo>(['status', '--repo', d.repo])
    expect(status.peerId).toBe(d.peerId)
    const port = d.api.split(':')[1] as string
    expect((await fetch(`http://127.0.0.1:${port}/v1/id`)).status).toBe(401)
  })
})
