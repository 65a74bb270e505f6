/**
 * A job's journal: JSON lines appended to jobs/<id>.jsonl in the repo and
 * fsynced in groups (every line written in the same few milliseconds shares
 * one fsync). Reading back stops at the first torn or garbled line, which is
 * what a crash mid-write leaves; everything before it stands.
 */
import { open, readFile, readdir, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { FileHandle } from 'node:fs/promises'

export class Journal {
  readonly path: string
  private file?: FileHandle
  private queue: Array<{ line: string, resolve: () => void, reject: (err: Error) => void }> = []
  private flushing?: Promise<void>
  private closed = false

  constructor (path: string) {
    this.path = path
  }

  /** Appends one record; resolves once it is on disk. */
  async append (record: object): Promise<void> {
    if (this.closed) throw new Error(`journal ${this.path} is closed`)
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ line: JSON.stringify(record) + '\n', resolve, reject })
      this.flushing ??= this.flush()
    })
  }

  private async flush (): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue
        this.queue = []
        try {
          this.file ??= await openForAppend(this.path)
          await this.file.appendFile(batch.map(b => b.line).join(''))
          await this.file.datasync()
          for (const b of batch) b.resolve()
        } catch (err) {
          for (const b of batch) b.reject(err as Error)
        }
      }
    } finally {
      this.flushing = undefined
    }
  }

  async close (): Promise<void> {
    this.closed = true
    await this.flushing
    await this.file?.close()
    this.file = undefined
  }
}

/**
 * Opens for appending after cutting a torn last line (a crash mid-write), so
 * the next record starts on a line of its own instead of gluing onto the
 * garbage and being lost with it at the next read.
 */
async function openForAppend (path: string): Promise<FileHandle> {
  const file = await open(path, 'a+')
  try {
    const { size } = await file.stat()
    if (size > 0) {
      const last = Buffer.alloc(1)
      await file.read(last, 0, 1, size - 1)
      if (last[0] !== 0x0a) {
        const text = await readFile(path)
        await file.truncate(text.lastIndexOf(0x0a) + 1)
      }
    }
    return file
  } catch (err) {
    await file.close()
    throw err
  }
}

/** The records of a journal, up to the first line that does not parse. */
export async function readJournal (path: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path, 'utf8')
  const out: Array<Record<string, unknown>> = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    try {
      const rec = JSON.parse(line) as unknown
      if (rec == null || typeof rec !== 'object' || Array.isArray(rec)) break
      out.push(rec as Record<string, unknown>)
    } catch {
      break // a torn last line after a crash
    }
  }
  return out
}

export async function listJournals (dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true })
  return (await readdir(dir)).filter(f => f.endsWith('.jsonl')).map(f => join(dir, f))
}
