import t, { type Test } from 'tap'
import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { newAccount, newUser } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { type Fixture } from './kit/fixtures.ts'
import { accountJwt } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { type ServiceName, type ServiceProcess } from './kit/services.ts'
import { appliedJwts, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const NAMES: ServiceName[] = ['resolver', 'signer', 'notifier']

/** Every service answers `$SRV.PING.<name>` (polled: a reconnect takes a moment). */
async function allAnswerPing(nc: NatsConnection): Promise<void> {
  for (const name of NAMES) {
    await waitFor(
      async () => (await nc.request(`$SRV.PING.${name}`, '', { timeout: 500 })).json<{ name: string }>().name === name,
      { ms: 10_000, what: `${name} to answer $SRV.PING` },
    )
  }
}

/** Pushes a newer version of `id` and checks it is acknowledged, served and applied by the (single) server. */
async function pushAndCheck(t: Test, nc: NatsConnection, fx: Fixture, id: string, iat: number): Promise<void> {
  const jwt = accountJwt(fx.op.signingKp, id, {}, { iat, name: `v${iat}` })
  const { ours } = await waitFor(async () => {
    const r = await push(nc, subjects.claimsUpdate, jwt, 1)
    return r.ours.data?.code === 200 ? r : undefined
  }, { ms: 10_000, what: 'a push to be accepted' })
  t.equal(ours.data?.message, 'jwt updated')
  t.equal((await nc.request(subjects.lookup(id), '', { timeout: 2000 })).string(), jwt, 'LOOKUP serves it')
  await waitFor(async () => (await appliedJwts(nc, id, 1)).get('n1') === jwt, { ms: 10_000, what: 'the server to apply it' })
  t.pass('the server applied it')
}

const alive = (svcs: ServiceProcess[]) => svcs.every((s) => s.proc.exitCode === null && s.proc.signalCode === null)

t.test('nats-server restarted on the same port: the services reconnect and answer without restarting', async (t) => {
  const mesh = await startMesh(t)
  const { fx } = mesh
  const services = [...mesh.resolvers, ...mesh.signers, ...mesh.notifiers]
  const demo = await newAccount(fx.op, 'DEMO')
  const alice = await newUser(demo, 'alice')
  let iat = Math.floor(Date.now() / 1000) - 1000
  let sys = mesh.sys
  t.equal((await push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, demo.id, {}, { iat: ++iat }), 1)).ours.data?.code, 200)

  const lastSeq = () => Math.max(...services[0]!.logs.filter((l) => l.msg === 'jwt stored').map((l) => l.seq as number))

  for (const round of [1, 2]) {
    await t.test(`restart ${round}`, async (t) => {
      const pids = services.map((s) => s.proc.pid)
      await sys.close()
      const ns = await mesh.restartServer(0)
      sys = await connectWith(t, ns, fx.sysUser.creds)
      await allAnswerPing(sys)
      t.ok(alive(services), 'no service exited')
      t.same(services.map((s) => s.proc.pid), pids, 'the same processes')
      for (const s of services) {
        // the log line comes from the client's status stream, which may trail the first replies a little
        const reconnects = () => s.logs.filter((l) => l.msg === 'nats reconnect').length
        await waitFor(() => reconnects() >= round, { what: `${s.name}'s reconnect log line` }).catch(() => undefined)
        t.ok(reconnects() >= round, `${s.name} logged its reconnect`)
      }
      // The new server has an empty JWT directory: alice's connect makes it fetch DEMO from the resolver.
      const nc = await connectWith(t, ns, alice.creds)
      await nc.flush()
      await nc.close()
      await pushAndCheck(t, sys, fx, demo.id, ++iat)
      const delivered = await waitFor(
        () => [...services[0]!.logs].reverse().find((l) => l.msg === 'change delivered' && l.seq === lastSeq()) as { servers: string[] } | undefined,
        { what: 'the delivery report', ms: 10_000 },
      )
      t.same(delivered.servers, ['n1:applied'], 'the delivery report names the new server only, not the one that went away')
    })
  }
})

t.test('each service restarted alone while the others keep running', async (t) => {
  const mesh = await startMesh(t, { cluster: true })
  const { fx, servers, sys } = mesh
  const running: Record<ServiceName, ServiceProcess> = { resolver: mesh.resolvers[0]!, signer: mesh.signers[0]!, notifier: mesh.notifiers[0]! }
  const demo = await newAccount(fx.op, 'DEMO')
  const alice = await newUser(demo, 'alice')
  let iat = Math.floor(Date.now() / 1000) - 1000
  t.equal((await push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, demo.id, {}, { iat: ++iat }), 1)).ours.data?.code, 200)
  const nc = await connectWith(t, servers, alice.creds)
  await nc.flush() // DEMO is now loaded on the server, so later versions are applied there

  for (const name of NAMES) {
    await t.test(`${name} restarted`, async (t) => {
      const others = NAMES.filter((n) => n !== name).map((n) => running[n])
      t.equal(await running[name].stop(), 0, `${name} exits 0 on SIGTERM`)
      running[name] = await mesh.start(name, name === 'resolver' ? { RESOLVER_DATA_DIR: mesh.resolvers[0]!.dataDir } : {})
      t.ok(alive(others), 'the others kept running')
      await allAnswerPing(sys)
      t.equal((await sys.request(subjects.lookup(demo.id), '', { timeout: 2000 })).data.length > 0, true, 'LOOKUP answers')
      await pushAndCheck(t, sys, fx, demo.id, ++iat)
      t.notOk(nc.isClosed(), "alice's connection was never affected")
    })
  }
})
