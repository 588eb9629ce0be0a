import type { KeyPair } from '@nats-io/nkeys'
import { errors, nowSeconds, signJwt, type Claims, type EnvReader } from '../../shared/index.ts'
import { accountLimitIssues, type GoAccount } from './account-rules.ts'
import { hasWildcards } from './rules/subjects.ts'

/**
 * What a managed (self-signed) account may have once the operator signs it. Caps are upper bounds on the
 * account's own limits; -1 means no cap. The holder of an account key chooses its limits (protocol.md
 * §4.13), so nothing in a self-signed JWT is trusted beyond these.
 */
export interface ManagedPolicy {
  maxConn: number
  maxSubs: number
  maxData: number
  maxPayload: number
  maxImports: number
  maxExports: number
  maxLeaf: number
  allowWildcards: boolean
  allowJetStream: boolean
  /** The largest JWT the operator will sign for a managed account, in bytes; -1 means no cap. */
  maxJwtBytes: number
}

/** Each capped account limit, the policy field that caps it, and the variable that sets the cap. */
const CAPS = [
  { limit: 'conn', cap: 'maxConn', env: 'SIGNER_MAX_CONN', fallback: 100 },
  { limit: 'subs', cap: 'maxSubs', env: 'SIGNER_MAX_SUBS', fallback: 1_000 },
  { limit: 'data', cap: 'maxData', env: 'SIGNER_MAX_DATA', fallback: -1 },
  { limit: 'payload', cap: 'maxPayload', env: 'SIGNER_MAX_PAYLOAD', fallback: 1_048_576 },
  { limit: 'imports', cap: 'maxImports', env: 'SIGNER_MAX_IMPORTS', fallback: 25 },
  { limit: 'exports', cap: 'maxExports', env: 'SIGNER_MAX_EXPORTS', fallback: 25 },
  // Leaf nodes extend the account onto other servers; a self-service account gets none unless allowed.
  { limit: 'leaf', cap: 'maxLeaf', env: 'SIGNER_MAX_LEAF', fallback: 0 },
] as const

const JETSTREAM_LIMITS = [
  'mem_storage', 'disk_storage', 'streams', 'consumer', 'max_ack_pending',
  'mem_max_stream_bytes', 'disk_max_stream_bytes', 'max_bytes_required', 'tiered_limits',
] as const

/**
 * SIGNER_MAX_CONN (100), SIGNER_MAX_SUBS (1000), SIGNER_MAX_DATA (-1), SIGNER_MAX_PAYLOAD (1048576),
 * SIGNER_MAX_IMPORTS (25), SIGNER_MAX_EXPORTS (25), SIGNER_MAX_LEAF (0): whole numbers, -1 = no cap.
 * SIGNER_ALLOW_WILDCARDS (true), SIGNER_ALLOW_JETSTREAM (false): true or false.
 * SIGNER_MAX_JWT_BYTES (65536): a self-service account should not fill the store with megabyte JWTs.
 */
export function readManagedPolicy(r: EnvReader): ManagedPolicy {
  const flag = (name: string, fallback: boolean) =>
    r.oneOf(name, ['true', 'false'] as const, fallback ? 'true' : 'false') === 'true'
  const policy = {
    allowWildcards: flag('SIGNER_ALLOW_WILDCARDS', true),
    allowJetStream: flag('SIGNER_ALLOW_JETSTREAM', false),
  } as ManagedPolicy
  for (const c of CAPS) policy[c.cap] = r.integer(c.env, c.fallback, -1, Number.MAX_SAFE_INTEGER)
  policy.maxJwtBytes = r.integer('SIGNER_MAX_JWT_BYTES', 65_536, -1, Number.MAX_SAFE_INTEGER)
  return policy
}

/**
 * Re-signs a self-signed account JWT with the operator signing key, under `policy`. Limits the account
 * leaves out are set to the caps, so a managed account never lands in the "no limits, no connections"
 * trap (§4.11); limits above a cap are refused, not lowered, so the holder learns what was wrong.
 * `iat` is max(now, lastIat + 1): the Go `jti` ignores `nats`, so two versions signed in one second would
 * share it and servers would skip the second (§4.12).
 */
