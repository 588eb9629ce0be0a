import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createAccount } from '@nats-io/nkeys'
import { encodeAccount } from '@nats-io/jwt'
import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { newUser } from '../ops/identities.ts'
import { connectWith } from './helpers/clients.ts'
import { makeFixture, type Fixture } from './helpers/fixtures.ts'
import { startJsCluster, startJsResolver } from './helpers/jetstream.ts'
import { accountJwt } from './helpers/jwts.ts'
import { startNatsServer, type NatsServerHandle } from './helpers/nats-server.ts'
import { startResolver, startService } from './helpers/services.ts'
import { appliedJwts, clusterFormed, gather, push } from './helpers/sys-requests.ts'
import { waitFor } from './helpers/wait-for.ts'

t.test('a level instance that finds another resolver running warns, naming the jetstream mode', async (t) => {
  const fx = await makeFixture(t)
  const ns = await startNatsServer(t, fx)
  const first = await startResolver(t, fx, [ns])
  const second = await startResolver(t, fx, [ns])
  await waitFor(() => second.logs.some((l) => l.level === 40 && String(l.msg).includes('RESOLVER_STORE=jetstream')), {
    what: 'the warning',
  })
  t.pass('the second instance warns')
  t.notOk(
    first.logs.some((l) => String(l.msg).includes('RESOLVER_STORE=jetstream')),
    'the first, alone when it started, does not',
  )
})

const now = () => Math.floor(Date.now() / 1000)
const alive = (servers: NatsServerHandle[]) => servers.filter((s) => s.proc.exitCode === null && s.proc.signalCode === null)

/** Two signers and two notifiers, each connected first to another node. */
async function helpers(t: Test, fx: Fixture, servers: NatsServerHandle[]) {
  for (const first of [0, 1]) {
    const at = [servers[first]!, ...servers.filter((_, j) => j !== first)]
    await startService(t, 'signer', fx, at)
    await startService(t, 'notifier', fx, at)
  }
}

async function lookup(sys: NatsConnection, id: string): Promise<string> {
  return (await sys.request(subjects.lookup(id), '', { timeout: 3000 })).string()
}

t.test('SIGKILL of a resolver instance and of a nats node during 32-in-flight pushes loses no acknowledged push', async (t) => {
  const fx = await makeFixture(t)
  const { servers } = await startJsCluster(t, fx)
  const sys = await connectWith(t, servers, fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)
  const [r1, r2] = await Promise.all([startJsResolver(t, fx, servers, 0), startJsResolver(t, fx, servers, 1)])
  await helpers(t, fx, servers)

  const acked = new Map<string, string>()
  let stop = false
  let failed = 0
  const worker = async () => {
    while (!stop) {
      const id = createAccount().getPublicKey()
      const jwt = accountJwt(fx.op.signingKp, id, {}, { iat: now() })
      try {
        const r = await push(sys, subjects.claimsUpdate, jwt, alive(servers).length)
        if (r.ours.data?.code === 200) acked.set(id, jwt)
        else failed++
      } catch {
        failed++ // no reply: not acknowledged, so nothing is owed
      }
    }
  }
  const workers = Array.from({ length: 32 }, worker)
  await waitFor(() => acked.size >= 40, { ms: 30_000, what: '40 acknowledged pushes' })
  await r1.kill()
  await waitFor(() => acked.size >= 100, { ms: 30_000, what: '100 acknowledged pushes' })
  servers[2]!.proc.kill('SIGKILL')
  const before = acked.size
  await waitFor(() => acked.size >= before + 60, { ms: 60_000, what: 'pushes acknowledged after the node died' })
  stop = true
  await Promise.all(workers)
  t.comment(`${acked.size} acknowledged, ${failed} not`)

  for (const [id, jwt] of acked) if ((await lookup(sys, id)) !== jwt) t.fail(`${id}: not served by the live instance`)
  t.pass(`the live instance serves all ${acked.size} acknowledged accounts`)
  // the killed instance, back on its local view, alone: it answers for every one of them too
  await startJsResolver(t, fx, servers, 0, { RESOLVER_DATA_DIR: r1.dataDir })
  await r2.kill()
  for (const [id, jwt] of acked) if ((await lookup(sys, id)) !== jwt) t.fail(`${id}: not served by the restarted instance`)
  t.pass('the restarted instance serves them all')
})

