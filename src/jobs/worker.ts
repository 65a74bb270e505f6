/**
 * The worker: hears task offers on gossip, bids to submitters it accepts when
 * it has free slots, runs awarded tasks in the sandbox (code and input fetched
 * by CID from the nearest holders), heartbeats its leases and sends results.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { CID } from 'multiformats/cid'
import { FLOOD_BAN_MS, FloodGuard, OFFERS_TOPIC, OFFER_FLOOD, TASKS_PROTOCOL, INLINE_OUTPUT_BYTES, TASK_MSG, judgeOffer, taskMessage } from '../market/index.ts'
import { raceSignal } from '../signals.ts'
import { TaskChannel } from './channel.ts'
import { LineageCache, hitOutput } from './lineage-cache.ts'
import { HEARTBEAT_MS, MAX_MODULE_BYTES, MAX_PARTITION_BYTES } from './constants.ts'
import { lineageKey, rawCid } from './lineage.ts'
import type { Offer, TaskMessage } from '../market/index.ts'
import type { Logger } from '../log.ts'
import type { LeptonNode } from '../node/index.ts'
import type { WorkerConfig } from '../repo/index.ts'
import type { Sandbox, ModuleInfo, Runtime } from '../sandbox/index.ts'
import type { Store } from '../store/index.ts'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId, Stream } from '@libp2p/interface'

export interface WorkerInit {
  node: LeptonNode
  store: Store
  sandbox: Sandbox
  config: WorkerConfig
  log: Logger
  openStream(peer: PeerId, protocol: string, signal?: AbortSignal): Promise<Stream>
  /** Test hook: a lying worker changes its outputs here. */
  tamper?(output: unknown, award: TaskMessage): unknown
}

/** What a task produced, ready to send. */
export interface TaskOutcome {
  ok: boolean
  outputCid?: string
  output?: Uint8Array
  outputBytes?: number
  error?: string
  errorName?: string
  elapsedMs: number
}

/** The RESULT message answering `award`. */
export function resultMessage (award: TaskMessage, outcome: TaskOutcome, freeSlots: number): TaskMessage {
  return taskMessage({
    type: TASK_MSG.RESULT,
    jobId: award.jobId,
    task: award.task,
    attempt: award.attempt,
    ok: outcome.ok,
    outputCid: outcome.outputCid == null ? undefined : CID.parse(outcome.outputCid).bytes,
    output: outcome.output,
    outputBytes: outcome.outputBytes ?? 0,
    error: outcome.error ?? '',
    errorName: outcome.errorName ?? '',
    elapsedMs: outcome.elapsedMs,
    freeSlots
  })
}

interface Running {
  controller: AbortController
  jobId: string
}

/**
 * How long a result may wait for others to leave in the same write while
 * awards queue here for a slot (the submitter has kept this worker busy). A
 * result that leaves a slot with nothing to do is sent at once.
 */
const RESULT_LINGER_MS = 10

/** Bound on fetching and inspecting a task's module (shared by the tasks that wait for it). */
const MODULE_LOAD_TIMEOUT_MS = 60_000

/**
 * Results kept for lineage hits (small outputs only; by CID once in the
 * blockstore), and the bytes of outputs held in memory at most (those not
 * yet written, or that could not be).
 */
const LINEAGE_CACHE_ENTRIES = 4096
const LINEAGE_CACHE_BYTES = 8 * 1024 * 1024

/** Modules kept fetched and inspected, and their bytes at most. */
const MODULE_CACHE_ENTRIES = 64
const MODULE_CACHE_BYTES = 64 * 1024 * 1024

/** Input CIDs remembered as held here (named in bids for locality). */
const HELD_INPUTS = 4096

export class Worker {
  private readonly init: WorkerInit
  private readonly log: Logger
  private readonly links = new Map<string, TaskChannel>()
  private readonly connecting = new Set<string>()
  private readonly lastSeq = new Map<string, number>()
  private readonly code = new Map<string, Promise<{ bytes: Uint8Array, info: ModuleInfo }>>()
  /** Byte sizes of the loaded modules in `code`. */
  private readonly moduleSizes = new Map<string, number>()
  private readonly lineage = new LineageCache(LINEAGE_CACHE_ENTRIES, LINEAGE_CACHE_BYTES)
  /** Input CIDs this worker fetched (for locality in bids). */
  private readonly held = new Set<string>()
  private readonly running = new Map<string, Running>()
  private readonly waiting: Array<() => void> = []
  private active = 0
  private readonly shutdown = new AbortController()
  private readonly offerGuard = new FloodGuard(OFFER_FLOOD)
  private timer?: ReturnType<typeof setInterval>
  /** Tasks run to completion (not lineage hits). */
  executed = 0

  constructor (init: WorkerInit) {
    this.init = init
    this.log = init.log
    this.onMessage = this.onMessage.bind(this)
  }

