/**
 * Replica records: for every CID added with `--replicas N`, each holder keeps
 * {cid, wanted N, holders} in the repo (replicas/<cid>.json). Holders watch
 * each other; when one has been out of reach longer than the grace period,
 * the live holder with the lowest peer id (one leader, so they do not all
 * repair at once) asks another peer to fetch and pin a copy.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

let tmpCounter = 0

export interface ReplicaRecord {
  cid: string
  /** Copies wanted in the mesh. */
  wanted: number
  /** Peers holding a pinned copy, as last agreed. */
  holders: string[]
}

export interface RepairPlan {
  /** Holders unseen for longer than the grace period. */
  dead: string[]
  live: string[]
  /** Whether this peer is the one to repair (the lowest live peer id). */
  leader: boolean
  /** Copies to add. */
  missing: number
}

/**
 * Pure: who is dead, who leads, how many copies are missing. `lastSeenMs`
 * holds when each holder was last connected (this peer counts as always seen).
 */
export function planRepair (record: ReplicaRecord, self: string, lastSeenMs: ReadonlyMap<string, number>, nowMs: number, graceMs: number): RepairPlan {
  const dead: string[] = []
  const live: string[] = []
  for (const h of record.holders) {
    if (h === self || nowMs - (lastSeenMs.get(h) ?? nowMs) <= graceMs) live.push(h)
    else dead.push(h)
  }
  if (!live.includes(self)) live.push(self)
  const leader = [...live].sort()[0] === self
  return { dead, live, leader, missing: Math.max(0, record.wanted - live.length) }
}

/**
 * Pure: holders to dial before they could be counted dead. Liveness is "connected
 * to me", and in a mesh larger than the connection target two holders need not
 * be connected: one unseen for half the grace period is dialled, and counts as
 * seen if the dial succeeds.
 */
export function holdersToProbe (records: Iterable<ReplicaRecord>, self: string, connected: ReadonlySet<string>, lastSeenMs: ReadonlyMap<string, number>, nowMs: number, graceMs: number): string[] {
  const out = new Set<string>()
  for (const record of records) {
    for (const h of record.holders) {
      if (h === self || connected.has(h)) continue
      const seen = lastSeenMs.get(h)
      if (seen != null && nowMs - seen > graceMs / 2) out.add(h)
    }
  }
  return [...out]
}

/** Candidates for a new copy: connected peers that are not holders, nearest first. */
export function pickCandidates (connected: ReadonlyArray<{ peerId: string, rttMs: number | undefined }>, holders: readonly string[]): string[] {
  const taken = new Set(holders)
  return connected.filter(p => !taken.has(p.peerId))
    .sort((a, b) => (a.rttMs ?? Infinity) - (b.rttMs ?? Infinity) || a.peerId.localeCompare(b.peerId))
    .map(p => p.peerId)
}

export class ReplicaRecords {
  private readonly dir: string
  readonly records = new Map<string, ReplicaRecord>()

  constructor (repoPath: string) {
    this.dir = join(repoPath, 'replicas')
  }

  async open (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    for (const f of await readdir(this.dir)) {
      if (!f.endsWith('.json')) continue
      try {
        const r = JSON.parse(await readFile(join(this.dir, f), 'utf8')) as ReplicaRecord
        if (typeof r.cid === 'string' && Number.isInteger(r.wanted) && Array.isArray(r.holders)) this.records.set(r.cid, r)
      } catch {}
    }
  }

  async save (record: ReplicaRecord): Promise<void> {
    this.records.set(record.cid, record)
    const path = join(this.dir, `${record.cid}.json`)
    const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`
    await writeFile(tmp, JSON.stringify(record))
    await rename(tmp, path)
  }

  async remove (cid: string): Promise<void> {
    this.records.delete(cid)
    await rm(join(this.dir, `${cid}.json`), { force: true })
  }
}
