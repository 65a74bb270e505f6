/**
 * Every command but `lepton daemon` only talks to the daemon's API: it must
 * start without loading libp2p or the sandbox (that took the CLI from ~0.37 s
 * to ~0.72 s per command here). Runs the built CLI (dist/) with a module
 * resolve hook that lists the packages it loads.
 */
import { execFile } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { CLI } from '../../scripts/local-mesh.ts'

// written to stderr as JSON at exit: the node_modules packages resolved
const HOOK = `
import { registerHooks } from 'node:module'
const seen = new Set()
registerHooks({ resolve (spec, ctx, next) { const r = next(spec, ctx); if (r.url.includes('/node_modules/')) { const p = r.url.split('/node_modules/').at(-1).split('/'); seen.add(p[0].startsWith('@') ? p[0] + '/' + p[1] : p[0]) } return r } })
process.on('exit', () => { process.stderr.write('\\nPACKAGES ' + JSON.stringify([...seen])) })
`

async function packagesLoaded (args: string[]): Promise<string[]> {
  const stderr = await new Promise<string>((resolve) => {
    execFile(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(HOOK)}`, CLI, ...args], { timeout: 30_000 }, (_err, _stdout, stderr) => { resolve(stderr) })
  })
  const line = stderr.split('\n').find(l => l.startsWith('PACKAGES '))
  if (line == null) throw new Error(`no package list from the CLI: ${stderr}`)
  return JSON.parse(line.slice('PACKAGES '.length)) as string[]
}

describe('CLI start-up', () => {
  it.each(['--version', 'peers --help', 'add --help'])('lepton %s loads neither libp2p nor the sandbox', async (line) => {
    const packages = await packagesLoaded(line.split(' '))
    expect(packages).toContain('multiformats') // the hook saw the CLI's own imports
    for (const heavy of ['libp2p', '@libp2p/kad-dht', '@libp2p/gossipsub', '@libp2p/tcp', 'isolated-vm']) expect(packages).not.toContain(heavy)
  })
})
