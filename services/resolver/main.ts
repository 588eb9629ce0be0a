import { connectSystem, createLogger, MeshService, publishChange, runUntilStopped, startup } from '../../shared/index.ts'
import { addActivationEndpoints } from './activations.ts'
import { ClaimReplies } from './claim-reply.ts'
import { loadResolverConfig } from './config.ts'
import { addDeleteEndpoint } from './delete.ts'
import { Delivery } from './delivery.ts'
import { addGetEndpoint } from './get.ts'
import { addHistoryEndpoint } from './history.ts'
import { addListEndpoint } from './list.ts'
import { addResolverHealth } from './health.ts'
import { addLookupEndpoint } from './lookup.ts'
import { addPackEndpoint } from './pack.ts'
import { warnOfLevelPeers } from './peers.ts'
import { LevelStore } from './store/level.ts'
import { storeSystemAccount } from './system-account.ts'
import { addUpdateEndpoints } from './update.ts'
import { JetStreamDelivery } from './jetstream-delivery.ts'
import { JetStreamStore } from './store/jetstream.ts'

startup('resolver', async () => {
  const config = loadResolverConfig(process.env)
  const log = createLogger(config.logLevel, 'resolver')
  const store =
    config.js === undefined
      ? await LevelStore.open(config.dataDir, { cacheSize: config.cacheSize })
      : await JetStreamStore.open(config.dataDir, config.js, log, { cacheSize: config.cacheSize })
  // An instance started empty (or behind) catches up with the stream before it answers anything.
  if (store instanceof JetStreamStore) log.info({ caughtUp: await store.catchUp(), applied: store.view.applied }, 'local view loaded')
  if (config.systemAccountJwt !== undefined) await storeSystemAccount(store, config.systemAccountJwt, log)
  const nc = await connectSystem(config.nats, log, 'resolver')
  const service = await MeshService.start(nc, log, {
    name: 'resolver',
    description: 'Account JWT store: answers nats-server account lookups, updates, list, delete and pack',
  })
  const delivery =
    store instanceof JetStreamStore
      ? new JetStreamDelivery(nc, store, log.child({ part: 'delivery' }))
      : new Delivery(nc, store, log.child({ part: 'delivery' }), service.id)
  if (store instanceof JetStreamStore) store.listen((change) => publishChange(nc, change, service.id))
  else {
    store.listen((change) => (delivery as Delivery).accepted(change))
    void warnOfLevelPeers(nc, service.id, log)
  }
  addLookupEndpoint(service, store)
  addResolverHealth(service, nc, store)
  const replies = new ClaimReplies(service.id)
  addUpdateEndpoints(service, { nc, store, replies })
  addListEndpoint(service, store, replies)
  addDeleteEndpoint(service, { nc, store, replies })
  addPackEndpoint(service, nc, store, replies)
  addHistoryEndpoint(service, store)
  addGetEndpoint(service, store)
  addActivationEndpoints(service, nc, store)
  await (delivery instanceof JetStreamDelivery ? delivery.start() : delivery.resume())
  await runUntilStopped({ log, service, nc, settle: [() => delivery.settle()], closers: [() => store.close()] })
})
