import { errors } from '../../shared/index.ts'

/** What the store needs to know of a JWT to order versions. */
export interface VersionStamp {
  token: string
  iat: number
}

/**
 * Decides whether `next` replaces `stored` (nats-server's saveIfNewer, made strict): the same token is
 * already current; an older `iat` is refused rather than silently skipped, so the pusher learns of it. An
 * equal `iat` with other bytes is accepted, as servers do: `iat` has one-second resolution and two honest
 * edits within a second must not be lost.
 */
export function decideSave(id: string, stored: VersionStamp | undefined, next: VersionStamp): 'write' | 'current' {
  if (stored === undefined) return 'write'
  if (stored.token === next.token) return 'current'
  if (next.iat < stored.iat) throw errors.jwtOutdated(id, stored.iat, next.iat)
  return 'write'
}
