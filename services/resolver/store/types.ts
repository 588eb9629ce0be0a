import type { Change, HistoryVersion } from '../../../shared/index.ts'
import type { StoredActivation } from './activation-store.ts'

/** The current version of an account, as served. */
export interface StoredAccount {
  id: string
  jwt: string
  iat: number
  /** 0 when the JWT never expires. */
  exp: number
}

/** How a version arrived, for the audit history. */
export interface SaveOrigin {
  /** The subject it came in on, or `startup` for SYSTEM_ACCOUNT_JWT. */
  via: string
}

/** A change servers must be told about, kept until the notifier reports it delivered. */
export interface OutboxEntry extends Change {
  at: string
}

export type SaveResult = { outcome: 'stored'; change: OutboxEntry } | { outcome: 'current' }

/**
 * One accepted version of an account, as kept in history and as `mesh.resolver.history.<id>` answers it. A
 * deletion is an entry too: its `jwt` is the operator-signed delete request and its `iat` that request's.
 */
export type HistoryEntry = HistoryVersion

/** What is left of a deleted account: never served, kept for audit and to refuse older JWTs. */
export interface Tombstone {
  id: string
  /** The delete request's `iat`: a JWT issued before it cannot bring the account back. */
  iat: number
  at: string
  /** sha256 (hex) of the delete request. */
  request: string
  /** The delete request itself, so a migration or another instance can apply the same deletion. */
  token: string
  /** The version that was current when it was deleted. */
  jwt: string
}

/** An accepted delete request. */
export interface DeleteRequest {
  token: string
  accounts: string[]
  iat: number
  /** sha256 (hex) of the token: the replay-memory key. */
  hash: string
  /** Until when (seconds) the token must be remembered: after that the signer refuses it as stale anyway. */
  rememberUntil: number
  via: string
}

export interface DeleteResult {
  /** Every account named, stored or not: nats-server counts a missing account as deleted. */
  deleted: number
  changes: OutboxEntry[]
}

/** Activation tokens by hash id (protocol.md §5). */
export interface ActivationTable {
  get(hashId: string): Promise<StoredActivation | undefined>
  /** Stores `a` durably; 'current' when the same token is already there. Throws JWT_OUTDATED for an older one. */
  put(a: StoredActivation): Promise<'stored' | 'current'>
  entries(): AsyncIterable<StoredActivation>
}

/** Called once per stored change, after it is durable: the single place delivery learns of changes. */
export type OnChange = (change: OutboxEntry) => void

export interface StoreOptions {
  cacheSize?: number
  onChange?: OnChange
}

/**
 * The resolver's store, whatever keeps it. Reads are local and synchronous where lookups need them to be;
 * every write resolves only once it is durable, and reports its change through `onChange`.
 */
export interface ResolverStore {
  /** Open and able to read and write: what the health endpoint reports. */
  readonly ready: boolean
  readonly activations: ActivationTable
  /** The PACK store hash over every current (not deleted) JWT. */
  storeHash(): Buffer
  /** The current version of `id` if it is in memory; undefined says nothing about whether `id` is stored. */
  cached(id: string): StoredAccount | undefined
  /** The current version of `id`, synchronously: from memory, else one local point read. */
  readNow(id: string): StoredAccount | undefined
  get(id: string): Promise<StoredAccount | undefined>
  /**
   * Only where the local read may lag an acknowledged write (jetstream: another instance's push reaches this
   * view a moment later): asks the source of truth before a miss becomes "not found", and resolves with the
   * account once this instance holds it. Undefined when the source has nothing newer or cannot say in time.
   */
  recheckMissing?(id: string): Promise<StoredAccount | undefined>
  tombstoneOf(id: string): Promise<Tombstone | undefined>
  /** Makes `jwt` current unless it is already (`current`) or older (throws JWT_OUTDATED). */
  save(id: string, jwt: string, origin: SaveOrigin): Promise<SaveResult>
  /** Tombstones what a validated delete request names; throws REQUEST_REPLAYED for a remembered request. */
  remove(req: DeleteRequest): Promise<DeleteResult>
  /** Queues the stored version of `id` for delivery again; undefined when nothing is stored. */
  restore(id: string): Promise<OutboxEntry | undefined>
  /**
   * Queues the stored deletion of `id` (its delete request) for delivery again, so servers that took the
   * deleted account back on their own (an old JWT pushed again) delete it again. Undefined unless deleted.
   */
  restoreDeletion(id: string): Promise<OutboxEntry | undefined>
  ids(): AsyncIterable<string>
  /** Every current account as `[id, jwt]`, in key order. */
  entries(): AsyncIterable<[string, string]>
  /** The ids of stored accounts that have not expired: what LIST reports. */
  liveIds(now?: number): Promise<string[]>
  tombstoneEntries(): AsyncIterable<Tombstone>
  /** Accepted versions of `id` after `after` (a seq), oldest first, at most `limit`. */
  historyOf(id: string, opts?: { after?: number; limit?: number }): Promise<HistoryEntry[]>
  close(): Promise<void>
}

/** A store whose undelivered changes this process delivers itself (the level engine's outbox). */
export interface OutboxStore extends ResolverStore {
  /** Changes not yet reported delivered, oldest first. */
  pendingChanges(limit?: number): Promise<OutboxEntry[]>
  /** Forgets a delivered change. */
  delivered(seq: number): Promise<void>
}
