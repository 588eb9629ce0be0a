/**
 * Subjects as nats-io/jwt's `Subject` type judges them (v2/types.go). These are looser than nats-server's
 * own subject rules (a `>` in the middle passes, only spaces count as whitespace) and containment is jwt's
 * "simple test", under which `a.*` also contains `a.>`. The signer follows jwt, since that is what decides
 * whether a server accepts the account.
 */

/** Subject.Validate: the problems jwt reports, none when valid. */
export function subjectProblems(s: string): string[] {
  if (s === '') return ['subject cannot be empty']
  const out: string[] = []
  if (s.includes(' ')) out.push(`subject ${show(s)} cannot have spaces`)
  if (s.startsWith('.') || s.endsWith('.')) out.push(`subject ${show(s)} cannot start or end with a \`.\``)
  if (s.includes('..')) out.push(`subject ${show(s)} cannot contain consecutive \`.\``)
  return out
}

/** Subject.HasWildCards: note that `>.a` and `a.>.b` count as having none. */
export const hasWildcards = (s: string) =>
  s.endsWith('.>') || s.includes('.*.') || s.endsWith('.*') || s.startsWith('*.') || s === '*' || s === '>'

/** Subject.IsContainedIn: true when `inner` is contained in `outer`. */
export function isContainedIn(inner: string, outer: string): boolean {
  return tokensContained(inner.split('.'), outer.split('.'))
}

export function tokensContained(mine: string[], other: string[]): boolean {
  const last = other.length - 1
  if (mine.length > other.length && other[last] !== '>') return false
  if (mine.length < other.length) return false
  for (let i = 0; i <= last; i++) {
    if (i === last && other[i] === '>') return true
    if (other[i] !== mine[i] && other[i] !== '*') return false
  }
  return true
}

const REFERENCE = /^\$(\d+)$/

/** RenamingSubject.Validate(from): a local subject may use `$n` for the n-th `*` of `from`. */
export function renamingProblems(local: string, from: string): string[] {
  const out = subjectProblems(local)
  if (from === '') out.push('subject cannot be empty')
  const endsInGt = (s: string) => s === '>' || s.endsWith('.>')
  if (endsInGt(local) !== endsInGt(from)) out.push('both, renaming subject and subject, need to end or not end in >')
  const fromCount = from === '*' ? 1 : from.split('.').filter((t) => t === '*').length
  let refs = 0
  for (const tk of local.split('.')) {
    if (tk === '*') refs++
    const m = tk.length >= 2 ? REFERENCE.exec(tk) : null
    // Go's Atoi takes a leading sign too; `$+1` is as valid a reference as `$1`
    const idx = m !== null ? Number(m[1]) : tk.length >= 2 && tk[0] === '$' && /^[+-]\d+$/.test(tk.slice(1)) ? Number(tk.slice(1)) : undefined
    if (idx === undefined) continue
    if (idx > fromCount) out.push(`reference $${idx} in ${show(local)} refers to a * in ${show(from)} that does not exist`)
    else refs++
  }
  if (refs !== fromCount) out.push('subject does not contain enough * or reference wildcards $[0-9]')
  return out
}

/** RenamingSubject.ToSubject: `$n` references become `*`. */
export function renamedToSubject(local: string): string {
  if (!local.includes('$')) return local
  return local
    .split('.')
    .map((tk) => (tk.length > 1 && tk[0] === '$' && /^[+-]?\d+$/.test(tk.slice(1)) ? '*' : tk))
    .join('.')
}

export const show = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 80)
