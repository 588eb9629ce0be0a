import t, { type Test } from 'tap'
import { createAccount } from '@nats-io/nkeys'
import { newUser } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { accountJwt } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { appliedJwts } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

t.test('a level instance that finds another resolver running warns, naming the jetstream mode', async (t) => {
  const mesh = await startMesh(t, { signers: 0, notifiers: 0 })
  const [first] = mesh.resolvers
  const second = await mesh.start('resolver')
  await waitFor(() => second.logs.some((l) => l.level === 40 && String(l.msg).includes('RESOLVER_STORE=jetstream')), {
    what: 'the warning',
  })
  t.pass('the second instance warns')
  t.notOk(
    first!.logs.some((l) => String(l.msg).includes('RESOLVER_STORE=jetstream')),
    'the first, alone when it started, does not',
  )
})

const now = () => Math.floor(Date.now() / 1000)

/** Three JetStream nodes; two instances of each service, each connected first to another node. */
const haMesh = (t: Test) => startMesh(t, { servers: 3, jetstream: true, resolvers: 2, signers: 2, notifiers: 2 })

t.test('SIGKILL of a resolver instance and of a nats node during 32-in-flight pushes loses no acknowledged push', async (t) => {
  const mesh = await haMesh(t)
  const { fx, servers, sys } = mesh
  const [r1, r2] = mesh.resolvers

  const acked = new Map<string, string>()
  let stop = false
  let failed = 0
  const worker = async () => {
    while (!stop) {
      const id = createAccount().getPublicKey()
      const jwt = accountJwt(fx.op.signingKp, id, {}, { iat: now() })
      try {
        const r = await mesh.push(jwt)
        if (r.ours.data?.code === 200) acked.set(id, jwt)
        else failed++
      } catch {
        failed++ // no reply: not acknowledged, so nothing is owed
      }
    }
  }
  const workers = Array.from({ length: 32 }, worker)
  await waitFor(() => acked.size >= 40, { ms: 30_000, what: '40 acknowledged pushes' })
  await r1!.kill()
  await waitFor(() => acked.size >= 100, { ms: 30_000, what: '100 acknowledged pushes' })
  servers[2]!.proc.kill('SIGKILL')
  const before = acked.size
  await waitFor(() => acked.size >= before + 60, { ms: 60_000, what: 'pushes acknowledged after the node died' })
  stop = true
  await Promise.all(workers)
  t.comment(`${acked.size} acknowledged, ${failed} not`)

  for (const [id, jwt] of acked) if ((await mesh.lookup(id)) !== jwt) t.fail(`${id}: not served by the live instance`)
  t.pass(`the live instance serves all ${acked.size} acknowledged accounts`)
  // the killed instance, back on its local view, alone: it answers for every one of them too
  await mesh.start('resolver', { RESOLVER_DATA_DIR: r1!.dataDir })
  await r2!.kill()
  // Until every node has dropped the killed instance's interest (routes learn it a moment later), a LOOKUP may
  // still be routed to it and go unanswered: wait for the restarted instance to answer one first.
  const [firstId, firstJwt] = [...acked][0]!
  await waitFor(async () => (await mesh.lookup(firstId, 1000).catch(() => '')) === firstJwt, { ms: 15_000, what: 'the restarted instance answering' })
  for (const [id, jwt] of acked) if ((await mesh.lookup(id)) !== jwt) t.fail(`${id}: not served by the restarted instance`)
  t.pass('the restarted instance serves them all')
})

t.test('30 versions of one account pushed at once through two instances end with the newest stored and in force everywhere', async (t) => {
  const mesh = await haMesh(t)
  const { fx, servers, sys } = mesh
  const [r1, r2] = mesh.resolvers
  const kp = createAccount()
  const id = kp.getPublicKey()
  const versions = Array.from({ length: 31 }, (_, n) => accountJwt(fx.op.signingKp, id, {}, { iat: now() - 100 + n, name: `v${n}` }))
  t.equal((await mesh.push(versions[0]!)).ours.data?.code, 200)
  const user = await newUser({ name: 'X', kp, id, jwt: versions[0]! }, 'u')
  for (const s of servers) await (await connectWith(t, s, user.creds)).close()
  const later = versions.slice(1).sort(() => Math.random() - 0.5)
  // as nsc users do: a push that got no reply or a 5xx was not acknowledged, and is sent again
  const pushAnswered = async (jwt: string) => {
    for (let i = 0; ; i++) {
      const r = await mesh.push(jwt).catch(() => undefined)
      const code = r?.ours.data?.code ?? r?.ours.error?.code
      if ((code !== undefined && code < 500) || i === 5) return r
    }
  }
  const replies = await Promise.all(later.map(pushAnswered))
  t.equal(replies.at(later.indexOf(versions.at(-1)!))?.ours.data?.code, 200, 'the newest version is acknowledged')
  const by = new Set(replies.map((r) => r?.ours.server.id))
  t.ok(by.size >= 1, `answered by ${by.size} instance(s)`)
  const newest = versions.at(-1)!
  // the other instance's view follows the stream: under load it may take seconds to apply the last write
  let served = ''
  await waitFor(async () => (served = await mesh.lookup(id)) === newest, { ms: 15_000, what: 'the newest version stored' }).catch((e: Error) => {
    // seen once in CI on 2.9.10, not reproduced since: say what was served and what the instances were doing
    const name = served === '' ? 'nothing' : String(JSON.parse(Buffer.from(served.split('.')[1] ?? '', 'base64url').toString()).name)
    const tails = [r1!, r2!].map((r) => `${r.name}: ${JSON.stringify(r.logs.slice(-15))}`).join('\n')
    throw new Error(`${e.message}; last served: ${name}\n${tails}`)
  })
  await waitFor(async () => [...(await appliedJwts(sys, id, 3)).values()].every((j) => j === newest) && (await appliedJwts(sys, id, 3)).size === 3, {
    ms: 20_000,
    what: 'the newest version in force on every server',
  })
  t.pass('every server runs the newest version')

  // an instance started empty answers only once it has caught up: alone, it serves the newest at once
  const fresh = await mesh.start('resolver', {}, 2)
  await Promise.all([r1!.kill(), r2!.kill()])
  // a LOOKUP may still be routed to a killed instance until every node dropped its interest (as above): wait
  // for one answered by the fresh instance, of another account, before asking for this one
  const sysAccount = fx.op.systemAccount
  await waitFor(async () => (await mesh.lookup(sysAccount.id, 1000).catch(() => '')) === sysAccount.jwt, { ms: 15_000, what: 'the fresh instance answering' })
  t.equal(await mesh.lookup(id), newest, 'the empty instance serves the newest version as soon as it is ready')
  t.equal(await mesh.lookup(fx.op.systemAccount.id), fx.op.systemAccount.jwt)
  void fresh
})
