/**
 * Turns a submit request into a plan: the module and every partition stored
 * by CID (and pinned here), limits and policies checked. I/O, but no mesh
 * traffic beyond what the store does.
 */
import { randomBytes } from 'node:crypto'
import { readFile, readdir, stat } from 'node:fs/promises'
import { basename, isAbsolute, join } from 'node:path'
import { detectRuntime } from '../sandbox/index.ts'
import { parseCid } from '../store/index.ts'
import { SUM_REDUCER } from './builtin.ts'
import { DEFAULT_RETRIES, MAX_MODULE_BYTES, MAX_TASKS } from './constants.ts'
import { InvalidJobError } from './errors.ts'
import { defaultPartitions, splitRecords } from './partition.ts'
import type { JobPlan, SubmitRequest } from './types.ts'
import type { WorkerConfig } from '../repo/index.ts'
import type { Sandbox } from '../sandbox/index.ts'
import type { AddOptions, Store } from '../store/index.ts'

/** Largest file input read into memory to split. */
const MAX_INPUT_BYTES = 1024 * 1024 * 1024

export interface PlannerInit {
  store: Store
  sandbox: Sandbox
  worker: WorkerConfig
  fetchBytes(cid: string, maxBytes: number, signal: AbortSignal): Promise<Uint8Array>
  /**
   * Receives the release of each hold the planner took on what it stored (the
   * input and its partitions): the caller ends them once the job holds the
   * data itself, or when planning fails.
   */
  onHold(release: () => void): void
}

