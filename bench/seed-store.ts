import { LevelStore } from '../services/resolver/store/level.ts'

/**
 * Fills a resolver data directory through the resolver's own store code, as if every account had been
 * pushed and delivered: current version, history entry, store hash, and an outbox left empty (a fresh
 * resolver would otherwise start by re-delivering every account). Much faster than pushing through NATS,
 * which matters for a million accounts.
 */
export class StoreSeeder {
  private constructor(private readonly store: LevelStore) {}

  static async open(dir: string): Promise<StoreSeeder> {
    return new StoreSeeder(await LevelStore.open(dir, { cacheSize: 0 }))
  }

  async add(ids: string[], jwts: string[], inFlight = 256): Promise<void> {
    let next = 0
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < ids.length) {
          const i = next++
          await this.store.save(ids[i]!, jwts[i]!, { via: 'bench-seed' })
        }
      }),
    )
    for (;;) {
      const pending = await this.store.pendingChanges(10_000)
      if (pending.length === 0) break
      let j = 0
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (j < pending.length) await this.store.delivered(pending[j++]!.seq)
        }),
      )
    }
  }

  close(): Promise<void> {
    return this.store.close()
  }
}

export async function seedStore(dir: string, ids: string[], jwts: string[]): Promise<void> {
  const seeder = await StoreSeeder.open(dir)
  try {
    await seeder.add(ids, jwts)
  } finally {
    await seeder.close()
  }
}
