import { createHash } from 'node:crypto'
import { checkValidity, decodeJwt, errors, isAccountKey, isTrustedIssuer, type TrustAnchor } from '../../shared/index.ts'

/** A delete request that may be acted on. */
export interface ValidatedDelete {
  /** The accounts to delete, each once, in the order asked. */
  accounts: string[]
  issuer: string
  /** sha256 (hex) of the exact token: the replay-memory key (protocol.md §6). */
  hash: string
  iat: number
}

export interface DeleteCheckOptions {
  /** Seconds since the epoch. */
  now: number
  /** How far `iat` may be from `now`, either way. */
  windowSeconds: number
  /** Whether a token with this hash was already accepted (and is still remembered). */
  seen: (hash: string) => boolean
}

/**
 * Checks a delete request as nats-server does (protocol.md §6: self-signed, trusted, well-formed, not the
 * system account), then adds what servers leave out: `exp`, a fresh `iat` and replay detection. The
 * header `alg` picks v1 or v2 verification, as nsc may send either.
 */
export function validateDeleteRequest(token: string, trust: TrustAnchor, opts: DeleteCheckOptions): ValidatedDelete {
  const { claims } = decodeJwt<{ accounts?: unknown }>(token)
  if (claims.sub !== claims.iss) throw errors.requestInvalid('not self signed')
  // An account key is never in the trusted set, so account-signed requests stop here.
  if (!isTrustedIssuer(claims.iss, trust)) throw errors.issuerUntrusted(claims.iss)
  const list = claims.nats.accounts
  if (!Array.isArray(list) || list.length === 0 || !list.every(isAccountKey)) {
    throw errors.requestInvalid('malformed request: nats.accounts must be a non-empty list of account public keys')
  }
  if (trust.systemAccount !== undefined && list.includes(trust.systemAccount)) throw errors.systemAccountProtected()

  checkValidity(claims, opts.now)
  const skew = Math.abs(opts.now - claims.iat)
  if (skew > opts.windowSeconds) {
    // nsc signs the request as it sends it; an old one is most likely captured and replayed
    throw errors.requestStale(`delete request iat is ${skew}s from now, more than the ${opts.windowSeconds}s allowed`)
  }
  const hash = createHash('sha256').update(token).digest('hex')
  // Not by jti: it hashes only iat/iss/sub, so two deletes by one key in one second share it (§6).
  if (opts.seen(hash)) throw errors.requestReplayed()
  return { accounts: [...new Set(list)], issuer: claims.iss, hash, iat: claims.iat }
}
