import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createAccount } from '@nats-io/nkeys'
import { encodeAccount } from '@nats-io/jwt'
import { createInbox, headers, type NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { newUser, type AccountIdentity } from '../ops/identities.ts'
import { connectWith } from './helpers/clients.ts'
import { makeFixture, type Fixture } from './helpers/fixtures.ts'
import { accountJwt } from './helpers/jwts.ts'
import { startCluster, type NatsServerHandle } from './helpers/nats-server.ts'
import { startResolver, startService, type ServiceProcess } from './helpers/services.ts'
import { appliedJwts, clusterFormed, gather, push } from './helpers/sys-requests.ts'
import { waitFor } from './helpers/wait-for.ts'

const now = () => Math.floor(Date.now() / 1000)
const SYNC = { RESOLVER_SYNC_SECONDS: '1' }

/** The ids of the resolver instances answering `$SRV.PING.resolver`. */
async function resolverIds(nc: NatsConnection): Promise<string[]> {
  const replies = await gather(nc, subjects.microPing('resolver'), '', 10, 500)
  return replies.map((m) => m.json<{ id: string }>().id).sort()
}

/** Everything one instance holds, pulled from its own sync subject: account id → JWT. */
async function holdings(nc: NatsConnection, instance: string): Promise<Map<string, string>> {
  const inbox = createInbox()
  const sub = nc.subscribe(inbox)
  const timer = setTimeout(() => sub.unsubscribe(), 5000)
  nc.publish(subjects.resolverSync(instance), '', { reply: inbox })
  const out = new Map<string, string>()
  for await (const m of sub) {
    if (m.data.length === 0 && m.headers === undefined) break
    if (m.headers?.get('Mesh-Change') === 'updated') out.set(m.headers.get('Mesh-Account'), m.string())
  }
  clearTimeout(timer)
  sub.unsubscribe()
  return out
}

/** Waits until every resolver instance holds exactly `expected` for each of its accounts. */
async function converged(nc: NatsConnection, expected: Map<string, string>, instances: number): Promise<void> {
  await waitFor(
    async () => {
      const ids = await resolverIds(nc)
      if (ids.length !== instances) return false
      for (const id of ids) {
        const held = await holdings(nc, id)
        for (const [account, jwt] of expected) if (held.get(account) !== jwt) return false
      }
      return true
    },
    { ms: 20_000, what: `${instances} resolver instances to converge` },
  )
}

async function mesh(t: Test, fx: Fixture, servers: NatsServerHandle[], i: number) {
  const at = [servers[i % servers.length]!, ...servers.filter((_, j) => j !== i % servers.length)]
  return {
    resolver: await startResolver(t, fx, at, SYNC),
    signer: await startService(t, 'signer', fx, at),
    notifier: await startService(t, 'notifier', fx, at),
  }
}

t.test('two instances of each service on a 3-node cluster: failures lose no accepted change', async (t) => {
  const fx = await makeFixture(t)
  const servers = await startCluster(t, fx, 3)
  const sys = await connectWith(t, servers, fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)
  const first = await mesh(t, fx, servers, 0)
  const second = await mesh(t, fx, servers, 1)
  t.equal((await resolverIds(sys)).length, 2, 'two resolver instances')

  const kp = createAccount()
  const stable: AccountIdentity = { name: 'STABLE', kp, id: kp.getPublicKey(), jwt: accountJwt(fx.op.signingKp, kp.getPublicKey()) }
  t.equal((await push(sys, subjects.claimsUpdate, stable.jwt, 3)).ours.data?.code, 200)
  const user = await newUser(stable, 'u')

  const accepted = new Map<string, string>([[stable.id, stable.jwt]])
  const refusals: string[] = []
  let connectFailures = 0
  let longestOutageMs = 0
  let outageSince: number | undefined
  let stop = false
  // Continuous pushes (each a new account) and connects while instances and a node are killed.
  const pushing = (async () => {
    while (!stop) {
      const id = createAccount().getPublicKey()
      const jwt = accountJwt(fx.op.signingKp, id, {}, { iat: now() })
      try {
        const live = servers.filter((s) => s.proc.exitCode === null).length
        const r = await push(sys, subjects.claimsUpdate, jwt, live)
        if (r.ours.data?.code === 200) accepted.set(id, jwt)
        else refusals.push(r.ours.error?.reason ?? 'unknown')
      } catch (e) {
        // no reply from a resolver: not accepted, so nothing is owed
        refusals.push((e as Error).message.slice(0, 60))
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  const connecting = (async () => {
    while (!stop) {
      const target = servers[Math.floor(Math.random() * servers.length)]!
      try {
        if (target.proc.exitCode !== null) continue
        const nc = await connectWith(t, target, user.creds, { timeout: 2000 })
        await nc.close()
        if (outageSince !== undefined) longestOutageMs = Math.max(longestOutageMs, Date.now() - outageSince)
        outageSince = undefined
      } catch {
        if (target.proc.exitCode === null) {
          connectFailures++
          outageSince ??= Date.now()
        }
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

  await pause(500)
  await first.resolver.kill()
  await pause(1000)
  await first.signer.kill()
  await first.notifier.kill()
  await pause(1000)
  // the node the second instances are connected to
  await servers[1]!.stop()
  await pause(1500)
  const third = await mesh(t, fx, [servers[0]!, servers[2]!], 1)
  await pause(1000)
  stop = true
  await Promise.all([pushing, connecting])

  t.ok(accepted.size > 20, `pushes kept being accepted (${accepted.size}; not: ${JSON.stringify(refusals)})`)
  await converged(sys, accepted, 2)
  t.pass('every accepted change is held by both live resolver instances, the new one included')
  for (const [id, jwt] of accepted) {
    const served = (await sys.request(subjects.lookup(id), '', { timeout: 2000 })).string()
    if (served !== jwt) t.fail(`${id} is not served as accepted`)
  }
  t.ok(longestOutageMs < 3000, `connects failed for at most ${longestOutageMs} ms (${connectFailures} failures)`)
  void second
  void third
})

t.test('an instance started empty converges; conflicting versions converge on the newest', async (t) => {
  const fx = await makeFixture(t)
  const [server] = await startCluster(t, fx, 1)
  const servers = [server!]
  const sys = await connectWith(t, servers, fx.sysUser.creds)
  await startService(t, 'signer', fx, servers)
  const a = await startResolver(t, fx, servers, SYNC)
  const x = createAccount().getPublicKey()
  const y = createAccount().getPublicKey()
  const base = now() - 100
  // Each version signed once: a re-signed one would carry another jti and so be other bytes.
  const signed = new Map<string, string>()
  const v = (id: string, n: number) => {
    const key = `${id}/${n}`
    if (!signed.has(key)) signed.set(key, accountJwt(fx.op.signingKp, id, {}, { iat: base + n, name: `v${n}` }))
    return signed.get(key)!
  }

  // A alone: x at v1, y at v2.
  t.equal((await push(sys, subjects.claimsUpdate, v(x, 1), 1)).ours.data?.code, 200)
  t.equal((await push(sys, subjects.claimsUpdate, v(y, 2), 1)).ours.data?.code, 200)
  t.equal(await a.stop(), 0)
  // B alone, started empty while A is down: x at v3 (newer than A's), y at v1 (older than A's).
  const b = await startResolver(t, fx, servers, SYNC)
  t.equal((await push(sys, subjects.claimsUpdate, v(x, 3), 1)).ours.data?.code, 200)
  t.equal((await push(sys, subjects.claimsUpdate, v(y, 1), 1)).ours.data?.code, 200)
  // A again, beside B: both must end on x v3 and y v2.
  const a2 = await startResolver(t, fx, servers, { ...SYNC, RESOLVER_DATA_DIR: a.dataDir })
  await converged(sys, new Map([[x, v(x, 3)], [y, v(y, 2)], [fx.op.systemAccount.id, fx.op.systemAccount.jwt]]), 2)
  t.pass('both instances hold the newest version of each account')
  void a2

  // C starts empty and converges to the same store hash before it answers lookups.
  const c: ServiceProcess = await startResolver(t, fx, servers, SYNC)
  const ids = await resolverIds(sys)
  t.equal(ids.length, 3)
  const all = await Promise.all(ids.map((id) => holdings(sys, id)))
  t.same(all[0], all[1])
  t.same(all[1], all[2], 'the empty instance holds what the others hold')
  void b
  void c
})

t.test('a change whose accepting instance dies before delivering it is delivered by a peer', async (t) => {
  const fx = await makeFixture(t)
  const [server] = await startCluster(t, fx, 1)
  const servers = [server!]
  const sys = await connectWith(t, servers, fx.sysUser.creds)
  const seedFile = join(fx.dir, 'signing.nk')
  await writeFile(seedFile, new TextDecoder().decode(fx.op.signingKp.getSeed()), { mode: 0o600 })
  await startService(t, 'signer', fx, servers, { SIGNER_SEED_FILE: seedFile })
  const env = { ...SYNC, RESOLVER_TAKEOVER_SECONDS: '1' }
  const resolvers = [await startResolver(t, fx, servers, env), await startResolver(t, fx, servers, env)]
  let notifier = await startService(t, 'notifier', fx, servers)

  // Self-signed, so servers hearing the push store it but do not apply it: only a delivery of ours can.
  const kp = createAccount()
  const id = kp.getPublicKey()
  t.equal((await push(sys, subjects.claimsUpdate, await encodeAccount('LATE', kp, { limits: { conn: 10 } }), 1)).ours.data?.code, 200)
  const carol = await newUser({ name: 'LATE', kp, id, jwt: '' }, 'carol')
  const nc = await connectWith(t, servers[0]!, carol.creds)
  await nc.flush()
  // Nothing of this account left to deliver, so only a takeover can deliver what comes next.
  await waitFor(() => resolvers.some((r) => r.logs.some((l) => l.msg === 'change delivered' && l.account === id)), {
    what: 'the first version to be delivered',
  })

  t.equal(await notifier.stop(), 0)
  const revoking = await encodeAccount('LATE', kp, { limits: { conn: 10 }, revocations: { [carol.kp.getPublicKey()]: now() } })
  t.equal((await push(sys, subjects.claimsUpdate, revoking, 1)).ours.data?.code, 200)
  const accepted = (r: ServiceProcess) => r.logs.some((l) => l.msg === 'jwt stored' && l.kind === 'updated' && l.account === id)
  const origin = await waitFor(() => resolvers.find(accepted), { what: 'the instance that accepted the revocation' })
  const peer = resolvers.find((r) => r !== origin)!
  await origin!.kill()

  notifier = await startService(t, 'notifier', fx, servers)
  await waitFor(() => nc.isClosed(), { ms: 15_000, what: 'the revoked user to be disconnected' })
  await waitFor(() => peer.logs.some((l) => l.msg === "change delivered in a silent peer's place" && l.account === id), {
    what: 'the peer to log its delivery',
  })
  t.pass('the peer delivered it')
  void notifier
})

t.test("an instance delivers the newest version it holds, not the older one it accepted", async (t) => {
  const fx = await makeFixture(t)
  const [server] = await startCluster(t, fx, 1)
  const servers = [server!]
  const sys = await connectWith(t, servers, fx.sysUser.creds)
  await startService(t, 'signer', fx, servers)
  const resolver = await startResolver(t, fx, servers, { RESOLVER_TAKEOVER_SECONDS: '3600' })
  const kp = createAccount()
  const id = kp.getPublicKey()
  const v = (n: number) => accountJwt(fx.op.signingKp, id, {}, { iat: now() - 100 + n, name: `v${n}` })
  const [v1, v2] = [v(1), v(2)]

  // v1 accepted here while no notifier runs, so it waits in the outbox...
  t.equal((await push(sys, subjects.claimsUpdate, v1, 1)).ours.data?.code, 200)
  const user = await newUser({ name: 'X', kp, id, jwt: v1 }, 'u')
  await (await connectWith(t, servers[0]!, user.creds)).close()
  t.equal((await appliedJwts(sys, id, 1)).get('n1'), v1, 'the server loaded v1')
  // ...then a peer's v2 arrives as a change event (servers never hear it: only a delivery can tell them).
  const h = headers()
  h.set('Mesh-Account', id)
  h.set('Mesh-Seq', '1')
  h.set('Mesh-Change', 'updated')
  h.set('Mesh-Origin', 'a-peer')
  sys.publish(subjects.resolverChanges(id), v2, { headers: h })
  await waitFor(async () => (await sys.request(subjects.lookup(id), '', { timeout: 1000 })).string() === v2, { what: 'v2 applied' })

  await startService(t, 'notifier', fx, servers)
  await waitFor(() => resolver.logs.some((l) => l.msg === 'change delivered' && l.account === id), { what: 'the delivery' })
  t.equal((await appliedJwts(sys, id, 1)).get('n1'), v2, 'the server holds v2, not the v1 this instance accepted')
})
