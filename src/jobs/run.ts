/**
 * One job on its submitter: task states, leases held by workers, votes,
 * retries, backups, the journal, and the final reduce. Driven by events
 * (bids, results, closed streams) and a tick for leases, offers and timeouts.
 */
import { CID } from 'multiformats/cid'
import { INLINE_OUTPUT_BYTES, TASK_MSG, assignTasks, taskMessage } from '../market/index.ts'
import { AWARDS_PER_SLOT, BACKUP_AFTER_MEDIAN, BACKUP_MIN_MS, LEASE_MS, MAX_BACKUP_COPIES, OFFER_INTERVAL_MS } from './constants.ts'
import { lineageKey, rawCid, taskContext } from './lineage.ts'
import type { Journal } from './journal.ts'
import { hitOutput } from './lineage-cache.ts'
import type { Lineage } from './lineage-cache.ts'
import type { Disagreement, JobDetail, JobPlan, JobState, JobSummary, TaskInfo, TaskState } from './types.ts'
import type { Offer, TaskMessage, TaskView, WorkerView } from '../market/index.ts'
import type { Logger } from '../log.ts'
import type { Sandbox } from '../sandbox/index.ts'
import type { Store } from '../store/index.ts'

/** A worker holding leases of this job: a remote stream, or this daemon's own worker. */
export interface Link {
  readonly id: string
  /** This daemon's own worker (no stream between). */
  readonly local?: boolean
  slots: number
  holds: Set<string>
  lastSeenMs: number
  readonly outstanding: Map<string, Copy>
  send(msg: TaskMessage): void
  close(): void
}

interface Copy {
  task: number
  attempt: number
  worker: string
  startedMs: number
  /** performance.now() when the award went out. */
  sentAt: number
}

interface TaskRec {
  index: number
  inputCid: string | null
  inputBytes: number
  ctx: string
  key: string
  state: TaskState
  attempts: number
  copies: Map<string, Copy>
  votes: Map<string, Set<string>>
  outputs: Map<string, Uint8Array | undefined>
  runs: number
  failures: number
  errors: string[]
  failedOn: Set<string>
  outputCid: string | null
  output?: Uint8Array
  doneBy: string[]
  finishedInRun: number | null
  cached: boolean
  /** false while its done record is on its way to disk: shown as running until then. */
  durable?: boolean
  /** Worker-side time of the first good result (fetch + run), ms. */
  durationMs?: number
  /** Award sent to first good result back, on this submitter, ms. */
  latencyMs?: number
}

export interface LineageEntry {
  outputCid: string
  /** The output itself, held in memory (a worker's cache of what it computed). */
  output?: Uint8Array
  /**
   * The output came inline and this peer keeps it in its blockstore (the
   * submitter's lineage; read from there on a hit, and a hit whose block is
   * gone, e.g. after gc, is a miss). Neither this nor `output`: a large
   * output, fetched from the mesh by CID when the job reduces.
   */
  stored?: boolean
}

export interface RunContext {
  plan: JobPlan
  journal: Journal
  store: Store
  sandbox: Sandbox
  log: Logger
  /** Which daemon run this is for the job (0: the first). */
  runNumber: number
  rttMs(peer: string): number | null
  reliability(peer: string): number
  recordOutcome(peer: string, ok: boolean): void
  publishOffer(offer: Omit<Offer, 'seq' | 'createdAtMs'>): void
  fetchBytes(cid: string, maxBytes: number, signal: AbortSignal): Promise<Uint8Array>
  lineage: Lineage
  /** This daemon's own worker, when it runs tasks. */
  localLink?(run: JobRun): Link
  onEnd(run: JobRun): void
}

