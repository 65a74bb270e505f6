import { LeptonError } from '../errors.ts'
import { mulberry32 } from '../random.ts'

/**
 * Vivaldi network coordinates (Dabek et al., SIGCOMM 2004) with the refinements
 * HashiCorp Serf uses in production: a Euclidean vector plus a non-Euclidean
 * height (access-link delay), an adaptive timestep weighted by both sides' error,
 * a per-peer median latency filter, an adjustment term learnt from recent
 * residuals, and a weak gravity towards the origin so the whole system does not
 * drift away. Pure logic: no I/O, no clock, and randomness only via an injected
 * function, so simulations are reproducible. All times are milliseconds.
 */

/** A position in the coordinate space. */
export interface Coordinate {
  /** Euclidean part, in ms, one entry per dimension. */
  vec: number[]
  /** Non-Euclidean height in ms: latency every path to this node pays (access link). */
  height: number
  /** Unitless relative error estimate: 0 is certain, `vivaldiErrorMax` knows nothing. */
  error: number
  /** Offset in ms added to distances, learnt from what the Euclidean model cannot fit. */
  adjustment: number
}

/** Tuning for the coordinate system. */
export interface VivaldiConfig {
  /** Dimensions of the Euclidean part. */
  dimensionality: number
  /** Error of a fresh coordinate, and the cap for error afterwards. */
  vivaldiErrorMax: number
  /** How fast the error estimate follows new observations (paper's ce). */
  vivaldiCE: number
  /** How far one observation may move the coordinate (paper's cc). */
  vivaldiCC: number
  /** Residual samples averaged into `adjustment`; 0 disables the adjustment term. */
  adjustmentWindowSize: number
  /** Smallest height in ms, so the height never collapses to 0 or goes negative. */
  heightMinMs: number
  /** RTT samples per peer whose median feeds the update (drops one-off spikes). */
  latencyFilterSize: number
  /**
   * Gravity scale in ms: each update pulls (distance from origin / rho)^2 ms towards
   * the origin. Only meant to stop the system drifting as a whole, so it must stay
   * far weaker than the RTT forces.
   */
  gravityRhoMs: number
  /** Largest RTT in ms accepted as a sample. */
  maxRttMs: number
}

/**
 * Serf-like defaults: 8 dimensions plus height, 3-sample median filter, 20-sample
 * adjustment window. Gravity: Serf's rho is 150 applied to distances in seconds,
 * i.e. 150 000 ms. Read as 150 ms it pulls a node 100 ms out by ~0.44 ms per
 * update, which squashes the embedding; the adjustment term then inflates every
 * estimate by several ms and short links (2 ms inside a cluster) come out ~6x too long.
 */
export const DEFAULT_VIVALDI_CONFIG: Readonly<VivaldiConfig> = Object.freeze({
  dimensionality: 8,
  vivaldiErrorMax: 1.5,
  vivaldiCE: 0.25,
  vivaldiCC: 0.25,
  adjustmentWindowSize: 20,
  heightMinMs: 0.01,
  latencyFilterSize: 3,
  gravityRhoMs: 150_000,
  maxRttMs: 10_000
})

/** An RTT sample or remote coordinate is unusable (wrong dimensionality, non-finite, out of range). */
export class InvalidCoordinateError extends LeptonError {
  override name = 'InvalidCoordinateError'
}

/** Below this (ms) two points count as coincident and a length as zero (1 µs, as in Serf). */
const ZERO_THRESHOLD_MS = 1e-3

/** Fixed seed of the default PRNG: runs must be reproducible, never Math.random. */
const DEFAULT_SEED = 0x5eed_1ead

function resolveConfig (config: Partial<VivaldiConfig> = {}): VivaldiConfig {
  const c: VivaldiConfig = { ...DEFAULT_VIVALDI_CONFIG, ...config }
  const positiveInt = (v: number): boolean => Number.isInteger(v) && v >= 1
  if (!positiveInt(c.dimensionality) || !positiveInt(c.latencyFilterSize) ||
    !Number.isInteger(c.adjustmentWindowSize) || c.adjustmentWindowSize < 0) {
    throw new InvalidCoordinateError('vivaldi: dimensionality and latencyFilterSize must be integers >= 1, adjustmentWindowSize >= 0')
  }
  for (const key of ['vivaldiErrorMax', 'vivaldiCE', 'vivaldiCC', 'heightMinMs', 'gravityRhoMs', 'maxRttMs'] as const) {
    if (!Number.isFinite(c[key]) || c[key] <= 0) throw new InvalidCoordinateError(`vivaldi: ${key} must be a finite number > 0`)
  }
  return c
}

