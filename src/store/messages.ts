import { defineMessage } from '../wire/index.ts'

/** Message types on /lepton/blocks/1.0.0. */
export const MSG = {
  /** request: send me this block */
  WANT: 1,
  /** request: do you hold this block? */
  HAVE_QUERY: 2,
  /** answer: the block in stored form: codec and size here, then `size` raw bytes after the frame */
  BLOCK: 3,
  /** answer: I do not hold it */
  DONT_HAVE: 4,
  /** answer to HAVE_QUERY: yes */
  HAVE: 5
} as const

export interface BlockMessage {
  id: number
  type: number
  cid: Uint8Array
  codec: number
  /** BLOCK: bytes of payload that follow this frame on the stream */
  size: number
}

export const BlockMessageCodec = defineMessage<BlockMessage>({
  id: { no: 1, type: 'uint32' },
  type: { no: 2, type: 'uint32' },
  cid: { no: 3, type: 'bytes' },
  codec: { no: 4, type: 'uint32' },
  size: { no: 5, type: 'uint32' }
})

/** Asks a peer to fetch a DAG from us (or anyone) and pin it. */
export interface PinRequest {
  cid: Uint8Array
  /** Seconds the asker waits for the fetch. */
  timeoutS: number
  /** Copies wanted in the mesh (0: a plain request, nothing to watch). */
  replicas: number
  /** Every holder after this request, the receiver included: holders watch each other. */
  holders: string[]
}

export interface PinResponse {
  ok: boolean
  error: string
  /** Free bytes on the peer's disk, for choosing replica holders. */
  freeBytes: number
}

export const PinRequestCodec = defineMessage<PinRequest>({
  cid: { no: 1, type: 'bytes' },
  timeoutS: { no: 2, type: 'uint32' },
  replicas: { no: 3, type: 'uint32' },
  holders: { no: 4, type: 'string', repeated: true, maxItems: 64 }
})

export const PinResponseCodec = defineMessage<PinResponse>({
  ok: { no: 1, type: 'bool' },
  error: { no: 2, type: 'string' },
  freeBytes: { no: 3, type: 'uint64' }
})
