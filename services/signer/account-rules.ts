import {
  AppError,
  checkValidity,
  decodeJwt,
  errors,
  isAccountKey,
  isTrustedIssuer,
  JwtAlgorithm,
  nowSeconds,
  type Claims,
  type TrustAnchor,
} from '../../shared/index.ts'

/** An account JWT that passed every rule of protocol.md §4 except `iat` ordering, which needs the store. */
export interface ValidatedAccount {
  token: string
  claims: Claims
  id: string
  /**
   * Signed by its own account key. Not an error here: in managed mode the signer re-signs it under its
   * policy, otherwise the caller refuses it (SELF_SIGNED_REFUSED).
   */
  selfSigned: boolean
}

/** Account `nats` claims as they arrive: JSON nobody has checked, so every field is unknown. */
type AccountNats = Record<string, unknown>

// A hostile token can hold thousands of bad entries; the reply only needs enough to fix the first ones.
const MAX_REPORTED_ISSUES = 20
// Export overlap is a pairwise check; a 1 MiB token could make it quadratic in tens of thousands.
const MAX_OVERLAP_COMPARISONS = 1_000_000

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const show = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 80)

/**
 * Checks an account JWT against the trusted operator (protocol.md §4): shape and signature, type and
 * version, subject, issuer trust, time, then the blocking content checks nats-server applies. Throws an
 * AppError naming the first rule broken; content problems are gathered into one JWT_CONTENT_INVALID.
 */
export function validateAccountJwt(
  token: string,
  trust: TrustAnchor,
  opts: { account?: string; now?: number } = {},
): ValidatedAccount {
  const { header, claims } = decodeJwt(token)
  const nats = claims.nats
  // v1 signatures cover the payload only, so the header is not bound to them, and nsc has issued v2
  // since nats-server 2.2: refuse v1 rather than carry a second verification path.
  if (header.alg === JwtAlgorithm.v1) {
    throw errors.jwtMalformed('claim failed V1 signature verification: v1 (ed25519) claims are not accepted')
  }
  const type = nats.type ?? (claims as { type?: unknown }).type
  if (type !== 'account') throw errors.jwtWrongType('account', typeof type === 'string' ? type : '')
  if (nats.version !== 2) throw errors.jwtMalformed('claim failed V1 signature verification: nats.version is not 2')
  if (!isAccountKey(claims.sub)) throw errors.jwtMalformed('subject is not an account public key')
  if (opts.account !== undefined && claims.sub !== opts.account) throw errors.subjectMismatch(opts.account, claims.sub)

  const selfSigned = claims.iss === claims.sub
  if (!selfSigned && !isTrustedIssuer(claims.iss, trust)) throw errors.issuerUntrusted(claims.iss)
  checkValidity(claims, opts.now ?? nowSeconds())

  // A self-signed JWT's limits are the holder's wish, not the operator's (§4.13): the managed policy
  // replaces them and then checks the counts against what it will actually sign.
  const issues = [...contentIssues(claims.sub, nats), ...(selfSigned ? [] : limitIssues(nats))]
  if (issues.length > 0) throw errors.contentInvalid(capped(issues))
  return { token, claims, id: claims.sub, selfSigned }
}


function capped(issues: string[]): string[] {
  if (issues.length <= MAX_REPORTED_ISSUES) return issues
  return [...issues.slice(0, MAX_REPORTED_ISSUES), `and ${issues.length - MAX_REPORTED_ISSUES} more`]
}

// ---- subjects ----------------------------------------------------------------------------------------

/** Dot-separated non-empty tokens, no whitespace, `>` only as the last token. */
export function isValidSubject(s: unknown): s is string {
  if (typeof s !== 'string' || s === '' || /\s/.test(s)) return false
  const tokens = s.split('.')
  return tokens.every((t, i) => t !== '' && (t !== '>' || i === tokens.length - 1))
}

export const hasWildcard = (s: string) => s.split('.').some((t) => t === '*' || t === '>')

