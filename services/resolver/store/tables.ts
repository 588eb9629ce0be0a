import { isEnforcing } from '../../../shared/index.ts'
import { AccountTable } from './account-table.ts'
import { ActivationStore } from './activation-store.ts'
import { ChangeLog } from './change-log.ts'
import { ResolverDb, type Op } from './resolver-db.ts'
import { Tombstones } from './tombstones.ts'
import type { OutboxEntry, StoredAccount, Tombstone } from './types.ts'

/** One write: its ops, what to undo in memory if it fails, what to update in memory once it is written. */
export interface Plan {
  ops: Op[]
  undos: (() => void)[]
  dones: (() => void)[]
  changes: OutboxEntry[]
}

/** Where and why a change was made; `seq` orders it (the store's own counter, or the stream sequence). */
export interface ChangeMeta {
  seq: number
  at: string
  via: string
}

/**
 * The local LevelDB tables of one instance and the only way they are written: `commit(plan)`. Both engines
 * write through here; the level engine with its own sequence and an outbox, the jetstream engine with the
 * stream sequence of the message it applies.
 */
export class LocalTables {
  readonly accounts: AccountTable
  readonly log: ChangeLog
  readonly tombs: Tombstones
  readonly activations: ActivationStore

  private constructor(
    readonly rdb: ResolverDb,
    cacheSize: number,
  ) {
    this.accounts = new AccountTable(rdb, cacheSize)
    this.log = new ChangeLog(rdb)
    this.tombs = new Tombstones(rdb)
    this.activations = new ActivationStore(rdb)
  }

  static async open(dir: string, cacheSize: number): Promise<LocalTables> {
    const rdb = await ResolverDb.open(dir)
    const tables = new LocalTables(rdb, cacheSize)
    await Promise.all([tables.accounts.load(), tables.log.load()])
    await tables.tombs.forgetOld()
    return tables
  }

  static plan(): Plan {
    return { ops: [], undos: [], dones: [], changes: [] }
  }

  /** Adds "`next` is now current" to `plan`, with its history entry and, when `outbox`, its outbox entry. */
  addVersion(plan: Plan, stored: StoredAccount | undefined, next: StoredAccount, m: ChangeMeta, outbox: boolean): OutboxEntry {
    const kind = stored ? 'updated' : 'created'
    const change: OutboxEntry = { seq: m.seq, id: next.id, kind, jwt: next.jwt, at: m.at }
    // Revoking users or lowering the connection limit: the notifier watches the servers cut them off.
    if (isEnforcing(stored?.jwt, next.jwt)) change.enforce = true
    const moved = this.accounts.change(next.id, stored?.jwt, next)
    plan.ops.push(...moved.ops, this.log.historyOp(next.id, { seq: m.seq, kind, jwt: next.jwt, iat: next.iat, at: m.at, via: m.via }))
    if (this.tombs.get(next.id) !== undefined) plan.ops.push(this.tombs.delOp(next.id))
    if (outbox) plan.ops.push(this.log.outboxOp(change))
    plan.undos.push(moved.undo)
    plan.dones.push(moved.done)
    plan.changes.push(change)
    return change
  }

  /** Adds "`id` is deleted by request `token`" to `plan`: a tombstone and a history entry. */
  addDeletion(
    plan: Plan,
    id: string,
    stored: StoredAccount | undefined,
    req: { token: string; iat: number; hash: string },
    m: ChangeMeta,
    outbox: boolean,
  ): OutboxEntry {
    const change: OutboxEntry = { seq: m.seq, id, kind: 'deleted', jwt: req.token, at: m.at }
    const before = this.tombs.get(id)
    const tomb: Tombstone = { id, iat: req.iat, at: m.at, request: req.hash, token: req.token, jwt: stored?.jwt ?? before?.jwt ?? '' }
    const moved = this.accounts.change(id, stored?.jwt, undefined)
    plan.ops.push(...moved.ops, this.tombs.putOp(tomb), this.log.historyOp(id, { seq: m.seq, kind: 'deleted', jwt: req.token, iat: req.iat, at: m.at, via: m.via }))
    if (outbox) plan.ops.push(this.log.outboxOp(change))
    plan.undos.push(moved.undo)
    plan.dones.push(moved.done)
    plan.changes.push(change)
    return change
  }

  /**
   * Writes `plan` in one batch, with the store hash and `meta` as they stand after it; synced unless the
   * tables are only a view of a log kept elsewhere (a lost tail is read again from there).
   */
  async commit(plan: Plan, meta: Op[], opts: { sync: boolean } = { sync: true }): Promise<void> {
    try {
      await (opts.sync ? this.rdb.synced : this.rdb.unsynced).commit([...plan.ops, this.accounts.hashOp(), ...meta])
    } catch (e) {
      for (const undo of plan.undos) undo()
      throw e
    }
    for (const done of plan.dones) done()
  }

  close(): Promise<void> {
    return this.rdb.close()
  }
}
