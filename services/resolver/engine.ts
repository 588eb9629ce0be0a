import { publishChange, type Logger, type NatsConnection } from '../../shared/index.ts'
import type { ResolverConfig } from './config.ts'
import { Delivery } from './delivery.ts'
import { PushReceipts } from './push-receipts.ts'
import { JetStreamDelivery } from './jetstream-delivery.ts'
import { warnOfLevelPeers } from './peers.ts'
import { JetStreamStore } from './store/jetstream.ts'
import { LevelStore } from './store/level.ts'
import type { ResolverStore } from './store/types.ts'

/** The store an instance runs on, and how its changes reach the servers. */
export interface Engine {
  store: ResolverStore
  /** Level only (see push-receipts.ts). */
  receipts?: PushReceipts
  /**
   * Starts delivering changes once the system connection exists. `settle` waits for deliveries in flight;
   * `close` stops for good (also when a lost connection cut the settling short).
   */
  startDelivery(
    nc: NatsConnection,
    serviceId: string,
  ): Promise<{ settle(): Promise<void>; close(): void; busy(id: string): boolean; broadcasting(id: string, jwt: string): boolean }>
}

/**
 * level: the store's own outbox, delivered by this process, which also announces each change it stores.
 * jetstream: the shared durable consumer delivers; this process announces the changes it accepted, and
 * catches up with the stream before it answers anything.
 */
export async function openEngine(config: ResolverConfig, log: Logger): Promise<Engine> {
  const opts = { cacheSize: config.cacheSize }
  if (config.js === undefined) {
    const store = await LevelStore.open(config.dataDir, opts)
    // One instance sees every push and every lookup of its store: only it can tell when a push's own
    // replies from the servers may stand for the broadcast. Instances sharing a stream cannot.
    const receipts = new PushReceipts()
    return {
      store,
      receipts,
      async startDelivery(nc, serviceId) {
        const delivery = new Delivery(nc, store, log.child({ part: 'delivery' }), serviceId, receipts)
        store.listen((change) => delivery.accepted(change))
        void warnOfLevelPeers(nc, serviceId, log)
        await delivery.resume()
        return delivery
      },
    }
  }
  const store = await JetStreamStore.open(config.dataDir, config.js, log, opts)
  log.info({ caughtUp: await store.catchUp(), applied: store.view.applied }, 'local view loaded')
  return {
    store,
    async startDelivery(nc, serviceId) {
      store.listen((change) => publishChange(nc, change, serviceId))
      const delivery = new JetStreamDelivery(nc, store, log.child({ part: 'delivery' }))
      await delivery.start()
      return delivery
    },
  }
}
