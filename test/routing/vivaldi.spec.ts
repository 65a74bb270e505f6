import { describe, expect, it } from 'vitest'
import { LeptonError } from '../../src/errors.ts'
import {
  DEFAULT_VIVALDI_CONFIG,
  InvalidCoordinateError,
  VivaldiClient,
  distanceMs,
  newCoordinate
} from '../../src/routing/vivaldi.ts'
import type { Coordinate } from '../../src/routing/vivaldi.ts'
import { mulberry32 } from '../../src/random.ts'

/** Ground-truth RTT in ms between node i and node j (symmetric, > 0 for i != j). */
type RttMatrix = number[][]

function matrixOf (n: number, rtt: (i: number, j: number) => number): RttMatrix {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 0 : rtt(Math.min(i, j), Math.max(i, j)))))
}

/** 5x5 grid, 10 ms per step of Manhattan distance, plus 1 ms. */
function gridMatrix (): RttMatrix {
  const side = 5
  return matrixOf(side * side, (i, j) => {
    const dx = Math.abs((i % side) - (j % side))
    const dy = Math.abs(Math.floor(i / side) - Math.floor(j / side))
    return 10 * (dx + dy) + 1
  })
}

/** 4 clusters of 6 nodes: 2 ms inside a cluster, 60-150 ms (+2 ms access) between clusters. */
function clusteredMatrix (): RttMatrix {
  // Centres in a plane so inter-cluster RTTs obey the triangle inequality, as real ones mostly do.
  const centres: Array<[number, number]> = [[0, 0], [60, 0], [0, 90], [100, 110]]
  const perCluster = 6
  return matrixOf(centres.length * perCluster, (i, j) => {
    const a = centres[Math.floor(i / perCluster)] ?? [0, 0]
    const b = centres[Math.floor(j / perCluster)] ?? [0, 0]
    return Math.hypot(a[0] - b[0], a[1] - b[1]) + 2
  })
}

/** 25 random points in a 200x200 ms plane, each with a 1-10 ms access-link delay. */
function randomPlaneMatrix (random: () => number): RttMatrix {
  const nodes = Array.from({ length: 25 }, () => ({ x: random() * 200, y: random() * 200, access: 1 + random() * 9 }))
  return matrixOf(nodes.length, (i, j) => {
    const a = nodes[i]
    const b = nodes[j]
    if (a === undefined || b === undefined) throw new Error('unreachable')
    return Math.hypot(a.x - b.x, a.y - b.y) + a.access + b.access
  })
}

interface SimResult {
  /** Relative errors |estimate - truth| / truth over all pairs. */
  median: number
  p90: number
  worst: number
  /** Largest absolute error in ms. */
  worstAbsMs: number
}

/**
 * Every round each node measures one random peer (true RTT +-5% jitter) and updates
 * from that peer's current coordinate. Then: relative error over all pairs.
 */
function simulate (truth: RttMatrix, rounds: number, random: () => number): SimResult {
  const n = truth.length
  const clients = Array.from({ length: n }, () => new VivaldiClient())
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < n; i++) {
      let j = Math.floor(random() * (n - 1))
      if (j >= i) j++
      const rtt = (truth[i]?.[j] ?? NaN) * (1 + (random() * 2 - 1) * 0.05)
      clients[i]?.update(`node-${j}`, clients[j]?.coordinate() ?? newCoordinate(), rtt)
    }
  }
  const coords = clients.map(c => c.coordinate())
  const errors: number[] = []
  let worstAbsMs = 0
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const actual = truth[i]?.[j] ?? NaN
      const absMs = Math.abs(distanceMs(coords[i] as Coordinate, coords[j] as Coordinate) - actual)
      worstAbsMs = Math.max(worstAbsMs, absMs)
      errors.push(absMs / actual)
    }
  }
  errors.sort((a, b) => a - b)
  const at = (q: number): number => errors[Math.min(errors.length - 1, Math.floor(q * errors.length))] ?? NaN
  return { median: at(0.5), p90: at(0.9), worst: errors[errors.length - 1] ?? NaN, worstAbsMs }
}

function report (name: string, r: SimResult): void {
  console.log(`vivaldi ${name}: median relative error ${(r.median * 100).toFixed(1)}%, ` +
    `p90 ${(r.p90 * 100).toFixed(1)}%, worst ${(r.worst * 100).toFixed(1)}% (${r.worstAbsMs.toFixed(1)} ms)`)
}

