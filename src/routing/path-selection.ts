import { LeptonError } from '../errors.ts'

/**
 * Overlay path selection (RON / Detour style): per destination, pick the direct
 * link or a detour through one or two intermediate peers, and stick with the
 * current choice unless another is better by a margin that is relative, absolute
 * and larger than the links' measured jitter, so routes do not flap and noise
 * does not buy a detour. Pure and deterministic: no I/O, no clock, no
 * randomness. All times are round-trip times in milliseconds.
 *
 * Cost: a path of n candidate peers is searched in O(n^2) per destination (every
 * ordered pair for 2-hop detours), so O(d * n^2) for d destinations: fine for
 * the <= ~100 peers a node talks to, not meant for thousands.
 */

/** One link between two peers; `measured: false` means a Vivaldi estimate. */
export interface Link {
  from: string
  to: string
  /** Round-trip time in ms. */
  rttMs: number
  measured: boolean
  /** Measured jitter of the link in ms (how much its RTT samples vary), if known. */
  jitterMs?: number
}

/** Known RTTs between peers. Links are symmetric: `rttMs(a, b)` answers for either direction. */
export interface LinkTable {
  /** Round-trip time in ms of the link between `from` and `to`, or undefined if unknown. */
  rttMs: (from: string, to: string) => { rttMs: number, measured: boolean, jitterMs?: number } | undefined
}

/** A chosen route to one destination. */
export interface Route {
  destination: string
  /** Peers to traverse, from the next hop to the destination: direct is `[destination]`. */
  path: string[]
  /** Actual RTT of the path in ms: the sum of its links, without the estimate penalty. */
  rttMs: number
  /** RTT of the direct link in ms, or null when there is none. */
  directRttMs: number | null
  /**
   * E = (T0 - T) / T0, T0 the direct RTT and T `rttMs`: 0.9 means the route takes a
   * tenth of the direct time. 0 when direct or T0 is unknown (or 0). Can be negative
   * when a route is kept by stickiness, or wins only because the direct link is an
   * (penalised) estimate.
   */
  improvement: number
}

/** Tuning for path selection. */
export interface PathSelectionConfig {
  /** Intermediate peers a detour may use. */
  maxHops: 1 | 2
  /** A new path must be at least this fraction faster than the current one (0.1 = 10%). */
  switchRelative: number
  /** ...and at least this many ms faster. */
  switchAbsoluteMs: number
  /**
   * ...and faster by more than this many times the summed jitter of both paths'
   * links (where known): a gain smaller than the noise of the estimates is noise.
   */
  switchJitterFactor: number
  /** Estimated (unmeasured) links count as this many times slower (>= 1), so measured links win ties. */
  estimatePenalty: number
}

/** Default intermediate peers per detour. */
export const DEFAULT_MAX_HOPS = 2
/** Default relative switching margin: a new path must be 10% faster. */
export const DEFAULT_SWITCH_RELATIVE = 0.1
/** Default absolute switching margin in ms. */
export const DEFAULT_SWITCH_ABSOLUTE_MS = 2
/**
 * Default jitter factor. The best of many noisy detours looks faster than the
 * direct link by luck alone (the least of n estimates sits ~2 standard deviations
 * low for n ~ 20); jitter is about one standard deviation of the samples.
 */
export const DEFAULT_SWITCH_JITTER_FACTOR = 2
/** Default multiplier on the RTT of estimated links. */
export const DEFAULT_ESTIMATE_PENALTY = 1.2
/** Costs (ms) closer than this are equal, so float rounding in sums cannot break ties. */
export const COST_EPSILON_MS = 1e-9

/** Default {@link PathSelectionConfig}. */
export const DEFAULT_PATH_SELECTION: Readonly<PathSelectionConfig> = Object.freeze({
  maxHops: DEFAULT_MAX_HOPS,
  switchRelative: DEFAULT_SWITCH_RELATIVE,
  switchAbsoluteMs: DEFAULT_SWITCH_ABSOLUTE_MS,
  switchJitterFactor: DEFAULT_SWITCH_JITTER_FACTOR,
  estimatePenalty: DEFAULT_ESTIMATE_PENALTY
})

