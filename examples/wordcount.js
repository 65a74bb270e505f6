/**
 * Word count: how often each word occurs in the input.
 *
 *   lepton submit examples/wordcount.js --input corpus.txt --partitions 8
 *
 * Words are runs of Unicode letters (with their combining marks), lowercased;
 * everything else separates them. The result is an object { word: count }
 * with its keys sorted, so it is the same however the input was partitioned.
 */

const NOT_A_LETTER = /[^\p{L}\p{M}]+/u

/** One partition: its text -> { word: count }. */
export function map (input) {
  const counts = new Map()
  for (const word of toText(input).toLowerCase().split(NOT_A_LETTER)) {
    if (word !== '') counts.set(word, (counts.get(word) ?? 0) + 1)
  }
  return sorted(counts)
}

/** Several map outputs of one worker -> one (the same merge as reduce). */
export function combine (values) {
  return merge(values)
}

/** All outputs -> the total counts. */
export function reduce (values) {
  return merge(values)
}

function merge (values) {
  const counts = new Map()
  for (const value of values) {
    for (const [word, n] of Object.entries(value)) counts.set(word, (counts.get(word) ?? 0) + n)
  }
  return sorted(counts)
}

// a Map, then a sorted plain object: no clash with Object.prototype names
// ("constructor", "__proto__"), and the key order never depends on the input order
function sorted (counts) {
  return Object.fromEntries([...counts].sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
}

// a partition that is not valid UTF-8 arrives as bytes: read it as Latin-1
function toText (input) {
  if (typeof input === 'string') return input
  let text = ''
  for (let i = 0; i < input.length; i += 8192) text += String.fromCharCode(...input.subarray(i, i + 8192))
  return text
}
