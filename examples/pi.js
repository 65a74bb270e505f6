/**
 * Monte-Carlo pi: each task throws `samples` random points into the unit
 * square and counts those inside the quarter circle. The input is ignored.
 *
 *   lepton submit examples/pi.js --partitions 16 --arg samples=10000000
 *
 * Math.random is seeded from ctx.seed, different for every task, so tasks
 * sample different points and any worker re-running a task gets the same
 * count (that is what `--verify` compares).
 */

/** -> { inside, total } for this task's samples (ctx.args.samples, default 1e6). */
export function map (_input, ctx) {
  const samples = Number(ctx.args.samples ?? 1e6)
  if (!Number.isSafeInteger(samples) || samples <= 0) throw new Error(`samples must be a positive integer, not "${ctx.args.samples}"`)
  let inside = 0
  for (let i = 0; i < samples; i++) {
    const x = Math.random()
    const y = Math.random()
    if (x * x + y * y <= 1) inside++
  }
  return { inside, total: samples }
}

/** Sums counts on a worker. */
export function combine (values) {
  return sum(values)
}

/** -> { pi, inside, total }. */
export function reduce (values) {
  const { inside, total } = sum(values)
  return { pi: total > 0 ? 4 * inside / total : null, inside, total }
}

function sum (values) {
  let inside = 0
  let total = 0
  for (const value of values) {
    inside += value.inside
    total += value.total
  }
  return { inside, total }
}