/** Thrown by {@link selectRoute} when no direct link or detour reaches the destination. */
export class NoRouteError extends LeptonError {
  override name = 'NoRouteError'
}

/**
 * Builds a {@link LinkTable} from a list of links, direction-blind. Per pair, measured
 * links win over estimates; several values of the same kind (both directions, or
 * repeats) are averaged: both ends time the same round trip, so the mean halves the
 * noise where the minimum would bias every link towards its luckiest sample. Jitter
 * (of measured links) is averaged the same way.
 * Self-links and non-finite or negative RTTs are ignored.
 */
export function linkTable (links: Iterable<Link>): LinkTable {
  const acc = new Map<string, { mSum: number, mCount: number, eSum: number, eCount: number, jSum: number, jCount: number }>()
  for (const link of links) {
    if (link.from === link.to || !Number.isFinite(link.rttMs) || link.rttMs < 0) continue
    const key = pairKey(link.from, link.to)
    const entry = acc.get(key) ?? { mSum: 0, mCount: 0, eSum: 0, eCount: 0, jSum: 0, jCount: 0 }
    if (link.measured) {
      entry.mSum += link.rttMs
      entry.mCount++
      if (link.jitterMs != null && Number.isFinite(link.jitterMs) && link.jitterMs >= 0) {
        entry.jSum += link.jitterMs
        entry.jCount++
      }
    } else {
      entry.eSum += link.rttMs
      entry.eCount++
    }
    acc.set(key, entry)
  }
  const table = new Map<string, { rttMs: number, measured: boolean, jitterMs?: number }>()
  for (const [key, e] of acc) {
    if (e.mCount === 0) table.set(key, { rttMs: e.eSum / e.eCount, measured: false })
    else table.set(key, { rttMs: e.mSum / e.mCount, measured: true, ...(e.jCount > 0 ? { jitterMs: e.jSum / e.jCount } : {}) })
  }
  return {
    rttMs: (from, to) => {
      const found = table.get(pairKey(from, to))
      return found == null ? undefined : { ...found }
    }
  }
}

/**
 * The best path from `self` to `destination`: direct, 1-hop (self->a->dest) or 2-hop
 * (self->a->b->dest) through distinct `peers` (self and destination are never
 * intermediates; the destination need not be in `peers`). Compared by cost, the sum
 * of link RTTs with estimates times `estimatePenalty`; equal costs go to fewer hops,
 * then the lexicographically smaller path. Undefined when nothing reaches the
 * destination (or it is `self`). O(n^2) in the number of peers.
 */
export function bestPath (self: string, destination: string, peers: string[], links: LinkTable, config?: Partial<PathSelectionConfig>): Route | undefined {
  const cfg = resolveConfig(config)
  const { best, direct } = search(self, destination, peers, links, cfg)
  return best == null ? undefined : toRoute(destination, best, direct)
}

/**
 * The route to use now, with stickiness. The incumbent, `current` re-priced with
 * today's links, is kept unless the best path beats its cost by at least
 * `switchRelative` x that cost AND at least `switchAbsoluteMs` AND at least
 * `switchJitterFactor` x the summed jitter of both paths' links. `current` is dropped
 * at once when one of its intermediate peers left `peers`, one of its links is gone,
 * it has more hops than `maxHops` or is for another destination; then (or with no
 * `current`) the direct link is the incumbent, so a detour is only taken when it
 * beats the direct link by all three margins. With no direct link, the best path wins.
 * @throws {NoRouteError} when no path reaches the destination.
 */
export function selectRoute (self: string, destination: string, peers: string[], links: LinkTable, current: Route | undefined, config?: Partial<PathSelectionConfig>): Route {
  const route = choose(self, destination, peers, links, current, resolveConfig(config))
  if (route == null) throw new NoRouteError(`no route from ${self} to ${destination}`)
  return route
}

