/**
 * A small WebAssembly text assembler for the modules in examples/ and the
 * sandbox tests, so they build without a toolchain dependency.
 *
 *   node scripts/wat2wasm.ts examples/linecount.wat [out.wasm]
 *
 * It covers a subset of the text format: module fields import (func), memory,
 * global, func, export, data; instructions in flat (not folded) form, with
 * named or numeric labels, locals, globals and functions. Anything else is an
 * error with its position; `wat2wasm` from wabt reads the same files.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { leb } from '../src/sandbox/wasm-binary.ts'

type Sexp = string | Sexp[]
interface FuncType { params: number[], results: number[] }
interface Func { name?: string, type: FuncType, locals: Map<string, number>, localTypes: number[], body: Sexp[], exportName?: string }

const VALTYPE: Record<string, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c }
const SIMPLE: Record<string, number> = {
  unreachable: 0x00,
  nop: 0x01,
  else: 0x05,
  end: 0x0b,
  return: 0x0f,
  drop: 0x1a,
  select: 0x1b,
  'i32.eqz': 0x45,
  'i32.eq': 0x46,
  'i32.ne': 0x47,
  'i32.lt_s': 0x48,
  'i32.lt_u': 0x49,
  'i32.gt_s': 0x4a,
  'i32.gt_u': 0x4b,
  'i32.le_s': 0x4c,
  'i32.le_u': 0x4d,
  'i32.ge_s': 0x4e,
  'i32.ge_u': 0x4f,
  'i64.eqz': 0x50,
  'i64.eq': 0x51,
  'i64.ne': 0x52,
  'i64.lt_s': 0x53,
  'i64.lt_u': 0x54,
  'i64.gt_s': 0x55,
  'i64.gt_u': 0x56,
  'i32.add': 0x6a,
  'i32.sub': 0x6b,
  'i32.mul': 0x6c,
  'i32.div_s': 0x6d,
  'i32.div_u': 0x6e,
  'i32.rem_s': 0x6f,
  'i32.rem_u': 0x70,
  'i32.and': 0x71,
  'i32.or': 0x72,
  'i32.xor': 0x73,
  'i32.shl': 0x74,
  'i32.shr_s': 0x75,
  'i32.shr_u': 0x76,
  'i64.add': 0x7c,
  'i64.sub': 0x7d,
  'i64.mul': 0x7e,
  'i64.div_s': 0x7f,
  'i64.div_u': 0x80,
  'i64.rem_s': 0x81,
  'i64.rem_u': 0x82,
  'i32.wrap_i64': 0xa7,
  'i64.extend_i32_s': 0xac,
  'i64.extend_i32_u': 0xad
}
/** Memory instructions: opcode and natural alignment (log2). */
const MEMORY: Record<string, [number, number]> = {
  'i32.load': [0x28, 2],
  'i64.load': [0x29, 3],
  'i32.load8_s': [0x2c, 0],
  'i32.load8_u': [0x2d, 0],
  'i32.store': [0x36, 2],
  'i64.store': [0x37, 3],
  'i32.store8': [0x3a, 0]
}