export class JobRun {
  readonly plan: JobPlan
  private readonly ctx: RunContext
  private readonly tasks: TaskRec[]
  private readonly links = new Map<string, Link>()
  /** Workers caught returning outputs the majority disagrees with: not used again in this job. */
  private readonly avoided = new Set<string>()
  private readonly disagreements: Disagreement[] = []
  state: JobState = 'running'
  error: string | null = null
  resultCid: string | null = null
  result: unknown = null
  private resumed = 0
  private endedAtMs: number | null = null
  private timer?: ReturnType<typeof setInterval>
  private lastOfferMs = 0
  /** Index of the first task not done (everything before it is). */
  private firstOpen = 0
  /** Tasks done (accepted output). */
  private doneCount = 0
  /** The reduce has begun (it runs once, whichever accept saw the last task done). */
  private finishing = false
  /** Worker times of good results, for the backup threshold. */
  private readonly durations: number[] = []
  private backupThreshold = { atCount: -1, ms: Infinity }
  private readonly codeCidBytes: Uint8Array
  private readonly shutdown = new AbortController()
  private readonly waiters: Array<() => void> = []
  /** Ends the holds on the job's data (holdData). */
  private readonly releases: Array<() => void> = []

  constructor (ctx: RunContext) {
    this.ctx = ctx
    this.plan = ctx.plan
    const { plan } = ctx
    this.codeCidBytes = CID.parse(plan.codeCid).bytes
    this.tasks = plan.partitions.map((p, index) => {
      const taskCtx = taskContext(index, plan.partitions.length, plan.seed, plan.args)
      return {
        index,
        inputCid: p.cid,
        inputBytes: p.bytes,
        ctx: taskCtx,
        key: lineageKey(plan.codeCid, p.cid, taskCtx),
        state: 'pending',
        attempts: 0,
        copies: new Map(),
        votes: new Map(),
        outputs: new Map(),
        runs: 0,
        failures: 0,
        errors: [],
        failedOn: new Set(),
        outputCid: null,
        doneBy: [],
        finishedInRun: null,
        cached: false
      }
    })
  }

  /** Replays journal records of an earlier daemon run (everything after the plan line). */
  replay (records: Array<Record<string, unknown>>): void {
    for (const r of records) {
      const task = typeof r.task === 'number' ? this.tasks[r.task] : undefined
      if (r.t === 'resume') this.resumed++
      else if (r.t === 'result' && task != null) {
        task.runs++
        if (r.ok !== true) task.failures++
      } else if (r.t === 'done' && task != null) {
        if (r.ran === true) task.runs++
        if (task.state !== 'done') this.doneCount++
        task.state = 'done'
        task.outputCid = String(r.cid)
        task.output = typeof r.out === 'string' ? Buffer.from(r.out, 'base64') : undefined
        task.doneBy = Array.isArray(r.by) ? r.by.map(String) : []
        task.finishedInRun = typeof r.run === 'number' ? r.run : 0
        task.cached = r.cached === true
      } else if (r.t === 'disagree') {
        this.disagreements.push({ task: Number(r.task), worker: String(r.worker), outputCid: String(r.cid), acceptedCid: String(r.accepted) })
        this.avoided.add(String(r.worker))
      } else if (r.t === 'end') {
        this.state = r.state as JobState
        this.resultCid = typeof r.resultCid === 'string' ? r.resultCid : null
        this.result = r.result ?? null
        this.error = typeof r.error === 'string' ? r.error : null
        this.endedAtMs = typeof r.atMs === 'number' ? r.atMs : this.plan.createdAtMs
      }
    }
  }

  /** Starts (or resumes) scheduling. */
  async start (): Promise<void> {
    if (this.state !== 'running') return
    this.holdData()
    if (this.ctx.runNumber > 0) {
      this.resumed++
      await this.ctx.journal.append({ t: 'resume', run: this.ctx.runNumber })
    }
    // lineage: outputs this mesh already computed are not computed again
    for (const task of this.tasks) {
      if (task.state !== 'pending') continue
      const hit = this.ctx.lineage.get(task.key)
      if (hit == null) continue
      const output = await hitOutput(hit, this.ctx.store)
      if (hit.stored === true && output == null) {
        // not here any more (gc, or its job never finished): run the task
        this.ctx.lineage.delete(task.key)
        continue
      }
      await this.accept(task, hit.outputCid, output, [], true)
    }
    if (this.state !== 'running') return
    if (this.tasks.every(t => t.state === 'done')) {
      await this.finish()
      return
    }
    this.timer = setInterval(() => { this.tick() }, 200)
    this.timer.unref()
    const local = this.ctx.localLink?.(this)
    if (local != null) this.attach(local)
    this.offer()
  }

