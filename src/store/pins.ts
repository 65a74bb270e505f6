/** Pins: one small file per pinned root under pins/, written atomically. */
import { mkdir, readdir, rename, rm, writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'

let tmpCounter = 0

export interface PinInfo {
  cid: string
  pinnedAt: string
}

export class PinSet {
  private readonly dir: string

  constructor (dir: string) {
    this.dir = dir
  }

  async open (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
  }

  async add (cid: CID): Promise<void> {
    const info: PinInfo = { cid: cid.toV1().toString(), pinnedAt: new Date().toISOString() }
    // a name of its own: two adds of one CID at once (two jobs storing the same module) must not share a temp file
    const tmp = join(this.dir, `.${info.cid}.${process.pid}.${++tmpCounter}.tmp`)
    await writeFile(tmp, JSON.stringify(info))
    await rename(tmp, join(this.dir, info.cid))
  }

  async rm (cid: CID): Promise<boolean> {
    const file = join(this.dir, cid.toV1().toString())
    try {
      await readFile(file)
    } catch {
      return false
    }
    await rm(file, { force: true })
    return true
  }

  async has (cid: CID): Promise<boolean> {
    try {
      await readFile(join(this.dir, cid.toV1().toString()))
      return true
    } catch {
      return false
    }
  }

  async ls (): Promise<PinInfo[]> {
    const out: PinInfo[] = []
    for (const name of await readdir(this.dir)) {
      if (name.startsWith('.')) continue
      try {
        CID.parse(name)
        out.push(JSON.parse(await readFile(join(this.dir, name), 'utf8')) as PinInfo)
      } catch {}
    }
    return out.sort((a, b) => a.pinnedAt.localeCompare(b.pinnedAt))
  }
}