/** A coordinate at the origin with minimum height and maximum error: "knows nothing yet". */
export function newCoordinate (config: Partial<VivaldiConfig> = {}): Coordinate {
  const c = resolveConfig(config)
  return { vec: new Array<number>(c.dimensionality).fill(0), height: c.heightMinMs, error: c.vivaldiErrorMax, adjustment: 0 }
}

function magnitude (v: number[]): number {
  return Math.sqrt(v.reduce((sum, x) => sum + x * x, 0))
}

function checkSameDimensions (a: Coordinate, b: Coordinate): void {
  if (a.vec.length !== b.vec.length) throw new InvalidCoordinateError(`vivaldi: coordinates have ${a.vec.length} and ${b.vec.length} dimensions`)
}

/** Euclidean distance plus both heights, in ms, ignoring adjustments. */
function rawDistanceMs (a: Coordinate, b: Coordinate): number {
  return magnitude(a.vec.map((x, i) => x - (b.vec[i] ?? 0))) + a.height + b.height
}

/**
 * Estimated RTT in ms between two coordinates: Euclidean distance plus both
 * heights plus both adjustments. Adjustments can be negative; if they would push
 * the estimate to 0 or below, the unadjusted distance is returned instead.
 * @throws InvalidCoordinateError when the dimensionalities differ.
 */
export function distanceMs (a: Coordinate, b: Coordinate): number {
  checkSameDimensions(a, b)
  const raw = rawDistanceMs(a, b)
  const adjusted = raw + a.adjustment + b.adjustment
  return adjusted > 0 ? adjusted : raw
}

/**
 * One node's view of the coordinate system: its own coordinate, per-peer latency
 * filters and the adjustment window. Feed it RTT samples with `update`.
 */
export class VivaldiClient {
  private readonly config: VivaldiConfig
  private readonly random: () => number
  private coord: Coordinate
  private readonly origin: Coordinate
  private readonly latencySamples = new Map<string, number[]>()
  private readonly adjustmentSamples: number[]
  private adjustmentIndex = 0

  /**
   * @param config overrides of `DEFAULT_VIVALDI_CONFIG`.
   * @param random uniform [0, 1) source used only to separate coincident nodes;
   *   defaults to a PRNG with a fixed seed so runs are reproducible.
   * @throws InvalidCoordinateError when the config is out of range.
   */
  constructor (config: Partial<VivaldiConfig> = {}, random?: () => number) {
    this.config = resolveConfig(config)
    this.random = random ?? mulberry32(DEFAULT_SEED)
    this.coord = newCoordinate(this.config)
    this.origin = newCoordinate(this.config)
    this.adjustmentSamples = new Array<number>(this.config.adjustmentWindowSize).fill(0)
  }

  /** A copy of this node's current coordinate. */
  coordinate (): Coordinate {
    return { ...this.coord, vec: [...this.coord.vec] }
  }

  /**
   * Take one RTT sample to `peerId`, whose coordinate is `remote`, and move this
   * node's coordinate: latency filter, Vivaldi step, adjustment, gravity.
   * @returns a copy of the new coordinate.
   * @throws InvalidCoordinateError for an RTT that is not in (0, maxRttMs] or an unusable remote coordinate.
   */
  update (peerId: string, remote: Coordinate, rttMs: number): Coordinate {
    this.checkRemote(remote)
    if (!Number.isFinite(rttMs) || rttMs <= 0 || rttMs > this.config.maxRttMs) {
      throw new InvalidCoordinateError(`vivaldi: RTT ${rttMs} ms is not in (0, ${this.config.maxRttMs}] ms`)
    }
    const filteredMs = this.latencyFilter(peerId, rttMs)
    this.vivaldiStep(remote, filteredMs)
    this.updateAdjustment(remote, filteredMs)
    this.applyGravity()
    // Numerical blow-up should not be possible, but a poisoned coordinate would be
    // gossiped to every peer, so start over rather than keep it.
    if (!isValidCoordinate(this.coord)) this.coord = newCoordinate(this.config)
    return this.coordinate()
  }