/** True when every subject `inner` matches is matched by `outer` too (wildcards in `inner` included). */
export const subjectContains = (outer: string, inner: string) => tokensContain(outer.split('.'), inner.split('.'))

function tokensContain(o: string[], i: string[]): boolean {
  for (let k = 0; k < o.length; k++) {
    if (o[k] === '>') return i.length > k
    const it = i[k]
    // inner's `>` spans any number of tokens, which only an outer `>` covers
    if (it === undefined || it === '>') return false
    if (o[k] !== '*' && o[k] !== it) return false
  }
  return i.length === o.length
}

// ---- content (§4.10) ---------------------------------------------------------------------------------

/** The blocking content checks that do not depend on `limits`. */
function contentIssues(sub: string, nats: AccountNats): string[] {
  const issues: string[] = []
  importIssues(sub, nats.imports, issues)
  exportIssues(nats.exports, issues)
  signingKeyIssues(nats.signing_keys, issues)
  mappingIssues(nats.mappings, issues)
  return issues
}

const JS_NUMBERS = [
  'mem_storage', 'disk_storage', 'streams', 'consumer', 'max_ack_pending', 'mem_max_stream_bytes', 'disk_max_stream_bytes',
] as const
const LIMIT_NUMBERS = ['subs', 'data', 'payload', 'imports', 'exports', 'conn', 'leaf', ...JS_NUMBERS] as const

/**
 * The checks that depend on `limits`. A missing `limits` (or a missing field) is 0, as nats-server decodes
 * it, so any import or export then fails (§4.11); only -1 means unlimited.
 */
export function limitIssues(nats: AccountNats): string[] {
  const issues: string[] = []
  const raw = nats.limits ?? {}
  if (!isObject(raw)) return ['limits is not an object']
  for (const k of LIMIT_NUMBERS) {
    if (raw[k] !== undefined && !Number.isSafeInteger(raw[k])) issues.push(`limit ${k} is not a whole number`)
  }
  const tiers = raw.tiered_limits
  if (tiers !== undefined && !isObject(tiers)) issues.push('tiered_limits is not an object')
  if (isObject(tiers) && Object.keys(tiers).length > 0) {
    if ('' in tiers) issues.push('tiered JetStream limits cannot have a blank tier name')
    if (JS_NUMBERS.some((k) => raw[k])) issues.push('JetStream limits and tiered JetStream limits are mutually exclusive')
  }
  const limit = (k: 'imports' | 'exports') => (typeof raw[k] === 'number' ? raw[k] : 0)
  const why = nats.limits === undefined ? ' (the JWT has no limits, so every limit is 0)' : ''
  const imports = Array.isArray(nats.imports) ? nats.imports.length : 0
  const exports = Array.isArray(nats.exports) ? nats.exports : []
  if (limit('imports') !== -1 && imports > limit('imports')) {
    issues.push(`the account contains more imports (${imports}) than allowed by the operator (${limit('imports')})${why}`)
  }
  if (limit('exports') !== -1 && exports.length > limit('exports')) {
    issues.push(`the account contains more exports (${exports.length}) than allowed by the operator (${limit('exports')})${why}`)
  }
  // nats-server checks this only when exports are finite; "wildcards: false" reads as a rule on its own.
  if (raw.wildcards !== true && exports.some((e) => isObject(e) && isValidSubject(e.subject) && hasWildcard(e.subject))) {
    issues.push(`the account contains wildcard exports that are not allowed by the operator${why}`)
  }
  return issues
}

const isExportType = (t: unknown): t is 'stream' | 'service' => t === 'stream' || t === 'service'

