import t, { type Test } from 'tap'
import { createAccount } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { newUser } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture, type Fixture } from './kit/fixtures.ts'
import { startJsCluster, startJsResolver } from './kit/jetstream.ts'
import { accountJwt } from './kit/jwts.ts'
import { startNatsServer, type NatsServerHandle } from './kit/nats-server.ts'
import { startResolver, startService } from './kit/services.ts'
import { appliedJwts, clusterFormed, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

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
