import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'

export const DAG_PB = 0x70
export const RAW = 0x55

/** CIDs a block links to (dag-pb nodes); raw leaves have none. */
export function linksOf (cid: CID, bytes: Uint8Array): CID[] {
  if (cid.code !== DAG_PB) return []
  return dagPb.decode(bytes).Links.map(l => CID.asCID(l.Hash) ?? CID.decode(l.Hash.bytes))
}
