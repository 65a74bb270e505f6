import { parseArgs } from 'node:util'
import { LeptonError } from '../errors.ts'

export type OptionSpec = { type: 'string' | 'boolean', multiple?: boolean, short?: string, description: string, valueName?: string }

export interface Command {
  name: string
  summary: string
  /** Positional arguments, as shown in usage (e.g. "[PEER]"). */
  args?: string
  options: Record<string, OptionSpec>
  run(parsed: ParsedArgs): Promise<number | undefined>
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>
  positionals: string[]
}

/** A mistake in how the command was called: printed with a pointer to --help. */
export class UsageError extends LeptonError {
  override name = 'UsageError'
}

// Flag groups shared by several commands, defined once.
export const repoFlag: Record<string, OptionSpec> = {
  repo: { type: 'string', valueName: 'DIR', description: 'repo folder (default: $LEPTON_REPO or ~/.lepton)' }
}
export const jsonFlag: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print JSON for scripts' }
}
const helpFlag: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', description: 'show this help' }
}

export function helpText (cmd: Command): string {
  const options = { ...cmd.options, ...helpFlag }
  const lines = [`Usage: lepton ${cmd.name}${cmd.args != null ? ' ' + cmd.args : ''} [options]`, '', cmd.summary, '', 'Options:']
  const rows = Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short != null ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : ''}`
    return [flag, spec.description + (spec.multiple === true ? ' (repeatable)' : '')] as const
  })
  const width = Math.max(...rows.map(r => r[0].length))
  for (const [flag, text] of rows) lines.push(`  ${flag.padEnd(width)}  ${text}`)
  return lines.join('\n')
}

/** Parses argv for one command; unknown flags and missing values become UsageErrors. */
export function parseCommandArgs (cmd: Command, argv: string[]): ParsedArgs {
  const options = Object.fromEntries(Object.entries({ ...cmd.options, ...helpFlag })
    .map(([name, spec]) => [name, { type: spec.type, multiple: spec.multiple === true, ...(spec.short != null ? { short: spec.short } : {}) }]))
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
    return { values: values as ParsedArgs['values'], positionals }
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]?.replace(/\. To specify a positional.*$/, '') ?? 'bad arguments'
    throw new UsageError(`${message}; see "lepton ${cmd.name} --help"`)
  }
}

export function expectPositionals (cmd: Command, parsed: ParsedArgs, max: number): void {
  if (parsed.positionals.length > max) {
    throw new UsageError(`unexpected argument "${parsed.positionals[max] ?? ''}"; see "lepton ${cmd.name} --help"`)
  }
}

export function str (parsed: ParsedArgs, name: string): string | undefined {
  const v = parsed.values[name]
  return typeof v === 'string' ? v : undefined
}

export function list (parsed: ParsedArgs, name: string): string[] | undefined {
  const v = parsed.values[name]
  return Array.isArray(v) ? v : undefined
}

export function flag (parsed: ParsedArgs, name: string): boolean {
  return parsed.values[name] === true
}

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

/** Prints rows as aligned columns. */
export function printTable (header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join('  ')
  process.stdout.write([line(header), ...rows.map(line)].join('\n') + '\n')
}

export const timeoutFlag: Record<string, OptionSpec> = {
  timeout: { type: 'string', valueName: 'SECONDS', description: 'how long to search the mesh for holders of the CID (default 30)' }
}

/** --timeout SECONDS as milliseconds, or undefined. */
export function timeoutMs (parsed: ParsedArgs): number | undefined {
  const s = secondsFlag(parsed, 'timeout')
  return s == null ? undefined : Math.ceil(s * 1000)
}

/** --NAME SECONDS: a positive number, or undefined when absent. */
export function secondsFlag (parsed: ParsedArgs, name: string): number | undefined {
  const raw = str(parsed, name)
  if (raw == null) return undefined
  const s = Number(raw)
  if (!Number.isFinite(s) || s <= 0) throw new UsageError(`--${name} must be a positive number of seconds, not "${raw}"`)
  return s
}

/** --NAME N: an integer from `min` to `max`, or undefined when absent. */
export function intFlag (parsed: ParsedArgs, name: string, min: number, max?: number): number | undefined {
  const raw = str(parsed, name)
  if (raw == null) return undefined
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min || (max != null && n > max)) {
    throw new UsageError(`--${name} must be an integer ${max == null ? `of at least ${min}` : `from ${min} to ${max}`}, not "${raw}"`)
  }
  return n
}

/** Exactly one positional argument named `what`. */
export function onePositional (cmd: Command, parsed: ParsedArgs, what: string): string {
  expectPositionals(cmd, parsed, 1)
  const value = parsed.positionals[0]
  if (value == null) throw new UsageError(`missing ${what}; see "lepton ${cmd.name} --help"`)
  return value
}
