/**
 * Decodes JSON as Go's encoding/json decodes it into nats-io/jwt's structs, so the signer sees exactly the
 * claims nats-server will see and refuses exactly the tokens it cannot read. JSON.parse cannot do this:
 * it forgets how a number was written (Go refuses `3.0` or `3e0` for an integer field), keeps only the last
 * of two keys that differ in case (Go matches field names case-insensitively and merges objects), and
 * knows no field types.
 */

/** A parsed JSON value that keeps number literals as written and every object key, duplicates included. */
export type JsonNode =
  | { k: 'null' }
  | { k: 'bool'; v: boolean }
  | { k: 'num'; raw: string }
  | { k: 'str'; v: string }
  | { k: 'arr'; items: JsonNode[] }
  | { k: 'obj'; entries: Array<[string, JsonNode]> }

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const WS = /[ \t\n\r]*/y

/** Parses JSON text (RFC 8259, as Go's scanner accepts it); throws a SyntaxError when it is not JSON. */
export function parseJsonNodes(text: string, maxDepth = 64): JsonNode {
  let i = 0
  const skip = () => {
    WS.lastIndex = i
    WS.exec(text)
    i = WS.lastIndex
  }
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i}`)
  }
  const str = (): string => {
    const start = i
    i++
    for (;;) {
      const c = text.charCodeAt(i)
      if (Number.isNaN(c)) fail('unterminated string')
      if (c === 0x22) break
      if (c === 0x5c) i++
      i++
    }
    i++
    return JSON.parse(text.slice(start, i)) as string // escapes and control characters checked by JSON.parse
  }
  const value = (depth: number): JsonNode => {
    if (depth > maxDepth) fail('nesting too deep')
    skip()
    const c = text[i]
    if (c === '{') {
      i++
      const entries: Array<[string, JsonNode]> = []
      skip()
      if (text[i] === '}') {
        i++
        return { k: 'obj', entries }
      }
      for (;;) {
        skip()
        if (text[i] !== '"') fail('expected a key')
        const key = str()
        skip()
        if (text[i++] !== ':') fail('expected :')
        entries.push([key, value(depth + 1)])
        skip()
        const sep = text[i++]
        if (sep === '}') return { k: 'obj', entries }
        if (sep !== ',') fail('expected , or }')
      }
    }
    if (c === '[') {
      i++
      const items: JsonNode[] = []
      skip()
      if (text[i] === ']') {
        i++
        return { k: 'arr', items }
      }
      for (;;) {
        items.push(value(depth + 1))
        skip()
        const sep = text[i++]
        if (sep === ']') return { k: 'arr', items }
        if (sep !== ',') fail('expected , or ]')
      }
    }
    if (c === '"') return { k: 'str', v: str() }
    for (const [word, node] of [['true', { k: 'bool', v: true }], ['false', { k: 'bool', v: false }], ['null', { k: 'null' }]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length
        return node
      }
    }
    NUMBER.lastIndex = i
    const m = NUMBER.exec(text)
    if (m === null) return fail('unexpected character')
    i = NUMBER.lastIndex
    return { k: 'num', raw: m[0] }
  }
  const root = value(0)
  skip()
  if (i !== text.length) fail('unexpected data after the value')
  return root
}

/** Go field types, as far as the claims need them. */
export type GoType =
  | 'string'
  | 'bool'
  | 'int64'
  | 'uint'
  | 'uint8'
  | 'any'
  | { slice: GoType }
  | { map: GoType }
  | { ptr: GoType }
  | { struct: Record<string, GoType> }
  | { custom: (node: JsonNode, ctx: DecodeContext, path: string, prev?: unknown) => unknown }

export interface DecodeContext {
  errors: string[]
  /**
   * Numbers that went through Go's interface{} (a map[string]interface{} re-marshalled before decoding, as
   * jwt does for scoped signing keys) are float64 first: `3.0` is then an integer again.
   */
  viaFloat: boolean
}

const INT_RANGES = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint: [0n, 2n ** 64n - 1n],
  uint8: [0n, 255n],
} as const

const kindOf = (n: JsonNode) => ({ null: 'null', bool: 'bool', num: 'number', str: 'string', arr: 'array', obj: 'object' })[n.k]

function decodeInt(n: JsonNode, type: keyof typeof INT_RANGES, ctx: DecodeContext, path: string): number | undefined {
  if (n.k !== 'num') return void ctx.errors.push(`${path}: cannot unmarshal ${kindOf(n)} into ${type}`)
  let big: bigint
  if (/^-?\d+$/.test(n.raw)) big = BigInt(n.raw)
  else {
    const f = Number(n.raw)
    // Go formats a float64 without an exponent below 1e21; only then is it an integer literal again.
    if (!ctx.viaFloat || !Number.isInteger(f) || Math.abs(f) >= 1e21) {
      return void ctx.errors.push(`${path}: cannot unmarshal number ${n.raw.slice(0, 30)} into ${type}`)
    }
    big = BigInt(f)
  }
  const [lo, hi] = INT_RANGES[type]
  if (big < lo || big > hi) return void ctx.errors.push(`${path}: number ${n.raw.slice(0, 30)} overflows ${type}`)
  return Number(big)
}

/** Plain JavaScript for an `interface{}` field. */
export function plain(n: JsonNode): unknown {
  switch (n.k) {
    case 'null':
      return null
    case 'bool':
    case 'str':
      return n.v
    case 'num':
      return Number(n.raw)
    case 'arr':
      return n.items.map(plain)
    case 'obj': {
      const o: Record<string, unknown> = {}
      for (const [k, v] of n.entries) o[k] = plain(v)
      return o
    }
  }
}

/**
 * Go's field lookup: an exact match first, otherwise a case-insensitive one (encoding/json folds case).
 */
function fieldFor(fields: Record<string, GoType>, key: string): string | undefined {
  if (Object.hasOwn(fields, key)) return key
  const folded = fold(key)
  return Object.keys(fields).find((f) => fold(f) === folded)
}

// Go's simple case folding also maps the long s and the Kelvin sign onto s and k.
const fold = (s: string) => s.toLowerCase().replace(/\u017f/g, 's')

/**
 * Decodes `n` into a value of `type` the way Go would, merging into `prev` where Go decodes into an existing
 * value (structs, maps, pointed-to structs). Type errors are collected in ctx.errors; like Go, decoding goes
 * on after them, so the returned value is only meaningful when there were none.
 */
export function decodeGo(n: JsonNode, type: GoType, ctx: DecodeContext, path: string, prev?: unknown): unknown {
  if (typeof type === 'object' && 'custom' in type) return type.custom(n, ctx, path, prev)
  if (n.k === 'null') {
    // null empties slices, maps and pointers and leaves any other value as it was
    const nilable = typeof type === 'object' && ('slice' in type || 'map' in type || 'ptr' in type)
    return nilable ? null : prev
  }
  if (type === 'any') return plain(n)
  if (type === 'string' || type === 'bool') {
    const want = type === 'string' ? 'str' : 'bool'
    if (n.k !== want) return void ctx.errors.push(`${path}: cannot unmarshal ${kindOf(n)} into ${type}`)
    return n.v
  }
  if (typeof type === 'string') return decodeInt(n, type, ctx, path)
  if ('ptr' in type) return decodeGo(n, type.ptr, ctx, path, prev ?? undefined)
  if ('slice' in type) {
    if (n.k !== 'arr') return void ctx.errors.push(`${path}: cannot unmarshal ${kindOf(n)} into a list`)
    // Go decodes into the elements already there (a list given twice merges element by element), then
    // cuts the list to the new length.
    const before = Array.isArray(prev) ? prev : []
    return n.items.map((item, i) => decodeGo(item, type.slice, ctx, `${path}[${i}]`, before[i]))
  }
  if (n.k !== 'obj') return void ctx.errors.push(`${path}: cannot unmarshal ${kindOf(n)} into an object`)
  const out: Record<string, unknown> = isRecord(prev) ? prev : {}
  if ('map' in type) {
    // a map element is decoded from scratch each time, only the map itself is kept
    for (const [k, v] of n.entries) out[k] = decodeGo(v, type.map, ctx, `${path}.${k.slice(0, 40)}`)
    return out
  }
  for (const [k, v] of n.entries) {
    const f = fieldFor(type.struct, k)
    if (f === undefined) continue // unknown fields are ignored, as Go does
    out[f] = decodeGo(v, type.struct[f]!, ctx, `${path}.${f}`, out[f])
  }
  return out
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
