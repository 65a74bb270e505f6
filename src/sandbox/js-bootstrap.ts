/**
 * Source evaluated in every fresh context before the job module. It makes the
 * context deterministic and returns `bind(namespace)`, which returns the one
 * function the host calls: `call(fn, input, ctx, seed)` -> a tagged string,
 * 'o' + JSON of the result, or 'e' + JSON of `{ message, where }` when the
 * task's code threw or returned something that is not JSON.
 *
 * Everything the call path needs (JSON.stringify, Object.getPrototypeOf...) is
 * captured here, before the job's code can replace it. This is about
 * determinism, not about security: the isolate itself is the boundary.
 */
export const BOOTSTRAP = String.raw`
'use strict'
const g = globalThis
const RealDate = Date
const stringify = JSON.stringify
const getPrototypeOf = Object.getPrototypeOf
const objectProto = Object.prototype
const objectKeys = Object.keys
const isArray = Array.isArray
const isFiniteNumber = Number.isFinite
const hasOwn = Object.hasOwn
const defineProperty = Object.defineProperty

// Math.random: mulberry32, re-seeded before every call
let state = 0
const random = function random () {
  state = (state + 0x6D2B79F5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
defineProperty(Math, 'random', { value: random, writable: true, configurable: true })

// the clock stands still at the epoch: new Date() and Date.now() are 0
const FixedDate = function Date (...args) {
  if (new.target === undefined) return new RealDate(0).toString()
  return Reflect.construct(RealDate, args.length === 0 ? [0] : args, new.target)
}
FixedDate.prototype = RealDate.prototype
defineProperty(RealDate.prototype, 'constructor', { value: FixedDate, writable: true, configurable: true })
FixedDate.now = function now () { return 0 }
FixedDate.parse = RealDate.parse
FixedDate.UTC = RealDate.UTC
defineProperty(g, 'Date', { value: FixedDate, writable: true, configurable: true })

// GC-dependent, shared-memory and nested-runtime features: results could
// depend on the worker, so they are not offered
for (const name of ['WeakRef', 'FinalizationRegistry', 'SharedArrayBuffer', 'Atomics', 'WebAssembly']) delete g[name]
const noop = function () {}
const console = {}
for (const name of ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir', 'table', 'time', 'timeEnd', 'count', 'assert', 'group', 'groupEnd']) console[name] = noop
defineProperty(g, 'console', { value: console, writable: true, configurable: true })

function describe (value) {
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'symbol') return 'a symbol'
  if (typeof value === 'bigint') return 'a bigint (' + value + 'n)'
  if (typeof value === 'number') return String(value)
  const proto = getPrototypeOf(value)
  const name = proto != null && hasOwn(proto, 'constructor') && typeof proto.constructor === 'function' ? proto.constructor.name : 'object'
  return 'a ' + (name || 'object')
}

// JSON.stringify would quietly drop undefined and functions and turn NaN into
// null; a task's output must mean the same on every worker, so refuse instead
function checkJson (value, path, seen) {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return
  if (typeof value === 'number') {
    if (isFiniteNumber(value)) return
  } else if (typeof value === 'object') {
    if (seen.has(value)) throw new TypeError('the result is not JSON: ' + path + ' is a circular reference')
    seen.add(value)
    if (isArray(value)) {
      for (let i = 0; i < value.length; i++) checkJson(value[i], path + '[' + i + ']', seen)
    } else {
      const proto = getPrototypeOf(value)
      if (proto !== objectProto && proto !== null) throw new TypeError('the result is not JSON: ' + path + ' is ' + describe(value) + ' (use plain objects and arrays)')
      const keys = objectKeys(value)
      for (let i = 0; i < keys.length; i++) checkJson(value[keys[i]], path + '.' + keys[i], seen)
    }
    seen.delete(value)
    return
  }
  throw new TypeError('the result is not JSON: ' + path + ' is ' + describe(value))
}

function where (err) {
  const stack = err != null && typeof err.stack === 'string' ? err.stack : ''
  const lines = stack.split('\n')
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim()
    if (line.includes('job.js')) return line.replace('file:///job.js', 'job.js')
  }
  return undefined
}

function failure (err) {
  let message
  try {
    message = err instanceof Error ? err.message : String(err)
  } catch {
    message = 'a value that is not an Error was thrown'
  }
  return 'e' + stringify({ name: err instanceof Error ? String(err.name) : undefined, message, where: where(err) })
}

return function bind (ns) {
  return async function call (fn, input, ctx, seed) {
    state = seed >>> 0
    try {
      const result = ctx === undefined ? await ns[fn](input) : await ns[fn](input, ctx)
      checkJson(result, fn + '()', new Set())
      return 'o' + stringify(result)
    } catch (err) {
      return failure(err)
    }
  }
}
`
