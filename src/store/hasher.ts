/**
 * sha2-256 of import leaves on worker threads, so hashing runs beside the
 * reads, the writes and the importer's own work on the main thread. A leaf's
 * ArrayBuffer is transferred to a worker and back (no copy), so only memory
 * nothing else uses may be given to it (the import's pooled chunk buffers).
 */
import { createHash } from 'node:crypto'
import { Worker } from 'node:worker_threads'

// CommonJS, evaluated: the same code runs from src/ (type stripping) and dist/
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
parentPort.on('message', ({ id, buffer, offset, length }) => {
  const digest = createHash('sha256').update(new Uint8Array(buffer, offset, length)).digest()
  parentPort.postMessage({ id, buffer, digest }, [buffer])
})
`

interface Pending {
  resolve(result: { bytes: Uint8Array, digest: Uint8Array }): void
  reject(err: Error): void
  offset: number
  length: number
}

interface HashReply {
  id: number
  buffer: ArrayBuffer
  digest: Uint8Array
}

export class LeafHasher {
  private readonly size: number
  private workers: Worker[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private turn = 0

  constructor (workers: number) {
    this.size = workers
  }

  /**
   * The digest, and the bytes: a new view of the same memory, which went to
   * a worker and came back. `bytes` and every other view of its ArrayBuffer
   * are detached meanwhile.
   */
  async hash (bytes: Uint8Array): Promise<{ bytes: Uint8Array, digest: Uint8Array }> {
    if (this.size === 0 || !(bytes.buffer instanceof ArrayBuffer)) return { bytes, digest: createHash('sha256').update(bytes).digest() }
    if (this.workers.length === 0) this.start()
    const worker = this.workers[this.turn++ % this.workers.length] as Worker
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, offset: bytes.byteOffset, length: bytes.byteLength })
      const buffer = bytes.buffer as ArrayBuffer
      worker.postMessage({ id, buffer, offset: bytes.byteOffset, length: bytes.byteLength }, [buffer])
    })
  }

  private start (): void {
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true })
      worker.unref() // an idle pool never keeps the process alive
      worker.on('message', (reply: HashReply) => {
        const p = this.pending.get(reply.id)
        if (p == null) return
        this.pending.delete(reply.id)
        p.resolve({ bytes: Buffer.from(reply.buffer, p.offset, p.length), digest: reply.digest })
      })
      worker.on('error', (err) => { this.fail(err) })
      worker.on('exit', () => { this.fail(new Error('hash worker exited')) })
      this.workers.push(worker)
    }
  }

  private fail (err: Error): void {
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    const workers = this.workers
    this.workers = []
    for (const w of workers) w.terminate().catch(() => {})
  }

  async close (): Promise<void> {
    const workers = this.workers
    this.workers = []
    await Promise.all(workers.map(async w => { await w.terminate() }))
  }
}
