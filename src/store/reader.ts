/**
 * Streams a UnixFS file's bytes from the local blockstore in order, reading a
 * bounded number of leaves ahead: memory stays at `lookahead` blocks whatever
 * the size of the file (the generic exporter may prefetch a whole level).
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { DAG_PB, RAW } from './dag.ts'
import { InvalidCidError } from './errors.ts'
import type { DiskBlockstore } from './blockstore.ts'

const IDENTITY = 0x00

export async function * readFileBytes (cid: CID, blockstore: DiskBlockstore, lookahead = 8, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  if (cid.multihash.code === IDENTITY) {
    yield cid.multihash.digest
    return
  }
  const bytes = await blockstore.getBytes(cid)
  yield * fromBlock(cid, bytes, blockstore, lookahead, signal)
}

async function * fromBlock (cid: CID, bytes: Uint8Array, blockstore: DiskBlockstore, lookahead: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted()
  if (cid.code === RAW) {
    yield bytes
    return
  }
  if (cid.code !== DAG_PB) throw new InvalidCidError(`${cid.toString()} is not a UnixFS file (codec 0x${cid.code.toString(16)})`)
  const node = dagPb.decode(bytes)
  const unixfs = node.Data == null ? undefined : UnixFS.unmarshal(node.Data)
  if (unixfs == null || (unixfs.type !== 'file' && unixfs.type !== 'raw')) {
    throw new InvalidCidError(`${cid.toString()} is a ${unixfs?.type ?? 'non-UnixFS node'}, not a file; use "lepton get" to write it to a folder`)
  }
  if (unixfs.data != null && unixfs.data.byteLength > 0) yield unixfs.data
  const children = node.Links.map(l => CID.asCID(l.Hash) ?? CID.decode(l.Hash.bytes))
  // read ahead: up to `lookahead` children in flight while the current one is consumed
  const pending: Array<Promise<Uint8Array>> = []
  let next = 0
  const fill = (): void => {
    while (pending.length < lookahead && next < children.length) pending.push(blockstore.getBytes(children[next++] as CID))
  }
  fill()
  for (let i = 0; i < children.length; i++) {
    const childBytes = await (pending.shift() as Promise<Uint8Array>)
    fill()
    yield * fromBlock(children[i] as CID, childBytes, blockstore, lookahead, signal)
  }
}
