import { connectSystem, createLogger, MeshService, runUntilStopped, startup } from '../../shared/index.ts'
import { addActivationEndpoints } from './activations.ts'
import { ClaimReplies } from './claim-reply.ts'
import { loadResolverConfig } from './config.ts'
import { addDeleteEndpoint } from './delete.ts'
import { openEngine } from './engine.ts'
import { addGetEndpoint } from './get.ts'
import { addHistoryEndpoint } from './history.ts'
import { addListEndpoint } from './list.ts'
import { addResolverHealth } from './health.ts'
import { addLookupEndpoint } from './lookup.ts'
import { addPackEndpoint } from './pack.ts'
import { storeSystemAccount } from './system-account.ts'
import { addUpdateEndpoints } from './update.ts'

startup('resolver', async () => {
  const config = loadResolverConfig(process.env)
  const log = createLogger(config.logLevel, 'resolver')
  const { store, startDelivery } = await openEngine(config, log)
  if (config.systemAccountJwt !== undefined) await storeSystemAccount(store, config.systemAccountJwt, log)
  const nc = await connectSystem(config.nats, log, 'resolver')
  const service = await MeshService.start(nc, log, {
    name: 'resolver',
    description: 'Account JWT store: answers nats-server account lookups, updates, list, delete and pack',
  })
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
  const delivery = await startDelivery(nc, service.id)
  await runUntilStopped({ log, service, nc, settle: [() => delivery.settle()], closers: [() => store.close(), async () => delivery.close()] })
})
