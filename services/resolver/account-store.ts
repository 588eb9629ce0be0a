import { createHash } from 'node:crypto'
import { Level, type BatchOperation } from 'level'
import { errors, isExpired, nowSeconds, peekClaims, type Change } from '../../shared/index.ts'
import { ActivationStore } from './activation-store.ts'
import { decideSave } from './save-rule.ts'
import { StoreHash } from './store-hash.ts'
import { WriteBatcher } from './write-batcher.ts'

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
 * One accepted version of an account, as kept in history. A deletion is an entry too: its `jwt` is the
 * operator-signed delete request and its `iat` that request's.
 */
export interface HistoryEntry {
  seq: number
  kind: 'created' | 'updated' | 'deleted'
  jwt: string
  iat: number
  at: string
  via: string
}

/** What is left of a deleted account: never served, kept for audit and to refuse older JWTs. */
export interface Tombstone {
  id: string
  /** The delete request's `iat`: a JWT issued before it cannot bring the account back. */
  iat: number
  at: string
  /** sha256 (hex) of the delete request. */
  request: string
  /** The delete request itself, so other resolver instances can apply the same deletion. */
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

/** The `via` of versions that arrived from another resolver instance. */
export const REPLICA_VIA = 'replica'

const seqKey = (seq: number) => String(seq).padStart(16, '0')
const HASH_KEY = 'hash'
const historyKey = (id: string, seq: number) => `${id}!${seqKey(seq)}`

const summarize = (id: string, jwt: string): StoredAccount => {
  const c = peekClaims(jwt)
  return { id, jwt, iat: c.iat ?? 0, exp: c.exp ?? 0 }
}

/**
 * The durable store of account JWTs on LevelDB. Every acknowledged write is synced before its promise
 * resolves. Writes to one account are serialised so the save rule always sees the latest version; a bounded
 * LRU of current versions keeps lookups of hot accounts off the disk.
 */
export class AccountStore {
  private readonly current
  private readonly history
  private readonly outbox
  private readonly meta
  private readonly tombstones
  private readonly replays
  readonly activations: ActivationStore
  private hash = new StoreHash()
  private readonly cache = new Map<string, StoredAccount>()
  private readonly locks = new Map<string, Promise<unknown>>()
  /** Every acknowledged write goes through here: concurrent pushes share one fsync (group commit). */
  private readonly synced = new WriteBatcher<BatchOperation<Level<string, string>, string, string>>((ops) =>
    this.db.batch(ops, { sync: true }),
  )
  /** Forgetting delivered changes needs no fsync (one is delivered again at worst): merged the same way. */
  private readonly unsynced = new WriteBatcher<BatchOperation<Level<string, string>, string, string>>((ops) => this.db.batch(ops))
  /** Orders every change: history keys and outbox keys both carry it. */
  private seq = 0
  private closing: Promise<void> | undefined

  private constructor(
    private readonly db: Level<string, string>,
    private readonly cacheSize: number,
  ) {
    this.current = db.sublevel<string, string>('acct', { valueEncoding: 'utf8' })
    this.history = db.sublevel<string, string>('hist', { valueEncoding: 'utf8' })
    this.outbox = db.sublevel<string, string>('outbox', { valueEncoding: 'utf8' })
    this.meta = db.sublevel<string, string>('meta', { valueEncoding: 'utf8' })
    this.tombstones = db.sublevel<string, string>('tomb', { valueEncoding: 'utf8' })
    this.replays = db.sublevel<string, string>('replay', { valueEncoding: 'utf8' })
    this.activations = new ActivationStore(db)
  }

  static async open(dir: string, opts: { cacheSize?: number } = {}): Promise<AccountStore> {
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
    await db.open()
    const store = new AccountStore(db, opts.cacheSize ?? 100_000)
    // Sublevels open on their own after the database; readNow() reads these synchronously.
    await Promise.all([store.current.open(), store.tombstones.open()])
    store.seq = Number((await store.meta.get('seq')) ?? 0)
    const hash = await store.meta.get(HASH_KEY)
    store.hash = hash === undefined ? await store.computeHash() : new StoreHash(Buffer.from(hash, 'hex'))
    await store.forgetOldRequests()
    return store
  }

  /** Open and able to read and write: what the health endpoint reports. */
  get ready(): boolean {
    return this.db.status === 'open'
  }

  /** The PACK store hash over every current (not deleted) JWT. */
  storeHash(): Buffer {
    return this.hash.digest()
  }

  /**
   * The current version of `id` if it is in memory, without waiting on the disk: lets a lookup of a hot
   * account be answered synchronously. Undefined says nothing about whether `id` is stored.
   */
  cached(id: string): StoredAccount | undefined {
    const hit = this.cache.get(id)
    if (hit !== undefined) {
      // Refresh recency: a Map iterates in insertion order, so the first key is the least recent.
      this.cache.delete(id)
      this.cache.set(id, hit)
    }
    return hit
  }