t.test('30 versions of one account pushed at once through two instances end with the newest stored and in force everywhere', async (t) => {
  const fx = await makeFixture(t)
  const { servers } = await startJsCluster(t, fx)
  const sys = await connectWith(t, servers, fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)
  const [r1, r2] = await Promise.all([startJsResolver(t, fx, servers, 0), startJsResolver(t, fx, servers, 1)])
  await helpers(t, fx, servers)
  const kp = createAccount()
  const id = kp.getPublicKey()
  const versions = Array.from({ length: 31 }, (_, n) => accountJwt(fx.op.signingKp, id, {}, { iat: now() - 100 + n, name: `v${n}` }))
  t.equal((await push(sys, subjects.claimsUpdate, versions[0]!, 3)).ours.data?.code, 200)
  const user = await newUser({ name: 'X', kp, id, jwt: versions[0]! }, 'u')
  for (const s of servers) await (await connectWith(t, s, user.creds)).close()
  const later = versions.slice(1).sort(() => Math.random() - 0.5)
  const replies = await Promise.all(later.map((jwt) => push(sys, subjects.claimsUpdate, jwt, 3).catch(() => undefined)))
  const by = new Set(replies.map((r) => r?.ours.server.id))
  t.ok(by.size >= 1, `answered by ${by.size} instance(s)`)
  const newest = versions.at(-1)!
  await waitFor(async () => (await lookup(sys, id)) === newest, { what: 'the newest version stored' })
  await waitFor(async () => [...(await appliedJwts(sys, id, 3)).values()].every((j) => j === newest) && (await appliedJwts(sys, id, 3)).size === 3, {
    ms: 20_000,
    what: 'the newest version in force on every server',
  })
  t.pass('every server runs the newest version')

  // an instance started empty answers only once it has caught up: alone, it serves the newest at once
  const fresh = await startJsResolver(t, fx, servers, 2)
  await Promise.all([r1.kill(), r2.kill()])
  t.equal(await lookup(sys, id), newest, 'the empty instance serves the newest version as soon as it is ready')
  t.equal(await lookup(sys, fx.op.systemAccount.id), fx.op.systemAccount.jwt)
  void fresh
})

t.test('a change whose delivery was pending when every instance was killed is delivered after they restart', async (t) => {
  const fx = await makeFixture(t)
  const { servers } = await startJsCluster(t, fx)
  const sys = await connectWith(t, servers, fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)
  const seedFile = join(fx.dir, 'signing.nk')
  await writeFile(seedFile, new TextDecoder().decode(fx.op.signingKp.getSeed()), { mode: 0o600 })
  await startService(t, 'signer', fx, servers, { SIGNER_SEED_FILE: seedFile })
  const resolvers = await Promise.all([startJsResolver(t, fx, servers, 0), startJsResolver(t, fx, servers, 1)])
  let notifier = await startService(t, 'notifier', fx, servers)

  // Self-signed, so servers hearing the push store it but do not apply it: only a delivery of ours can.
  const kp = createAccount()
  const id = kp.getPublicKey()
  t.equal((await push(sys, subjects.claimsUpdate, await encodeAccount('LATE', kp, { limits: { conn: 10 } }), 3)).ours.data?.code, 200)
  await waitFor(() => resolvers.some((r) => r.logs.some((l) => l.msg === 'change delivered' && l.account === id)), { what: 'the first delivery' })
  const carol = await newUser({ name: 'LATE', kp, id, jwt: '' }, 'carol')
  const nc = await connectWith(t, servers[0]!, carol.creds)
  await nc.flush()

  t.equal(await notifier.stop(), 0)
  const revoking = await encodeAccount('LATE', kp, { limits: { conn: 10 }, revocations: { [carol.kp.getPublicKey()]: now() } })
  t.equal((await push(sys, subjects.claimsUpdate, revoking, 3)).ours.data?.code, 200)
  await Promise.all(resolvers.map((r) => r.kill()))
  t.notOk(nc.isClosed(), 'the revocation has not reached the servers')

  notifier = await startService(t, 'notifier', fx, servers)
  const again = await Promise.all(resolvers.map((r, i) => startJsResolver(t, fx, servers, i, { RESOLVER_DATA_DIR: r.dataDir })))
  await waitFor(() => nc.isClosed(), { ms: 20_000, what: 'the revoked user to be disconnected' })
  t.ok(again.some((r) => r.logs.some((l) => l.msg === 'change delivered' && l.account === id)), 'a restarted instance delivered it')
  void notifier
})

t.test('with two of three nodes down a push fails fast with a 5xx while lookups answer; pushes work again when they return', async (t) => {
  const fx = await makeFixture(t)
  const cluster = await startJsCluster(t, fx)
  const { servers } = cluster
  const sys = await connectWith(t, servers[0]!, fx.sysUser.creds)
  await clusterFormed(sys, 3)
  await startJsResolver(t, fx, servers, 0)
  await startService(t, 'signer', fx, [servers[0]!])
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
  const ours = replies.find((r) => r.server.name === 'resolver')
  const took = Date.now() - started
  t.ok(ours?.error !== undefined && ours.error.code >= 500, `error reply ${JSON.stringify(ours?.error)}`)
  t.ok(took < 8000, `answered in ${took} ms`)
  t.equal(await lookup(sys, stored), storedJwt, 'and still is after the refused push')
  t.equal(await lookup(sys, id), '', 'the refused one is not')

  await Promise.all([cluster.restart(1), cluster.restart(2)])
  await waitFor(
    async () => (await push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, id, {}, { iat: now() }), 3)).ours.data?.code === 200,
    { ms: 60_000, every: 1000, what: 'a push to succeed again' },
  )
  t.pass('pushes work again')
})