function importIssues(importer: string, imports: unknown, issues: string[]): void {
  if (imports === undefined) return
  if (!Array.isArray(imports)) return void issues.push('imports is not a list')
  const localServiceSubjects = new Set<string>()
  imports.forEach((imp: unknown, i) => {
    if (!isObject(imp)) return void issues.push(`import ${i} is not an object`)
    const at = `import ${i} ${show(imp.subject)}`
    const { type, subject, account } = imp
    if (!isExportType(type)) issues.push(`${at}: invalid import type ${show(type)}`)
    if (!isValidSubject(subject)) issues.push(`${at}: subject is not a valid subject`)
    if (!isAccountKey(account)) issues.push(`${at}: account to import from is not an account public key`)
    for (const k of ['to', 'local_subject'] as const) {
      if (imp[k] !== undefined && imp[k] !== '' && !isValidSubject(imp[k])) issues.push(`${at}: ${k} is not a valid subject`)
    }
    if (type === 'service') {
      // two service imports answering on the same local subject would shadow each other
      const local = [imp.local_subject, imp.to, subject].find((s) => typeof s === 'string' && s !== '')
      if (typeof local === 'string') {
        if (localServiceSubjects.has(local)) issues.push(`${at}: duplicate service import subject ${show(local)}`)
        localServiceSubjects.add(local)
      }
    }
    if (imp.token !== undefined && imp.token !== '') {
      if (typeof imp.token !== 'string') issues.push(`${at}: activation token is not a string`)
      else if (isExportType(type) && isValidSubject(subject) && isAccountKey(account)) {
        const used = type === 'service' && isValidSubject(imp.to) ? imp.to : subject
        activationIssues(imp.token, { importer, exporter: account, type, subject: used }, at, issues)
      }
    }
  })
}

interface ActivationNats {
  subject?: unknown
  kind?: unknown
  issuer_account?: unknown
}

/**
 * §5 rules 1-4. Whether `iss` is one of the exporter's signing keys, and revocations (rule 6), need the
 * exporter's JWT, which we do not have here: servers check both when the import is used.
 */
function activationIssues(
  token: string,
  imp: { importer: string; exporter: string; type: 'stream' | 'service'; subject: string },
  at: string,
  issues: string[],
): void {
  let act
  try {
    act = decodeJwt<ActivationNats>(token)
  } catch (e) {
    if (!(e instanceof AppError)) throw e
    return void issues.push(`${at}: activation token is invalid (${e.code})`)
  }
  const { claims } = act
  const n = claims.nats
  if (act.header.alg !== JwtAlgorithm.v2 || n.type !== 'activation' || n.version !== 2) {
    return void issues.push(`${at}: activation token is not a v2 activation`)
  }
  if (!isAccountKey(claims.iss)) issues.push(`${at}: activation token is not issued by an account key`)
  if (n.issuer_account !== undefined && !isAccountKey(n.issuer_account)) {
    issues.push(`${at}: activation token issuer_account is not an account public key`)
  }
  if (claims.iss !== imp.exporter && n.issuer_account !== imp.exporter) {
    issues.push(`${at}: activation token is not issued by the exporting account`)
  }
  if (claims.sub !== imp.importer) issues.push(`${at}: activation token is for another account`)
  if (n.kind !== imp.type) issues.push(`${at}: activation token kind ${show(n.kind)} does not match import type ${imp.type}`)
  if (!isValidSubject(n.subject) || !subjectContains(n.subject, imp.subject)) {
    issues.push(`${at}: activation token subject ${show(n.subject)} does not contain the import subject`)
  }
}

const RESPONSE_TYPES = new Set(['Singleton', 'Stream', 'Chunked'])

function exportIssues(exports: unknown, issues: string[]): void {
  if (exports === undefined) return
  if (!Array.isArray(exports)) return void issues.push('exports is not a list')
  const byKind = { stream: [] as string[], service: [] as string[] }
  exports.forEach((exp: unknown, i) => {
    if (!isObject(exp)) return void issues.push(`export ${i} is not an object`)
    const at = `export ${i} ${show(exp.subject)}`
    if (!isExportType(exp.type)) issues.push(`${at}: invalid export type ${show(exp.type)}`)
    if (!isValidSubject(exp.subject)) issues.push(`${at}: subject is not a valid subject`)
    else if (isExportType(exp.type)) byKind[exp.type].push(exp.subject)
    if (exp.response_type !== undefined && (exp.type !== 'service' || !RESPONSE_TYPES.has(exp.response_type as string))) {
      issues.push(`${at}: invalid response type ${show(exp.response_type)}`)
    }
    const rev = exp.revocations
    if (rev !== undefined && (!isObject(rev) || !Object.values(rev).every((v) => Number.isSafeInteger(v)))) {
      issues.push(`${at}: revocations must map keys to times`)
    }
  })
  overlapIssues('stream', byKind.stream, issues)
  overlapIssues('service', byKind.service, issues)
}

