import { connectSystem, createLogger, MeshService, runUntilStopped, startup } from '../../shared/index.ts'
import { addActivationEndpoints } from './activations.ts'
import { ClaimReplies } from './claim-reply.ts'
import { loadResolverConfig } from './config.ts'
import { addDeleteEndpoint } from './delete.ts'
import { openEngine } from './engine.ts'
import { addGetEndpoint } from './get.ts'
import { addHistoryEndpoint } from './history.ts'
import { JetStreamUsageMemory } from './jetstream-usage.ts'
import { addListEndpoint } from './list.ts'
import { addResolverHealth } from './health.ts'
import { addLookupEndpoint } from './lookup.ts'
import { addPackEndpoint } from './pack.ts'
import { Reconciler } from './reconcile.ts'
import { ServerCount } from './server-count.ts'
import { storeSystemAccount } from './system-account.ts'
import { addUpdateEndpoints } from './update.ts'
import { Servability } from './servable.ts'

startup('resolver', async () => {
  const config = loadResolverConfig(process.env)
  const log = createLogger(config.logLevel, 'resolver')
  const { store, receipts, startDelivery } = await openEngine(config, log)
  if (config.systemAccountJwt !== undefined) await storeSystemAccount(store, config.systemAccountJwt, log)
  const nc = await connectSystem(config.nats, log, 'resolver')
  const service = await MeshService.start(nc, log, {
    name: 'resolver',
    description: 'Account JWT store: answers nats-server account lookups, updates, list, delete and pack',
  })
  const servers = new ServerCount(nc, log.child({ part: 'server-count' }))
  servers.start()
  const servability = new Servability(config.trust)
  addLookupEndpoint(service, store, servers, { authoritative: config.authoritative, servability, receipts })
  let delivery: Awaited<ReturnType<typeof startDelivery>> | undefined
  const reconciler = new Reconciler({
    nc,
    store,
    log: log.child({ part: 'reconcile' }),
    intervalMs: config.reconcileSeconds * 1000,
    busy: (id) => delivery?.busy(id) === true,
  })
  // unservable: stored JWTs today's rules refuse, withheld from LOOKUP (not a health failure)
  addResolverHealth(service, nc, store, () => ({ unservable: servability.unservableCount, reconcile: reconciler.health() }))
  const replies = new ClaimReplies(service.id)
  addUpdateEndpoints(service, { nc, store, replies, reconciler, receipts, echo: (id, jwt) => delivery?.broadcasting(id, jwt) === true })
  addListEndpoint(service, store, replies)
  const jetstream = new JetStreamUsageMemory(nc, log.child({ part: 'jetstream-usage' }))
  if (config.allowDelete) jetstream.start()
  addDeleteEndpoint(service, { nc, store, replies, allowDelete: config.allowDelete, jetstream })
  addPackEndpoint(service, nc, store, replies)
  addHistoryEndpoint(service, store)
  addGetEndpoint(service, store)
  addActivationEndpoints(service, nc, store)
  reconciler.addEndpoint(service)
  delivery = await startDelivery(nc, service.id)
  servability.startSweeping(store, nc, log.child({ part: 'sweep' }))
  reconciler.start()
  await runUntilStopped({
    log,
    service,
    nc,
    settle: [() => reconciler.stop(), () => delivery.settle()],
    closers: [() => store.close(), async () => delivery.close(), async () => receipts?.close(), async () => servers.stop(), async () => jetstream.stop()],
  })
})
