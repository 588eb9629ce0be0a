import { isTrustedIssuer, subjects, tryPeek, type TrustAnchor } from '../shared/index.ts'

/** What `mesh lint` reports; the names are stable, for scripts reading `--json`. */
export type LintRule =
  | 'expired'
  | 'expiring'
  | 'untrusted-issuer'
  | 'compactable-revocations'
  | 'js-ack-subject'
  | 'jetstream-unlimited'
  | 'unreadable'

export interface LintFinding {
  account: string
  name: string | undefined
  rule: LintRule
  detail: string
}

export interface LintContext {
  trust: TrustAnchor
  now: number
  /** Accounts expiring within this many seconds from `now` are reported. */
  expiringWithinSeconds: number
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : [])
const day = (s: number) => new Date(s * 1000).toISOString().slice(0, 10)

/** True when some subject matches both `a` and `b` (NATS wildcards `*` and `>` on either side). */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = a.split('.')
  const y = b.split('.')
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i]
    const q = y[i]
    if (p === '>' || q === '>') return p !== undefined && q !== undefined
    if (p === undefined || q === undefined) return false
    if (p !== '*' && q !== '*' && p !== q) return false
  }
  return true
}

// The ack subjects of JetStream consumers; their layout is planned to change upstream, so imports and exports
// written against it will break.
const JS_ACK = subjects.jsAck

/** Revocation entries already covered by the `*` entry (every user issued before it is revoked anyway). */
function compactable(revocations: unknown): number {
  if (!isObj(revocations)) return 0
  const all = revocations['*']
  if (typeof all !== 'number') return 0
  return Object.entries(revocations).filter(([k, at]) => k !== '*' && typeof at === 'number' && at <= all).length
}

/** JetStream is on when any storage limit is not 0; unlimited storage (-1) is what the rule flags. */
function unlimitedJetStream(limits: Obj): string[] {
  const tiers: [string, Obj][] = [['', limits]]
  if (isObj(limits.tiered_limits)) {
    for (const [tier, l] of Object.entries(limits.tiered_limits)) if (isObj(l)) tiers.push([tier, l])
  }
  const out: string[] = []
  for (const [tier, l] of tiers) {
    const mem = l.mem_storage
    const disk = l.disk_storage
    const enabled = (typeof mem === 'number' && mem !== 0) || (typeof disk === 'number' && disk !== 0)
    const unlimited = [mem === -1 && 'memory', disk === -1 && 'disk'].filter((s): s is string => typeof s === 'string')
    if (enabled && unlimited.length > 0) out.push(`${tier === '' ? '' : `tier ${tier}: `}unlimited ${unlimited.join(' and ')} storage`)
  }
  return out
}

/** The findings for one stored account JWT; pure, so every rule is table-tested without a server. */
export function lintAccount(account: string, jwt: string, ctx: LintContext): LintFinding[] {
  const claims = tryPeek(jwt) as Obj | undefined
  if (claims === undefined) return [{ account, name: undefined, rule: 'unreadable', detail: 'the payload is not a base64url JSON object' }]
  const name = typeof claims.name === 'string' ? claims.name : undefined
  const out: LintFinding[] = []
  const add = (rule: LintRule, detail: string) => out.push({ account, name, rule, detail })
  const nats = isObj(claims.nats) ? claims.nats : {}

  const exp = typeof claims.exp === 'number' ? claims.exp : 0
  if (exp > 0 && exp <= ctx.now) add('expired', `expired on ${day(exp)}`)
  else if (exp > 0 && exp - ctx.now <= ctx.expiringWithinSeconds) {
    add('expiring', `expires on ${day(exp)}, in ${Math.max(1, Math.round((exp - ctx.now) / 3600))} h`)
  }

  if (typeof claims.iss !== 'string' || !isTrustedIssuer(claims.iss, ctx.trust)) {
    const why = claims.iss === ctx.trust.operatorKey ? 'the operator requires signing keys' : 'not a signing key of the operator'
    add('untrusted-issuer', `signed by ${String(claims.iss)}: ${why}`)
  }

  const revoked = compactable(nats.revocations)
  if (revoked > 0) add('compactable-revocations', `${revoked} user revocations are covered by the "*" revocation`)
  for (const e of list(nats.exports)) {
    const n = compactable(e.revocations)
    if (n > 0) add('compactable-revocations', `export ${String(e.subject)}: ${n} revocations are covered by "*"`)
  }

  for (const [kind, subjects] of [
    ['export', list(nats.exports).map((e) => e.subject)],
    ['import', list(nats.imports).flatMap((i) => [i.subject, i.local_subject, i.to])],
  ] as const) {
    for (const s of new Set(subjects)) {
      if (typeof s === 'string' && s !== '' && subjectsOverlap(s, JS_ACK)) add('js-ack-subject', `${kind} ${s} covers ${JS_ACK}`)
    }
  }

  if (isObj(nats.limits)) for (const d of unlimitedJetStream(nats.limits)) add('jetstream-unlimited', d)
  return out
}
