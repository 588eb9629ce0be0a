import { errors, isAccountKey, isTrustedIssuer, checkValidity, nowSeconds, type Claims, type TrustAnchor } from '../../shared/index.ts'
import { decodeGoToken } from './go-token.ts'
import {
  accountInfoIssues,
  authorizationIssues,
  clusterTrafficIssues,
  permissionIssues,
  signingKeyIssues,
  traceIssues,
} from './rules/account-fields.ts'
import { exportIssues, type GoExport } from './rules/exports.ts'
import { importIssues, type GoImport } from './rules/imports.ts'
import { limitIssues, type GoLimits } from './rules/limits.ts'
import { mappingIssues } from './rules/mappings.ts'
import { importTokenIssues } from './rules/import-tokens.ts'

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
  /** 1 for a legacy v1 account JWT, which nats-server still decodes and uses. */
  version: 1 | 2
}

/** The account's `nats` as nats-io/jwt decoded it (go-claims.ts). */
export interface GoAccount {
  imports?: Array<GoImport | null> | null
  exports?: Array<GoExport | null> | null
  limits?: GoLimits
  signing_keys?: Array<{ key: string }> | null
  default_permissions?: Parameters<typeof permissionIssues>[0]
  mappings?: Parameters<typeof mappingIssues>[0]
  authorization?: Parameters<typeof authorizationIssues>[0]
  trace?: Parameters<typeof traceIssues>[0]
  cluster_traffic?: string
  description?: string
  info_url?: string
  version?: number
}

export interface AccountCheckOptions {
  /** The id named by a per-account subject: `sub` must equal it. */
  account?: string
  now?: number
  /** Stored JWTs of exporting accounts, by id: import tokens are checked against them when present. */
  exporters?: Readonly<Record<string, string>>
}

// A hostile token can hold thousands of bad entries; the reply only needs enough to fix the first ones.
const MAX_REPORTED_ISSUES = 20

/**
 * Checks an account JWT as nats-server does, plus the documented strictness (protocol.md §4): it must
 * decode as nats-io/jwt decodes it (JWT_MALFORMED), be an account (JWT_WRONG_TYPE) for the right id
 * (JWT_SUBJECT_MISMATCH), be signed by a trusted operator key (ISSUER_UNTRUSTED), be within its time
 * bounds (JWT_EXPIRED, JWT_NOT_YET_VALID), pass every blocking check of jwt's Validate
 * (JWT_CONTENT_INVALID, all issues in one reply) and carry import tokens the exporters we hold
 * really issued (ACTIVATION_INVALID).
 */
export function validateAccountJwt(token: string, trust: TrustAnchor, opts: AccountCheckOptions = {}): ValidatedAccount {
  const { claims, nats, version } = decodeAccountJwt(token, opts.account)
  const selfSigned = claims.iss === claims.sub
  if (!selfSigned && !isTrustedIssuer(claims.iss, trust)) throw errors.issuerUntrusted(claims.iss)
  checkValidity(claims, opts.now ?? nowSeconds())
  // A self-signed JWT's limits are the holder's wish, not the operator's (§4.13): the managed policy
  // replaces them and then checks the counts against what it will actually sign.
  const issues = [...contentIssues(claims.sub, nats), ...(selfSigned ? [] : accountLimitIssues(nats))]
  if (issues.length > 0) throw errors.contentInvalid(capped(issues))
  const tokenIssues = importTokenIssues(claims.sub, nats.imports ?? [], opts.exporters ?? {})
  if (tokenIssues.length > 0) throw errors.activationInvalid(capped(tokenIssues).join(', '))
  return { token, claims, id: claims.sub, selfSigned, version }
}

/**
 * An account JWT decoded as nats-io/jwt decodes it (signature checked), for `account` when given. Whoever
 * signed it, nothing else may be signed or judged from its claims: they may hold any JSON.
 */
export function decodeAccountJwt(token: string, account?: string): { claims: Claims; nats: GoAccount; version: 1 | 2 } {
  const t = decodeGoToken(token, 'account')
  const claims = t.decoded.claims
  if (t.kind !== 'account') throw errors.jwtWrongType('account', t.kind)
  if (!isAccountKey(claims.sub)) throw errors.jwtMalformed('subject is not an account public key')
  if (account !== undefined && claims.sub !== account) throw errors.subjectMismatch(account, claims.sub)
  return { claims, nats: t.go.nats as GoAccount, version: t.version }
}

/** Account.Validate's blocking checks that do not depend on `limits` or on who signed it (JWT_CONTENT_INVALID). */
export function checkAccountContent(sub: string, nats: GoAccount): void {
  const issues = contentIssues(sub, nats)
  if (issues.length > 0) throw errors.contentInvalid(capped(issues))
}

function capped(issues: string[]): string[] {
  if (issues.length <= MAX_REPORTED_ISSUES) return issues
  return [...issues.slice(0, MAX_REPORTED_ISSUES), `and ${issues.length - MAX_REPORTED_ISSUES} more`]
}

/** Account.Validate's blocking checks that do not depend on `limits`. */
function contentIssues(sub: string, nats: GoAccount): string[] {
  return [
    ...importIssues(sub, nats.imports),
    ...exportIssues(nats.exports),
    ...limitShapeIssues(nats.limits),
    ...permissionIssues(nats.default_permissions),
    ...mappingIssues(nats.mappings),
    ...authorizationIssues(nats.authorization),
    ...traceIssues(nats.trace),
    ...signingKeyIssues(nats.signing_keys),
    ...accountInfoIssues(nats),
    ...clusterTrafficIssues(nats.cluster_traffic),
  ]
}

// The tier check is part of OperatorLimits.Validate, so it applies to self-signed JWTs too.
const limitShapeIssues = (limits: GoLimits | undefined) =>
  limitIssues({ tiered_limits: limits?.tiered_limits, imports: -1, exports: -1 }, { imports: 0, exports: 0, exportSubjects: [] })

/**
 * The checks that depend on `limits`. A missing `limits` (or a missing field) is 0, as nats-server decodes
 * it, so any import or export then fails (§4.11); only -1 means unlimited.
 */
export function accountLimitIssues(nats: GoAccount): string[] {
  const exports = Array.isArray(nats.exports) ? nats.exports : []
  const why = nats.limits === undefined ? ' (the JWT has no limits, so every limit is 0)' : ''
  const limits = { ...nats.limits, tiered_limits: undefined }
  return limitIssues(limits, {
    imports: (nats.imports ?? []).length,
    exports: exports.length,
    exportSubjects: exports.map((e) => e?.subject ?? ''),
  }, why)
}