export function assemble (text: string): Uint8Array {
  const tree = parse(tokenize(text))
  if (!Array.isArray(tree) || tree[0] !== 'module') throw new Error('expected (module ...)')
  const types: FuncType[] = []
  const typeIndex = (t: FuncType): number => {
    const i = types.findIndex(u => u.params.join() === t.params.join() && u.results.join() === t.results.join())
    return i >= 0 ? i : types.push(t) - 1
  }
  const imports: Array<{ module: string, name: string, func: Func }> = []
  const funcs: Func[] = []
  const memories: Array<{ name?: string, min: number, max?: number }> = []
  const globals: Array<{ name?: string, type: number, mutable: boolean, init: Sexp }> = []
  const exports: Array<{ name: string, kind: number, ref: string }> = []
  const data: Array<{ offset: Sexp, bytes: Uint8Array }> = []

  for (const field of tree.slice(1)) {
    const [kind, ...rest] = list(field)
    if (kind === 'import') {
      const [mod, name, desc] = rest
      const d = list(desc)
      if (d[0] !== 'func') throw new Error('only function imports are supported')
      imports.push({ module: str(mod), name: str(name), func: signature(d.slice(1)) })
    } else if (kind === 'func') {
      funcs.push(signature(rest))
    } else if (kind === 'memory') {
      const name = isName(rest[0]) ? rest.shift() as string : undefined
      if (Array.isArray(rest[0]) && rest[0][0] === 'export') exports.push({ name: str((rest.shift() as Sexp[])[1]), kind: 2, ref: String(memories.length) })
      memories.push({ name, min: Number(rest[0]), max: rest[1] != null ? Number(rest[1]) : undefined })
    } else if (kind === 'global') {
      const name = isName(rest[0]) ? rest.shift() as string : undefined
      const t = rest[0] as Sexp
      const mutable = Array.isArray(t) && t[0] === 'mut'
      globals.push({ name, type: valtype(mutable ? (t as Sexp[])[1] : t), mutable, init: rest[1] as Sexp })
    } else if (kind === 'export') {
      const [name, desc] = rest
      const d = list(desc)
      exports.push({ name: str(name), kind: d[0] === 'func' ? 0 : d[0] === 'memory' ? 2 : d[0] === 'global' ? 3 : -1, ref: String(d[1]) })
    } else if (kind === 'data') {
      const [offset, ...strings] = rest
      data.push({ offset: offset as Sexp, bytes: concat(strings.map(s => Buffer.from(unescape(str(s)), 'latin1'))) })
    } else {
      throw new Error(`unsupported module field (${String(kind)} ...)`)
    }
  }

  const allFuncs = [...imports.map(i => i.func), ...funcs]
  const funcIndex = (ref: string): number => resolve(ref, allFuncs.map(f => f.name), 'function')
  const globalIndex = (ref: string): number => resolve(ref, globals.map(g => g.name), 'global')
  const memIndex = (ref: string): number => resolve(ref, memories.map(m => m.name), 'memory')

  const constExpr = (e: Sexp): number[] => {
    const [op, value] = list(e)
    if (op === 'i32.const') return [0x41, ...sleb(BigInt(value as string)), 0x0b]
    if (op === 'i64.const') return [0x42, ...sleb(BigInt(value as string)), 0x0b]
    throw new Error(`unsupported constant expression ${String(op)}`)
  }

  const code = (f: Func): number[] => {
    const out: number[] = []
    const labels: Array<string | undefined> = []
    const body = f.body
    for (let i = 0; i < body.length; i++) {
      const op = body[i]
      if (typeof op !== 'string') throw new Error(`folded instructions are not supported: (${String(list(op)[0])} ...)`)
      const next = (): string => String(body[++i])
      if (op === 'block' || op === 'loop' || op === 'if') {
        out.push(op === 'block' ? 0x02 : op === 'loop' ? 0x03 : 0x04)
        labels.push(isName(body[i + 1]) ? next() : undefined)
        const bt = body[i + 1]
        if (Array.isArray(bt) && bt[0] === 'result') {
          out.push(valtype(bt[1] as Sexp))
          i++
        } else {
          out.push(0x40)
        }
      } else if (op === 'end') {
        out.push(0x0b)
        labels.pop()
      } else if (op === 'br' || op === 'br_if') {
        out.push(op === 'br' ? 0x0c : 0x0d)
        const ref = next()
        const depth = ref.startsWith('$') ? labels.length - 1 - labels.lastIndexOf(ref) : Number(ref)
        if (depth >= labels.length || Number.isNaN(depth)) throw new Error(`unknown label ${ref}`)
        out.push(...uleb(depth))
      } else if (op === 'call') {
        out.push(0x10, ...uleb(funcIndex(next())))
      } else if (op === 'local.get' || op === 'local.set' || op === 'local.tee') {
        const ref = next()
        const index = ref.startsWith('$') ? f.locals.get(ref) : Number(ref)
        if (index == null) throw new Error(`unknown local ${ref}`)
        out.push({ 'local.get': 0x20, 'local.set': 0x21, 'local.tee': 0x22 }[op], ...uleb(index))
      } else if (op === 'global.get' || op === 'global.set') {
        out.push(op === 'global.get' ? 0x23 : 0x24, ...uleb(globalIndex(next())))
      } else if (op === 'i32.const' || op === 'i64.const') {
        out.push(op === 'i32.const' ? 0x41 : 0x42, ...sleb(BigInt(next())))
      } else if (op === 'memory.size' || op === 'memory.grow') {
        out.push(op === 'memory.size' ? 0x3f : 0x40, 0x00)
      } else if (MEMORY[op] != null) {
        const [opcode, natural] = MEMORY[op]
        let offset = 0
        let align = natural
        while (typeof body[i + 1] === 'string' && /^(offset|align)=/.test(body[i + 1] as string)) {
          const [k, v] = next().split('=')
          if (k === 'offset') offset = Number(v)
          else align = Math.log2(Number(v))
        }
        out.push(opcode, ...uleb(align), ...uleb(offset))
      } else if (SIMPLE[op] != null) {
        out.push(SIMPLE[op])
      } else {
        throw new Error(`unsupported instruction ${op}`)
      }
    }
    const locals = f.localTypes.slice(f.type.params.length)
    const localDecls = locals.flatMap(t => [0x01, t])
    const fnBody = [...uleb(locals.length), ...localDecls, ...out, 0x0b]
    return [...uleb(fnBody.length), ...fnBody]
  }

  const sections: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
  const section = (id: number, items: number[][]): void => {
    if (items.length === 0) return
    const payload = [...uleb(items.length), ...items.flat()]
    sections.push(id, ...uleb(payload.length), ...payload)
  }
  const name = (s: string): number[] => { const b = [...Buffer.from(s, 'utf8')]; return [...uleb(b.length), ...b] }
  for (const f of allFuncs) typeIndex(f.type)
  section(1, types.map(t => [0x60, ...uleb(t.params.length), ...t.params, ...uleb(t.results.length), ...t.results]))
  section(2, imports.map(i => [...name(i.module), ...name(i.name), 0x00, ...uleb(typeIndex(i.func.type))]))
  section(3, funcs.map(f => uleb(typeIndex(f.type))))
  section(5, memories.map(m => m.max != null ? [0x01, ...uleb(m.min), ...uleb(m.max)] : [0x00, ...uleb(m.min)]))
  section(6, globals.map(g => [g.type, g.mutable ? 1 : 0, ...constExpr(g.init)]))
  const allExports = [...exports, ...allFuncs.flatMap(f => f.exportName != null ? [{ name: f.exportName, kind: 0, ref: f.name ?? String(allFuncs.indexOf(f)) }] : [])]
  section(7, allExports.map(e => {
    if (e.kind < 0) throw new Error(`unsupported export ${e.name}`)
    const index = e.kind === 0 ? funcIndex(e.ref) : e.kind === 2 ? memIndex(e.ref) : globalIndex(e.ref)
    return [...name(e.name), e.kind, ...uleb(index)]
  }))
  section(10, funcs.map(code))
  section(11, data.map(d => [0x00, ...constExpr(d.offset), ...uleb(d.bytes.byteLength), ...d.bytes]))
  return Uint8Array.from(sections)
}