/**
 * {@link selectRoute} for every destination (with its entry in `current`), leaving out
 * the destinations with no route. O(d * n^2) for d destinations and n peers.
 */
export function selectRoutes (self: string, destinations: string[], peers: string[], links: LinkTable, current: Map<string, Route>, config?: Partial<PathSelectionConfig>): Map<string, Route> {
  const cfg = resolveConfig(config)
  const routes = new Map<string, Route>()
  for (const destination of destinations) {
    if (routes.has(destination)) continue
    const route = choose(self, destination, peers, links, current.get(destination), cfg)
    if (route != null) routes.set(destination, route)
  }
  return routes
}

interface Priced { path: string[], rttMs: number, cost: number, jitterMs: number }
interface Edge { rttMs: number, cost: number, jitterMs: number }

function choose (self: string, destination: string, peers: string[], links: LinkTable, current: Route | undefined, cfg: PathSelectionConfig): Route | undefined {
  const { best, direct } = search(self, destination, peers, links, cfg)
  if (best == null) return undefined
  // The incumbent is the current route while it is usable, else the direct link: a
  // detour costs every hop's CPU and a relayed connection, so even a first choice must
  // beat the direct link by the margins (a noisy sample must not buy a detour).
  const kept = (current == null ? undefined : reprice(self, destination, peers, links, current, cfg)) ??
    (direct == null ? undefined : { path: [destination], ...direct })
  if (kept == null) return toRoute(destination, best, direct)
  const gain = kept.cost - best.cost
  const switchNow = gain > COST_EPSILON_MS &&
    gain + COST_EPSILON_MS >= cfg.switchRelative * kept.cost &&
    gain + COST_EPSILON_MS >= cfg.switchAbsoluteMs &&
    gain + COST_EPSILON_MS >= cfg.switchJitterFactor * (kept.jitterMs + best.jitterMs)
  return toRoute(destination, switchNow ? best : kept, direct)
}

function search (self: string, destination: string, peers: string[], links: LinkTable, cfg: PathSelectionConfig): { best: Priced | undefined, direct: Edge | undefined } {
  if (self === destination) return { best: undefined, direct: undefined }
  const direct = edge(links, self, destination, cfg.estimatePenalty)
  let best: Priced | undefined = direct == null ? undefined : { path: [destination], ...direct }
  const consider = (path: string[], rttMs: number, cost: number, jitterMs: number): void => {
    if (best == null || better(cost, path, best)) best = { path, rttMs, cost, jitterMs }
  }
  const candidates = [...new Set(peers)].filter(p => p !== self && p !== destination).sort()
  const first = new Map<string, Edge>()
  const last = new Map<string, Edge>()
  for (const p of candidates) {
    const a = edge(links, self, p, cfg.estimatePenalty)
    if (a != null) first.set(p, a)
    const b = edge(links, p, destination, cfg.estimatePenalty)
    if (b != null) last.set(p, b)
  }
  for (const [a, ea] of first) {
    const eb = last.get(a)
    if (eb != null) consider([a, destination], ea.rttMs + eb.rttMs, ea.cost + eb.cost, ea.jitterMs + eb.jitterMs)
  }
  if (cfg.maxHops >= 2) {
    for (const [a, ea] of first) {
      for (const [b, eb] of last) {
        if (a === b) continue
        const mid = edge(links, a, b, cfg.estimatePenalty)
        if (mid != null) consider([a, b, destination], ea.rttMs + mid.rttMs + eb.rttMs, ea.cost + mid.cost + eb.cost, ea.jitterMs + mid.jitterMs + eb.jitterMs)
      }
    }
  }
  return { best, direct }
}

