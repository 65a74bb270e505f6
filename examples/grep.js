/**
 * grep: the lines of the input that match a regular expression, in input order.
 *
 *   lepton submit examples/grep.js --input logs/ --arg pattern='timeout|refused' --arg flags=i
 *
 * ctx.args.pattern is a JavaScript regular expression (required);
 * ctx.args.flags are its flags (e.g. "i"; "g" and "y" are ignored, they would
 * make matching depend on the previous line).
 */

/** -> the matching lines of this partition, without their line ends. */
export function map (input, ctx) {
  const pattern = ctx.args.pattern
  if (pattern == null || pattern === '') throw new Error('grep needs a pattern: --arg pattern=REGEX')
  const re = new RegExp(pattern, (ctx.args.flags ?? '').replace(/[gy]/g, ''))
  const lines = toText(input).split(/\r?\n/)
  if (lines.at(-1) === '') lines.pop() // the input's final newline ends a line, it does not start one
  return lines.filter(line => re.test(line))
}

/** Concatenates in order (the values arrive in task order). */
export function combine (values) {
  return values.flat()
}

export function reduce (values) {
  return values.flat()
}

// a partition that is not valid UTF-8 arrives as bytes: read it as Latin-1
function toText (input) {
  if (typeof input === 'string') return input
  let text = ''
  for (let i = 0; i < input.length; i += 8192) text += String.fromCharCode(...input.subarray(i, i + 8192))
  return text
}
