import type { Op, ResolverDb } from './resolver-db.ts'
import type { HistoryEntry, OutboxEntry } from './types.ts'

const seqKey = (seq: number) => String(seq).padStart(16, '0')
const historyKey = (id: string, seq: number) => `${id}!${seqKey(seq)}`

/**
 * History (every accepted version, deletions included) and the outbox (changes the notifier has not yet
 * reported delivered), both keyed by one sequence that orders every change this store made.
 */
export class ChangeLog {
  private seq = 0

  constructor(private readonly rdb: ResolverDb) {}

  async load(): Promise<void> {
    this.seq = Number((await this.rdb.meta.get('seq')) ?? 0)
  }

  /** The next sequence number; recorded by the batch that `seqOp()` joins. */
  next(): number {
    return ++this.seq
  }

  seqOp(): Op {
    return { type: 'put', sublevel: this.rdb.meta, key: 'seq', value: String(this.seq) }
  }

  /** Records `entry` in `id`'s history, at its own seq. */
  historyOp(id: string, entry: HistoryEntry): Op {
    return { type: 'put', sublevel: this.rdb.hist, key: historyKey(id, entry.seq), value: JSON.stringify(entry) }
  }

  outboxOp(change: OutboxEntry): Op {
    return { type: 'put', sublevel: this.rdb.outbox, key: seqKey(change.seq), value: JSON.stringify(change) }
  }

  async historyOf(id: string, opts: { after?: number; limit?: number } = {}): Promise<HistoryEntry[]> {
    const out: HistoryEntry[] = []
    const gt = opts.after === undefined ? `${id}!` : historyKey(id, opts.after)
    for await (const v of this.rdb.hist.values({ gt, lt: `${id}!~`, limit: opts.limit ?? -1 })) {
      out.push(JSON.parse(v) as HistoryEntry)
    }
    return out
  }

  async pending(limit = 1000): Promise<OutboxEntry[]> {
    const out: OutboxEntry[] = []
    for await (const v of this.rdb.outbox.values({ limit })) out.push(JSON.parse(v) as OutboxEntry)
    return out
  }

  async delivered(seq: number): Promise<void> {
    await this.rdb.unsynced.commit([{ type: 'del', sublevel: this.rdb.outbox, key: seqKey(seq) }])
  }
}
