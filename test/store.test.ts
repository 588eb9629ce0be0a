import t from 'tap'
import { createLogger } from '../shared/index.ts'
import { JetStreamStore } from '../services/resolver/store/jetstream.ts'
import { LevelStore } from '../services/resolver/store/level.ts'
import { makeFixture } from './kit/fixtures.ts'
import { readFile } from 'node:fs/promises'
import { startNatsServer, type NatsServerHandle } from './kit/nats-server.ts'
import { storeContract } from './store/contract.ts'

await storeContract(t, 'level', (_t, dir, opts) => LevelStore.open(dir, opts))

// One single-node JetStream server per store directory, so each case starts from an empty stream and a
// reopen of the same directory finds the stream it wrote.
const fx = await makeFixture(t)
const creds = await readFile(fx.meshCredsPath, 'utf8')
const servers = new Map<string, NatsServerHandle>()
const log = createLogger('silent', 'test')
await storeContract(t, 'jetstream', async (t, dir, opts) => {
  let ns = servers.get(dir)
  if (ns === undefined) servers.set(dir, (ns = await startNatsServer(t, fx, { jetstream: true })))
  const store = await JetStreamStore.open(`${dir}/view`, { servers: [ns.url], creds, replicas: 1 }, log, opts)
  await store.catchUp()
  return store
})
