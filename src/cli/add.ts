import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { Client } from '../api/index.ts'
import { UsageError, flag, intFlag, jsonFlag, onePositional, printJson, repoFlag, str } from './command.ts'
import { progressBar } from './progress.ts'
import type { Command } from './command.ts'

async function * counted (source: AsyncIterable<Uint8Array>, onBytes: (n: number) => void): AsyncGenerator<Uint8Array> {
  let n = 0
  for await (const chunk of source) {
    n += chunk.byteLength
    onBytes(n)
    yield chunk
  }
}

export const add: Command = {
  name: 'add',
  args: 'PATH|-',
  summary: 'Add a file, a folder, or stdin (-) to the store and print its CID.\nThe CID is the one IPFS gives with --cid-version 1 --raw-leaves --chunker size-262144; pinned here.',
  options: {
    ...repoFlag,
    replicas: { type: 'string', valueName: 'N', description: 'copies to keep in the mesh, this one included (default 1)' },
    ...jsonFlag
  },
  async run (parsed) {
    const path = onePositional(this, parsed, 'PATH (or - for stdin)')
    const replicas = intFlag(parsed, 'replicas', 1)
    const client = await Client.connect({ repo: str(parsed, 'repo') })
    let result
    if (path === '-') {
      const bar = progressBar('adding')
      result = await client.add(counted(process.stdin, n => { bar.update(n) }), { replicas })
      bar.done()
    } else {
      let info
      try {
        info = await stat(path)
      } catch {
        throw new UsageError(`no such file or folder: ${path}`)
      }
      if (info.isDirectory()) {
        result = await client.add(path, { replicas })
      } else {
        const bar = progressBar('adding', info.size)
        result = await client.add(counted(createReadStream(path), n => { bar.update(n) }), { replicas })
        bar.done()
      }
    }
    if (flag(parsed, 'json')) {
      printJson(result)
    } else {
      process.stdout.write(`${result.cid}\n`)
      if (result.replicas != null) {
        process.stderr.write(`held by ${result.replicas.holders.length} peer(s)${result.replicas.refused.length > 0 ? `; refused by ${result.replicas.refused.length}: ${result.replicas.refused.map(r => r.error).join('; ')}` : ''}\n`)
      }
    }
    return 0
  }
}
