import { nowSeconds } from '../../../shared/index.ts'
import type { Op, ResolverDb } from './resolver-db.ts'
import { stillRemembered } from './rules.ts'
import type { Tombstone } from './types.ts'

/** Tombstones of deleted accounts, and the replay memory of the delete requests that made them. */
export class Tombstones {
  constructor(private readonly rdb: ResolverDb) {}

  get(id: string): Tombstone | undefined {
    const raw = this.rdb.tomb.getSync(id)
    return raw === undefined ? undefined : (JSON.parse(raw) as Tombstone)
  }

  async *entries(): AsyncIterable<Tombstone> {
    for await (const v of this.rdb.tomb.values()) yield JSON.parse(v) as Tombstone
  }

  putOp(t: Tombstone): Op {
    return { type: 'put', sublevel: this.rdb.tomb, key: t.id, value: JSON.stringify(t) }
  }

  delOp(id: string): Op {
    return { type: 'del', sublevel: this.rdb.tomb, key: id }
  }

  async remembered(hash: string): Promise<boolean> {
    return (await this.rdb.replay.get(hash)) !== undefined
  }

  rememberOp(hash: string, until: number): Op {
    return { type: 'put', sublevel: this.rdb.replay, key: hash, value: String(until) }
  }

  /** Every remembered request as `[hash, rememberUntil]`. */
  async *replays(): AsyncIterable<[string, number]> {
    for await (const [hash, until] of this.rdb.replay.iterator()) yield [hash, Number(until)]
  }

  /** Forgets requests the signer would refuse as stale anyway. */
  async forgetOld(now = nowSeconds()): Promise<void> {
    const old: string[] = []
    for await (const [hash, until] of this.replays()) if (!stillRemembered(until, now)) old.push(hash)
    if (old.length > 0) await this.rdb.replay.batch(old.map((key) => ({ type: 'del' as const, key })))
  }
}
