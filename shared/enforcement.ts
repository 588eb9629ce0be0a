import { createHash } from 'node:crypto'
import { peekClaims } from './jwt.ts'

/** What an account JWT says about who may stay connected: its revocations and its connection limit. */
export interface AccountAdmission {
  /** User public key (or `*`, every user) → revoke users of this key issued at or before this time (s). */
  revocations: Record<string, number>
  /** `limits.conn`; -1 is unlimited. */
  conn: number
}

/**
 * Reads an account JWT's revocations and connection limit without verifying it: callers already hold a
 * verified token. Anything malformed reads as "nothing revoked, unlimited", so it can never turn an
 * ordinary change into an enforcing one.
 */
export function admissionOf(jwt: string): AccountAdmission {
  let nats: { revocations?: unknown; limits?: { conn?: unknown } } | undefined
  try {
    nats = peekClaims<{ revocations?: unknown; limits?: { conn?: unknown } }>(jwt).nats
  } catch {
    nats = undefined
  }
  const revocations: Record<string, number> = {}
  const raw = nats?.revocations
  if (typeof raw === 'object' && raw !== null) {
    for (const [key, at] of Object.entries(raw)) if (typeof at === 'number' && Number.isFinite(at)) revocations[key] = at
  }
  const conn = nats?.limits?.conn
  // No limits at all means 0 connections (protocol.md §4.11).
  return { revocations, conn: typeof conn === 'number' ? conn : nats?.limits === undefined ? 0 : -1 }
}

const lower = (prev: number, next: number) => next !== -1 && (prev === -1 || next < prev)

/**
 * Whether replacing `prev` by `next` should cut connections off: a revocation was added or moved later
 * (`*` included), or the connection limit went down. A first version has no connections to cut.
 */
export function isEnforcing(prevJwt: string | undefined, nextJwt: string): boolean {
  if (prevJwt === undefined) return false
  const prev = admissionOf(prevJwt)
  const next = admissionOf(nextJwt)
  if (lower(prev.conn, next.conn)) return true
  return Object.entries(next.revocations).some(([key, at]) => !(key in prev.revocations) || at > prev.revocations[key]!)
}

/**
 * nats-server's rule (jwt `IsClaimRevoked`): a user is revoked when its own key or `*` carries a time at or
 * after the user JWT's `iat`.
 */
export function isUserRevoked(a: AccountAdmission, user: string, userIat: number): boolean {
  const own = a.revocations[user]
  const all = a.revocations['*']
  return (own !== undefined && own >= userIat) || (all !== undefined && all >= userIat)
}

/** How pushed and reported versions are matched: the sha256 (hex) of the exact JWT. */
export const jwtDigest = (jwt: string): string => createHash('sha256').update(jwt).digest('hex')