export function newJobId (): string {
  return `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
}

function intIn (value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value == null) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new InvalidJobError(`${name} must be an integer from ${min} to ${max}`)
  return value
}

async function readModule (path: string, what: string): Promise<Uint8Array> {
  if (!isAbsolute(path)) throw new InvalidJobError(`${what} path must be absolute (the CLI and client resolve it for you)`)
  let info
  try {
    info = await stat(path)
  } catch {
    throw new InvalidJobError(`${what} ${path} does not exist`)
  }
  if (!info.isFile()) throw new InvalidJobError(`${what} ${path} is not a file`)
  if (info.size > MAX_MODULE_BYTES) throw new InvalidJobError(`${what} ${path} is larger than ${MAX_MODULE_BYTES} bytes`)
  return await readFile(path)
}

/**
 * A job's partitions in one add: one batch, committed once for all of them
 * (each its own add, a job of 6 partitions wrote 6 pack files before the
 * store had a shared pack). Holds go to `onHold`; CIDs in order.
 */
async function addAllTo (store: Store, sources: Array<string | Uint8Array>, options: AddOptions, onHold?: (release: () => void) => void): Promise<string[]> {
  const added = await store.addMany(sources.map(source => typeof source === 'string' ? source : (async function * () { yield source })()), options)
  for (const a of added) if (a.release != null) onHold?.(a.release)
  return added.map(a => a.cid)
}

/** Adds a path or bytes; a hold the add took (`options.hold`) goes to `onHold`. */
async function addTo (store: Store, source: string | Uint8Array, options: AddOptions = {}, onHold?: (release: () => void) => void): Promise<string> {
  return (await addAllTo(store, [source], options, onHold))[0] as string
}

/**
 * A job's input and partitions are neither announced on the DHT nor pinned:
 * workers ask the submitter for them (then connected peers), and the job
 * holds them from gc while it runs (JobRun); afterwards they are a cache gc
 * may clear. Announced and pinned, every job left 2 provider records on each
 * of the k closest peers (48 h each, in memory and on disk) and 8 pins on the
 * submitter, for good. The result is pinned and announced: it is the product.
 */
const JOB_DATA_ADD: AddOptions = { provide: false, pin: false, hold: true }

async function filesUnder (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await filesUnder(path))
    else if (entry.isFile()) out.push(path)
  }
  return out
}

export async function planJob (req: SubmitRequest, init: PlannerInit, signal: AbortSignal): Promise<JobPlan> {
  if (req == null || typeof req.module !== 'string' || req.module === '') throw new InvalidJobError('missing "module" (path of the map module)')
  const verify = intIn(req.verify, 'verify', 1, 16, 1)
  const retries = intIn(req.retries, 'retries', 0, 100, DEFAULT_RETRIES)
  const timeoutS = intIn(req.timeoutS, 'timeout', 0, 7 * 24 * 3600, 0)
  const memoryMiB = intIn(req.memoryMiB, 'memoryMiB', 8, 65536, init.worker.memoryMiB)
  const timeMs = intIn(req.timeMs, 'timeMs', 1, 24 * 3600_000, init.worker.timeMs)
  const seed = intIn(req.seed, 'seed', 0, 0xffffffff, 0)
  const args: Record<string, string> = {}
  for (const [k, v] of Object.entries(req.args ?? {})) {
    if (typeof v !== 'string') throw new InvalidJobError(`argument "${k}" must be a string`)
    args[k] = v
  }
  const code = await readModule(req.module, 'module')
  const runtime = detectRuntime(code)
  const info = await init.sandbox.inspect(runtime, code, 'submit')
  if (!info.exports.includes('map')) throw new InvalidJobError(`module ${req.module} exports no map function (export function map (input, ctx) { ... })`)
  const codeCid = await addTo(init.store, code)
  let reduceCid = codeCid
  let hasReduce = info.exports.includes('reduce')
  if (req.reduceModule != null) {
    const reduceCode = await readModule(req.reduceModule, 'reduce module')
    const r = await init.sandbox.inspect('js', reduceCode, 'submit-reduce')
    if (!r.exports.includes('reduce')) throw new InvalidJobError(`reduce module ${req.reduceModule} exports no reduce function`)
    reduceCid = await addTo(init.store, reduceCode)
    hasReduce = true
  } else if (runtime === 'wasm') {
    reduceCid = await addTo(init.store, new TextEncoder().encode(SUM_REDUCER))
    hasReduce = true
  }
  let inputCid: string | null = null
  let partitions: JobPlan['partitions'] = []
  if (req.input == null || req.input === '') {
    const tasks = intIn(req.tasks, 'tasks', 1, MAX_TASKS, 1)
    partitions = Array.from({ length: tasks }, () => ({ cid: null, bytes: 0 }))
  } else {
    if (req.tasks != null) throw new InvalidJobError('give either an input (split into partitions) or a task count, not both')
    let bytes: Uint8Array | undefined
    if (isAbsolute(req.input)) {
      let s
      try {
        s = await stat(req.input)
      } catch {
        throw new InvalidJobError(`input ${req.input} does not exist`)
      }
      inputCid = await addTo(init.store, req.input, JOB_DATA_ADD, init.onHold)
      if (s.isDirectory()) {
        // the files are under the input's root, which is held already
        const files = await filesUnder(req.input)
        if (files.length === 0) throw new InvalidJobError(`input folder ${req.input} holds no files`)
        const cids = await addAllTo(init.store, files, { provide: false, pin: false })
        partitions = await Promise.all(files.map(async (file, i) => ({ cid: cids[i] as string, bytes: (await stat(file)).size })))
      } else {
        if (s.size > MAX_INPUT_BYTES) throw new InvalidJobError(`input ${req.input} is larger than ${MAX_INPUT_BYTES} bytes; split it into a folder of files`)
        bytes = await readFile(req.input)
      }
    } else {
      inputCid = parseCid(req.input).toString()
      bytes = await init.fetchBytes(inputCid, MAX_INPUT_BYTES, signal)
    }
    if (bytes != null) {
      const count = intIn(req.partitions, 'partitions', 1, MAX_TASKS, defaultPartitions(bytes.byteLength))
      const parts = splitRecords(bytes, count)
      const cids = await addAllTo(init.store, parts, JOB_DATA_ADD, init.onHold)
      partitions = parts.map((part, i) => ({ cid: cids[i] as string, bytes: part.byteLength }))
    }
  }
  if (partitions.length > MAX_TASKS) throw new InvalidJobError(`a job may have at most ${MAX_TASKS} tasks`)
  return {
    jobId: newJobId(),
    createdAtMs: Date.now(),
    module: basename(req.module),
    runtime,
    codeCid,
    reduceCid,
    hasReduce,
    inputCid,
    partitions,
    verify,
    retries,
    timeoutS,
    args,
    memoryMiB,
    timeMs,
    seed
  }
}