  /** The current version of `id`, or undefined when unknown. */
  async get(id: string): Promise<StoredAccount | undefined> {
    return this.readNow(id)
  }

  /**
   * get(), synchronously: from memory, else one LevelDB point read on this thread. A point read is a few
   * microseconds from LevelDB's or the OS's cache, several times less than the thread-pool round trip of an
   * asynchronous get, whose snapshot also takes LevelDB's lock on this thread; a read that has to reach the
   * disk blocks the event loop for that long. Reading and caching in one tick also means no write can land
   * in between: an asynchronous read could finish after a save or delete had updated the cache and put the
   * replaced version back.
   */
  readNow(id: string): StoredAccount | undefined {
    const hit = this.cached(id)
    if (hit !== undefined) return hit
    const jwt = this.current.getSync(id)
    if (jwt === undefined) return undefined
    const acc = summarize(id, jwt)
    this.remember(acc)
    return acc
  }

  /** readNow() for callers that hold the account's lock (kept apart so such calls are easy to find). */
  private load(id: string): StoredAccount | undefined {
    return this.readNow(id)
  }

  /**
   * Makes `jwt` the current version of `id` unless the save rule refuses it (an older `iat`, thrown as
   * JWT_OUTDATED) or it is already current. The version, its history entry and its outbox entry are written
   * in one synced batch: when this resolves the change is durable and will reach the servers.
   */
  save(id: string, jwt: string, origin: SaveOrigin): Promise<SaveResult> {
    return this.exclusive(id, async () => {
      const next = summarize(id, jwt)
      const stored = await this.load(id)
      if (decideSave(id, stored && { token: stored.jwt, iat: stored.iat }, { token: jwt, iat: next.iat }) === 'current') {
        return { outcome: 'current' }
      }
      const tomb = stored === undefined ? await this.tombstoneOf(id) : undefined
      // A JWT issued before the deletion is one the operator meant to remove, perhaps replayed by someone else.
      if (tomb !== undefined && next.iat < tomb.iat) throw errors.jwtOutdated(`${id} (deleted)`, tomb.iat, next.iat)
      const at = new Date().toISOString()
      const kind = stored ? 'updated' : 'created'
      const change: OutboxEntry = { seq: ++this.seq, id, kind, jwt, at }
      const entry: HistoryEntry = { seq: change.seq, kind, jwt, iat: next.iat, at, via: origin.via }
      const undo = this.rehash(stored?.jwt, jwt)
      try {
        await this.synced.commit([
          { type: 'put', sublevel: this.current, key: id, value: jwt },
          { type: 'put', sublevel: this.history, key: historyKey(id, change.seq), value: JSON.stringify(entry) },
          { type: 'put', sublevel: this.outbox, key: seqKey(change.seq), value: JSON.stringify(change) },
          ...(tomb === undefined ? [] : [{ type: 'del' as const, sublevel: this.tombstones, key: id }]),
          ...this.metaOps(change.seq),
        ])
      } catch (e) {
        undo()
        throw e
      }
      this.remember(next)
      return { outcome: 'stored', change }
    })
  }

  /**
   * Deletes the accounts a validated delete request names: each stored one becomes a tombstone, with a
   * history entry and an outbox entry carrying the request (servers act on the request itself), and the
   * request is remembered so it cannot be replayed; all in one synced batch. Throws REQUEST_REPLAYED for a
   * remembered request.
   */
  remove(req: DeleteRequest): Promise<DeleteResult> {
    const ids = [...new Set(req.accounts)].sort()
    return this.exclusiveAll(ids, async () => {
      if ((await this.replays.get(req.hash)) !== undefined) throw errors.requestReplayed()
      const found: StoredAccount[] = []
      for (const id of ids) {
        const stored = await this.load(id)
        if (stored !== undefined) found.push(stored)
      }
      // From here to the batch nothing awaits, so the seq and hash it records are exactly this write's.
      const at = new Date().toISOString()
      const ops: BatchOperation<Level<string, string>, string, string>[] = []
      const changes: OutboxEntry[] = []
      const undos: (() => void)[] = []
      for (const stored of found) {
        const id = stored.id
        const change: OutboxEntry = { seq: ++this.seq, id, kind: 'deleted', jwt: req.token, at }
        const entry: HistoryEntry = { seq: change.seq, kind: 'deleted', jwt: req.token, iat: req.iat, at, via: req.via }
        const tomb: Tombstone = { id, iat: req.iat, at, request: req.hash, token: req.token, jwt: stored.jwt }
        undos.push(this.rehash(stored.jwt, undefined))
        ops.push(
          { type: 'del', sublevel: this.current, key: id },
          { type: 'put', sublevel: this.tombstones, key: id, value: JSON.stringify(tomb) },
          { type: 'put', sublevel: this.history, key: historyKey(id, change.seq), value: JSON.stringify(entry) },
          { type: 'put', sublevel: this.outbox, key: seqKey(change.seq), value: JSON.stringify(change) },
        )
        changes.push(change)
      }
      ops.push({ type: 'put', sublevel: this.replays, key: req.hash, value: String(req.rememberUntil) }, ...this.metaOps(this.seq))
      try {
        await this.synced.commit(ops)
      } catch (e) {
        for (const undo of undos) undo()
        throw e
      }
      for (const c of changes) this.cache.delete(c.id)
      return { deleted: ids.length, changes }
    })
  }

