import { errors } from '../../../shared/index.ts'
import { AccountLocks } from './account-locks.ts'
import { decideSave, stampOf } from './rules.ts'
import { LocalTables } from './tables.ts'
import type { DeleteRequest, DeleteResult, HistoryEntry, OnChange, OutboxEntry, OutboxStore, SaveOrigin, SaveResult, StoreOptions, StoredAccount, Tombstone } from './types.ts'

/**
 * The `level` engine: one instance, one LevelDB, every acknowledged write synced before its promise
 * resolves (group commit), and an outbox that holds each change until the notifier reports it delivered.
 */
export class LevelStore implements OutboxStore {
  private readonly locks = new AccountLocks()
  private onChange: OnChange

  private constructor(
    private readonly t: LocalTables,
    opts: StoreOptions,
  ) {
    this.onChange = opts.onChange ?? (() => {})
  }

  static async open(dir: string, opts: StoreOptions = {}): Promise<LevelStore> {
    return new LevelStore(await LocalTables.open(dir, opts.cacheSize ?? 100_000), opts)
  }

  /** Who hears of changes from now on (set once delivery exists, which needs the store first). */
  listen(onChange: OnChange): void {
    this.onChange = onChange
  }

  get ready(): boolean {
    return this.t.rdb.ready
  }

  get activations() {
    return this.t.activations
  }

  storeHash(): Buffer {
    return this.t.accounts.storeHash()
  }

  cached(id: string): StoredAccount | undefined {
    return this.t.accounts.cached(id)
  }

  readNow(id: string): StoredAccount | undefined {
    return this.t.accounts.readNow(id)
  }

  async get(id: string): Promise<StoredAccount | undefined> {
    return this.t.accounts.readNow(id)
  }

  async tombstoneOf(id: string): Promise<Tombstone | undefined> {
    return this.t.tombs.get(id)
  }

  /** The version, its history entry and its outbox entry are written in one synced batch. */
  save(id: string, jwt: string, origin: SaveOrigin): Promise<SaveResult> {
    return this.locks.exclusive(id, async () => {
      const next = stampOf(id, jwt)
      const stored = this.t.accounts.readNow(id)
      if (decideSave(id, stored, this.t.tombs.get(id), next) === 'current') return { outcome: 'current' }
      const plan = LocalTables.plan()
      const change = this.t.addVersion(plan, stored, next, { seq: this.t.log.next(), at: new Date().toISOString(), via: origin.via }, true)
      await this.commit(plan)
      return { outcome: 'stored', change }
    })
  }

  /** Each stored account becomes a tombstone, and the request is remembered; all in one synced batch. */
  remove(req: DeleteRequest): Promise<DeleteResult> {
    return this.locks.exclusiveAll(req.accounts, async () => {
      if (await this.t.tombs.remembered(req.hash)) throw errors.requestReplayed()
      // From here to the batch nothing awaits, so the seq and hash it records are exactly this write's.
      const at = new Date().toISOString()
      const plan = LocalTables.plan()
      for (const id of [...new Set(req.accounts)].sort()) {
        const stored = this.t.accounts.readNow(id)
        if (stored !== undefined) this.t.addDeletion(plan, id, stored, req, { seq: this.t.log.next(), at, via: req.via }, true)
      }
      plan.ops.push(this.t.tombs.rememberOp(req.hash, req.rememberUntil))
      await this.commit(plan)
      return { deleted: new Set(req.accounts).size, changes: plan.changes }
    })
  }

  restore(id: string): Promise<OutboxEntry | undefined> {
    return this.locks.exclusive(id, async () => {
      const stored = this.t.accounts.readNow(id)
      if (stored === undefined) return undefined
      const change: OutboxEntry = { seq: this.t.log.next(), id, kind: 'restore', jwt: stored.jwt, at: new Date().toISOString() }
      await this.t.rdb.synced.commit([this.t.log.outboxOp(change), this.t.log.seqOp()])
      this.onChange(change)
      return change
    })
  }

  restoreDeletion(id: string): Promise<OutboxEntry | undefined> {
    return this.locks.exclusive(id, async () => {
      const tomb = this.t.accounts.readNow(id) === undefined ? this.t.tombs.get(id) : undefined
      if (tomb === undefined || tomb.token === '') return undefined
      const change: OutboxEntry = { seq: this.t.log.next(), id, kind: 'deleted', jwt: tomb.token, at: new Date().toISOString() }
      await this.t.rdb.synced.commit([this.t.log.outboxOp(change), this.t.log.seqOp()])
      this.onChange(change)
      return change
    })
  }

  pendingChanges(limit = 1000): Promise<OutboxEntry[]> {
    return this.t.log.pending(limit)
  }

  delivered(seq: number): Promise<void> {
    return this.t.log.delivered(seq)
  }

  ids(): AsyncIterable<string> {
    return this.t.accounts.ids()
  }

  entries(): AsyncIterable<[string, string]> {
    return this.t.accounts.entries()
  }

  liveIds(now?: number): Promise<string[]> {
    return this.t.accounts.liveIds(now)
  }

  tombstoneEntries(): AsyncIterable<Tombstone> {
    return this.t.tombs.entries()
  }

  historyOf(id: string, opts?: { after?: number; limit?: number }): Promise<HistoryEntry[]> {
    return this.t.log.historyOf(id, opts)
  }

  /** Every remembered delete request as `[hash, rememberUntil]`: what a migration carries over. */
  replays(): AsyncIterable<[string, number]> {
    return this.t.tombs.replays()
  }

  close(): Promise<void> {
    return this.t.close()
  }

  private async commit(plan: ReturnType<typeof LocalTables.plan>): Promise<void> {
    await this.t.commit(plan, [this.t.log.seqOp()])
    for (const change of plan.changes) this.onChange(change)
  }
}
