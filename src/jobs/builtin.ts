/**
 * The reducer of jobs whose map is WebAssembly (a WASI command prints its
 * output; reducing stays in JavaScript): sums numbers, and objects key by key,
 * recursively; anything else is collected in a list.
 */
export const SUM_REDUCER = `
function add (a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a + b
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out = { ...a }
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? add(out[k], v) : v
    return out
  }
  return [].concat(a, b)
}
export function reduce (values) {
  return values.length === 0 ? null : values.reduce(add)
}
`