describe('Vivaldi simulation accuracy', () => {
  // Serf's own simulations run 1000 cycles; short (2 ms) links are the last to settle.
  const ROUNDS = 1000

  it('embeds a 5x5 grid (Manhattan RTTs)', () => {
    const r = simulate(gridMatrix(), ROUNDS, mulberry32(1))
    report('grid 5x5', r)
    expect(r.median).toBeLessThanOrEqual(0.12)
    // Manhattan distances do not embed exactly in Euclidean space: some distortion stays.
    expect(r.p90).toBeLessThanOrEqual(0.4)
    expect(r.worstAbsMs).toBeLessThanOrEqual(25)
  })

  it('embeds 4 clusters of 6 nodes', () => {
    const r = simulate(clusteredMatrix(), ROUNDS, mulberry32(2))
    report('clusters 4x6', r)
    expect(r.median).toBeLessThanOrEqual(0.12)
    // p90 lands on the 2 ms intra-cluster links, where +-1 ms is already 50%.
    expect(r.p90).toBeLessThanOrEqual(0.6)
    expect(r.worstAbsMs).toBeLessThanOrEqual(10)
  })

  it('embeds 25 random points with access-link heights', () => {
    const r = simulate(randomPlaneMatrix(mulberry32(3)), ROUNDS, mulberry32(4))
    report('random plane 25', r)
    expect(r.median).toBeLessThanOrEqual(0.12)
    expect(r.p90).toBeLessThanOrEqual(0.15)
    expect(r.worstAbsMs).toBeLessThanOrEqual(30)
  })
})

describe('distanceMs', () => {
  const a: Coordinate = { vec: [3, 0], height: 1, error: 1, adjustment: 0.5 }
  const b: Coordinate = { vec: [0, 4], height: 2, error: 1, adjustment: -0.25 }

  it('is symmetric and adds heights and adjustments', () => {
    expect(distanceMs(a, b)).toBeCloseTo(5 + 1 + 2 + 0.5 - 0.25, 10)
    expect(distanceMs(b, a)).toBe(distanceMs(a, b))
  })

  it('to self is the two heights (plus adjustments)', () => {
    const c = newCoordinate({ dimensionality: 2 })
    expect(distanceMs(c, c)).toBeCloseTo(2 * DEFAULT_VIVALDI_CONFIG.heightMinMs, 10)
    expect(distanceMs(a, a)).toBeCloseTo(2 + 1, 10)
  })

  it('falls back to the raw distance when adjustments would make it non-positive', () => {
    const c: Coordinate = { vec: [1, 0], height: 0.5, error: 1, adjustment: -10 }
    const d: Coordinate = { vec: [0, 0], height: 0.5, error: 1, adjustment: 0 }
    expect(distanceMs(c, d)).toBeCloseTo(2, 10)
  })

  it('rejects mismatched dimensionality', () => {
    expect(() => distanceMs(a, newCoordinate())).toThrow(InvalidCoordinateError)
  })
})