  taskKey (index: number): string {
    return (this.tasks[index] as TaskRec).key
  }

  taskOutput (index: number): Uint8Array | undefined {
    return this.tasks[index]?.output
  }

  get id (): string {
    return this.plan.jobId
  }

  /** A worker's bid arrived: it holds leases of this job from now on. */
  attach (link: Link): void {
    if (this.state !== 'running' || this.avoided.has(link.id)) {
      link.send(taskMessage({ type: TASK_MSG.DONE, jobId: this.id }))
      link.close()
      return
    }
    this.links.get(link.id)?.close()
    this.links.set(link.id, link)
    this.schedule()
  }

  /** A message from a worker's stream. */
  onMessage (link: Link, msg: TaskMessage): void {
    link.lastSeenMs = Date.now()
    if (msg.type === TASK_MSG.HEARTBEAT || msg.type === TASK_MSG.BID) {
      if (msg.slots > 0) link.slots = msg.slots
      return
    }
    if (msg.type === TASK_MSG.RESULT) {
      this.onResult(link, msg).catch(err => { this.ctx.log.warn('result handling failed', { job: this.id, err }) })
    }
  }

  /** A worker's stream closed (or its lease expired): its tasks go back to the queue. */
  detach (link: Link): void {
    if (this.links.get(link.id) !== link) return
    this.links.delete(link.id)
    for (const copy of link.outstanding.values()) this.dropCopy(copy)
    link.outstanding.clear()
    this.schedule()
  }

  private dropCopy (copy: Copy): void {
    const task = this.tasks[copy.task]
    if (task == null) return
    if (task.copies.get(copy.worker)?.attempt === copy.attempt) task.copies.delete(copy.worker)
    if (task.state === 'running' && task.copies.size === 0) task.state = 'pending'
  }

  private async onResult (link: Link, msg: TaskMessage): Promise<void> {
    const task = this.tasks[msg.task]
    const copyKey = `${msg.task}/${msg.attempt}`
    const copy = link.outstanding.get(copyKey)
    if (task == null || copy == null) return // cancelled, or not ours
    link.outstanding.delete(copyKey)
    this.dropCopy(copy)
    const worker = link.id
    const outputCid = msg.ok ? safeCid(msg.outputCid) : null
    task.runs++
    // a result accepted at once is journaled by its done record alone (one write per task)
    const acceptedAtOnce = msg.ok && outputCid != null && task.state !== 'done' && this.votesNeeded() === 1 && msg.output.byteLength <= INLINE_OUTPUT_BYTES
    if (!acceptedAtOnce) await this.ctx.journal.append({ t: 'result', task: task.index, worker, ok: msg.ok && outputCid != null, cid: outputCid, error: msg.ok ? undefined : msg.error, ms: Math.round(msg.elapsedMs) })
    if (this.state !== 'running') return
    if (msg.ok && outputCid != null) {
      let output: Uint8Array | undefined
      if (msg.output.byteLength > 0 || msg.outputBytes === 0) {
        // small outputs travel inline: they must hash to the CID the worker claims
        if (msg.output.byteLength > INLINE_OUTPUT_BYTES || rawCid(msg.output).toString() !== outputCid) {
          await this.caught(task, worker, outputCid, 'output does not match its CID')
          this.schedule()
          return
        }
        // the decoded bytes are a view of the whole received chunk: keep a copy of just the output
        output = msg.output.slice()
      }
      if (task.state === 'done') {
        if (outputCid !== task.outputCid) await this.caught(task, worker, outputCid, task.outputCid ?? '')
        this.schedule()
        return
      }
      if (task.durationMs == null) this.durations.push(msg.elapsedMs)
      task.durationMs ??= msg.elapsedMs
      task.latencyMs ??= performance.now() - copy.sentAt
      let voters = task.votes.get(outputCid)
      if (voters == null) {
        voters = new Set()
        task.votes.set(outputCid, voters)
      }
      voters.add(worker)
      if (output != null || !task.outputs.has(outputCid)) task.outputs.set(outputCid, output)
      if (voters.size >= this.votesNeeded()) await this.accept(task, outputCid, task.outputs.get(outputCid), [...voters], false, acceptedAtOnce)
    } else if (task.state !== 'done' && !NOT_THE_TASKS_FAULT.has(msg.errorName)) {
      task.failures++
      task.failedOn.add(worker)
      task.errors.push(`${worker}: ${msg.error}`)
      this.ctx.recordOutcome(worker, false)
      if (task.failures > this.plan.retries) {
        await this.end('failed', `task ${task.index} failed on ${task.failures} attempt${task.failures === 1 ? '' : 's'}: ${msg.error}`)
        return
      }
      if (task.copies.size === 0) task.state = 'pending'
    }
    this.schedule()
  }

