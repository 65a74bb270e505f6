/**
 * The ceiling for the store benchmark: a plain lepton libp2p node (same
 * transport, noise, yamux) that streams `count` frames of 256 KiB on one stream
 * to whoever opens /lepton-bench/raw/1.0.0. Prints its address, then serves.
 */
import { randomBytes } from 'node:crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { createNode } from '../../src/node/index.ts'
import { encodeVarint } from '../../src/wire/index.ts'

export const RAW_PROTOCOL = '/lepton-bench/raw/1.0.0'
export const FRAME_BYTES = 262144

if (import.meta.main) {
  const count = Number(process.argv[2] ?? 1024)
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
