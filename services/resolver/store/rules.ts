import { errors, peekClaims } from '../../../shared/index.ts'
import type { StoredActivation } from './activation-store.ts'
import type { OutboxEntry, StoredAccount, Tombstone } from './types.ts'

/**
 * The store's domain rules, with no I/O: every engine applies these and only these, so the newest-`iat`
 * question has one answer whichever engine or instance asks it.
 */

/** What the store needs to know of a JWT to order and serve it. */
export function stampOf(id: string, jwt: string): StoredAccount {
  const c = peekClaims(jwt)
  return { id, jwt, iat: c.iat ?? 0, exp: c.exp ?? 0 }
}

/**
 * Whether `next` replaces what is stored (nats-server's saveIfNewer, made strict): the same token is already
 * current; an older `iat` is refused rather than silently skipped, so the pusher learns of it. An equal `iat`
 * with other bytes is accepted, as servers do: `iat` has one-second resolution and two honest edits within a
 * second must not be lost. A JWT issued before the account's deletion is one the operator meant to remove.
 */
export function decideSave(
  id: string,
  stored: Pick<StoredAccount, 'jwt' | 'iat'> | undefined,
  tomb: Pick<Tombstone, 'iat'> | undefined,
  next: Pick<StoredAccount, 'jwt' | 'iat'>,
): 'write' | 'current' {
  if (stored === undefined) {
    if (tomb !== undefined && next.iat < tomb.iat) throw errors.jwtOutdated(`${id} (deleted)`, tomb.iat, next.iat)
    return 'write'
  }
  if (stored.jwt === next.jwt) return 'current'
  if (next.iat < stored.iat) throw errors.jwtOutdated(id, stored.iat, next.iat)
  return 'write'
}

/** One hash id names one importer, issuer and subject: a later token replaces an earlier one, never the reverse. */
export function decideActivation(stored: StoredActivation | undefined, next: StoredActivation): 'write' | 'current' {
  if (stored?.token === next.token) return 'current'
  if (stored !== undefined && next.iat < stored.iat) throw errors.jwtOutdated(`activation ${next.hashId}`, stored.iat, next.iat)
  return 'write'
}

/**
 * What to send for a queued change now: servers apply whatever arrives last, so never a version older than
 * the one stored (a newer one replaced it since: send that), and nothing for a version since deleted or a
 * deletion since undone, whose own changes tell the servers.
 */
export function whatToDeliver(queued: OutboxEntry, now: Pick<StoredAccount, 'jwt'> | undefined): OutboxEntry | undefined {
  if (queued.kind === 'deleted') return now === undefined ? queued : undefined
  if (now === undefined) return undefined
  return now.jwt === queued.jwt ? queued : { ...queued, jwt: now.jwt }
}

/**
 * A delete request names every account it deletes, and servers act on all of them each time it is sent. The
 * accounts it names (other than the change's own) that are stored again must not be cut off by a resend.
 */
export function recreatedSince(change: OutboxEntry, isStored: (id: string) => boolean): string[] {
  const named = (peekClaims<{ accounts?: unknown }>(change.jwt).nats?.accounts ?? []) as unknown[]
  return named.filter((id): id is string => typeof id === 'string' && id !== change.id && isStored(id))
}

/** Replay memory is needed only while a request could still pass the signer's freshness window. */
export const stillRemembered = (rememberUntil: number, now: number): boolean => rememberUntil >= now
