import { Level, type BatchOperation } from 'level'
import { WriteBatcher } from './write-batcher.ts'

export type Op = BatchOperation<Level<string, string>, string, string>

/**
 * Owns the LevelDB of one resolver instance and its sublevels, one per kind of data. Every acknowledged write
 * goes through `synced` (group commit: concurrent writes share one fsync); forgetting delivered changes goes
 * through `unsynced`, since losing one only means delivering it again.
 */
export class ResolverDb {
  /** Current JWTs, raw, by account id. */
  readonly acct
  /** History entries by `<id>!<seq>`. */
  readonly hist
  /** Undelivered changes by seq (level engine). */
  readonly outbox
  /** `seq`, `hash`, and the last applied stream sequence of the jetstream engine. */
  readonly meta
  readonly tomb
  /** Delete-request hashes, valued by the second until which they are remembered. */
  readonly replay
  readonly actv
  readonly synced: WriteBatcher<Op>
  readonly unsynced: WriteBatcher<Op>
  private closing: Promise<void> | undefined

  private constructor(readonly db: Level<string, string>) {
    this.acct = db.sublevel<string, string>('acct', { valueEncoding: 'utf8' })
    this.hist = db.sublevel<string, string>('hist', { valueEncoding: 'utf8' })
    this.outbox = db.sublevel<string, string>('outbox', { valueEncoding: 'utf8' })
    this.meta = db.sublevel<string, string>('meta', { valueEncoding: 'utf8' })
    this.tomb = db.sublevel<string, string>('tomb', { valueEncoding: 'utf8' })
    this.replay = db.sublevel<string, string>('replay', { valueEncoding: 'utf8' })
    this.actv = db.sublevel<string, string>('actv', { valueEncoding: 'utf8' })
    this.synced = new WriteBatcher<Op>((ops) => this.db.batch(ops, { sync: true }))
    this.unsynced = new WriteBatcher<Op>((ops) => this.db.batch(ops))
  }

  static async open(dir: string): Promise<ResolverDb> {
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
    await db.open()
    const rdb = new ResolverDb(db)
    // Sublevels open on their own after the database; the synchronous reads (getSync) need them open.
    await Promise.all([rdb.acct.open(), rdb.tomb.open(), rdb.meta.open()])
    return rdb
  }

  get ready(): boolean {
    return this.db.status === 'open'
  }

  close(): Promise<void> {
    return (this.closing ??= this.db.close())
  }
}
