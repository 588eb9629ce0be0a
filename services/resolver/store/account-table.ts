import { isExpired, nowSeconds, peekClaims } from '../../../shared/index.ts'
import type { Op, ResolverDb } from './resolver-db.ts'
import { stampOf } from './rules.ts'
import { StoreHash } from './store-hash.ts'
import type { StoredAccount } from './types.ts'

const HASH_KEY = 'hash'

/**
 * The current version of every account, a bounded LRU of them for lookups, and the PACK store hash, which
 * moves with every write in the same batch.
 */
export class AccountTable {
  private readonly cache = new Map<string, StoredAccount>()
  private hash = new StoreHash()

  constructor(
    private readonly rdb: ResolverDb,
    private readonly cacheSize: number,
  ) {}

  async load(): Promise<void> {
    const hex = await this.rdb.meta.get(HASH_KEY)
    if (hex !== undefined) this.hash = new StoreHash(Buffer.from(hex, 'hex'))
    else {
      // a store written before the hash was kept in meta
      for await (const jwt of this.rdb.acct.values()) this.hash.toggle(jwt)
    }
  }

  storeHash(): Buffer {
    return this.hash.digest()
  }

  cached(id: string): StoredAccount | undefined {
    const hit = this.cache.get(id)
    if (hit !== undefined) {
      // Refresh recency: a Map iterates in insertion order, so the first key is the least recent.
      this.cache.delete(id)
      this.cache.set(id, hit)
    }
    return hit
  }

  /**
   * From memory, else one LevelDB point read on this thread: a few microseconds from LevelDB's or the OS's
   * cache, less than the thread-pool round trip of an asynchronous get. Reading and caching in one tick also
   * means no write lands in between and puts a replaced version back in the cache.
   */
  readNow(id: string): StoredAccount | undefined {
    const hit = this.cached(id)
    if (hit !== undefined) return hit
    const jwt = this.rdb.acct.getSync(id)
    if (jwt === undefined) return undefined
    const acc = stampOf(id, jwt)
    this.remember(acc)
    return acc
  }

  async *ids(): AsyncIterable<string> {
    yield* this.rdb.acct.keys()
  }

  async *entries(): AsyncIterable<[string, string]> {
    yield* this.rdb.acct.iterator()
  }

  async liveIds(now = nowSeconds()): Promise<string[]> {
    const out: string[] = []
    for await (const [id, jwt] of this.entries()) if (!isExpired(peekClaims(jwt), now)) out.push(id)
    return out
  }

  /**
   * The ops that make `after` current for `id` (undefined deletes it). The hash moves at once, so the batch
   * records it; `undo` moves it back should the batch fail, `done` updates the cache once it is written.
   */
  change(id: string, before: string | undefined, after: StoredAccount | undefined) {
    const flip = () => {
      if (before !== undefined) this.hash.toggle(before)
      if (after !== undefined) this.hash.toggle(after.jwt)
    }
    flip()
    const ops: Op[] = [
      after === undefined
        ? { type: 'del', sublevel: this.rdb.acct, key: id }
        : { type: 'put', sublevel: this.rdb.acct, key: id, value: after.jwt },
    ]
    return {
      ops,
      undo: flip,
      done: () => (after === undefined ? this.cache.delete(id) : this.remember(after)),
    }
  }

  /** The hash as it stands once the batch it joins is written. */
  hashOp(): Op {
    return { type: 'put', sublevel: this.rdb.meta, key: HASH_KEY, value: this.hash.digest().toString('hex') }
  }

  private remember(acc: StoredAccount): void {
    this.cache.delete(acc.id)
    this.cache.set(acc.id, acc)
    if (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value
      if (oldest !== undefined) this.cache.delete(oldest)
    }
  }
}