  private votesNeeded (): number {
    return Math.floor(this.plan.verify / 2) + 1
  }

  /** A worker returned an output the accepted one contradicts (or a forged one): reported, avoided. */
  private async caught (task: TaskRec, worker: string, outputCid: string, acceptedCid: string): Promise<void> {
    this.disagreements.push({ task: task.index, worker, outputCid, acceptedCid })
    await this.ctx.journal.append({ t: 'disagree', task: task.index, worker, cid: outputCid, accepted: acceptedCid })
    this.ctx.recordOutcome(worker, false)
    this.ctx.log.warn('worker output outvoted', { job: this.id, task: task.index, worker, outputCid, acceptedCid })
    if (!this.avoided.has(worker)) {
      this.avoided.add(worker)
      const link = this.links.get(worker)
      if (link != null) {
        link.send(taskMessage({ type: TASK_MSG.DONE, jobId: this.id }))
        link.close()
        this.detach(link)
      }
    }
  }

  /** `countsAsRun`: the done record stands for the result that caused it too (no result record was written). */
  private async accept (task: TaskRec, outputCid: string, output: Uint8Array | undefined, by: string[], cached: boolean, countsAsRun = false): Promise<void> {
    task.state = 'done'
    this.doneCount++
    task.outputCid = outputCid
    task.output = output
    task.doneBy = by
    task.cached = cached
    task.finishedInRun = this.ctx.runNumber
    // every other copy is now wasted work
    for (const copy of task.copies.values()) {
      const link = this.links.get(copy.worker)
      link?.outstanding.delete(`${copy.task}/${copy.attempt}`)
      link?.send(taskMessage({ type: TASK_MSG.CANCEL, jobId: this.id, task: copy.task, attempt: copy.attempt }))
    }
    task.copies.clear()
    for (const w of by) this.ctx.recordOutcome(w, true)
    this.ctx.lineage.set(task.key, { outputCid, stored: output != null })
    task.durable = false
    await this.ctx.journal.append({ t: 'done', task: task.index, cid: outputCid, out: output == null ? undefined : Buffer.from(output).toString('base64'), by, run: this.ctx.runNumber, cached: cached || undefined, ran: countsAsRun || undefined })
    task.durable = true
    for (const [cid, voters] of task.votes) {
      if (cid === outputCid) continue
      for (const w of voters) await this.caught(task, w, cid, outputCid)
    }
    // several accepts may be waiting on the journal when the last task is done: one reduce
    if (this.state === 'running' && this.doneCount === this.tasks.length) await this.finish()
  }

  /** Copies of `task` still to hand out. */
  private copiesWanted (task: TaskRec): number {
    if (task.state === 'done' || task.state === 'failed') return 0
    let best = 0
    for (const voters of task.votes.values()) best = Math.max(best, voters.size)
    return Math.max(0, this.votesNeeded() - best - task.copies.size)
  }

  /**
   * Awards a worker may hold per slot now: deep queues (up to AWARDS_PER_SLOT)
   * while there is plenty left to do, one per slot when the job is small or
   * nearly done, so the first worker to bid cannot take everything and the
   * last tasks do not wait in one worker's queue while others idle.
   */
  private queueDepth (): number {
    let slots = 0
    for (const link of this.links.values()) if (!this.avoided.has(link.id)) slots += link.slots
    const remaining = this.tasks.length - this.doneCount
    return Math.min(AWARDS_PER_SLOT, Math.max(1, Math.ceil(remaining / (Math.max(1, slots) * AWARDS_PER_SLOT))))
  }

