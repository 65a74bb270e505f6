/**
 * Award scoring: which worker gets which task. Pure: data in, assignments out.
 *
 * The cost of giving a task to a worker is an estimate in milliseconds of what
 * it adds to the job: the round trip to the worker, moving the input there
 * unless it already holds it, queueing behind its load, and a penalty for
 * workers that failed or lied before. Tasks are taken in order (the scheduler
 * puts retries and stragglers first) and each goes to the cheapest worker with
 * a free slot.
 */

export interface ScoringWeights {
  /** RTT assumed for a worker never measured, ms. */
  unknownRttMs: number
  /** Bytes per millisecond assumed when a worker must fetch a task's input. */
  transferBytesPerMs: number
  /** Cost of a worker being fully busy (load 1), ms. */
  loadPenaltyMs: number
  /** Cost of a worker that failed every time (reliability 0), ms. */
  unreliablePenaltyMs: number
  /** Cost of running a task on a worker the task already failed on, ms. */
  retrySameWorkerPenaltyMs: number
}

export const DEFAULT_WEIGHTS: ScoringWeights = {
  unknownRttMs: 50,
  transferBytesPerMs: 50 * 1024, // ~50 MiB/s: what a block fetch sustains across processes here
  loadPenaltyMs: 20,
  unreliablePenaltyMs: 1000,
  retrySameWorkerPenaltyMs: 10_000
}

const TIE_MS = 1e-9

export interface WorkerView {
  id: string
  rttMs: number | null
  /** Tasks it can take now. */
  capacity: number
  /** Running / slots, 0..1 (may exceed 1 with queued work). */
  load: number
  slots: number
  /** 0..1, from reliability(ok, bad). */
  reliability: number
  /** Input CIDs it holds. */
  holds: ReadonlySet<string>
}

export interface TaskView {
  id: number
  inputCid: string | null
  inputBytes: number
  /** Workers that must not run it (they ran it already for a vote, or are running it). */
  exclude: ReadonlySet<string>
  /** Workers it failed on: allowed, at a high cost. */
  failedOn: ReadonlySet<string>
}

export interface Assignment {
  task: number
  worker: string
}

/**
 * 1 minus the share of failures, counted against two virtual successes: a
 * new worker starts at 1 (no penalty: newcomers must get work), a worker
 * that failed once and never succeeded is at 2/3, one that keeps failing
 * tends to 0.
 */
export function reliability (ok: number, bad: number): number {
  return 1 - bad / (ok + bad + 2)
}

/** Estimated cost, in ms, of `worker` running `task`. */
export function workerCost (task: TaskView, worker: WorkerView, weights: ScoringWeights = DEFAULT_WEIGHTS): number {
  let cost = worker.rttMs ?? weights.unknownRttMs
  if (task.inputCid != null && !worker.holds.has(task.inputCid)) cost += task.inputBytes / weights.transferBytesPerMs
  cost += worker.load * weights.loadPenaltyMs
  cost += (1 - worker.reliability) * weights.unreliablePenaltyMs
  if (task.failedOn.has(worker.id)) cost += weights.retrySameWorkerPenaltyMs
  return cost
}

/**
 * Greedy assignment: each task in order to the cheapest eligible worker with
 * capacity left (ties to the worker id, so the result is deterministic). A
 * task listed twice (two copies wanted) goes to two different workers. Tasks
 * with no eligible worker are left out.
 */
export function assignTasks (tasks: readonly TaskView[], workers: readonly WorkerView[], weights: ScoringWeights = DEFAULT_WEIGHTS): Assignment[] {
  const left = new Map(workers.map(w => [w.id, { ...w }]))
  const out: Assignment[] = []
  // copies of one task in this call go to distinct workers
  const given = new Map<number, Set<string>>()
  for (const task of tasks) {
    let best: WorkerView | undefined
    let bestCost = Infinity
    const already = given.get(task.id)
    for (const w of left.values()) {
      if (w.capacity <= 0 || task.exclude.has(w.id) || already?.has(w.id) === true) continue
      const cost = workerCost(task, w, weights)
      // costs within a nanosecond are a tie (float sums differ in the last bit): lower id wins
      if (cost < bestCost - TIE_MS || (best != null && cost <= bestCost + TIE_MS && w.id < best.id)) {
        best = w
        bestCost = cost
      }
    }
    if (best == null) continue
    out.push({ task: task.id, worker: best.id })
    given.set(task.id, (already ?? new Set()).add(best.id))
    best.capacity--
    best.load += 1 / Math.max(1, best.slots)
    if (task.inputCid != null) best.holds = new Set([...best.holds, task.inputCid])
  }
  return out
}
