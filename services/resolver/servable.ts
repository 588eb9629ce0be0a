import {
  AppError,
  isExpired,
  isTrustedIssuer,
  MAX_JWT_BYTES,
  nowSeconds,
  peekClaims,
  validateAccount,
  type Logger,
  type NatsConnection,
  type TrustAnchor,
} from '../../shared/index.ts'
import type { AccountStore, StoredAccount } from './account-store.ts'

/**
 * Signer refusals that mean no server would use the JWT either: found by the sweep in stored JWTs accepted
 * before a rule tightened. Time refusals are left to the per-request check; ACTIVATION_INVALID is not here
 * because servers use such an account and only drop the import.
 */
const UNUSABLE = new Set<string>([
  'JWT_MALFORMED', 'JWT_TOO_LARGE', 'JWT_WRONG_TYPE', 'JWT_BAD_SIGNATURE', 'JWT_CONTENT_INVALID',
  'JWT_SUBJECT_MISMATCH', 'ISSUER_UNTRUSTED', 'SELF_SIGNED_REFUSED',
])

/**
 * Whether a stored JWT is one the asking server will use (protocol.md §3.1: it stores what we send before
 * checking it): issued by a key the operator trusts (strict signing-key usage included), for the account
 * asked about, within the size limit, inside its time bounds, and not found unusable by the signer.
 * The fixed part is judged once per cached StoredAccount object, so LOOKUP stays a map read.
 */
export class Servability {
  private readonly verdicts = new WeakMap<StoredAccount, boolean>()
  /** Stored JWTs the signer refuses today, by account, with the reason: never served. */
  private readonly refused = new Map<string, { jwt: string; code: string }>()

  constructor(private readonly trust: TrustAnchor | undefined) {}

  servable(id: string, acc: StoredAccount, now = nowSeconds()): boolean {
    if (acc.id !== id || isExpired(acc, now)) return false
    let ok = this.verdicts.get(acc)
    if (ok === undefined) {
      ok = this.judge(acc)
      this.verdicts.set(acc, ok)
    }
    if (!ok) return false
    const refused = this.refused.get(id)
    if (refused !== undefined && refused.jwt === acc.jwt) return false
    const nbf = peekNbf(acc)
    return nbf === 0 || nbf <= now
  }

  /** How many stored accounts the sweep found unusable (`mesh status` reads it from the health reply). */
  get unservableCount(): number {
    return this.refused.size
  }

  private judge(acc: StoredAccount): boolean {
    if (Buffer.byteLength(acc.jwt) > MAX_JWT_BYTES) return false
    let claims
    try {
      claims = peekClaims(acc.jwt)
    } catch {
      return false
    }
    if (claims.sub !== acc.id || typeof claims.iss !== 'string' || claims.iss === claims.sub) return false
    return this.trust === undefined || isTrustedIssuer(claims.iss, this.trust)
  }

  /**
   * Asks the signer about every stored JWT, one at a time in the background, and stops serving those it
   * refuses for a reason no server would overlook. A JWT replaced since is served again (the entry names
   * the exact JWT). Unanswered requests leave the JWT served: a missing signer must not empty the mesh.
   */
  async sweep(store: AccountStore, nc: NatsConnection, log: Logger): Promise<number> {
    let checked = 0
    let unanswered = 0
    for await (const [id, jwt] of store.entries()) {
      if (nc.isClosed()) break
      try {
        await validateAccount(nc, jwt, { account: id })
        this.refused.delete(id)
      } catch (e) {
        if (!(e instanceof AppError)) throw e
        if (e.code === 'VALIDATION_UNAVAILABLE') unanswered++
        if (!UNUSABLE.has(e.code)) continue
        this.refused.set(id, { jwt, code: e.code })
        log.warn({ account: id, code: e.code }, 'stored jwt is no longer valid: not served on lookup')
      }
      checked++
    }
    log.info({ checked, unanswered, unservable: this.refused.size }, 'stored jwts checked against the current rules')
    return unanswered
  }

  /**
   * Runs the sweep in the background; again a little later while the signer left some unanswered (at start
   * it may not be up yet). Never throws: a failed sweep only leaves JWTs served as before.
   */
  startSweeping(store: AccountStore, nc: NatsConnection, log: Logger, retryMs = 10_000, attempts = 6): void {
    const run = (left: number): void => {
      this.sweep(store, nc, log).then(
        (unanswered) => {
          if (unanswered > 0 && left > 1 && !nc.isClosed()) setTimeout(() => run(left - 1), retryMs).unref()
        },
        (err: unknown) => log.warn({ err }, 'checking stored jwts failed; they stay served'),
      )
    }
    run(attempts)
  }
}

/** `nbf`, cached on the object: read once per cache entry, compared with the clock per request. */
const nbfs = new WeakMap<StoredAccount, number>()
function peekNbf(acc: StoredAccount): number {
  let nbf = nbfs.get(acc)
  if (nbf === undefined) {
    try {
      nbf = peekClaims(acc.jwt).nbf ?? 0
    } catch {
      nbf = 0
    }
    nbfs.set(acc, nbf)
  }
  return nbf
}