describe('VivaldiClient', () => {
  it('starts at the origin with maximum error and minimum height', () => {
    const c = new VivaldiClient().coordinate()
    expect(c.vec).toEqual(new Array(DEFAULT_VIVALDI_CONFIG.dimensionality).fill(0))
    expect(c.height).toBe(DEFAULT_VIVALDI_CONFIG.heightMinMs)
    expect(c.error).toBe(DEFAULT_VIVALDI_CONFIG.vivaldiErrorMax)
    expect(c.adjustment).toBe(0)
  })

  it('moves towards the measured distance for a single pair', () => {
    const client = new VivaldiClient({ dimensionality: 2 })
    const remote: Coordinate = { vec: [10, 0], height: 0.01, error: 0.5, adjustment: 0 }
    const rtt = 50
    const gapBefore = Math.abs(client.estimateRttMs(remote) - rtt)
    client.update('peer', remote, rtt)
    expect(Math.abs(client.estimateRttMs(remote) - rtt)).toBeLessThan(gapBefore)
    // Not monotonic afterwards (the adjustment term lags the Vivaldi step and overshoots a little), but it settles.
    for (let k = 0; k < 60; k++) client.update('peer', remote, rtt)
    expect(Math.abs(client.estimateRttMs(remote) - rtt) / rtt).toBeLessThan(0.05)
    // Too far away, so it moved away from the remote: along -x.
    expect(client.coordinate().vec[0]).toBeLessThan(0)
  })

  it('pushes coincident nodes apart along a direction drawn from the injected random', () => {
    const draws = [0.9, 0.5, 0.5]
    let k = 0
    const client = new VivaldiClient({ dimensionality: 3 }, () => draws[k++ % draws.length] ?? 0.5)
    const c = client.update('peer', newCoordinate({ dimensionality: 3 }), 20)
    expect(k).toBeGreaterThan(0)
    expect(c.vec[0]).toBeGreaterThan(0)
    expect(c.vec[1]).toBeCloseTo(0, 10)
    expect(c.vec[2]).toBeCloseTo(0, 10)
  })

  it('is deterministic with the default random source', () => {
    const run = (): Coordinate => {
      const client = new VivaldiClient()
      client.update('p', newCoordinate(), 30)
      return client.update('q', newCoordinate(), 12)
    }
    expect(run()).toEqual(run())
  })

  it('rejects invalid RTTs and remote coordinates with InvalidCoordinateError', () => {
    const client = new VivaldiClient({ dimensionality: 2 })
    const ok = newCoordinate({ dimensionality: 2 })
    const bad: Array<[Coordinate, number]> = [
      [ok, 0],
      [ok, -1],
      [ok, Number.NaN],
      [ok, Number.POSITIVE_INFINITY],
      [ok, DEFAULT_VIVALDI_CONFIG.maxRttMs + 1],
      [newCoordinate({ dimensionality: 3 }), 10],
      [{ ...ok, vec: [Number.NaN, 0] }, 10],
      [{ ...ok, height: Number.POSITIVE_INFINITY }, 10],
      [{ ...ok, error: Number.NaN }, 10],
      [{ ...ok, adjustment: Number.NEGATIVE_INFINITY }, 10],
      [{ ...ok, height: -1 }, 10]
    ]
    for (const [remote, rtt] of bad) {
      let caught: unknown
      try {
        client.update('peer', remote, rtt)
      } catch (err) {
        caught = err
      }
      expect(caught).toBeInstanceOf(InvalidCoordinateError)
      expect(caught).toBeInstanceOf(LeptonError)
      expect((caught as Error).name).toBe('InvalidCoordinateError')
    }
    expect(() => client.estimateRttMs(newCoordinate())).toThrow(InvalidCoordinateError)
    // Nothing was applied.
    expect(client.coordinate()).toEqual(newCoordinate({ dimensionality: 2 }))
    // The bound itself is accepted.
    expect(() => client.update('peer', ok, DEFAULT_VIVALDI_CONFIG.maxRttMs)).not.toThrow()
  })

  it('rejects an out-of-range config', () => {
    expect(() => new VivaldiClient({ dimensionality: 0 })).toThrow(InvalidCoordinateError)
    expect(() => new VivaldiClient({ vivaldiCC: Number.NaN })).toThrow(InvalidCoordinateError)
  })

  it('latency filter ignores a single outlier', () => {
    const remote: Coordinate = { vec: [5, 5, 0, 0, 0, 0, 0, 0], height: 1, error: 0.3, adjustment: 0 }
    const steady = new VivaldiClient()
    const spiky = new VivaldiClient()
    for (const rtt of [20, 20, 20, 20]) steady.update('peer', remote, rtt)
    for (const rtt of [20, 20, 900, 20]) spiky.update('peer', remote, rtt)
    expect(spiky.coordinate()).toEqual(steady.coordinate())
  })

  it('forget drops the latency history of a peer', () => {
    const remote: Coordinate = { vec: [5, 5, 0, 0, 0, 0, 0, 0], height: 1, error: 0.3, adjustment: 0 }
    const kept = new VivaldiClient()
    const forgot = new VivaldiClient()
    for (const c of [kept, forgot]) {
      c.update('peer', remote, 20)
      c.update('peer', remote, 20)
    }
    forgot.forget('peer')
    kept.update('peer', remote, 900)
    forgot.update('peer', remote, 900)
    // With its history the spike is filtered out; without it, it is the median.
    expect(forgot.estimateRttMs(remote)).toBeGreaterThan(kept.estimateRttMs(remote))
  })

  it('coordinate() returns a copy', () => {
    const client = new VivaldiClient()
    client.update('peer', newCoordinate(), 25)
    const before = client.coordinate()
    const c = client.coordinate()
    c.vec[0] = 1e6
    c.height = 1e6
    c.error = 0
    c.adjustment = 1e6
    expect(client.coordinate()).toEqual(before)
    const returned = client.update('peer', newCoordinate(), 25)
    returned.vec.fill(7)
    expect(client.coordinate().vec).not.toEqual(returned.vec)
  })
})
