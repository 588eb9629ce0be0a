import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createAccount } from '@nats-io/nkeys'
import { encodeAccount } from '@nats-io/jwt'
import { isResolverReply, subjects } from '../shared/index.ts'
import { newUser } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture } from './kit/fixtures.ts'
import { accountJwt } from './kit/jwts.ts'
import { lookup, startMesh } from './kit/mesh.ts'
import { gather, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const now = () => Math.floor(Date.now() / 1000)

t.test('a change whose delivery was pending when every instance was killed is delivered after they restart', async (t) => {
  const fx = await makeFixture(t)
  const seedFile = join(fx.dir, 'signing.nk')
  await writeFile(seedFile, new TextDecoder().decode(fx.op.signingKp.getSeed()), { mode: 0o600 })
  const mesh = await startMesh(t, { fx, servers: 3, jetstream: true, resolvers: 2, signerEnv: { SIGNER_SEED_FILE: seedFile } })
  const { servers, sys, resolvers } = mesh
  let [notifier] = mesh.notifiers

  // Self-signed, so servers hearing the push store it but do not apply it: only a delivery of ours can.
  const kp = createAccount()
  const id = kp.getPublicKey()
  t.equal((await mesh.push(await encodeAccount('LATE', kp, { limits: { conn: 10 } }))).ours.data?.code, 200)
  await waitFor(() => resolvers.some((r) => r.logs.some((l) => l.msg === 'change delivered' && l.account === id)), { what: 'the first delivery' })
  const carol = await newUser({ name: 'LATE', kp, id, jwt: '' }, 'carol')
  const nc = await connectWith(t, servers[0]!, carol.creds)
  await nc.flush()

  t.equal(await notifier!.stop(), 0)
  const revoking = await encodeAccount('LATE', kp, { limits: { conn: 10 }, revocations: { [carol.kp.getPublicKey()]: now() } })
  t.equal((await mesh.push(revoking)).ours.data?.code, 200)
  await Promise.all(resolvers.map((r) => r.kill()))
  t.notOk(nc.isClosed(), 'the revocation has not reached the servers')

  notifier = await mesh.start('notifier')
  const again = await Promise.all(resolvers.map((r, i) => mesh.start('resolver', { RESOLVER_DATA_DIR: r.dataDir }, i)))
  await waitFor(() => nc.isClosed(), { ms: 20_000, what: 'the revoked user to be disconnected' })
  // The notifier reports (and the instance logs) once every server answered, a moment after the disconnect.
  await waitFor(() => again.some((r) => r.logs.some((l) => l.msg === 'change delivered' && l.account === id)), { ms: 10_000, what: 'the delivery report' })
  t.pass('a restarted instance delivered it')
  void notifier
})

t.test('with two of three nodes down a push fails fast with a 5xx while lookups answer; pushes work again when they return', async (t) => {
  const mesh = await startMesh(t, { servers: 3, jetstream: true, signers: 0, notifiers: 0 })
  const { fx, servers } = mesh
  // the signer and this test's own connection on n1 alone, the node that stays up
  await mesh.start('signer', { NATS_URL: servers[0]!.url })
  const sys = await connectWith(t, servers[0]!, fx.sysUser.creds)
  const stored = createAccount().getPublicKey()
  const storedJwt = accountJwt(fx.op.signingKp, stored, {}, { iat: now() })
  t.equal((await push(sys, subjects.claimsUpdate, storedJwt, 3)).ours.data?.code, 200)

  await Promise.all([servers[1]!.stop(), servers[2]!.stop()])
  // The resolver's connection may have been on a stopped node: lookups answer once it is back on n1.
  await waitFor(async () => (await lookup(sys, stored)) === storedJwt, { ms: 15_000, what: 'a lookup answered with two nodes down' })
  t.pass('a stored account is still served')
  const id = createAccount().getPublicKey()
  const started = Date.now()
  const replies = (await gather(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, id, {}, { iat: now() }), 2, 15_000)).map((m) =>
    m.json<{ server: { name: string }; error?: { code: number; reason?: string } }>(),
  )
  const ours = replies.find(isResolverReply)
  const took = Date.now() - started
  t.ok(ours?.error !== undefined && ours.error.code >= 500, `error reply ${JSON.stringify(ours?.error)}`)
  t.ok(took < 8000, `answered in ${took} ms`)
  t.equal(await lookup(sys, stored), storedJwt, 'and still is after the refused push')
  t.equal(await lookup(sys, id), '', 'the refused one is not')

  await Promise.all([mesh.restartServer(1), mesh.restartServer(2)])
  await waitFor(
    async () => (await push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, id, {}, { iat: now() }), 3)).ours.data?.code === 200,
    { ms: 60_000, every: 1000, what: 'a push to succeed again' },
  )
  t.pass('pushes work again')
})
