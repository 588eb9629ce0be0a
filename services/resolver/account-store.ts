import { Level } from 'level'
import { peekClaims, type Change } from '../../shared/index.ts'
import { decideSave } from './save-rule.ts'

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

/** One accepted version of an account, as kept in history. */
export interface HistoryEntry {
  seq: number
  jwt: string
  iat: number
  at: string
  via: string
}

const seqKey = (seq: number) => String(seq).padStart(16, '0')
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
  private readonly cache = new Map<string, StoredAccount>()
  private readonly locks = new Map<string, Promise<unknown>>()
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
  }

  static async open(dir: string, opts: { cacheSize?: number } = {}): Promise<AccountStore> {
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
    await db.open()
    const store = new AccountStore(db, opts.cacheSize ?? 100_000)
    store.seq = Number((await store.meta.get('seq')) ?? 0)
    return store
  }

  /** Open and able to read and write: what the health endpoint reports. */
  get ready(): boolean {
    return this.db.status === 'open'
  }

  /** The current version of `id`, or undefined when unknown. */
  async get(id: string): Promise<StoredAccount | undefined> {
    const hit = this.cache.get(id)
    if (hit !== undefined) {
      // Refresh recency: a Map iterates in insertion order, so the first key is the least recent.
      this.cache.delete(id)
      this.cache.set(id, hit)
      return hit
    }
    const jwt = await this.current.get(id)
    if (jwt === undefined) return undefined
    const acc = summarize(id, jwt)
    this.remember(acc)
    return acc
  }

  /**
   * Makes `jwt` the current version of `id` unless the save rule refuses it (an older `iat`, thrown as
   * JWT_OUTDATED) or it is already current. The version, its history entry and its outbox entry are written
   * in one synced batch: when this resolves the change is durable and will reach the servers.
   */
  save(id: string, jwt: string, origin: SaveOrigin): Promise<SaveResult> {
    return this.exclusive(id, async () => {
      const next = summarize(id, jwt)
      const stored = await this.get(id)
      if (decideSave(id, stored && { token: stored.jwt, iat: stored.iat }, { token: jwt, iat: next.iat }) === 'current') {
        return { outcome: 'current' }
      }
      const at = new Date().toISOString()
      const change: OutboxEntry = { seq: ++this.seq, id, kind: stored ? 'updated' : 'created', jwt, at }
      const entry: HistoryEntry = { seq: change.seq, jwt, iat: next.iat, at, via: origin.via }
      await this.db.batch(
        [
          { type: 'put', sublevel: this.current, key: id, value: jwt },
          { type: 'put', sublevel: this.history, key: historyKey(id, change.seq), value: JSON.stringify(entry) },
          { type: 'put', sublevel: this.outbox, key: seqKey(change.seq), value: JSON.stringify(change) },
          { type: 'put', sublevel: this.meta, key: 'seq', value: String(change.seq) },
        ],
        { sync: true },
      )
      this.remember(next)
      return { outcome: 'stored', change }
    })
  }

  /**
   * Queues the stored version of `id` for delivery again, so servers that applied something else on their
   * own (an older or untrusted JWT we refused) return to ours. Undefined when nothing is stored.
   */
  restore(id: string): Promise<OutboxEntry | undefined> {
    return this.exclusive(id, async () => {
      const stored = await this.get(id)
      if (stored === undefined) return undefined
      const change: OutboxEntry = { seq: ++this.seq, id, kind: 'restore', jwt: stored.jwt, at: new Date().toISOString() }
      await this.db.batch(
        [
          { type: 'put', sublevel: this.outbox, key: seqKey(change.seq), value: JSON.stringify(change) },
          { type: 'put', sublevel: this.meta, key: 'seq', value: String(change.seq) },
        ],
        { sync: true },
      )
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
    await this.outbox.del(seqKey(seq))
  }

  /** Every stored account id, in key order. */
  async *ids(): AsyncIterable<string> {
    yield* this.current.keys()
  }

  /** Every accepted version of `id`, oldest first. */
  async historyOf(id: string): Promise<HistoryEntry[]> {
    const out: HistoryEntry[] = []
    for await (const v of this.history.values({ gt: `${id}!`, lt: `${id}!~` })) out.push(JSON.parse(v) as HistoryEntry)
    return out
  }

  close(): Promise<void> {
    return (this.closing ??= this.db.close())
  }

  private remember(acc: StoredAccount): void {
    this.cache.delete(acc.id)
    this.cache.set(acc.id, acc)
    if (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value
      if (oldest !== undefined) this.cache.delete(oldest)
    }
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