export function signManagedAccount(
  claims: Claims,
  signingKp: KeyPair,
  policy: ManagedPolicy,
  lastIat: number | undefined,
  now: number = nowSeconds(),
): string {
  if (claims.iss !== claims.sub) throw new TypeError('signManagedAccount expects a self-signed account claim')
  const limits = managedLimits(claims.nats, policy)
  const nats = { ...claims.nats, limits, type: 'account', version: 2 }
  const issues = accountLimitIssues(nats as GoAccount)
  if (issues.length > 0) throw errors.contentInvalid(issues)
  const signed: Omit<Claims<typeof nats>, 'iss' | 'jti'> = {
    sub: claims.sub,
    iat: Math.max(now, (lastIat ?? 0) + 1),
    nats,
  }
  // Time bounds only narrow what the holder asked for; keep them.
  if (claims.name !== undefined) signed.name = claims.name
  if (claims.exp !== undefined) signed.exp = claims.exp
  if (claims.nbf !== undefined) signed.nbf = claims.nbf
  const token = signJwt(signed, signingKp)
  const size = Buffer.byteLength(token)
  if (policy.maxJwtBytes >= 0 && size > policy.maxJwtBytes) {
    throw errors.policyViolation(`the signed jwt would be ${size} bytes, over the cap of ${policy.maxJwtBytes}`)
  }
  return token
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const count = (v: unknown) => (Array.isArray(v) ? v.length : 0)
const hasWildcardExport = (exports: unknown) =>
  Array.isArray(exports) && exports.some((e) => isObject(e) && typeof e.subject === 'string' && hasWildcards(e.subject))

/**
 * The limits the operator will sign: the known fields only (an unknown one might loosen something in a
 * later server), each within its cap. Throws POLICY_VIOLATION listing every limit over its cap.
 */
function managedLimits(nats: Record<string, unknown>, policy: ManagedPolicy): Record<string, unknown> {
  const given = nats.limits ?? {}
  if (!isObject(given)) throw errors.policyViolation('limits is not an object')
  const out: Record<string, unknown> = {}
  const violations: string[] = []
  for (const { limit, cap: field } of CAPS) {
    const cap = policy[field]
    const v = given[limit] ?? cap
    if (!Number.isSafeInteger(v)) violations.push(`${limit} is not a whole number`)
    // any negative value means unlimited to nats-server
    else if (cap >= 0 && ((v as number) < 0 || (v as number) > cap)) {
      violations.push(`${limit} ${(v as number) < 0 ? 'unlimited' : v} is over the cap of ${cap}`)
    } else out[limit] = v
  }
  // The counts are capped even when the account states no limit for them: a missing limit became the cap.
  for (const [kind, cap] of [['imports', policy.maxImports], ['exports', policy.maxExports]] as const) {
    const n = count(nats[kind])
    if (cap >= 0 && n > cap) violations.push(`${n} ${kind} are over the cap of ${cap}`)
  }
  const wildcards = given.wildcards ?? policy.allowWildcards
  if (typeof wildcards !== 'boolean') violations.push('wildcards is not true or false')
  else if (wildcards && !policy.allowWildcards) violations.push('wildcards is true but wildcard exports are not allowed')
  else out.wildcards = wildcards
  if (!policy.allowWildcards && hasWildcardExport(nats.exports)) violations.push('wildcard exports are not allowed')
  if (given.disallow_bearer === true) out.disallow_bearer = true
  jetStreamLimits(given, policy, out, violations)
  if (violations.length > 0) throw errors.policyViolation(violations.join('; '))
  return out
}

/** JetStream is all or nothing here: allowed, the account's own JetStream limits pass as they are. */
function jetStreamLimits(given: Record<string, unknown>, policy: ManagedPolicy, out: Record<string, unknown>, violations: string[]): void {
  if (policy.allowJetStream) {
    for (const k of JETSTREAM_LIMITS) if (given[k] !== undefined) out[k] = given[k]
    return
  }
  // JetStream is on when any storage is non-zero, directly or in a tier; other fields alone enable nothing.
  const tiers = isObject(given.tiered_limits) ? Object.values(given.tiered_limits) : []
  const enabled = [given, ...tiers].some((l) => isObject(l) && ((l.mem_storage ?? 0) !== 0 || (l.disk_storage ?? 0) !== 0))
  if (enabled) violations.push('JetStream is not allowed')
}