  /**
   * Estimated RTT in ms from this node to `remote`.
   * @throws InvalidCoordinateError for an unusable remote coordinate.
   */
  estimateRttMs (remote: Coordinate): number {
    this.checkRemote(remote)
    return distanceMs(this.coord, remote)
  }

  /** Drop the latency samples kept for `peerId` (call when the peer leaves). */
  forget (peerId: string): void {
    this.latencySamples.delete(peerId)
  }

  private checkRemote (remote: Coordinate): void {
    checkSameDimensions(this.coord, remote)
    if (!isValidCoordinate(remote) || remote.height < 0 || remote.error < 0) {
      throw new InvalidCoordinateError('vivaldi: remote coordinate has non-finite or negative values')
    }
  }

  /** Median of the last few samples: one delayed packet should not yank the coordinate. */
  private latencyFilter (peerId: string, rttMs: number): number {
    const samples = this.latencySamples.get(peerId) ?? []
    samples.push(rttMs)
    if (samples.length > this.config.latencyFilterSize) samples.shift()
    this.latencySamples.set(peerId, samples)
    const sorted = [...samples].sort((x, y) => x - y)
    return sorted[Math.floor(sorted.length / 2)] ?? rttMs
  }

  private vivaldiStep (remote: Coordinate, rttMs: number): void {
    const { vivaldiCE: ce, vivaldiCC: cc, vivaldiErrorMax } = this.config
    const dist = distanceMs(this.coord, remote)
    const sampleError = Math.abs(dist - rttMs) / rttMs
    // Trust the sample in proportion to how unsure we are relative to the remote:
    // a confident node is barely moved by a newcomer's opinion.
    const weight = this.coord.error / Math.max(this.coord.error + remote.error, ZERO_THRESHOLD_MS)
    this.coord.error = Math.min(vivaldiErrorMax, ce * weight * sampleError + this.coord.error * (1 - ce * weight))
    this.applyForce(cc * weight * (rttMs - dist), remote)
  }

  /**
   * Average residual (rtt - raw distance) over a window, halved because both ends
   * of a pair add their own adjustment to the estimate.
   */
  private updateAdjustment (remote: Coordinate, rttMs: number): void {
    const size = this.config.adjustmentWindowSize
    if (size === 0) return
    this.adjustmentSamples[this.adjustmentIndex] = rttMs - rawDistanceMs(this.coord, remote)
    this.adjustmentIndex = (this.adjustmentIndex + 1) % size
    this.coord.adjustment = this.adjustmentSamples.reduce((sum, x) => sum + x, 0) / (2 * size)
  }

  /** Pull towards the origin, quadratic in distance, so the system does not drift as a whole. */
  private applyGravity (): void {
    const dist = distanceMs(this.origin, this.coord)
    this.applyForce(-((dist / this.config.gravityRhoMs) ** 2), this.origin)
  }

  /** Move `force` ms away from `other` (towards it when negative), sharing the move with the height. */
  private applyForce (force: number, other: Coordinate): void {
    const diff = this.coord.vec.map((x, i) => x - (other.vec[i] ?? 0))
    const mag = magnitude(diff)
    const unit = mag > ZERO_THRESHOLD_MS ? diff.map(x => x / mag) : this.randomUnit()
    this.coord.vec = this.coord.vec.map((x, i) => x + (unit[i] ?? 0) * force)
    // Heights take the same share of the move as in the paper's height-vector model,
    // but only when there is a real direction to scale against.
    if (mag > ZERO_THRESHOLD_MS) {
      const height = this.coord.height + (this.coord.height + other.height) * force / mag
      this.coord.height = Math.max(height, this.config.heightMinMs)
    }
  }

  /** Random unit vector: coincident nodes need some direction to separate in. */
  private randomUnit (): number[] {
    const v = this.coord.vec.map(() => this.random() - 0.5)
    const mag = magnitude(v)
    if (mag > ZERO_THRESHOLD_MS) return v.map(x => x / mag)
    // A degenerate draw (e.g. a constant stub): any fixed axis still separates.
    return v.map((_, i) => (i === 0 ? 1 : 0))
  }
}

function isValidCoordinate (c: Coordinate): boolean {
  return c.vec.every(Number.isFinite) && Number.isFinite(c.height) && Number.isFinite(c.error) && Number.isFinite(c.adjustment)
}
