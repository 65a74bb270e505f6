import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { resolve } from 'node:path'
import { Client } from '../api/index.ts'
import { flag, jsonFlag, onePositional, printJson, repoFlag, str, timeoutFlag, timeoutMs } from './command.ts'
import { progressBar } from './progress.ts'
import type { Command } from './command.ts'

export const get: Command = {
  name: 'get',
  args: 'CID',
  summary: 'Fetch a file or folder from the mesh and write it to disk (default: ./CID).',
  options: {
    ...repoFlag,
    output: { type: 'string', short: 'o', valueName: 'PATH', description: 'where to write it' },
    ...timeoutFlag,
    ...jsonFlag
  },
  async run (parsed) {
    const cid = onePositional(this, parsed, 'CID')
    const output = resolve(str(parsed, 'output') ?? cid)
    const client = await Client.connect({ repo: str(parsed, 'repo') })
    const timeout = timeoutMs(parsed)
    const info = await client.stat(cid, { timeoutMs: timeout })
    let size = 0
    if (info.type === 'directory') {
      size = (await client.get(cid, output, { timeoutMs: timeout })).size
    } else {
      // a file streams through the CLI: progress, and no need for the daemon to write here
      const bar = progressBar('fetching', info.size ?? undefined)
      const tmp = `${output}.lepton-tmp`
      const out = createWriteStream(tmp)
      try {
        for await (const chunk of client.cat(cid, { timeoutMs: timeout })) {
          size += chunk.byteLength
          bar.update(size)
          if (!out.write(chunk)) await new Promise<void>(resolve => { out.once('drain', () => { resolve() }) })
        }
        await new Promise<void>((resolve, reject) => {
          out.once('error', reject)
          out.end(() => { resolve() })
        })
      } catch (err) {
        out.destroy()
        await rm(tmp, { force: true })
        throw err
      }
      await rename(tmp, output)
      bar.done()
    }
    if (flag(parsed, 'json')) printJson({ cid, output, size })
    else process.stderr.write(`wrote ${output} (${size} bytes)\n`)
    return 0
  }
}