  private workerViews (): WorkerView[] {
    const views: WorkerView[] = []
    const depth = this.queueDepth()
    for (const link of this.links.values()) {
      if (this.avoided.has(link.id)) continue
      // a remote worker is refilled in batches (once half its awards came back): awards that
      // leave together share one write, one noise frame and one syscall
      const most = link.slots * depth
      const capacity = link.local === true || link.outstanding.size <= most / 2 ? most - link.outstanding.size : 0
      views.push({ id: link.id, rttMs: this.ctx.rttMs(link.id), capacity, load: link.outstanding.size / Math.max(1, link.slots), slots: link.slots, reliability: this.ctx.reliability(link.id), holds: link.holds })
    }
    return views
  }

  private exclusions (task: TaskRec): Set<string> {
    const out = new Set<string>(task.copies.keys())
    for (const voters of task.votes.values()) for (const w of voters) out.add(w)
    return out
  }

  /** Hands out what is waiting to workers with room, cheapest first; then backups of stragglers. */
  private schedule (): void {
    if (this.state !== 'running') return
    const workers = this.workerViews()
    const capacity = workers.reduce((n, w) => n + Math.max(0, w.capacity), 0)
    if (capacity <= 0) return
    // copies of one task cannot share a worker, so look further than the capacity when verifying
    const horizon = capacity * this.plan.verify
    const wanted: TaskView[] = []
    // tasks go out in order, so finished ones pile up at the front: skip them
    while (this.tasks[this.firstOpen]?.state === 'done') this.firstOpen++
    for (let i = this.firstOpen; i < this.tasks.length; i++) {
      const task = this.tasks[i] as TaskRec
      const n = this.copiesWanted(task)
      if (n === 0) continue
      const view: TaskView = { id: task.index, inputCid: task.inputCid, inputBytes: task.inputBytes, exclude: this.exclusions(task), failedOn: task.failedOn }
      for (let i = 0; i < n && wanted.length < horizon; i++) wanted.push(view)
      if (wanted.length >= horizon) break
    }
    for (const a of assignTasks(wanted, workers)) this.award(this.tasks[a.task] as TaskRec, this.links.get(a.worker) as Link)
    if (wanted.length === 0) this.backups()
  }

  /** Near the end, idle workers run second copies of slow tasks; the first valid result wins. */
  private backups (): void {
    if (this.durations.length === 0) return
    if (this.backupThreshold.atCount !== this.durations.length) {
      // the median moves slowly: recompute it when results have doubled, not on every call
      if (this.durations.length >= 2 * this.backupThreshold.atCount || this.backupThreshold.atCount < 16) {
        const sorted = [...this.durations].sort((a, b) => a - b)
        const median = sorted[Math.floor(sorted.length / 2)] as number
        this.backupThreshold = { atCount: this.durations.length, ms: Math.max(BACKUP_MIN_MS, median * BACKUP_AFTER_MEDIAN) }
      }
    }
    const threshold = this.backupThreshold.ms
    const now = Date.now()
    const stragglers = this.tasks.slice(this.firstOpen)
      .filter(t => t.state === 'running' && t.copies.size > 0 && t.copies.size < MAX_BACKUP_COPIES)
      .map(t => ({ t, started: Math.min(...[...t.copies.values()].map(c => c.startedMs)) }))
      .filter(s => now - s.started >= threshold)
      .sort((a, b) => a.started - b.started)
    if (stragglers.length === 0) return
    const views: TaskView[] = stragglers.map(s => ({ id: s.t.index, inputCid: s.t.inputCid, inputBytes: s.t.inputBytes, exclude: this.exclusions(s.t), failedOn: s.t.failedOn }))
    // only idle workers: a backup must not delay a first copy anywhere
    const idle = this.workerViews().filter(w => w.load === 0)
    for (const a of assignTasks(views, idle)) this.award(this.tasks[a.task] as TaskRec, this.links.get(a.worker) as Link)
  }

