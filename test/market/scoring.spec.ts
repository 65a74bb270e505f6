import { describe, expect, it } from 'vitest'
import { DEFAULT_WEIGHTS, assignTasks, reliability, workerCost } from '../../src/market/index.ts'
import { mulberry32 } from '../../src/random.ts'
import type { ScoringWeights, TaskView, WorkerView } from '../../src/market/index.ts'

const MiB = 1024 * 1024

function worker (id: string, fields: Partial<WorkerView> = {}): WorkerView {
  return { id, rttMs: 10, capacity: 4, load: 0, slots: 4, reliability: 1, holds: new Set(), ...fields }
}

function task (id: number, fields: Partial<TaskView> = {}): TaskView {
  return { id, inputCid: null, inputBytes: 0, exclude: new Set(), failedOn: new Set(), ...fields }
}

describe('reliability', () => {
  it('is 1 minus the failure share against two virtual successes: newcomers start unpenalised', () => {
    expect(reliability(0, 0)).toBe(1)
    expect(reliability(9, 0)).toBe(1)
    expect(reliability(0, 1)).toBeCloseTo(2 / 3)
    expect(reliability(0, 9)).toBeCloseTo(2 / 11)
    expect(reliability(3, 1)).toBeCloseTo(5 / 6)
    // more successes never lower it, more failures never raise it
    expect(reliability(5, 2)).toBeGreaterThan(reliability(4, 2))
    expect(reliability(5, 3)).toBeLessThan(reliability(5, 2))
  })
})

describe('workerCost', () => {
  it('adds RTT, transfer of an input not held, load, unreliability and a retry penalty', () => {
    const w = DEFAULT_WEIGHTS
    const t = task(0, { inputCid: 'in', inputBytes: 5 * MiB })
    expect(workerCost(t, worker('a', { rttMs: 7, holds: new Set(['in']) }))).toBe(7)
    expect(workerCost(t, worker('a', { rttMs: 7 }))).toBeCloseTo(7 + 5 * MiB / w.transferBytesPerMs)
    expect(workerCost(t, worker('a', { rttMs: null, holds: new Set(['in']) }))).toBe(w.unknownRttMs)
    expect(workerCost(t, worker('a', { rttMs: 0, load: 0.5, holds: new Set(['in']) }))).toBeCloseTo(0.5 * w.loadPenaltyMs)
    expect(workerCost(t, worker('a', { rttMs: 0, reliability: 0.25, holds: new Set(['in']) }))).toBeCloseTo(0.75 * w.unreliablePenaltyMs)
    const failed = task(0, { failedOn: new Set(['a']) })
    expect(workerCost(failed, worker('a', { rttMs: 0 }))).toBe(w.retrySameWorkerPenaltyMs)
    expect(workerCost(failed, worker('b', { rttMs: 0 }))).toBe(0)
  })

  it('uses the weights given', () => {
    const weights: ScoringWeights = { unknownRttMs: 1, transferBytesPerMs: 1, loadPenaltyMs: 2, unreliablePenaltyMs: 4, retrySameWorkerPenaltyMs: 8 }
    const t = task(0, { inputCid: 'in', inputBytes: 16, failedOn: new Set(['a']) })
    expect(workerCost(t, worker('a', { rttMs: null, load: 1, reliability: 0.5 }), weights)).toBe(1 + 16 + 2 + 2 + 8)
  })

  it('charges no transfer for a task without input', () => {
    expect(workerCost(task(0, { inputCid: null, inputBytes: 10 * MiB }), worker('a', { rttMs: 3 }))).toBe(3)
  })
})