/** `current` priced with today's links, or undefined if it is no longer usable. */
function reprice (self: string, destination: string, peers: string[], links: LinkTable, current: Route, cfg: PathSelectionConfig): Priced | undefined {
  const path = current.path
  if (current.destination !== destination || path.length === 0 || path.length - 1 > cfg.maxHops) return undefined
  if (path[path.length - 1] !== destination) return undefined
  const hops = path.slice(0, -1)
  const allowed = new Set(peers)
  if (new Set(hops).size !== hops.length) return undefined
  if (hops.some(h => h === self || h === destination || !allowed.has(h))) return undefined
  let from = self
  let rttMs = 0
  let cost = 0
  let jitterMs = 0
  for (const to of path) {
    const e = edge(links, from, to, cfg.estimatePenalty)
    if (e == null) return undefined
    rttMs += e.rttMs
    cost += e.cost
    jitterMs += e.jitterMs
    from = to
  }
  return { path: [...path], rttMs, cost, jitterMs }
}

function edge (links: LinkTable, from: string, to: string, penalty: number): Edge | undefined {
  const link = links.rttMs(from, to) ?? links.rttMs(to, from)
  if (link == null || !Number.isFinite(link.rttMs) || link.rttMs < 0) return undefined
  const jitterMs = link.jitterMs != null && Number.isFinite(link.jitterMs) && link.jitterMs > 0 ? link.jitterMs : 0
  return { rttMs: link.rttMs, cost: link.measured ? link.rttMs : link.rttMs * penalty, jitterMs }
}

function better (cost: number, path: string[], than: Priced): boolean {
  if (Math.abs(cost - than.cost) > COST_EPSILON_MS) return cost < than.cost
  if (path.length !== than.path.length) return path.length < than.path.length
  for (let i = 0; i < path.length; i++) {
    const a = path[i] as string
    const b = than.path[i] as string
    if (a !== b) return a < b
  }
  return false
}

function toRoute (destination: string, p: Priced, direct: Edge | undefined): Route {
  const directRttMs = direct?.rttMs ?? null
  const improvement = p.path.length === 1 || directRttMs == null || directRttMs === 0 ? 0 : (directRttMs - p.rttMs) / directRttMs
  return { destination, path: [...p.path], rttMs: p.rttMs, directRttMs, improvement }
}

function pairKey (a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`
}

function resolveConfig (config: Partial<PathSelectionConfig> = {}): PathSelectionConfig {
  const cfg: PathSelectionConfig = {
    maxHops: config.maxHops ?? DEFAULT_MAX_HOPS,
    switchRelative: config.switchRelative ?? DEFAULT_SWITCH_RELATIVE,
    switchAbsoluteMs: config.switchAbsoluteMs ?? DEFAULT_SWITCH_ABSOLUTE_MS,
    switchJitterFactor: config.switchJitterFactor ?? DEFAULT_SWITCH_JITTER_FACTOR,
    estimatePenalty: config.estimatePenalty ?? DEFAULT_ESTIMATE_PENALTY
  }
  if (cfg.maxHops !== 1 && cfg.maxHops !== 2) throw new RangeError(`maxHops must be 1 or 2, got ${String(cfg.maxHops)}`)
  if (!(cfg.switchRelative >= 0 && cfg.switchRelative < 1)) throw new RangeError(`switchRelative must be in [0, 1), got ${cfg.switchRelative}`)
  if (!(cfg.switchAbsoluteMs >= 0 && Number.isFinite(cfg.switchAbsoluteMs))) throw new RangeError(`switchAbsoluteMs must be >= 0, got ${cfg.switchAbsoluteMs}`)
  if (!(cfg.switchJitterFactor >= 0 && Number.isFinite(cfg.switchJitterFactor))) throw new RangeError(`switchJitterFactor must be >= 0, got ${cfg.switchJitterFactor}`)
  if (!(cfg.estimatePenalty >= 1 && Number.isFinite(cfg.estimatePenalty))) throw new RangeError(`estimatePenalty must be >= 1, got ${cfg.estimatePenalty}`)
  return cfg
}