  /**
   * Applies a version another resolver instance accepted. No outbox entry: the instance that accepted it
   * delivers it. The newest `iat` wins and, between equal ones, the greater token, so every instance ends
   * on the same version whatever order changes arrive in. Returns whether it was written.
   */
  applyReplica(id: string, jwt: string): Promise<boolean> {
    return this.exclusive(id, async () => {
      const next = summarize(id, jwt)
      const stored = await this.load(id)
      if (stored !== undefined && (next.iat < stored.iat || (next.iat === stored.iat && jwt <= stored.jwt))) return false
      const tomb = stored === undefined ? await this.tombstoneOf(id) : undefined
      if (tomb !== undefined && next.iat < tomb.iat) return false
      const seq = ++this.seq
      const kind = stored ? 'updated' : 'created'
      const entry: HistoryEntry = { seq, kind, jwt, iat: next.iat, at: new Date().toISOString(), via: REPLICA_VIA }
      const undo = this.rehash(stored?.jwt, jwt)
      try {
        await this.synced.commit([
          { type: 'put', sublevel: this.current, key: id, value: jwt },
          { type: 'put', sublevel: this.history, key: historyKey(id, seq), value: JSON.stringify(entry) },
          ...(tomb === undefined ? [] : [{ type: 'del' as const, sublevel: this.tombstones, key: id }]),
          ...this.metaOps(seq),
        ])
      } catch (e) {
        undo()
        throw e
      }
      this.remember(next)
      return true
    })
  }

  /**
   * Applies a deletion another instance accepted: tombstones `id` unless it was re-created after the
   * request, and remembers the request so it cannot be replayed here either. Returns whether it deleted.
   */
  applyReplicaDelete(id: string, token: string, rememberUntil: number): Promise<boolean> {
    return this.exclusive(id, async () => {
      const iat = peekClaims(token).iat ?? 0
      const hash = createHash('sha256').update(token).digest('hex')
      const stored = await this.load(id)
      const known = await this.tombstoneOf(id)
      if (stored !== undefined ? stored.iat > iat : known !== undefined && known.iat >= iat) return false
      const seq = ++this.seq
      const at = new Date().toISOString()
      const tomb: Tombstone = { id, iat, at, request: hash, token, jwt: stored?.jwt ?? known?.jwt ?? '' }
      const entry: HistoryEntry = { seq, kind: 'deleted', jwt: token, iat, at, via: REPLICA_VIA }
      const undo = this.rehash(stored?.jwt, undefined)
      try {
        await this.synced.commit([
          { type: 'del', sublevel: this.current, key: id },
          { type: 'put', sublevel: this.tombstones, key: id, value: JSON.stringify(tomb) },
          { type: 'put', sublevel: this.history, key: historyKey(id, seq), value: JSON.stringify(entry) },
          { type: 'put', sublevel: this.replays, key: hash, value: String(rememberUntil) },
          ...this.metaOps(seq),
        ])
      } catch (e) {
        undo()
        throw e
      }
      this.cache.delete(id)
      return stored !== undefined
    })
  }

  /** Every tombstone, in key order. */
  async *tombstoneEntries(): AsyncIterable<Tombstone> {
    for await (const v of this.tombstones.values()) yield JSON.parse(v) as Tombstone
  }

  async tombstoneOf(id: string): Promise<Tombstone | undefined> {
    const raw = this.tombstones.getSync(id)
    return raw === undefined ? undefined : (JSON.parse(raw) as Tombstone)
  }

  /**
   * Queues the stored version of `id` for delivery again, so servers that applied something else on their
   * own (an older or untrusted JWT we refused) return to ours. Undefined when nothing is stored.
   */
  restore(id: string): Promise<OutboxEntry | undefined> {
    return this.exclusive(id, async () => {
      const stored = await this.load(id)
      if (stored === undefined) return undefined
      const change: OutboxEntry = { seq: ++this.seq, id, kind: 'restore', jwt: stored.jwt, at: new Date().toISOString() }
      await this.synced.commit([
        { type: 'put', sublevel: this.outbox, key: seqKey(change.seq), value: JSON.stringify(change) },
        ...this.metaOps(change.seq),
      ])
      return change
    })
  }