  private award (task: TaskRec, link: Link): void {
    const attempt = ++task.attempts
    const copy: Copy = { task: task.index, attempt, worker: link.id, startedMs: Date.now(), sentAt: performance.now() }
    task.copies.set(link.id, copy)
    task.state = 'running'
    link.outstanding.set(`${task.index}/${attempt}`, copy)
    const { plan } = this
    link.send(taskMessage({
      type: TASK_MSG.AWARD,
      jobId: plan.jobId,
      task: task.index,
      attempt,
      codeCid: this.codeCidBytes,
      inputCid: task.inputCid == null ? undefined : CID.parse(task.inputCid).bytes,
      runtime: plan.runtime,
      ctx: task.ctx,
      memoryMiB: plan.memoryMiB,
      timeMs: plan.timeMs,
      leaseMs: LEASE_MS
    }))
  }

  private tick (): void {
    if (this.state !== 'running') return
    const now = Date.now()
    if (this.plan.timeoutS > 0 && now - this.plan.createdAtMs > this.plan.timeoutS * 1000) {
      const done = this.tasks.filter(t => t.state === 'done').length
      this.end('failed', `job timed out after ${this.plan.timeoutS} s with ${done} of ${this.tasks.length} tasks done`).catch(() => {})
      return
    }
    for (const link of [...this.links.values()]) {
      if (now - link.lastSeenMs > LEASE_MS) {
        this.ctx.log.info('lease expired', { job: this.id, worker: link.id })
        this.ctx.recordOutcome(link.id, false)
        link.close()
        this.detach(link)
      }
    }
    this.schedule()
    if (now - this.lastOfferMs >= OFFER_INTERVAL_MS) this.offer()
  }

  /** Gossips an offer when tasks wait and the workers we have cannot take them all. */
  private offer (): void {
    let pending = 0
    const inputs: Uint8Array[] = []
    for (const task of this.tasks) {
      const n = this.copiesWanted(task)
      pending += n
      if (n > 0 && task.inputCid != null && inputs.length < 64) inputs.push(CID.parse(task.inputCid).bytes)
    }
    if (pending === 0) return
    this.lastOfferMs = Date.now()
    const { plan } = this
    this.ctx.publishOffer({ jobId: plan.jobId, codeCid: CID.parse(plan.codeCid).bytes, runtime: plan.runtime, pending, inputs, memoryMiB: plan.memoryMiB, timeMs: plan.timeMs })
  }

  /** Every task has an accepted output: reduce on this peer, store the result. */
  private async finish (): Promise<void> {
    if (this.finishing) return
    this.finishing = true
    try {
      const values: unknown[] = []
      for (const task of this.tasks) {
        const bytes = task.output ?? await this.ctx.fetchBytes(task.outputCid as string, 256 * 1024 * 1024, this.shutdown.signal)
        values.push(JSON.parse(new TextDecoder().decode(bytes)))
      }
      let result: unknown = values
      if (this.plan.hasReduce) {
        const code = await this.ctx.fetchBytes(this.plan.reduceCid, 16 * 1024 * 1024, this.shutdown.signal)
        // the job's one reduce runs in an isolate of its own, disposed when done: one warm isolate
        // shared by every job's reduce kept the module's state from job to job, and its heap grew
        // with them (a soak's submitter: 8 -> 21 MiB in 10 minutes)
        const reduceId = `${this.plan.reduceCid}/${this.id}`
        try {
          result = await this.ctx.sandbox.run({ runtime: 'js', code, codeId: reduceId, fn: 'reduce', input: values, limits: { memoryMiB: this.plan.memoryMiB, timeMs: this.plan.timeMs }, signal: this.shutdown.signal })
        } finally {
          this.ctx.sandbox.evict(reduceId)
        }
      }
      const bytes = new TextEncoder().encode(JSON.stringify(result ?? null))
      const added = await this.ctx.store.add((async function * () { yield bytes })())
      this.resultCid = added.cid
      await this.keepOutputs()
      this.result = result
      await this.end('succeeded', null)
    } catch (err) {
      await this.end('failed', `reduce failed: ${(err as Error).message}`)
    }
  }

  /**
   * The inline outputs go to the blockstore (unpinned), where later jobs'
   * lineage hits read them: the lineage cache itself holds only CIDs.
   */
  private async keepOutputs (): Promise<void> {
    const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
    for (const t of this.tasks) if (t.output != null && t.outputCid != null) blocks.push({ cid: CID.parse(t.outputCid), bytes: t.output })
    try {
      await this.ctx.store.putBlocks(blocks)
    } catch (err) {
      // later jobs will compute these tasks again
      this.ctx.log.warn('could not keep task outputs for lineage', { job: this.id, err })
    }
  }

