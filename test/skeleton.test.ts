import t from 'tap'
import { subjects } from '../shared/index.ts'
import { newAccount, newUser } from '../ops/identities.ts'
import { AccountStore } from '../services/resolver/account-store.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture, tempDir } from './kit/fixtures.ts'
import { startMesh } from './kit/mesh.ts'

t.test('a cache-mode server resolves accounts from the resolver', async (t) => {
  const fx = await makeFixture(t)
  const demo = await newAccount(fx.op, 'DEMO')
  const demoUser = await newUser(demo, 'alice')
  const stranger = await newUser(await newAccount(fx.op, 'UNKNOWN'), 'bob')

  const dataDir = await tempDir(t, 'resolver')
  const seed = await AccountStore.open(dataDir)
  t.equal((await seed.save(demo.id, demo.jwt, { via: 'test' })).outcome, 'stored')
  await seed.close()

  const mesh = await startMesh(t, { fx, resolverEnv: { RESOLVER_DATA_DIR: dataDir }, signers: 0, notifiers: 0 })
  const { sys } = mesh
  const ns = mesh.servers[0]!
  const resolver = mesh.resolvers[0]!

  await t.test('a user of a stored account connects', async (t) => {
    const nc = await connectWith(t, ns, demoUser.creds)
    await nc.flush()
    t.equal(nc.info?.server_name, 'n1')
    await nc.close()
  })

  await t.test('a user of an unknown account is refused fast', async (t) => {
    const start = Date.now()
    await t.rejects(connectWith(t, ns, stranger.creds))
    t.ok(Date.now() - start < 1000, `refused in ${Date.now() - start} ms, under the 1.9 s fetch timeout`)
  })

  await t.test('LOOKUP answers the raw JWT with no headers, empty when unknown', async (t) => {
    const sysReply = await sys.request(subjects.lookup(fx.op.systemAccount.id), '', { timeout: 2000 })
    t.equal(sysReply.string(), fx.op.systemAccount.jwt)
    t.notOk(sysReply.headers, 'no headers')
    const unknown = await sys.request(subjects.lookup(stranger.kp.getPublicKey().replace(/^U/, 'A')), '', { timeout: 2000 })
    t.equal(unknown.data.length, 0)
  })

  await t.test('hostile LOOKUP subjects get an empty reply, not silence', async (t) => {
    for (const id of ['not-a-key', 'A', fx.op.kp.getPublicKey(), demoUser.kp.getPublicKey()]) {
      const r = await sys.request(subjects.lookup(id), 'garbage', { timeout: 2000 })
      t.equal(r.data.length, 0, `empty for ${id}`)
    }
    const still = await sys.request(subjects.lookup(demo.id), '', { timeout: 2000 })
    t.equal(still.string(), demo.jwt, 'store unchanged')
  })

  await t.test('the resolver restarted on the same data dir still answers', async (t) => {
    t.equal(await resolver.stop(), 0, 'exit code 0 on SIGTERM')
    await mesh.start('resolver', {}, 0, t)
    const r = await sys.request(subjects.lookup(demo.id), '', { timeout: 2000 })
    t.equal(r.string(), demo.jwt)
  })
})

t.test('signer and notifier start, answer $SRV and exit 0 on SIGTERM', async (t) => {
  const mesh = await startMesh(t, { resolvers: 0 })
  const { sys } = mesh
  const [signer, notifier] = [mesh.signers[0]!, mesh.notifiers[0]!]
  for (const name of ['signer', 'notifier']) {
    const r = (await sys.request(`$SRV.PING.${name}`, '', { timeout: 2000 })).json<{ name: string; type: string }>()
    t.equal(r.name, name)
    t.equal(r.type, 'io.nats.micro.v1.ping_response')
  }
  t.equal(await signer.stop(), 0)
  t.equal(await notifier.stop(), 0)
})