describe('assignTasks', () => {
  it('gives a task to the nearest idle worker', () => {
    const workers = [worker('far', { rttMs: 80 }), worker('near', { rttMs: 5 }), worker('mid', { rttMs: 20 })]
    expect(assignTasks([task(0)], workers)).toEqual([{ task: 0, worker: 'near' }])
  })

  it('treats a worker never measured as unknownRttMs away', () => {
    const workers = [worker('unknown', { rttMs: null }), worker('measured', { rttMs: DEFAULT_WEIGHTS.unknownRttMs + 1 })]
    expect(assignTasks([task(0)], workers)).toEqual([{ task: 0, worker: 'unknown' }])
  })

  it('prefers a worker holding a big input over a slightly nearer one', () => {
    const big = task(0, { inputCid: 'cid-big', inputBytes: 64 * MiB })
    const workers = [worker('near', { rttMs: 5 }), worker('holder', { rttMs: 15, holds: new Set(['cid-big']) })]
    expect(assignTasks([big], workers)).toEqual([{ task: 0, worker: 'holder' }])
    // a tiny input is not worth the extra RTT
    const small = task(0, { inputCid: 'cid-big', inputBytes: 100 })
    expect(assignTasks([small], workers)).toEqual([{ task: 0, worker: 'near' }])
  })

  it('shifts tasks away from loaded and unreliable workers', () => {
    const loaded = [worker('near-busy', { rttMs: 5, load: 1 }), worker('far-idle', { rttMs: 20 })]
    expect(assignTasks([task(0)], loaded)).toEqual([{ task: 0, worker: 'far-idle' }])
    const flaky = [worker('near-flaky', { rttMs: 5, reliability: reliability(1, 3) }), worker('far-good', { rttMs: 60, reliability: reliability(20, 0) })]
    expect(assignTasks([task(0)], flaky)).toEqual([{ task: 0, worker: 'far-good' }])
  })

  it('spreads tasks as the load of a worker grows', () => {
    // each award adds 1/slots of load (20 ms / 2 = 10 ms): the third task is cheaper on b
    const workers = [worker('a', { rttMs: 0, slots: 2, capacity: 4 }), worker('b', { rttMs: 15, slots: 2, capacity: 4 })]
    expect(assignTasks([task(0), task(1), task(2)], workers)).toEqual([
      { task: 0, worker: 'a' }, { task: 1, worker: 'a' }, { task: 2, worker: 'b' }
    ])
  })

  it('avoids a worker the task failed on unless no other is left', () => {
    const t = task(0, { failedOn: new Set(['near']) })
    expect(assignTasks([t], [worker('near', { rttMs: 1 }), worker('far', { rttMs: 300 })])).toEqual([{ task: 0, worker: 'far' }])
    expect(assignTasks([t], [worker('near', { rttMs: 1 })])).toEqual([{ task: 0, worker: 'near' }])
  })

  it('respects capacity', () => {
    const workers = [worker('a', { rttMs: 1, capacity: 2 }), worker('b', { rttMs: 2, capacity: 1 }), worker('c', { rttMs: 3, capacity: 0 })]
    const out = assignTasks([0, 1, 2, 3, 4].map(i => task(i)), workers)
    expect(out).toHaveLength(3)
    expect(out.filter(a => a.worker === 'a')).toHaveLength(2)
    expect(out.filter(a => a.worker === 'b')).toHaveLength(1)
    expect(out.some(a => a.worker === 'c')).toBe(false)
    // tasks are served in order: the last ones are left out
    expect(out.map(a => a.task)).toEqual([0, 1, 2])
  })

  it('respects exclude, leaving a task out when every worker is excluded', () => {
    const workers = [worker('a', { rttMs: 1 }), worker('b', { rttMs: 2 })]
    expect(assignTasks([task(0, { exclude: new Set(['a']) })], workers)).toEqual([{ task: 0, worker: 'b' }])
    expect(assignTasks([task(0, { exclude: new Set(['a', 'b']) }), task(1)], workers)).toEqual([{ task: 1, worker: 'a' }])
  })

  it('sends two copies of one task to two different workers', () => {
    const workers = [worker('a', { rttMs: 1 }), worker('b', { rttMs: 50 })]
    const out = assignTasks([task(7), task(7)], workers)
    expect(out).toEqual([{ task: 7, worker: 'a' }, { task: 7, worker: 'b' }])
    // a third copy has nowhere to go
    expect(assignTasks([task(7), task(7), task(7)], workers)).toHaveLength(2)
  })

  it('breaks ties by worker id, whatever the order of workers', () => {
    const ws = [worker('c'), worker('a'), worker('b')]
    expect(assignTasks([task(0)], ws)).toEqual([{ task: 0, worker: 'a' }])
    expect(assignTasks([task(0)], [...ws].reverse())).toEqual([{ task: 0, worker: 'a' }])
  })

  it('leaves out tasks when there are no workers', () => {
    expect(assignTasks([task(0), task(1)], [])).toEqual([])
  })

  it('does not change the views it is given', () => {
    const holds = new Set<string>()
    const w = worker('a', { capacity: 3, load: 0.25, holds })
    assignTasks([task(0, { inputCid: 'x', inputBytes: 10 }), task(1)], [w])
    expect(w.capacity).toBe(3)
    expect(w.load).toBe(0.25)
    expect(holds.size).toBe(0)
  })

  it('picks, in a seeded simulation, a cheapest worker with capacity left for every task', () => {
    const rand = mulberry32(42)
    const int = (n: number): number => Math.floor(rand() * n)
    for (let round = 0; round < 10; round++) {
      const cids = Array.from({ length: 30 }, (_, i) => `cid-${i}`)
      const ids = ['w0', 'w1', 'w2', 'w3', 'w4']
      const workers: WorkerView[] = ids.map(id => {
        const slots = 1 + int(8)
        return {
          id,
          rttMs: rand() < 0.15 ? null : Math.round(rand() * 100),
          slots,
          capacity: int(60),
          load: int(slots + 1) / slots,
          reliability: reliability(int(10), int(3)),
          holds: new Set(cids.filter(() => rand() < 0.3))
        }
      })
      const tasks: TaskView[] = Array.from({ length: 200 }, () => ({
        id: int(150), // some ids repeat: copies of one task
        inputCid: rand() < 0.1 ? null : cids[int(cids.length)] as string,
        inputBytes: int(8 * MiB),
        exclude: new Set(ids.filter(() => rand() < 0.15)),
        failedOn: new Set(ids.filter(() => rand() < 0.05))
      }))
      const out = assignTasks(tasks, workers)

      // replay independently: state of each worker as awards are made
      const state = new Map(workers.map(w => [w.id, { capacity: w.capacity, load: w.load, holds: new Set(w.holds) }]))
      const given = new Map<number, Set<string>>()
      const cost = (t: TaskView, w: WorkerView): number => {
        const s = state.get(w.id) as { load: number, holds: Set<string> }
        const transfer = t.inputCid != null && !s.holds.has(t.inputCid) ? t.inputBytes / DEFAULT_WEIGHTS.transferBytesPerMs : 0
        return (w.rttMs ?? DEFAULT_WEIGHTS.unknownRttMs) + transfer + s.load * DEFAULT_WEIGHTS.loadPenaltyMs +
          (1 - w.reliability) * DEFAULT_WEIGHTS.unreliablePenaltyMs + (t.failedOn.has(w.id) ? DEFAULT_WEIGHTS.retrySameWorkerPenaltyMs : 0)
      }
      let next = 0
      for (const t of tasks) {
        const eligible = workers.filter(w => (state.get(w.id)?.capacity ?? 0) > 0 && !t.exclude.has(w.id) && given.get(t.id)?.has(w.id) !== true)
        const a = out[next]
        if (a == null || a.task !== t.id || eligible.length === 0) {
          // left out: only when no worker could take it
          expect(eligible).toEqual([])
          continue
        }
        next++
        const chosen = eligible.find(w => w.id === a.worker)
        expect(chosen, `task ${t.id} went to ${a.worker}, which has no capacity left or is excluded`).toBeDefined()
        const min = Math.min(...eligible.map(w => cost(t, w)))
        expect(cost(t, chosen as WorkerView)).toBeLessThanOrEqual(min + 1e-9)
        const tied = eligible.filter(w => cost(t, w) <= min + 1e-9).map(w => w.id).sort()
        expect(a.worker).toBe(tied[0])
        const s = state.get(a.worker) as { capacity: number, load: number, holds: Set<string> }
        s.capacity--
        s.load += 1 / Math.max(1, (chosen as WorkerView).slots)
        if (t.inputCid != null) s.holds.add(t.inputCid)
        given.set(t.id, (given.get(t.id) ?? new Set()).add(a.worker))
      }
      expect(next).toBe(out.length)
      // capacity respected overall
      for (const w of workers) expect(out.filter(a => a.worker === w.id).length).toBeLessThanOrEqual(w.capacity)
    }
  })
})