  /**
   * Keeps the job's input and partitions from gc while it runs: they are not
   * pinned (planner.ts), and a restarted daemon holds them again on resume.
   */
  private holdData (): void {
    if (this.releases.length > 0) return
    const cids = [this.plan.inputCid, ...this.plan.partitions.map(p => p.cid)]
    for (const cid of new Set(cids)) if (cid != null) this.releases.push(this.ctx.store.hold(CID.parse(cid)))
  }

  private async end (state: JobState, error: string | null): Promise<void> {
    if (this.state !== 'running') return
    for (const release of this.releases.splice(0)) release()
    this.state = state
    this.error = error
    this.endedAtMs = Date.now()
    clearInterval(this.timer)
    for (const link of this.links.values()) {
      link.send(taskMessage({ type: TASK_MSG.DONE, jobId: this.id }))
      link.close()
    }
    this.links.clear()
    const result = this.result != null && JSON.stringify(this.result).length <= 1024 * 1024 ? this.result : undefined
    await this.ctx.journal.append({ t: 'end', state, resultCid: this.resultCid, result, error, atMs: this.endedAtMs }).catch(() => {})
    if (state !== 'succeeded') this.ctx.log.warn('job ended', { job: this.id, state, error })
    else this.ctx.log.info('job succeeded', { job: this.id, resultCid: this.resultCid, elapsedMs: this.endedAtMs - this.plan.createdAtMs })
    for (const w of this.waiters.splice(0)) w()
    this.ctx.onEnd(this)
  }

  async cancel (): Promise<void> {
    await this.end('cancelled', 'cancelled by the user')
  }

  /** Stops scheduling without ending the job (the daemon is stopping; it resumes next start). */
  suspend (): void {
    clearInterval(this.timer)
    this.shutdown.abort(new Error('daemon stopping'))
    for (const link of this.links.values()) link.close()
    this.links.clear()
  }

  /** Resolves when the job has ended. */
  async ended (): Promise<void> {
    if (this.state !== 'running') return
    await new Promise<void>(resolve => this.waiters.push(resolve))
  }

  summary (): JobSummary {
    const counts = { total: this.tasks.length, done: 0, running: 0, pending: 0, failed: 0, runs: 0, cached: 0 }
    const workers: Record<string, number> = {}
    for (const t of this.tasks) {
      counts[t.durable === false ? 'running' : t.state]++
      counts.runs += t.runs
      if (t.cached) counts.cached++
      for (const w of t.doneBy) workers[w] = (workers[w] ?? 0) + 1
    }
    return {
      jobId: this.id,
      state: this.state,
      module: this.plan.module,
      createdAtMs: this.plan.createdAtMs,
      elapsedMs: (this.endedAtMs ?? Date.now()) - this.plan.createdAtMs,
      tasks: counts,
      workers,
      resultCid: this.resultCid,
      error: this.error,
      resumed: this.resumed
    }
  }

  detail (): JobDetail {
    const taskList: TaskInfo[] = this.tasks.map(t => ({
      index: t.index,
      state: t.durable === false ? 'running' : t.state,
      inputCid: t.inputCid,
      outputCid: t.outputCid,
      running: [...t.copies.keys()],
      doneBy: t.doneBy,
      runs: t.runs,
      failures: t.failures,
      errors: t.errors.slice(-5),
      finishedInRun: t.finishedInRun,
      cached: t.cached,
      latencyMs: t.latencyMs == null ? null : Math.round(t.latencyMs * 1000) / 1000,
      workerMs: t.durationMs == null ? null : Math.round(t.durationMs * 1000) / 1000
    }))
    return { ...this.summary(), result: this.result, verify: this.plan.verify, taskList, disagreements: this.disagreements }
  }
}

/** Errors that say nothing about the task: the copy is simply handed out again. */
const NOT_THE_TASKS_FAULT = new Set(['SandboxAbortedError', 'NotAcceptedError'])

function safeCid (bytes: Uint8Array): string | null {
  try {
    return CID.decode(bytes).toString()
  } catch {
    return null
  }
}
