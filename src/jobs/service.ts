/**
 * The jobs service of a daemon: submitter (plans jobs, runs them, journals
 * them, resumes them after a restart) and worker (runs tasks for others), and
 * the /lepton/tasks/1.0.0 handler that joins bidding workers to their job.
 */
import { basename, join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { BID_FLOOD, FLOOD_BAN_MS, FloodGuard, OFFERS_TOPIC, OfferCodec, TASKS_PROTOCOL, TASK_MSG, reliability, taskMessage } from '../market/index.ts'
import { TaskChannel } from './channel.ts'
import { MAX_ACTIVE_JOBS } from './constants.ts'
import { InvalidJobError, JobNotFoundError } from './errors.ts'
import { Journal, listJournals, readJournal } from './journal.ts'
import { planJob } from './planner.ts'
import { LineageCache } from './lineage-cache.ts'
import { JobRun } from './run.ts'
import { Worker, resultMessage } from './worker.ts'
import type { Link } from './run.ts'
import type { JobDetail, JobPlan, JobSummary, SubmitRequest } from './types.ts'
import type { Offer, TaskMessage } from '../market/index.ts'
import type { Logger } from '../log.ts'
import type { LeptonNode } from '../node/index.ts'
import type { WorkerConfig } from '../repo/index.ts'
import type { Sandbox } from '../sandbox/index.ts'
import type { Store } from '../store/index.ts'
import type { PeerId, Stream } from '@libp2p/interface'

/**
 * Finished jobs kept whole in memory (detail, result, inline outputs); older
 * ones are read back from their journal when asked for.
 */
const FINISHED_RUNS_KEPT = 16
/** Summaries of finished jobs kept for `lepton jobs` beyond those (newest); every job stays reachable by id from its journal. */
const SUMMARIES_KEPT = 10_000
/** Lineage entries kept for later jobs (~210 bytes each: the outputs are in the blockstore). */
const LINEAGE_ENTRIES = 4096
/** Outputs the lineage may hold in memory: none, they are in the blockstore. */
const LINEAGE_BYTES = 0

export interface JobsInit {
  node: LeptonNode
  store: Store
  sandbox: Sandbox
  repoPath: string
  worker: WorkerConfig
  log: Logger
  openStream(peer: PeerId, protocol: string, signal?: AbortSignal): Promise<Stream>
  /** Test hook: a lying worker. */
  tamper?(output: unknown, award: TaskMessage): unknown
}

/**
 * A finished job's summary as kept in memory: its workers as two arrays
 * rather than an object keyed by peer id. Objects with keys like that take a
 * new V8 hidden class for every new set and order of keys: ~430 bytes per
 * job on a soak's submitter, more than the summary itself.
 */
interface KeptSummary extends Omit<JobSummary, 'workers'> {
  workerIds: string[]
  workerCounts: number[]
}

function keepSummary (summary: JobSummary): KeptSummary {
  const { workers, ...rest } = summary
  return { ...rest, workerIds: Object.keys(workers), workerCounts: Object.values(workers) }
}

function unkeepSummary (kept: KeptSummary): JobSummary {
  const { workerIds, workerCounts, ...rest } = kept
  const workers: Record<string, number> = {}
  workerIds.forEach((id, i) => { workers[id] = workerCounts[i] ?? 0 })
  return { ...rest, workers }
}

export class JobsService {
  readonly worker: Worker
  private readonly init: JobsInit
  private readonly log: Logger
  /** Running jobs and the FINISHED_RUNS_KEPT most recently finished. */
  private readonly runs = new Map<string, JobRun>()
  /** Ids of the finished jobs in `runs`, oldest first. */
  private readonly finished = new Set<string>()
  /** Summaries of finished jobs no longer in `runs`, oldest first. */
  private readonly summaries = new Map<string, KeptSummary>()
  private readonly journals = new Map<string, Journal>()
  private readonly lineage = new LineageCache(LINEAGE_ENTRIES, LINEAGE_BYTES)
  private readonly outcomes = new Map<string, { ok: number, bad: number }>()
  private seq = 0
  /** Parsed peer ids of workers, for RTT lookups on every award. */
  private readonly peerIds = new Map<string, PeerId>()
  private readonly shutdown = new AbortController()
  private readonly bidGuard = new FloodGuard(BID_FLOOD)

  constructor (init: JobsInit) {
    this.init = init
    this.log = init.log
    this.worker = new Worker({ node: init.node, store: init.store, sandbox: init.sandbox, config: init.worker, log: init.log.child('worker'), openStream: init.openStream, tamper: init.tamper })
  }

  private get dir (): string {
    return join(this.init.repoPath, 'jobs')
  }

  async start (): Promise<void> {
    await this.init.node.handle(TASKS_PROTOCOL, (stream, connection) => {
      const peer = connection.remotePeer
      const flood = this.bidGuard.hit(peer.toString(), Date.now())
      if (flood !== 'ok') {
        stream.abort(new Error('too many task streams'))
        if (flood === 'ban') {
          this.log.warn('worker flooding task streams; banned', { peer: peer.toString(), minutes: FLOOD_BAN_MS / 60_000 })
          this.init.node.services.bans.ban(peer, FLOOD_BAN_MS, 'flooded task streams')
          this.bidGuard.forget(peer.toString())
          this.init.node.hangUp(peer).catch(() => {})
        }
        return
      }
      this.onStream(stream, peer)
    }, { maxInboundStreams: MAX_ACTIVE_JOBS, maxOutboundStreams: MAX_ACTIVE_JOBS })
    this.worker.start()
    await this.load()
  }

  async stop (): Promise<void> {
    this.shutdown.abort(new Error('daemon stopping'))
    await this.init.node.unhandle(TASKS_PROTOCOL).catch(() => {})
    this.worker.stop()
    for (const run of this.runs.values()) if (run.state === 'running') run.suspend()
    for (const j of this.journals.values()) await j.close().catch(() => {})
  }

  /** Reads every journal: finished jobs for the record, unfinished ones resumed. */
  private async load (): Promise<void> {
    const toResume: JobRun[] = []
    const ended: JobRun[] = []
    for (const path of await listJournals(this.dir)) {
      try {
        const run = await this.readRun(path)
        if (run == null) continue
        if (run.state === 'running') {
          this.runs.set(run.id, run)
          toResume.push(run)
        } else {
          ended.push(run)
        }
      } catch (err) {
        this.log.warn('unreadable job journal skipped', { path, err })
      }
    }
    // oldest first, so the newest are the ones kept whole and the lineage keeps the most recent tasks
    const endedAt = (r: JobRun): number => { const s = r.summary(); return s.createdAtMs + s.elapsedMs }
    for (const run of [...ended.sort((a, b) => endedAt(a) - endedAt(b)), ...toResume]) {
      for (const t of run.detail().taskList) {
        // lineage of finished tasks, for every later job
        if (t.outputCid != null) this.lineage.set(run.taskKey(t.index), { outputCid: t.outputCid, stored: run.taskOutput(t.index) != null })
      }
      if (run.state === 'running') continue
      this.runs.set(run.id, run)
      this.retire(run)
    }
    for (const run of toResume) {
      this.log.info('resuming job', { job: run.id })
      run.start().catch(err => { this.log.warn('job resume failed', { job: run.id, err }) })
    }
  }

  /** A job as its journal left it; only an unfinished one keeps its journal open for appends (it resumes). */
  private async readRun (path: string): Promise<JobRun | null> {
    const records = await readJournal(path)
    const head = records[0]
    if (head?.t !== 'plan') return null
    const plan = head.plan as JobPlan
    const resumes = records.filter(r => r.t === 'resume').length
    const journal = new Journal(path)
    const run = this.newRun(plan, resumes + 1, journal)
    run.replay(records.slice(1))
    if (run.state === 'running') this.journals.set(run.id, journal)
    return run
  }

  /** A finished job: kept whole among the most recent, then as a summary, then only in its journal. */
  private retire (run: JobRun): void {
    this.finished.delete(run.id)
    this.finished.add(run.id)
    for (const id of this.finished) {
      if (this.finished.size <= FINISHED_RUNS_KEPT) break
      this.finished.delete(id)
      const old = this.runs.get(id)
      this.runs.delete(id)
      if (old != null) this.summaries.set(id, keepSummary(old.summary()))
    }
    for (const id of this.summaries.keys()) {
      if (this.summaries.size <= SUMMARIES_KEPT) break
      this.summaries.delete(id)
    }
  }

  private newRun (plan: JobPlan, runNumber: number, journal?: Journal): JobRun {
    if (journal == null) {
      journal = new Journal(join(this.dir, `${plan.jobId}.jsonl`))
      this.journals.set(plan.jobId, journal)
    }
    const { node } = this.init
    const self = node.peerId.toString()
    const run = new JobRun({
      plan,
      journal,
      store: this.init.store,
      sandbox: this.init.sandbox,
      log: this.log,
      runNumber,
      lineage: this.lineage,
      rttMs: (peer) => {
        if (peer === self) return 0
        try {
          let id = this.peerIds.get(peer)
          if (id == null) {
            id = peerIdFromString(peer)
            this.peerIds.set(peer, id)
          }
          return node.services.rtt.rttMs(id) ?? null
        } catch {
          return null
        }
      },
      reliability: (peer) => {
        const o = this.outcomes.get(peer)
        return reliability(o?.ok ?? 0, o?.bad ?? 0)
      },
      recordOutcome: (peer, ok) => {
        const o = this.outcomes.get(peer) ?? { ok: 0, bad: 0 }
        if (ok) o.ok++
        else o.bad++
        this.outcomes.set(peer, o)
      },
      publishOffer: (offer) => { this.publish(offer) },
      fetchBytes: async (cid, maxBytes, signal) => await this.worker.fetch(cid, maxBytes, signal),
      // this daemon works on its own jobs too, without a stream
      localLink: this.worker.accepts(self, plan.runtime) ? (r) => this.localLink(r) : undefined,
      onEnd: (r) => {
        this.journals.get(r.id)?.close().catch(() => {})
        this.journals.delete(r.id)
        this.retire(r)
      }
    })
    return run
  }

  /** This daemon's own worker as a link of `run`. */
  private localLink (run: JobRun): Link {
    const self = this.init.node.peerId.toString()
    const worker = this.worker
    const link: Link = {
      id: self,
      local: true,
      slots: worker.slots,
      holds: new Set(),
      get lastSeenMs () { return Date.now() },
      set lastSeenMs (_v: number) {},
      outstanding: new Map(),
      send: (msg) => {
        if (msg.type === TASK_MSG.AWARD) {
          worker.execute(self, msg).then(outcome => { run.onMessage(link, resultMessage(msg, outcome, worker.freeSlots)) }, () => {})
        } else if (msg.type === TASK_MSG.CANCEL) {
          worker.cancel(self, msg.jobId, msg.task, msg.attempt)
        }
      },
      close: () => {}
    }
    return link
  }

  private onStream (stream: Stream, remote: PeerId): void {
    const channel = new TaskChannel(stream)
    channel.first(10_000).then(bid => {
      const run = this.runs.get(bid.jobId)
      if (bid.type !== TASK_MSG.BID || run == null || run.state !== 'running') {
        // a late bid (the job ended) or no such job here: say so, then close
        if (bid.type === TASK_MSG.BID) channel.send(taskMessage({ type: TASK_MSG.DONE, jobId: bid.jobId }))
        channel.close()
        return
      }
      const link: Link = {
        id: remote.toString(),
        slots: Math.min(Math.max(bid.slots, 1), 1024),
        holds: new Set(bid.held.map(c => { try { return CID.decode(c).toString() } catch { return '' } })),
        lastSeenMs: Date.now(),
        outstanding: new Map(),
        send: (msg) => { channel.send(msg) },
        close: () => { channel.close() }
      }
      this.log.debug('worker joined', { job: run.id, worker: link.id, slots: link.slots })
      run.attach(link)
      channel.attach({ onMessage: (msg) => { run.onMessage(link, msg) }, onClose: () => { run.detach(link) } })
    }).catch(err => {
      this.log.debug('task stream dropped', { peer: remote.toString(), err })
      channel.close(err as Error)
    })
  }

  private publish (offer: Omit<Offer, 'seq' | 'createdAtMs'>): void {
    // increasing across restarts too: workers drop offers whose seq they have seen
    this.seq = Math.max(this.seq + 1, Date.now())
    const data = OfferCodec.encode({ ...offer, createdAtMs: Date.now(), seq: this.seq })
    this.init.node.services.pubsub.publish(OFFERS_TOPIC, data).catch((err: Error) => {
      if (!err.message.includes('NoPeersSubscribedToTopic')) this.log.debug('offer not published', { err })
    })
  }

  async submit (req: SubmitRequest, signal?: AbortSignal): Promise<JobSummary> {
    const active = [...this.runs.values()].filter(r => r.state === 'running').length
    if (active >= MAX_ACTIVE_JOBS) throw new InvalidJobError(`${active} jobs are running on this daemon already (limit ${MAX_ACTIVE_JOBS}); wait for some to finish`)
    // the planner's holds on what it stored last until the run holds the same data (or planning fails)
    const plannerHolds: Array<() => void> = []
    try {
      const plan = await planJob(req, {
        store: this.init.store,
        sandbox: this.init.sandbox,
        worker: this.init.worker,
        fetchBytes: async (cid, maxBytes, s) => await this.worker.fetch(cid, maxBytes, s),
        onHold: (release) => { plannerHolds.push(release) }
      }, AbortSignal.any([this.shutdown.signal, ...(signal == null ? [] : [signal])]))
      const run = this.newRun(plan, 0)
      await this.journals.get(plan.jobId)?.append({ t: 'plan', plan })
      this.runs.set(plan.jobId, run)
      this.log.info('job submitted', { job: plan.jobId, module: plan.module, tasks: plan.partitions.length, verify: plan.verify })
      await run.start()
      return run.summary()
    } finally {
      for (const release of plannerHolds) release()
    }
  }

  /** What this service holds in memory, for the daemon's memory log. */
  memory (): { jobs: number, summaries: number, lineage: number, lineageKiB: number, workerLineage: number, workerLineageKiB: number } {
    const worker = this.worker.memory()
    return { jobs: this.runs.size, summaries: this.summaries.size, lineage: this.lineage.size, lineageKiB: Math.round(this.lineage.outputBytes / 1024), workerLineage: worker.entries, workerLineageKiB: Math.round(worker.outputBytes / 1024) }
  }

  list (): JobSummary[] {
    return [...this.runs.values()].map(r => r.summary()).concat([...this.summaries.values()].map(unkeepSummary)).sort((a, b) => b.createdAtMs - a.createdAtMs)
  }

  /** A job by id or unique-enough prefix (>= 4 characters): in memory, else read back from its journal. */
  private async find (id: string): Promise<JobRun> {
    const run = this.runs.get(id) ?? [...this.runs.values()].find(r => r.id.startsWith(id) && id.length >= 4)
    if (run != null) return run
    const file = (await listJournals(this.dir)).find(p => basename(p) === `${id}.jsonl` || (id.length >= 4 && basename(p).startsWith(id)))
    const old = file == null ? null : await this.readRun(file).catch(() => null)
    if (old == null) throw new JobNotFoundError(`no job ${id} on this daemon (lepton jobs lists them)`)
    return old
  }

  async get (id: string): Promise<JobDetail> {
    return (await this.find(id)).detail()
  }

  async cancel (id: string): Promise<JobSummary> {
    const run = await this.find(id)
    await run.cancel()
    return run.summary()
  }

  /** Resolves when the job has ended. */
  async wait (id: string): Promise<JobDetail> {
    const run = await this.find(id)
    await run.ended()
    return run.detail()
  }

  /** Resolves when the job has ended or after `waitMs`: a summary while running, the detail once ended. */
  async poll (id: string, waitMs: number): Promise<JobSummary | JobDetail> {
    const run = await this.find(id)
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([run.ended(), new Promise(resolve => { timer = setTimeout(resolve, waitMs) })])
    clearTimeout(timer)
    return run.state === 'running' ? run.summary() : run.detail()
  }
}
