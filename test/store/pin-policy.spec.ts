/**
 * Other peers' pin requests (/lepton/pin, what `add --replicas N` and
 * replication repair send): taken only from the peers replication.accept
 * names, refused when the disk is below the reserve, and a fetch for one
 * stopped when the disk reaches it, whatever the content's size.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { parseCid } from '../../src/store/index.ts'
import { bytesOf, connectStorePeers, storePeersPerTest } from './helpers.ts'
import type { StorePeer } from './helpers.ts'

const GiB = 1024 * 1024 * 1024

describe('pin requests from other peers', () => {
  const start = storePeersPerTest()
  /** Blocks of `cid` held by `peer`: 0 when none were fetched. */
  const blocksHeld = async (peer: StorePeer, cid: string): Promise<number> => (await peer.store.stat(parseCid(cid), { timeoutMs: 1000 })).localBlocks

  it('are taken only from the peers replication.accept names; the others are refused with the reason and nothing is fetched', async () => {
    const a = await start()
    const stranger = await start()
    const strict = await start({ pinRequests: { accept: [stranger.node.peerId.toString()] } })
    const friendly = await start({ pinRequests: { accept: [a.node.peerId.toString()] } })
    await connectStorePeers(a, strict)
    await connectStorePeers(a, friendly)
    const added = await a.store.add(bytesOf(randomBytes(600_000)), { replicas: 3 })

    expect(added.replicas?.holders.sort()).toEqual([a.node.peerId.toString(), friendly.node.peerId.toString()].sort())
    expect(added.replicas?.refused).toHaveLength(1)
    expect(added.replicas?.refused[0]?.peerId).toBe(strict.node.peerId.toString())
    expect(added.replicas?.refused[0]?.error).toMatch(/takes no pin requests from .*replication\.accept/)
    expect(await strict.store.pinLs()).toEqual([])
    expect(await blocksHeld(strict, added.cid)).toBe(0)
    expect((await friendly.store.pinLs()).map(p => p.cid)).toEqual([added.cid])
  })

  it('are refused while the disk has less free space than the reserve', async () => {
    const a = await start()
    const full = await start({ pinRequests: { minFreeBytes: GiB, freeBytes: async () => 100 * 1024 * 1024 } })
    await connectStorePeers(a, full)
    const added = await a.store.add(bytesOf(randomBytes(600_000)), { replicas: 2 })

    expect(added.replicas?.holders).toEqual([a.node.peerId.toString()])
    expect(added.replicas?.refused[0]?.error).toMatch(/has 100 MiB of disk free, below the 1024 MiB .*replication\.minFreeMiB/)
    expect(await full.store.pinLs()).toEqual([])
    expect(await blocksHeld(full, added.cid)).toBe(0)
  })

  it('stop fetching when the disk reaches the reserve mid-fetch, and pin nothing', async () => {
    // the disk "fills" once the holder has served its first block; after it, blocks go out one at a time, 150 ms apart
    let served = 0
    let queue = Promise.resolve()
    const a = await start({
      source: (blockstore) => ({
        has: async (cid) => await blockstore.has(cid),
        getStored: async (cid) => {
          if (served++ > 0) {
            const turn = queue.then(async () => { await new Promise(resolve => setTimeout(resolve, 150)) })
            queue = turn
            await turn
          }
          return await blockstore.getStored(cid)
        }
      })
    })
    const filling = await start({ pinRequests: { minFreeBytes: GiB, diskCheckMs: 50, freeBytes: async () => served > 0 ? GiB / 2 : 10 * GiB } })
    await connectStorePeers(a, filling)
    // 16 leaves of 256 KiB and a root: ~2.4 s to serve them all
    const added = await a.store.add(bytesOf(randomBytes(16 * 262144)), { replicas: 2 })

    expect(added.replicas?.holders).toEqual([a.node.peerId.toString()])
    expect(added.replicas?.refused[0]?.error).toMatch(/has 512 MiB of disk free, below the 1024 MiB .*replication\.minFreeMiB/)
    expect(await filling.store.pinLs()).toEqual([])
    // it stopped early: most of the file was never fetched
    const held = await blocksHeld(filling, added.cid)
    console.log(`pin request stopped at the disk reserve: ${held} of 17 blocks held`)
    expect(held).toBeLessThan(8)
  })
})