function signature (rest: Sexp[]): Func {
  const f: Func = { type: { params: [], results: [] }, locals: new Map(), localTypes: [], body: [] }
  let i = 0
  if (isName(rest[0])) f.name = rest[i++] as string
  for (; i < rest.length; i++) {
    const item = rest[i]
    if (!Array.isArray(item)) break
    const [kind, ...args] = item
    if (kind === 'export') f.exportName = str(args[0])
    else if (kind === 'param' || kind === 'local') {
      const named = isName(args[0])
      for (const t of named ? args.slice(1) : args) {
        if (named) f.locals.set(args[0] as string, f.localTypes.length)
        f.localTypes.push(valtype(t))
        if (kind === 'param') f.type.params.push(valtype(t))
      }
    } else if (kind === 'result') f.type.results.push(...args.map(valtype))
    else break
  }
  f.body = rest.slice(i)
  return f
}

function resolve (ref: string, names: Array<string | undefined>, what: string): number {
  const index = ref.startsWith('$') ? names.indexOf(ref) : Number(ref)
  if (index < 0 || Number.isNaN(index) || index >= names.length) throw new Error(`unknown ${what} ${ref}`)
  return index
}

function tokenize (text: string): string[] {
  const tokens: string[] = []
  const re = /\(;[\s\S]*?;\)|;;[^\n]*|"(?:[^"\\]|\\.)*"|[()]|[^\s()";]+/g
  for (const m of text.matchAll(re)) {
    if (!m[0].startsWith(';;') && !m[0].startsWith('(;')) tokens.push(m[0])
  }
  return tokens
}

function parse (tokens: string[]): Sexp {
  let pos = 0
  const read = (): Sexp => {
    const token = tokens[pos++]
    if (token == null) throw new Error('unexpected end of input')
    if (token !== '(') return token
    const items: Sexp[] = []
    while (tokens[pos] !== ')') items.push(read())
    pos++
    return items
  }
  return read()
}

function list (x: Sexp | undefined): Sexp[] {
  if (!Array.isArray(x)) throw new Error(`expected a list, found ${String(x)}`)
  return x
}
function str (x: Sexp | undefined): string {
  if (typeof x !== 'string' || !x.startsWith('"')) throw new Error(`expected a string, found ${String(x)}`)
  return x.slice(1, -1)
}
function isName (x: Sexp | undefined): boolean {
  return typeof x === 'string' && x.startsWith('$')
}
function valtype (x: Sexp | undefined): number {
  const t = VALTYPE[String(x)]
  if (t == null) throw new Error(`unknown value type ${String(x)}`)
  return t
}
/** WAT string escapes: \n \t \" \\ \hh. */
function unescape (s: string): string {
  return s.replace(/\\([0-9a-fA-F]{2}|n|t|r|"|'|\\)/g, (_, e: string) => e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e.length === 2 ? String.fromCharCode(parseInt(e, 16)) : e)
}
function concat (parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap(p => [...p]))
}
function uleb (value: number): number[] {
  return [...leb(value)]
}
function sleb (value: bigint): number[] {
  const out: number[] = []
  let v = value
  for (;;) {
    const byte = Number(v & 0x7fn)
    v >>= 7n
    const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0)
    out.push(done ? byte : byte | 0x80)
    if (done) return out
  }
}

if (import.meta.main) {
  const [input, output] = process.argv.slice(2)
  if (input == null) {
    console.error('usage: node scripts/wat2wasm.ts FILE.wat [OUT.wasm]')
    process.exit(2)
  }
  const bytes = assemble(await readFile(input, 'utf8'))
  await writeFile(output ?? input.replace(/\.wat$/, '.wasm'), bytes)
  console.log(`${output ?? input.replace(/\.wat$/, '.wasm')}: ${bytes.byteLength} bytes`)
}
