import { connectSystem, createLogger, MeshService, runUntilStopped, startup } from '../../shared/index.ts'
import { AccountStore } from './account-store.ts'
import { addActivationEndpoints } from './activations.ts'
import { ClaimReplies } from './claim-reply.ts'
import { loadResolverConfig } from './config.ts'
import { addDeleteEndpoint } from './delete.ts'
import { Delivery } from './delivery.ts'
import { addGetEndpoint } from './get.ts'
import { addHistoryEndpoint } from './history.ts'
import { JetStreamUsageMemory } from './jetstream-usage.ts'
import { addListEndpoint } from './list.ts'
import { addResolverHealth } from './health.ts'
import { addLookupEndpoint } from './lookup.ts'
import { addPackEndpoint } from './pack.ts'
import { Replication } from './replication.ts'
import { ServerCount } from './server-count.ts'
import { Takeover } from './takeover.ts'
import { storeSystemAccount } from './system-account.ts'
import { addUpdateEndpoints } from './update.ts'

startup('resolver', async () => {
  const config = loadResolverConfig(process.env)
  const log = createLogger(config.logLevel, 'resolver')
  const store = await AccountStore.open(config.dataDir, { cacheSize: config.cacheSize })
  if (config.systemAccountJwt !== undefined) await storeSystemAccount(store, config.systemAccountJwt, log)
  const nc = await connectSystem(config.nats, log, 'resolver')
  const service = await MeshService.start(nc, log, {
    name: 'resolver',
    description: 'Account JWT store: answers nats-server account lookups, updates, list, delete and pack',
  })
  const delivery = new Delivery(nc, store, log.child({ part: 'delivery' }), service.id)
  const takeover = new Takeover(nc, log.child({ part: 'takeover' }), config.takeoverSeconds * 1000)
  const replication = new Replication(
    nc,
    store,
    service.id,
    log.child({ part: 'replication' }),
    config.syncIntervalSeconds * 1000,
    config.trust,
    takeover,
  )
  replication.addSyncEndpoint(service)
  // Catch up with the other instances before answering lookups, so a new one does not answer "unknown".
  takeover.start()
  await replication.start()
  const servers = new ServerCount(nc, log.child({ part: 'server-count' }))
  servers.start()
  addLookupEndpoint(service, store, servers)
  addResolverHealth(service, nc, store)
  const replies = new ClaimReplies(service.id)
  addUpdateEndpoints(service, { nc, store, delivery, replies })
  addListEndpoint(service, store, replies)
  const jetstream = new JetStreamUsageMemory(nc, log.child({ part: 'jetstream-usage' }))
  if (config.allowDelete) jetstream.start()
  addDeleteEndpoint(service, { nc, store, delivery, replies, allowDelete: config.allowDelete, jetstream })
  addPackEndpoint(service, nc, store, replies)
  addHistoryEndpoint(service, store)
  addGetEndpoint(service, store)
  addActivationEndpoints(service, nc, store)
  await delivery.resume()
  await runUntilStopped({ log, service, nc, settle: [() => delivery.settle()], closers: [() => store.close(), async () => delivery.close(), () => replication.stop(), async () => takeover.stop(), async () => servers.stop(), async () => jetstream.stop()] })
})
