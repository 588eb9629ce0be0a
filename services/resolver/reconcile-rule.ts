/**
 * What reconciliation does with one account, decided from what the store holds and what each nats-server
 * holds. Pure: no NATS, no store; tested as a table (test/reconcile-rule.test.ts).
 *
 * Servers apply every push they hear on their own (protocol.md §1, §3.2), so they can end up on a version
 * the store does not hold: one pushed while the resolver or the signer was down, one the resolver refused,
 * or the old JWT of a deleted account (written to the server's jwt dir and served after a restart).
 */

/** What the store holds of an account. */
export type StoreSide =
  | { kind: 'stored'; jwt: string; iat: number }
  | { kind: 'deleted'; iat: number }
  | { kind: 'unknown' }

/** What one server holds of an account. */
export interface HeldOnServer {
  server: string
  /** The JWT the server has loaded (ACCOUNTZ `account_detail.jwt`); undefined when not loaded. */
  jwt?: string
  iat?: number
  /** ACCOUNTZ `expired`: a deleted account stays loaded on a server, expired, so its users are refused. */
  expired?: boolean
  /** The account's file is in the server's jwt dir (it is in the server's CLAIMS.LIST reply). */
  file: boolean
}

/**
 * - `in-sync`: nothing to do on this server;
 * - `adopt`: the server holds a newer version the store lacks: stored if the signer finds it valid;
 * - `revert`: the server holds another version: the stored one is sent again;
 * - `redelete`: the server holds a deleted account: the stored deletion is sent again.
 */
export type ServerVerdict = 'in-sync' | 'adopt' | 'revert' | 'redelete'

/** What is done when a candidate version is refused (or none is valid): back to what the store holds. */
export type Fallback = 'revert' | 'redelete' | 'unrepairable'

export interface AccountPlan {
  /** `adopt` validates `candidate` first and falls back to `fallback` when the signer refuses it. */
  action: 'none' | 'adopt' | Fallback
  candidate?: string
  fallback: Fallback
  /** Servers not in sync, by name. */
  drifting: string[]
}

/** The verdict for one server. */
export function decideServer(side: StoreSide, held: HeldOnServer): ServerVerdict {
  const loaded = held.jwt !== undefined && held.jwt !== ''
  if (side.kind === 'stored') {
    // A file without a loaded account cannot be read from outside; the server compares it on its next lookup.
    if (!loaded || held.jwt === side.jwt) return 'in-sync'
    return (held.iat ?? 0) > side.iat ? 'adopt' : 'revert'
  }
  const active = loaded && held.expired !== true
  if (side.kind === 'deleted') {
    // Issued at or after the deletion: a re-creation pushed while we could not see it, not the old account.
    if (active && (held.iat ?? 0) >= side.iat) return 'adopt'
    // A deleted account stays loaded and expired on a server: that is deleted. Its file is not: a restart serves it.
    return active || held.file ? 'redelete' : 'in-sync'
  }
  return active ? 'adopt' : 'in-sync'
}

/** What to fall back to: the store's version, its deletion, or nothing we can send (no operator key here). */
export function fallbackFor(side: StoreSide): Fallback {
  return side.kind === 'stored' ? 'revert' : side.kind === 'deleted' ? 'redelete' : 'unrepairable'
}

/** Newest first by `iat`, then the greater token, as resolver replicas order versions. */
const newer = (a: { jwt: string; iat: number }, b: { jwt: string; iat: number }) => a.iat > b.iat || (a.iat === b.iat && a.jwt > b.jwt)

/**
 * The plan for one account. `deferred` is a JWT pushed while no signer answered (servers applied it): it is a
 * candidate like a newer version a server holds. Of several candidates the newest is validated.
 */
export function planAccount(side: StoreSide, held: HeldOnServer[], deferred?: { jwt: string; iat: number }): AccountPlan {
  const fallback = fallbackFor(side)
  const verdicts = held.map((h) => ({ h, v: decideServer(side, h) }))
  const drifting = verdicts.filter((x) => x.v !== 'in-sync').map((x) => x.h.server)
  let best: { jwt: string; iat: number } | undefined
  for (const { h, v } of verdicts) {
    if (v === 'adopt' && h.jwt !== undefined && (best === undefined || newer({ jwt: h.jwt, iat: h.iat ?? 0 }, best))) {
      best = { jwt: h.jwt, iat: h.iat ?? 0 }
    }
  }
  // A push no signer could check (servers applied it) is validated like a newer version a server holds: the
  // store refuses it if older, and the stored version or deletion goes out again.
  if (deferred !== undefined && !(side.kind === 'stored' && deferred.jwt === side.jwt)) {
    if (best === undefined || newer(deferred, best)) best = deferred
  }
  if (best !== undefined) return { action: 'adopt', candidate: best.jwt, fallback, drifting }
  if (drifting.length === 0) return { action: 'none', fallback, drifting }
  return { action: fallback, fallback, drifting }
}
