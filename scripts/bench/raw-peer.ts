/**
 * The ceiling for the store benchmark: plain lepton libp2p nodes (same
 * transport, noise, yamux) with nothing of the store on top.
 *
 *   raw-peer.ts send COUNT    streams COUNT frames of 256 KiB on one stream to
 *                             whoever opens /lepton-bench/raw/1.0.0; prints its
 *                             address, then serves.
 *   raw-peer.ts receive ADDR  opens that stream, reads it to the end, prints
 *                             `<bytes> <ms>`.
 *
 * The bench runs both ends as processes of their own with the daemon's Node
 * flags (cli/node-flags.ts), so the ceiling and the fetch run on the same
 * runtime configuration.
 */
import { randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { Uint8ArrayList } from 'uint8arraylist'
import { createNode } from '../../src/node/index.ts'
import { encodeVarint } from '../../src/wire/index.ts'

export const RAW_PROTOCOL = '/lepton-bench/raw/1.0.0'
export const FRAME_BYTES = 262144

async function send (count: number): Promise<void> {
  const node = await createNode()
  const frame = randomBytes(FRAME_BYTES)
  await node.handle(RAW_PROTOCOL, async (stream) => {
    for (let i = 0; i < count; i++) {
      if (!stream.send(new Uint8ArrayList(encodeVarint(frame.byteLength), frame))) {
        await new Promise(resolve => { stream.addEventListener('drain', resolve, { once: true }) })
      }
    }
    await stream.close()
  })
  process.stdout.write(`${node.getMultiaddrs()[0]?.toString() ?? ''}\n`)
  process.on('SIGTERM', () => { Promise.resolve(node.stop()).finally(() => process.exit(0)) })
}

async function receive (addr: string): Promise<void> {
  const node = await createNode()
  try {
    const started = performance.now()
    const stream = await node.dialProtocol(multiaddr(addr), RAW_PROTOCOL)
    let bytes = 0
    for await (const chunk of stream) bytes += chunk.byteLength
    process.stdout.write(`${bytes} ${performance.now() - started}\n`)
  } finally {
    await node.stop()
  }
}

if (import.meta.main) {
  const [mode, arg] = process.argv.slice(2)
  if (mode === 'send') await send(Number(arg ?? 1024))
  else if (mode === 'receive' && arg != null) await receive(arg)
  else throw new Error('usage: raw-peer.ts send COUNT | receive ADDR')
}