/** Two exports of one kind where one contains the other make the import target ambiguous. */
function overlapIssues(kind: string, subjects: string[], issues: string[]): void {
  const seen = new Set<string>()
  for (const s of subjects) {
    if (seen.has(s)) issues.push(`${kind} export subject ${show(s)} is exported twice`)
    seen.add(s)
  }
  // Only a wildcard subject can contain a different one.
  const all = [...seen].map((s) => ({ s, tokens: s.split('.') }))
  const containers = all.filter((c) => hasWildcard(c.s))
  if (containers.length * all.length > MAX_OVERLAP_COMPARISONS) {
    return void issues.push(`too many ${kind} exports with wildcards to check them for overlaps`)
  }
  for (const outer of containers) {
    const inner = all.find((c) => c !== outer && tokensContain(outer.tokens, c.tokens))
    if (inner !== undefined) issues.push(`${kind} export subject ${show(outer.s)} already exports ${show(inner.s)}`)
  }
}

function signingKeyIssues(keys: unknown, issues: string[]): void {
  if (keys === undefined) return
  if (!Array.isArray(keys)) return void issues.push('signing_keys is not a list')
  keys.forEach((k: unknown, i) => {
    if (typeof k === 'string') {
      if (!isAccountKey(k)) issues.push(`signing key ${i} is not an account public key`)
    } else if (!isObject(k) || k.kind !== 'user_scope') {
      issues.push(`signing key ${i} is neither a key nor a user_scope`)
    } else {
      if (!isAccountKey(k.key)) issues.push(`scoped signing key ${i} is not an account public key`)
      if (k.role !== undefined && typeof k.role !== 'string') issues.push(`scoped signing key ${i} role is not a string`)
      if (k.template !== undefined && !isObject(k.template)) issues.push(`scoped signing key ${i} template is not an object`)
    }
  })
}

/** Subject mappings: valid subjects, and weights that add up to at most 100% (per cluster). */
function mappingIssues(mappings: unknown, issues: string[]): void {
  if (mappings === undefined) return
  if (!isObject(mappings)) return void issues.push('mappings is not an object')
  for (const [from, targets] of Object.entries(mappings)) {
    const at = `mapping ${show(from)}`
    if (!isValidSubject(from)) issues.push(`${at}: not a valid subject`)
    if (!Array.isArray(targets)) {
      issues.push(`${at}: targets are not a list`)
      continue
    }
    const totals = new Map<string, number>()
    for (const m of targets as unknown[]) {
      if (!isObject(m) || !isValidSubject(m.subject)) {
        issues.push(`${at}: a target subject is not valid`)
        continue
      }
      const weight = m.weight ?? 0
      if (!Number.isInteger(weight) || (weight as number) < 0 || (weight as number) > 100) {
        issues.push(`${at}: weight ${show(m.weight)} is not 0-100`)
        continue
      }
      if (m.cluster !== undefined && typeof m.cluster !== 'string') issues.push(`${at}: cluster is not a string`)
      // Without a cluster, weight 0 means 100%; with one, weights add up as given.
      const cluster = typeof m.cluster === 'string' ? m.cluster : ''
      const share = cluster === '' && weight === 0 ? 100 : (weight as number)
      totals.set(cluster, (totals.get(cluster) ?? 0) + share)
    }
    for (const [cluster, total] of totals) {
      if (total > 100) issues.push(`${at}: weights add up to ${total}%${cluster ? ` in cluster ${show(cluster)}` : ''}`)
    }
  }
}
