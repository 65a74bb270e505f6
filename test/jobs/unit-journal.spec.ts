import { readFileSync } from 'node:fs'
import { appendFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Journal, listJournals, readJournal } from '../../src/jobs/journal.ts'

let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lepton-journal-'))
})

afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Records in the file right now, read synchronously (no chance for a pending write to land first). */
function onDisk (path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8').split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>)
}

describe('Journal', () => {
  it('reads back what was appended', async () => {
    const path = join(dir, 'job.jsonl')
    const j = new Journal(path)
    const records = [
      { t: 'plan', plan: { jobId: 'x', partitions: [{ cid: null, bytes: 0 }] } },
      { t: 'result', task: 0, ok: true, text: 'line\nbreak "quoted" é 🙂' },
      { t: 'done', task: 0, cid: 'bafy', by: ['a', 'b'] }
    ]
    for (const r of records) await j.append(r)
    await j.close()
    expect(await readJournal(path)).toEqual(records)
  })

  it('lands every concurrent append, in order per caller, each on disk when its promise resolves', async () => {
    const path = join(dir, 'job.jsonl')
    const j = new Journal(path)
    const missing: string[] = []
    const caller = async (c: number): Promise<void> => {
      for (let i = 0; i < 25; i++) {
        // half the callers wait for each append, half fire them all at once
        const p = j.append({ c, i }).then(() => {
          if (!onDisk(path).some(r => r.c === c && r.i === i)) missing.push(`${c}/${i}`)
        })
        if (c % 2 === 0) await p
        else if (i === 24) await p
      }
    }
    const fired = Array.from({ length: 6 }, (_, c) => caller(c))
    await Promise.all(fired)
    await j.close()
    expect(missing).toEqual([])
    const all = await readJournal(path)
    expect(all).toHaveLength(6 * 25)
    for (let c = 0; c < 6; c++) expect(all.filter(r => r.c === c).map(r => r.i)).toEqual(Array.from({ length: 25 }, (_, i) => i))
  })

  it('writes appends made without waiting in the order they were made', async () => {
    const path = join(dir, 'job.jsonl')
    const j = new Journal(path)
    await Promise.all(Array.from({ length: 100 }, (_, i) => j.append({ i })))
    expect(onDisk(path).map(r => r.i)).toEqual(Array.from({ length: 100 }, (_, i) => i))
    await j.close()
  })

  it('flushes pending records on close', async () => {
    const path = join(dir, 'job.jsonl')
    const j = new Journal(path)
    const pending = Array.from({ length: 20 }, (_, i) => j.append({ i }))
    await j.close()
    // close waited for the queue: everything is on disk before any append is awaited
    expect(onDisk(path)).toHaveLength(20)
    await Promise.all(pending)
  })

  it('refuses appends after close', async () => {
    const j = new Journal(join(dir, 'job.jsonl'))
    await j.append({ i: 0 })
    await j.close()
    await expect(j.append({ i: 1 })).rejects.toThrow(/closed/)
  })

  it('rejects the appends of a batch that cannot be written', async () => {
    const j = new Journal(join(dir, 'no-such-folder', 'job.jsonl'))
    await expect(j.append({ i: 0 })).rejects.toThrow()
    await j.close()
  })

  it('appends to an existing journal (a resumed job)', async () => {
    const path = join(dir, 'job.jsonl')
    const first = new Journal(path)
    await first.append({ run: 0 })
    await first.close()
    const second = new Journal(path)
    await second.append({ run: 1 })
    await second.close()
    expect(await readJournal(path)).toEqual([{ run: 0 }, { run: 1 }])
  })

  // Bug (src/jobs/journal.ts, Journal.flush opens the file with 'a' as is): after a
  // crash leaves a torn last line, the resumed daemon appends its records right
  // after the torn bytes, so its first record is glued to them and readJournal
  // stops there: every record of the resumed run (resume, results, done, end) is
  // lost on the next start, and the job redoes that work after each restart.
  // Expected: reopening drops (truncates) the torn tail, or starts on a new line.
  it('keeps records appended after a torn line left by a crash', async () => {
    const path = join(dir, 'job.jsonl')
    const first = new Journal(path)
    await first.append({ t: 'plan' })
    await first.close()
    await appendFile(path, '{"t":"done","task":3,"ci') // crash mid-write
    const resumed = new Journal(path)
    await resumed.append({ t: 'resume', run: 1 })
    await resumed.close()
    expect(await readJournal(path)).toEqual([{ t: 'plan' }, { t: 'resume', run: 1 }])
  })
})

describe('readJournal', () => {
  it('drops a torn last line and keeps the records before it', async () => {
    const path = join(dir, 'job.jsonl')
    const j = new Journal(path)
    await j.append({ t: 'plan' })
    await j.append({ t: 'result', task: 0 })
    await j.close()
    await appendFile(path, '{"t":"done","task":0,"cid":"baf')
    expect(await readJournal(path)).toEqual([{ t: 'plan' }, { t: 'result', task: 0 }])
  })

  it('drops a last line torn inside a multi-byte character', async () => {
    const path = join(dir, 'job.jsonl')
    const line = Buffer.from(JSON.stringify({ text: 'é🙂' }) + '\n')
    await writeFile(path, Buffer.concat([Buffer.from('{"t":"plan"}\n'), line.subarray(0, line.indexOf(0xf0) + 2)]))
    expect(await readJournal(path)).toEqual([{ t: 'plan' }])
  })

  it('stops at the first line that is not a JSON object', async () => {
    const path = join(dir, 'job.jsonl')
    await writeFile(path, '{"a":1}\n\n{"b":2}\n[1,2]\n{"c":3}\n')
    expect(await readJournal(path)).toEqual([{ a: 1 }, { b: 2 }])
    await writeFile(path, '{"a":1}\nnull\n{"c":3}\n')
    expect(await readJournal(path)).toEqual([{ a: 1 }])
    await writeFile(path, '{"a":1}\n42\n')
    expect(await readJournal(path)).toEqual([{ a: 1 }])
  })

  it('reads an empty journal as no records', async () => {
    const path = join(dir, 'job.jsonl')
    await writeFile(path, '')
    expect(await readJournal(path)).toEqual([])
  })
})

describe('listJournals', () => {
  it('creates the folder when missing', async () => {
    const jobs = join(dir, 'repo', 'jobs')
    expect(await listJournals(jobs)).toEqual([])
    expect(await readdir(jobs)).toEqual([])
  })

  it('lists only .jsonl files, as full paths', async () => {
    await mkdir(join(dir, 'sub.jsonl.d'))
    for (const f of ['a.jsonl', 'b.jsonl', 'notes.txt', 'c.jsonl.tmp', 'jsonl', 'd.json']) await writeFile(join(dir, f), '')
    expect((await listJournals(dir)).sort()).toEqual([join(dir, 'a.jsonl'), join(dir, 'b.jsonl')])
  })
})
