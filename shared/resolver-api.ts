import type { Msg } from '@nats-io/nats-core'
import { jsonOf } from './gather.ts'
import type { HealthReport } from './health.ts'
import { isServerId } from './nkey.ts'

/**
 * The resolver's API as its callers read it (the CLI, ops, tests, bench). `$SYS` claim subjects answer in
 * nats-server's dialect (protocol.md §3), beside every nats-server; `mesh.resolver.*` answers only here.
 * Change events and reconciliation reports are in change-api.ts.
 */

/** The micro service name, and the `server.name` of its claim replies. */
export const RESOLVER = 'resolver'

/**
 * `server` of a claim reply. nats-server fills it with its own identity; the resolver puts its micro
 * service id in `id`, which is never a server nkey.
 */
export interface ClaimServer {
  name: string
  id: string
  host?: string
  ver?: string
  time: string
  seq: number
  jetstream: boolean
  flags?: number
}

/** A success status (UPDATE, DELETE): `{"code":200,"message":"jwt updated"}`. */
export interface ClaimStatus {
  account?: string
  code: number
  message: string
}

/** A refusal: `description` keeps "<what> - <why>"; ours add the stable error code as `reason`. */
export interface ClaimError {
  account?: string
  code: number
  description: string
  reason?: string
}

/** A reply in the claim dialect; LIST's `data` is the id array (`ClaimReply<string[]>`). */
export interface ClaimReply<D = ClaimStatus> {
  server: ClaimServer
  data?: D
  error?: ClaimError
}

/**
 * Whether a claim reply is the resolver's rather than a nats-server's. Not the name alone: a nats-server may
 * be named `resolver` too, but its id is always its server nkey, which ours never is.
 */
export function isResolverReply(r: unknown): r is ClaimReply<unknown> {
  const server = (r as { server?: { name?: unknown; id?: unknown } } | null)?.server
  return server?.name === RESOLVER && typeof server.id === 'string' && server.id !== '' && !isServerId(server.id)
}

/** The resolver's claim reply in `m`, or undefined when `m` is a nats-server's reply or not a claim reply. */
export function resolverReplyOf<D = unknown>(m: Msg): ClaimReply<D> | undefined {
  const r = jsonOf<ClaimReply<D>>(m)
  return isResolverReply(r) ? r : undefined
}

/** What the resolver holds for an account (`mesh.resolver.get.<id>`). */
export type AccountState =
  | { account: string; state: 'stored'; jwt: string; iat: number; exp: number }
  | { account: string; state: 'deleted'; deleted: { at: string; iat: number; request: string } }
  | { account: string; state: 'unknown' }

/** One accepted version of an account (`mesh.resolver.history.<id>`). */
export interface HistoryVersion {
  seq: number
  kind: 'created' | 'updated' | 'deleted'
  jwt: string
  iat: number
  /** When it was accepted (ISO time). */
  at: string
  /** The subject it arrived on. */
  via: string
}

/** The request body of a history page: empty, or the last `seq` seen. */
export interface HistoryRequest {
  after?: number
}

/** One page of history, oldest first; `more` says another follows after the last `seq`. */
export interface HistoryPage {
  account: string
  versions: HistoryVersion[]
  more: boolean
}

/** `mesh.resolver.activation.put`'s answer. */
export interface ActivationPutReply {
  hashId: string
  outcome: 'stored' | 'current'
}

/** `mesh.resolver.health`: the common report, the store's state and the other parts' figures. */
export type ResolverHealth = HealthReport & { store: 'ready' | 'not ready' }

/** One message of a PACK stream: `<id>|<jwt>`; the stream ends with an empty message (protocol.md §3.5). */
export const packLine = (id: string, jwt: string) => `${id}|${jwt}`