  get slots (): number {
    return this.init.config.slots
  }

  /** Tasks running now (never more than `slots`). */
  get runningCount (): number {
    return this.active
  }

  /** Slots not running or promised to a queued task. */
  get freeSlots (): number {
    return Math.max(0, this.slots - this.active - this.waiting.length)
  }

  start (): void {
    const pubsub = this.init.node.services.pubsub
    pubsub.topicValidators.set(OFFERS_TOPIC, (peer, msg) => this.validate(msg))
    pubsub.subscribe(OFFERS_TOPIC)
    pubsub.addEventListener('message', this.onMessage)
    this.timer = setInterval(() => { this.heartbeat() }, HEARTBEAT_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.shutdown.abort(new Error('worker stopping'))
    const pubsub = this.init.node.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.topicValidators.delete(OFFERS_TOPIC)
    try {
      pubsub.unsubscribe(OFFERS_TOPIC)
    } catch {}
    for (const link of this.links.values()) link.close()
  }

  private validate (msg: Message): TopicValidatorResult {
    if (msg.type !== 'signed') return TopicValidatorResult.Reject
    const from = msg.from.toString()
    const flood = this.offerGuard.hit(from, Date.now())
    if (flood === 'ban') {
      // offers far beyond what any submitter sends: refuse the peer for a while
      this.log.warn('submitter flooding offers; banned', { peer: from, minutes: FLOOD_BAN_MS / 60_000 })
      this.init.node.services.bans.ban(msg.from, FLOOD_BAN_MS, 'flooded task offers')
      this.offerGuard.forget(from)
      this.init.node.hangUp(msg.from).catch(() => {})
      return TopicValidatorResult.Reject
    }
    if (flood === 'throttle') return TopicValidatorResult.Ignore
    const { verdict } = judgeOffer(msg.data, this.lastSeq.get(from), Date.now())
    if (verdict === 'reject') return TopicValidatorResult.Reject
    if (verdict === 'ignore') return TopicValidatorResult.Ignore
    return TopicValidatorResult.Accept
  }

  private onMessage (evt: CustomEvent<Message>): void {
    const msg = evt.detail
    if (msg.topic !== OFFERS_TOPIC || msg.type !== 'signed') return
    const { verdict, offer } = judgeOffer(msg.data, this.lastSeq.get(msg.from.toString()), Date.now())
    if (verdict !== 'accept' || offer == null) return
    this.lastSeq.set(msg.from.toString(), offer.seq)
    this.consider(msg.from, offer)
  }

  /** Whether this worker runs tasks of `submitter` at all (the policy in its config). */
  accepts (submitter: string, runtime: string): boolean {
    const { accept, runtimes } = this.init.config
    if (this.slots === 0 || !runtimes.includes(runtime as Runtime)) return false
    return accept === 'any' || accept.includes(submitter)
  }

  private consider (submitter: PeerId, offer: Offer): void {
    const key = `${submitter.toString()}/${offer.jobId}`
    if (this.links.has(key) || this.connecting.has(key) || this.freeSlots === 0 || this.shutdown.signal.aborted) return
    if (!this.accepts(submitter.toString(), offer.runtime)) return
    const channelPromise = this.connect(submitter, offer, key)
    channelPromise.catch(err => { this.log.debug('bid failed', { submitter: submitter.toString(), job: offer.jobId, err }) })
  }

  private async connect (submitter: PeerId, offer: Offer, key: string): Promise<void> {
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(10_000)])
    // a second offer must not open a second stream while this one dials
    this.connecting.add(key)
    let channel: TaskChannel
    try {
      // results wait up to 1 ms for others to share their write: a busy worker sends them in batches
      channel = new TaskChannel(await this.init.openStream(submitter, TASKS_PROTOCOL, signal), RESULT_LINGER_MS)
    } finally {
      this.connecting.delete(key)
    }
    this.links.set(key, channel)
    const held = offer.inputs.filter(c => this.held.has(CID.decode(c).toString()))
    channel.attach({
      onMessage: (msg) => { this.onTaskMessage(channel, submitter, msg) },
      onClose: () => {
        this.links.delete(key)
        // the job is over here: its warm isolates would only hold memory
        this.init.sandbox.evict(`${CID.decode(offer.codeCid).toString()}/${offer.jobId}`)
        // leases end with the stream: stop what we run for that job
        for (const [id, r] of this.running) if (r.jobId === offer.jobId && id.startsWith(`${submitter.toString()}/`)) r.controller.abort(new Error('submitter gone'))
      }
    })
    channel.send(taskMessage({ type: TASK_MSG.BID, jobId: offer.jobId, slots: this.slots, freeSlots: this.freeSlots, held }))
  }

  private onTaskMessage (channel: TaskChannel, submitter: PeerId, msg: TaskMessage): void {
    if (msg.type === TASK_MSG.AWARD) {
      this.execute(submitter.toString(), msg, submitter).then(outcome => {
        channel.send(resultMessage(msg, outcome, this.freeSlots))
        // no award waits for the slot this task freed: the submitter must hear now, or the slot idles
        if (this.waiting.length === 0) channel.flush()
      }, (err: Error) => { this.log.debug('task failed unexpectedly', { err }) })
    } else if (msg.type === TASK_MSG.CANCEL) {
      this.cancel(submitter.toString(), msg.jobId, msg.task, msg.attempt)
    } else if (msg.type === TASK_MSG.DONE) {
      channel.close()
    }
  }

  /** Stops a running copy (another copy won, or the job ended). */
  cancel (submitter: string, jobId: string, task: number, attempt: number): void {
    this.running.get(`${submitter}/${jobId}/${task}/${attempt}`)?.controller.abort(new Error('cancelled by the submitter'))
  }

  private heartbeat (): void {
    for (const [key, channel] of this.links) {
      const jobId = key.slice(key.indexOf('/') + 1)
      const running: number[] = []
      for (const [id, r] of this.running) if (r.jobId === jobId && id.startsWith(key.slice(0, key.indexOf('/') + 1))) running.push(Number(id.split('/')[3]))
      channel.send(taskMessage({ type: TASK_MSG.HEARTBEAT, jobId, slots: this.slots, freeSlots: this.freeSlots, running: running.slice(0, 4096) }))
    }
  }

  private async acquireSlot (signal: AbortSignal): Promise<void> {
    if (this.active < this.slots) {
      this.active++
      return
    }
    await new Promise<void>((resolve, reject) => {
      const go = (): void => { signal.removeEventListener('abort', onAbort); this.active++; resolve() }
      const onAbort = (): void => {
        const i = this.waiting.indexOf(go)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(signal.reason)
      }
      this.waiting.push(go)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  private releaseSlot (): void {
    this.active--
    this.waiting.shift()?.()
  }

  /**
   * Runs one awarded task (from a remote submitter, or this daemon's own
   * jobs). Never throws: failures come back as an outcome with the error.
   * `from`: the remote submitter's peer, asked first for the code and input.
   */
  async execute (submitter: string, award: TaskMessage, from?: PeerId): Promise<TaskOutcome> {
    const started = performance.now()
    const id = `${submitter}/${award.jobId}/${award.task}/${award.attempt}`
    const controller = new AbortController()
    const signal = AbortSignal.any([controller.signal, this.shutdown.signal])
    this.running.set(id, { controller, jobId: award.jobId })
    try {
      if (!this.accepts(submitter, award.runtime)) throw Object.assign(new Error(`this worker does not run ${award.runtime} tasks for ${submitter}`), { name: 'NotAcceptedError' })
      await this.acquireSlot(signal)
      // from here: the time the task itself takes (fetching, running), not its wait for a slot
      const running = performance.now()
      try {
        return { ...await this.run(award, signal, from == null ? [] : [from]), elapsedMs: performance.now() - running }
      } finally {
        this.releaseSlot()
      }
    } catch (err) {
      const e = err as Error
      return { ok: false, error: e.message, errorName: signal.aborted ? 'SandboxAbortedError' : e.name, elapsedMs: performance.now() - started }
    } finally {
      this.running.delete(id)
    }
  }

  private async run (award: TaskMessage, signal: AbortSignal, holders: PeerId[]): Promise<Omit<TaskOutcome, 'elapsedMs'>> {
    const codeCid = CID.decode(award.codeCid).toString()
    const inputCid = award.inputCid.byteLength === 0 ? null : CID.decode(award.inputCid).toString()
    const key = lineageKey(codeCid, inputCid, award.ctx)
    const hit = this.init.tamper == null ? this.lineage.get(key) : undefined
    if (hit != null) {
      const output = await hitOutput(hit, this.init.store)
      if (output != null) return { ok: true, outputCid: hit.outputCid, output, outputBytes: output.byteLength }
      this.lineage.delete(key) // its block is gone (gc): run the task again
    }
    // the submitter stored the code and the input when it planned the job: ask it first
    const { bytes: code, info } = await this.module(codeCid, award.runtime as Runtime, signal, holders)
    const input = inputCid == null ? new Uint8Array(0) : await this.fetch(inputCid, MAX_PARTITION_BYTES, signal, holders)
    if (inputCid != null) this.holding(inputCid)
    const limits = { memoryMiB: Math.min(award.memoryMiB, this.init.config.memoryMiB), timeMs: Math.min(award.timeMs, this.init.config.timeMs) }
    const ctx = JSON.parse(award.ctx) as { task: number, tasks: number, seed: number, args: Record<string, string> }
    // warm contexts are keyed by this id: with reuse on, tasks of one job (never of two) share one
    const codeId = `${codeCid}/${award.jobId}`
    let value = await this.init.sandbox.run({ runtime: info.runtime, code, codeId, fn: 'map', input, ctx, limits, signal })
    // combine on the worker: only the combined value crosses the network
    if (info.exports.includes('combine')) value = await this.init.sandbox.run({ runtime: 'js', code, codeId, fn: 'combine', input: [value], limits, signal })
    if (this.init.tamper != null) value = this.init.tamper(value, award)
    const output = new TextEncoder().encode(JSON.stringify(value ?? null))
    this.executed++
    if (output.byteLength <= INLINE_OUTPUT_BYTES) {
      const outputCid = rawCid(output).toString()
      this.remember(key, outputCid, output)
      return { ok: true, outputCid, output, outputBytes: output.byteLength }
    }
    const added = await this.init.store.add((async function * () { yield output })(), { signal })
    return { ok: true, outputCid: added.cid, outputBytes: output.byteLength }
  }

  /** What the worker holds in memory: its lineage cache's entries and their inline output bytes. */
  memory (): { entries: number, outputBytes: number } {
    return { entries: this.lineage.size, outputBytes: this.lineage.outputBytes }
  }

  /**
   * Keeps a small output for lineage hits: in memory until it is in the
   * blockstore (unpinned: cache, which the store's budget collects), then by
   * CID only. Held in memory, a worker's outputs grew its RSS with every task
   * (~4 KiB a word-count task, 1.3 MiB a worker in a 10-minute soak, up to
   * the cache's bounds in a longer run).
   */
  private remember (key: string, outputCid: string, output: Uint8Array): void {
    this.lineage.set(key, { outputCid, output })
    this.init.store.putBlocks([{ cid: CID.parse(outputCid), bytes: output }]).then(() => {
      // unless it was dropped or replaced meanwhile
      if (this.lineage.peek(key)?.outputCid === outputCid) this.lineage.set(key, { outputCid, stored: true })
    }, (err: Error) => {
      // held in memory, within the cache's bytes
      this.log.debug('could not keep a task output in the blockstore', { err })
    })
  }

  /** Remembers that `cid` is here (oldest forgotten first). */
  private holding (cid: string): void {
    this.held.delete(cid)
    this.held.add(cid)
    if (this.held.size > HELD_INPUTS) this.held.delete(this.held.values().next().value as string)
  }

  /**
   * A module's bytes and exports, fetched and inspected once however many
   * slots start on it at the same moment (a failure is forgotten, so the next
   * task tries again). Each caller still stops at its own signal.
   */
  private async module (cid: string, runtime: Runtime, signal: AbortSignal, holders: PeerId[]): Promise<{ bytes: Uint8Array, info: ModuleInfo }> {
    let entry = this.code.get(cid)
    if (entry == null) {
      const loading = (async () => {
        const bytes = await this.fetch(cid, MAX_MODULE_BYTES, AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(MODULE_LOAD_TIMEOUT_MS)]), holders)
        return { bytes, info: await this.init.sandbox.inspect(runtime, bytes, cid) }
      })()
      entry = loading
      this.code.set(cid, loading)
      loading.then(({ bytes }) => {
        if (this.code.get(cid) !== loading) return // dropped while it loaded
        this.moduleSizes.set(cid, bytes.byteLength)
        this.trimModules()
      }, () => { if (this.code.get(cid) === loading) this.code.delete(cid) })
      this.trimModules()
    }
    return await raceSignal(entry, signal)
  }

  /** Forgets the oldest modules beyond the cache's entries or bytes (the newest always stays). */
  private trimModules (): void {
    let bytes = 0
    for (const size of this.moduleSizes.values()) bytes += size
    while (this.code.size > 1 && (this.code.size > MODULE_CACHE_ENTRIES || bytes > MODULE_CACHE_BYTES)) {
      const oldest = this.code.keys().next().value as string
      this.code.delete(oldest)
      bytes -= this.moduleSizes.get(oldest) ?? 0
      this.moduleSizes.delete(oldest)
    }
  }

  /** A whole file by CID from the store (local, `holders`, or the nearest holders found), at most `maxBytes`. */
  async fetch (cid: string, maxBytes: number, signal: AbortSignal, holders?: PeerId[]): Promise<Uint8Array> {
    const chunks: Uint8Array[] = []
    let size = 0
    for await (const chunk of this.init.store.cat(CID.parse(cid), { signal, timeoutMs: 30_000, holders })) {
      size += chunk.byteLength
      if (size > maxBytes) throw new Error(`${cid} is larger than ${maxBytes} bytes`)
      chunks.push(chunk)
    }
    return chunks.length === 1 ? chunks[0] as Uint8Array : Buffer.concat(chunks)
  }
}
