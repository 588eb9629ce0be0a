import { show } from './subjects.ts'

/**
 * The mapping checks nats-server itself makes on an account update (server/subject_transform.go and the
 * account's mapping setup): no destination listed twice for one source, and each destination a valid
 * transform of its source. nats-server 2.15 refuses the account ("jwt validation failed - mapping ...")
 * when one fails.
 */
export function transformIssues(from: string, destinations: string[]): string[] {
  const issues: string[] = []
  const seen = new Set<string>()
  for (const dest of destinations) {
    const at = `mapping ${show(from)} -> ${show(dest)}`
    if (seen.has(dest)) issues.push(`mapping ${show(from)}: duplicate entry for ${show(dest)}`)
    seen.add(dest)
    const why = destinationProblem(dest) ?? transformProblem(from, dest)
    if (why !== undefined) issues.push(`${at}: ${why}`)
  }
  return issues
}

/** subjectInfo: valid (no empty token, nothing after `>`), the number of `*` and whether it ends in `>`. */
function subjectInfo(subject: string): { valid: boolean; tokens: string[]; pwcs: number; fwc: boolean } {
  const tokens = subject.split('.')
  let pwcs = 0
  let fwc = false
  for (const t of tokens) {
    if (t === '' || fwc) return { valid: false, tokens, pwcs, fwc }
    if (t === '>') fwc = true
    else if (t === '*') pwcs++
  }
  return { valid: subject !== '', tokens, pwcs, fwc }
}

/** ValidateMapping's own token checks, before the transform is built. */
function destinationProblem(dest: string): string | undefined {
  if (dest === '') return undefined
  let afterFwc = false
  for (const t of dest.split('.')) {
    if (t === '' || afterFwc || /[\t\n\f\r ]/.test(t)) return `invalid mapping destination subject (token ${show(t)})`
    if (t === '>') afterFwc = true
  }
  return undefined
}

/** NewSubjectTransform(src, dest): both valid, no `*` in dest, `>` in both or neither, placeholders in range. */
function transformProblem(src: string, dest: string): string | undefined {
  const s = subjectInfo(src === '' ? '>' : src)
  const d = subjectInfo(dest)
  if (!s.valid || !d.valid || d.pwcs > 0 || s.fwc !== d.fwc) return 'invalid subject'
  for (const token of d.tokens) {
    const p = placeholderOf(token)
    if (p.error !== undefined) return p.error
    // functions that read no wildcard (partition of the whole subject, random) fit any source
    const outOfRange = s.pwcs === 0 ? p.indexes[0] : p.indexes.find((i) => i > s.pwcs)
    if (outOfRange !== undefined) return `invalid mapping destination: wildcard index out of range in ${show(token)}: [${outOfRange}]`
  }
  return undefined
}

type FunctionKind = 'wildcard' | 'partition' | 'pair' | 'split' | 'random'

// nats-server 2.15's destination functions; the first letter of each word may be either case
const FUNCTIONS: Array<[RegExp, FunctionKind]> = [
  [/\{\{\s*[wW]ildcard\s*\((.*)\)\s*\}\}/, 'wildcard'],
  [/\{\{\s*[pP]artition\s*\((.*)\)\s*\}\}/, 'partition'],
  [/\{\{\s*[sS]plit[fF]rom[lL]eft\s*\((.*)\)\s*\}\}/, 'pair'],
  [/\{\{\s*[sS]plit[fF]rom[rR]ight\s*\((.*)\)\s*\}\}/, 'pair'],
  [/\{\{\s*[sS]lice[fF]rom[lL]eft\s*\((.*)\)\s*\}\}/, 'pair'],
  [/\{\{\s*[sS]lice[fF]rom[rR]ight\s*\((.*)\)\s*\}\}/, 'pair'],
  [/\{\{\s*[sS]plit\s*\((.*)\)\s*\}\}/, 'split'],
  [/\{\{\s*[lL]eft\s*\((.*)\)\s*\}\}/, 'pair'],
  [/\{\{\s*[rR]ight\s*\((.*)\)\s*\}\}/, 'pair'],
  [/\{\{\s*[rR]andom\s*\((.*)\)\s*\}\}/, 'random'],
]

// strconv.Atoi after trimming spaces: an optional sign and decimal digits that fit in 64 bits
const atoi = (s: string): number | undefined => {
  const t = s.replace(/^ +| +$/g, '')
  return /^[+-]?\d{1,18}$/.test(t) ? Number(t) : undefined
}

type Placeholder = { kind: 'none' | 'function'; indexes: number[]; error?: string }

/** indexPlaceHolders: a destination token is literal, `$n`, or one `{{function(args)}}`. */
function placeholderOf(token: string): Placeholder {
  const none: Placeholder = { kind: 'none', indexes: [] }
  if (token.length <= 1) return none
  if (token[0] === '$') {
    const n = atoi(token.slice(1))
    // a `$` token that is not a number is an ordinary literal to nats-server
    return n === undefined || /\s/.test(token.slice(1)) ? none : { kind: 'function', indexes: [n] }
  }
  if (!(token.length > 4 && token.startsWith('{{') && token.endsWith('}}'))) return none
  const bad = (what: string): Placeholder => ({ kind: 'function', indexes: [], error: `invalid mapping destination: ${what} in ${show(token)}` })
  for (const [re, kind] of FUNCTIONS) {
    const m = re.exec(token)
    if (m === null) continue
    const args = m[1]!.split(/,\s*/)
    const ints = args.map(atoi)
    if (kind === 'wildcard') {
      if (args.length === 1 && args[0] === '') return bad('not enough arguments')
      if (args.length > 1) return bad('too many arguments')
      return ints[0] === undefined ? bad('invalid argument') : { kind: 'function', indexes: [ints[0]] }
    }
    if (kind === 'partition') {
      // partition(n) alone hashes the whole subject
      if (ints.some((i) => i === undefined)) return bad('invalid argument')
      return { kind: 'function', indexes: ints.slice(1) as number[] }
    }
    if (kind === 'random') {
      if (args.length !== 1) return bad('wrong number of arguments')
      return ints[0] === undefined ? bad('invalid argument') : { kind: 'function', indexes: [] }
    }
    if (args.length < 2) return bad('not enough arguments')
    if (args.length > 2) return bad('too many arguments')
    if (ints[0] === undefined) return bad('invalid argument')
    if (kind === 'pair' && ints[1] === undefined) return bad('invalid argument')
    if (kind === 'split' && (args[1]!.includes(' ') || args[1]!.includes('.'))) return bad('invalid argument')
    return { kind: 'function', indexes: [ints[0]] }
  }
  return bad('unknown function')
}
