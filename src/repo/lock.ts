import { randomBytes } from 'node:crypto'
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FILES } from './constants.ts'
import { RepoLockedError } from './errors.ts'

/** What a running daemon writes into its repo's lock file. */
export interface LockInfo {
  pid: number
  startedAt: string
  peerId?: string
  /** HOST:PORT the control API actually listens on (known once it is bound). */
  api?: string
}

export interface RepoLock {
  /** Rewrites the lock's contents (atomically) once more is known, e.g. the API port. */
  update(info: Partial<LockInfo>): Promise<void>
  release(): Promise<void>
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Reads the lock of a live daemon. A lock left behind by a dead process (crash,
 * kill -9) counts as no lock.
 */
export async function readLock (repoPath: string): Promise<LockInfo | undefined> {
  let text: string
  try {
    text = await readFile(join(repoPath, FILES.lock), 'utf8')
  } catch {
    return undefined
  }
  try {
    const info = JSON.parse(text) as LockInfo
    if (typeof info.pid === 'number' && isAlive(info.pid)) return info
  } catch {
    // half-written lock of a crashed daemon: stale
  }
  return undefined
}

/** Takes the repo's lock or throws RepoLockedError naming the daemon that holds it. */
export async function acquireLock (repoPath: string): Promise<RepoLock> {
  const file = join(repoPath, FILES.lock)
  let info: LockInfo = { pid: process.pid, startedAt: new Date().toISOString() }
  for (let attempt = 0; ; attempt++) {
    // written aside, then linked into place: the lock never exists without its contents
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
    await writeFile(tmp, JSON.stringify(info), { mode: 0o600 })
    try {
      await link(tmp, file)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw err
      const holder = await readLock(repoPath)
      if (holder != null) {
        const who = [`pid ${holder.pid}`, holder.peerId != null ? `peer ${holder.peerId}` : '', holder.api != null ? `API ${holder.api}` : '']
          .filter(Boolean).join(', ')
        throw new RepoLockedError(`repo ${repoPath} is in use by a running lepton daemon (${who}); stop it with "lepton stop --repo ${repoPath}" or use another --repo`)
      }
      await rm(file, { force: true }) // stale lock from a dead process
    } finally {
      await rm(tmp, { force: true })
    }
  }
  let released = false
  return {
    async update (more) {
      if (released) return
      info = { ...info, ...more }
      const tmp = `${file}.${process.pid}.tmp`
      await writeFile(tmp, JSON.stringify(info), { mode: 0o600 })
      await rename(tmp, file)
    },
    async release () {
      if (released) return
      released = true
      await rm(file, { force: true })
    }
  }
}