  /**
   * Queues the stored deletion of `id` (its delete request) for delivery again, so servers that took the
   * deleted account back on their own (an old JWT pushed again) delete it again. Undefined unless deleted.
   */
  restoreDeletion(id: string): Promise<OutboxEntry | undefined> {
    return this.exclusive(id, async () => {
      const tomb = this.load(id) === undefined ? await this.tombstoneOf(id) : undefined
      if (tomb === undefined || tomb.token === '') return undefined
      const change: OutboxEntry = { seq: ++this.seq, id, kind: 'deleted', jwt: tomb.token, at: new Date().toISOString() }
      await this.synced.commit([
        { type: 'put', sublevel: this.outbox, key: seqKey(change.seq), value: JSON.stringify(change) },
        ...this.metaOps(change.seq),
      ])
      return change
    })
  }

  /** Changes not yet reported delivered, oldest first. */
  async pendingChanges(limit = 1000): Promise<OutboxEntry[]> {
    const out: OutboxEntry[] = []
    for await (const v of this.outbox.values({ limit })) out.push(JSON.parse(v) as OutboxEntry)
    return out
  }

  /** Forgets a delivered change. */
  async delivered(seq: number): Promise<void> {
    await this.unsynced.commit([{ type: 'del', sublevel: this.outbox, key: seqKey(seq) }])
  }

  /** Every stored account id, in key order. */
  async *ids(): AsyncIterable<string> {
    yield* this.current.keys()
  }

  /** Every current account as `[id, jwt]`, in key order, read from one snapshot. */
  async *entries(): AsyncIterable<[string, string]> {
    yield* this.current.iterator()
  }

  /** The ids of stored accounts that have not expired: what LIST reports. */
  async liveIds(now = nowSeconds()): Promise<string[]> {
    const out: string[] = []
    for await (const [id, jwt] of this.entries()) if (!isExpired(peekClaims(jwt), now)) out.push(id)
    return out
  }

  /** Accepted versions of `id` after `after` (a seq), oldest first, at most `limit`. */
  async historyOf(id: string, opts: { after?: number; limit?: number } = {}): Promise<HistoryEntry[]> {
    const out: HistoryEntry[] = []
    const gt = opts.after === undefined ? `${id}!` : historyKey(id, opts.after)
    for await (const v of this.history.values({ gt, lt: `${id}!~`, limit: opts.limit ?? -1 })) {
      out.push(JSON.parse(v) as HistoryEntry)
    }
    return out
  }

  close(): Promise<void> {
    return (this.closing ??= this.db.close())
  }

  /** The seq and store hash as they stand once the batch they join is written. */
  private metaOps(seq: number) {
    return [
      { type: 'put' as const, sublevel: this.meta, key: 'seq', value: String(seq) },
      { type: 'put' as const, sublevel: this.meta, key: HASH_KEY, value: this.hash.digest().toString('hex') },
    ]
  }

  /**
   * Moves the store hash from `before` to `after` at once, so that the batch written next records it;
   * returns the undo for a batch that fails.
   */
  private rehash(before: string | undefined, after: string | undefined): () => void {
    const flip = () => {
      if (before !== undefined) this.hash.toggle(before)
      if (after !== undefined) this.hash.toggle(after)
    }
    flip()
    return flip
  }

  /** For a store written before the hash was kept in meta. */
  private async computeHash(): Promise<StoreHash> {
    const h = new StoreHash()
    for await (const jwt of this.current.values()) h.toggle(jwt)
    return h
  }

  /** Replay memory is needed only while a request could still pass the signer's freshness window. */
  private async forgetOldRequests(now = nowSeconds()): Promise<void> {
    const old: string[] = []
    for await (const [hash, until] of this.replays.iterator()) if (Number(until) < now) old.push(hash)
    if (old.length > 0) await this.replays.batch(old.map((key) => ({ type: 'del' as const, key })))
  }

  private remember(acc: StoredAccount): void {
    this.cache.delete(acc.id)
    this.cache.set(acc.id, acc)
    if (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value
      if (oldest !== undefined) this.cache.delete(oldest)
    }
  }

  /** Holds the locks of several accounts, taken in sorted order so two callers cannot deadlock. */
  private exclusiveAll<T>(sortedIds: string[], work: () => Promise<T>): Promise<T> {
    return sortedIds.reduceRight<() => Promise<T>>((inner, id) => () => this.exclusive(id, inner), work)()
  }

  private exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve()
    const run = prev.then(work, work)
    const tail = run.catch(() => undefined)
    this.locks.set(id, tail)
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id)
    })
    return run
  }
}
