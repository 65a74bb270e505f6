import { describe, expect, it } from 'vitest'
import { RTT_WINDOW } from '../../src/routing/constants.ts'
import { RttEstimator, medianOf } from '../../src/routing/rtt-estimator.ts'
import type { RttStats } from '../../src/routing/rtt-estimator.ts'
import { mulberry32 } from '../../src/random.ts'

/** `count` samples of `level` ms with uniform noise of +-`spread` ms. */
function noisy (random: () => number, level: number, spread: number, count: number): number[] {
  return Array.from({ length: count }, () => level + (random() * 2 - 1) * spread)
}

function feed (est: RttEstimator, samples: number[]): void {
  for (const s of samples) est.addSample(s)
}

function statsOf (est: RttEstimator): RttStats {
  const stats = est.stats()
  if (stats == null) throw new Error('expected stats')
  return stats
}

describe('medianOf', () => {
  it('is NaN for no values', () => {
    expect(medianOf([])).toBeNaN()
  })

  it('takes the middle of an odd count and the mean of the middle two of an even count', () => {
    expect(medianOf([7])).toBe(7)
    expect(medianOf([5, 1, 3])).toBe(3)
    expect(medianOf([10, 2, 4, 8])).toBe(6)
    expect(medianOf([1, 1000, 2])).toBe(2)
  })

  it('sorts numerically, not as strings', () => {
    expect(medianOf([100, 9, 20])).toBe(20)
  })

  it('does not reorder its input', () => {
    const values = [3, 1, 2]
    medianOf(values)
    expect(values).toEqual([3, 1, 2])
  })
})

describe('RttEstimator', () => {
  it('has no stats before the first sample', () => {
    const est = new RttEstimator()
    expect(est.stats()).toBeUndefined()
    est.addLoss()
    expect(est.stats()).toBeUndefined()
  })

  it('the first sample is the estimate', () => {
    const est = new RttEstimator()
    est.addSample(42)
    expect(est.stats()).toEqual({ rttMs: 42, jitterMs: 21, lossRate: 0, lastMs: 42, samples: 1 })
  })

  it('a single huge outlier among steady samples barely moves the estimate', () => {
    const random = mulberry32(1)
    const est = new RttEstimator()
    feed(est, noisy(random, 50, 2, 40))
    const before = statsOf(est).rttMs
    expect(before).toBeGreaterThan(47)
    expect(before).toBeLessThan(53)

    est.addSample(5000)
    const during = statsOf(est)
    expect(during.lastMs).toBe(5000)
    expect(Math.abs(during.rttMs - before)).toBeLessThan(2)

    feed(est, noisy(random, 50, 2, RTT_WINDOW))
    expect(Math.abs(statsOf(est).rttMs - 50)).toBeLessThan(3)
  })

  it('a plain EWMA would have been dragged far by the same outlier (the median matters)', () => {
    // window of 1: no median filtering, only the EWMA
    const est = new RttEstimator(1)
    feed(est, noisy(mulberry32(1), 50, 2, 40))
    est.addSample(5000)
    expect(statsOf(est).rttMs).toBeGreaterThan(500)
  })

  it('converges toward a new level after a step change', () => {
    const random = mulberry32(7)
    const est = new RttEstimator()
    feed(est, noisy(random, 20, 1, 50))
    expect(Math.abs(statsOf(est).rttMs - 20)).toBeLessThan(1.5)

    const errors: number[] = []
    for (const s of noisy(random, 120, 1, 60)) {
      est.addSample(s)
      errors.push(Math.abs(statsOf(est).rttMs - 120))
    }
    // moves toward the new level ...
    expect(errors[RTT_WINDOW * 2]).toBeLessThan(errors[0] as number)
    // ... and ends there
    expect(errors.at(-1)).toBeLessThan(2)
    expect(statsOf(est).samples).toBe(110)
  })

  it('converges downward too', () => {
    const est = new RttEstimator()
    feed(est, noisy(mulberry32(3), 300, 5, 30))
    feed(est, noisy(mulberry32(4), 30, 1, 60))
    expect(Math.abs(statsOf(est).rttMs - 30)).toBeLessThan(2)
  })

  it('jitter starts at half the first sample and falls towards zero for constant samples', () => {
    const est = new RttEstimator()
    est.addSample(33)
    expect(statsOf(est).jitterMs).toBe(16.5)
    feed(est, Array(8).fill(33))
    expect(statsOf(est).jitterMs).toBeCloseTo(16.5 * (7 / 8) ** 8, 9)
    feed(est, Array(50).fill(33))
    const stats = statsOf(est)
    expect(stats.jitterMs).toBeLessThan(0.01)
    expect(stats.rttMs).toBe(33)
  })

  it('jitter is positive for alternating samples and approaches their difference', () => {
    const est = new RttEstimator()
    for (let i = 0; i < 100; i++) est.addSample(i % 2 === 0 ? 10 : 30)
    const stats = statsOf(est)
    expect(stats.jitterMs).toBeGreaterThan(15)
    expect(stats.jitterMs).toBeLessThanOrEqual(20)
    // the estimate sits between the two levels
    expect(stats.rttMs).toBeGreaterThanOrEqual(10)
    expect(stats.rttMs).toBeLessThanOrEqual(30)
  })

  it('loss rate rises with each loss and decays with samples', () => {
    const est = new RttEstimator()
    est.addSample(10)
    expect(statsOf(est).lossRate).toBe(0)

    const rising: number[] = []
    for (let i = 0; i < 10; i++) {
      est.addLoss()
      rising.push(statsOf(est).lossRate)
    }
    for (let i = 1; i < rising.length; i++) expect(rising[i]).toBeGreaterThan(rising[i - 1] as number)
    const peak = rising.at(-1) as number
    expect(peak).toBeGreaterThan(0.3)
    expect(peak).toBeLessThan(1)

    feed(est, Array(20).fill(10))
    const afterSome = statsOf(est).lossRate
    expect(afterSome).toBeLessThan(peak / 2)
    feed(est, Array(100).fill(10))
    expect(statsOf(est).lossRate).toBeLessThan(0.01)
    expect(statsOf(est).lossRate).toBeLessThan(afterSome)
  })

  it('all losses push the rate toward 1, never past it', () => {
    const est = new RttEstimator()
    est.addSample(10)
    for (let i = 0; i < 500; i++) est.addLoss()
    const rate = statsOf(est).lossRate
    expect(rate).toBeGreaterThan(0.99)
    expect(rate).toBeLessThanOrEqual(1)
  })

  it('ignores negative, NaN and infinite samples', () => {
    const est = new RttEstimator()
    est.addSample(-1)
    est.addSample(Number.NaN)
    est.addSample(Number.POSITIVE_INFINITY)
    expect(est.stats()).toBeUndefined()

    feed(est, [40, 40, 40])
    const before = statsOf(est)
    est.addSample(-5)
    est.addSample(Number.NaN)
    est.addSample(Number.NEGATIVE_INFINITY)
    est.addSample(Number.POSITIVE_INFINITY)
    expect(statsOf(est)).toEqual(before)
    expect(before.samples).toBe(3)
  })

  it('accepts a zero sample', () => {
    const est = new RttEstimator()
    est.addSample(0)
    expect(statsOf(est)).toMatchObject({ rttMs: 0, lastMs: 0, samples: 1 })
  })

  it('is deterministic: the same samples give the same stats', () => {
    const a = new RttEstimator()
    const b = new RttEstimator()
    const samples = noisy(mulberry32(99), 80, 30, 200)
    feed(a, samples)
    feed(b, samples)
    expect(a.stats()).toEqual(b.stats())
  })
})
