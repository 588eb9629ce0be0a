import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import t, { type Test } from 'tap'
import { createAccount } from '@nats-io/nkeys'
import { subjects, type ReconcileReport } from '../shared/index.ts'
import { newUser, UNLIMITED, type AccountIdentity, type UserIdentity } from '../ops/identities.ts'
import { watchChanges } from './kit/changes.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture, type Fixture } from './kit/fixtures.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { freePort, natsServerBinary, startNatsServer, type NatsServerHandle } from './kit/nats-server.ts'
import { stopProcess } from './kit/processes.ts'
import { startResolver, startService, type ServiceProcess } from './kit/services.ts'
import { appliedJwts, clusterFormed, gather, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const now = () => Math.floor(Date.now() / 1000)
const CLUSTER = 'mesh-test'

/** A cache server that joins the running cluster (routes to every member), as an operator adds one. */
async function joinCluster(t: Test, fx: Fixture, routePorts: number[], name: string): Promise<NatsServerHandle> {
  const port = await freePort()
  const s = await startNatsServer(t, fx, {
    name,
    cluster: { name: CLUSTER, port, routes: routePorts.map((p) => `nats-route://127.0.0.1:${p}`) },
  })
  routePorts.push(port)
  return s
}

/** Restarts a server with the same config and the same jwt dir (what it cached survives), on a new client port. */
async function restartKeepingDir(t: Test, s: NatsServerHandle): Promise<NatsServerHandle> {
  await s.stop()
  const dir = dirname(s.jwtDir)
  const proc = spawn(natsServerBinary(), ['-c', join(dir, 'server.conf')], { stdio: 'ignore' })
  t.teardown(() => stopProcess(proc))
  const ports = await waitFor(async () => JSON.parse(await readFile(join(dir, `nats-server_${proc.pid}.ports`), 'utf8')) as { nats: string[] }, {
    ms: 10_000,
    what: `${s.name} restarted`,
  })
  const url = ports.nats[0]!
  return { ...s, url, port: Number(new URL(url).port), proc, stop: async () => void (await stopProcess(proc)) }
}

/** Whether `user` gets a working connection on `server`. */
async function admitted(t: Test, server: NatsServerHandle, user: UserIdentity): Promise<boolean> {
  try {
    const nc = await connectWith(t, server, user.creds)
    await nc.flush()
    await nc.close()
    return true
  } catch {
    return false // refused: Authorization Violation, or the lookup found nothing
  }
}

t.test('reconciliation on a 3-node cache cluster', async (t) => {
  // Servers and services restarted inside a subtest must outlive it.
  const suite = t
  const fx = await makeFixture(t)
  const routePorts = await Promise.all([freePort(), freePort(), freePort()])
  const servers = await Promise.all(
    routePorts.map((port, i) =>
      startNatsServer(t, fx, {
        name: `n${i + 1}`,
        cluster: { name: CLUSTER, port, routes: routePorts.filter((p) => p !== port).map((p) => `nats-route://127.0.0.1:${p}`) },
      }),
    ),
  )
  const sys = await connectWith(t, servers, fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)
  // No periodic pass: every pass here is the one a test case triggers.
  const env = { RESOLVER_RECONCILE_SECONDS: '0' }
  let resolver: ServiceProcess & { dataDir: string } = await startResolver(t, fx, servers, env)
  let signer = await startService(t, 'signer', fx, servers)
  await startService(t, 'notifier', fx, servers)

  let iat = now() - 1000
  const account = async (name: string) => {
    const kp = createAccount()
    const acc: AccountIdentity = { name, kp, id: kp.getPublicKey(), jwt: '' }
    const user = await newUser(acc, `${name}-user`)
    const version = (nats: Record<string, unknown> = {}) => accountJwt(fx.op.signingKp, acc.id, nats, { iat: ++iat, name })
    return { ...acc, user, version }
  }
  /** nsc push: `$SYS.REQ.CLAIMS.UPDATE` with the raw JWT, heard by every server and (when running) the resolver. */
  const nscPush = (jwt: string) => push(sys, subjects.claimsUpdate, jwt, 3)
  /** The same while the resolver is down: only the servers answer. */
  const nscPushNoResolver = async (jwt: string) =>
    (await gather(sys, subjects.claimsUpdate, jwt, 3, 2000)).map((m) => m.json<{ data?: { code: number } }>())
  const loadEverywhere = async (t: Test, user: UserIdentity) => {
    for (const s of servers) t.ok(await admitted(t, s, user), `${user.name} connects on ${s.name}`)
  }
  const lookup = async (id: string) => (await sys.request(subjects.lookup(id), '', { timeout: 2000 })).string()
  const deleteRequest = (ids: string[]) =>
    signClaims({ sub: fx.op.signingKp.getPublicKey(), nats: { accounts: ids, version: 2 } }, fx.op.signingKp)
  const fileOn = (s: NatsServerHandle, id: string) => existsSync(join(s.jwtDir, `${id}.jwt`))
  const reconcile = async (dryRun: boolean) =>
    (await sys.request(subjects.resolverReconcile, JSON.stringify({ dryRun }), { timeout: 30_000 })).json<ReconcileReport>()
  const restartResolver = async () => {
    resolver = await startResolver(suite, fx, servers, { ...env, RESOLVER_DATA_DIR: resolver.dataDir })
  }
  /** A fourth server joins the cluster for `use`, and leaves again. */
  const withJoined = async (t: Test, name: string, use: (s: NatsServerHandle) => Promise<void>) => {
    const s = await joinCluster(t, fx, routePorts, name)
    await clusterFormed(sys, 4)
    // Answering pings does not mean the new server has heard of the resolver's subscriptions yet (routes send
    // them after connecting): until it has, its lookups have no one to go to.
    const viaNew = await connectWith(t, s, fx.sysUser.creds)
    await waitFor(() => viaNew.request(subjects.lookup(createAccount().getPublicKey()), '', { timeout: 1000 }).then(() => true), {
      ms: 10_000,
      what: `${name} to reach the resolver`,
    })
    await viaNew.close()
    await use(s)
    await s.stop()
    routePorts.pop()
    await clusterFormed(sys, 3)
  }
  /** The resolver's health once its last pass is one `trigger` started: its totals since it started. */
  const passDone = (trigger: string) =>
    waitFor(
      async () => {
        const { reconcile } = (await sys.request(subjects.resolverHealth, '', { timeout: 2000 })).json<{
          reconcile: { adopted: number; reverted: number; last?: { trigger: string } }
        }>()
        return reconcile.last?.trigger === trigger ? reconcile : undefined
      },
      { ms: 20_000, what: `a ${trigger} pass` },
    )

  await t.test('a deleted account stays deleted across a push of its old JWT and a server restart', async (t) => {
    const x = await account('X')
    const old = x.version()
    t.equal((await nscPush(old)).ours.data?.code, 200)
    await loadEverywhere(t, x.user)
    const del = await gather(sys, subjects.claimsDelete, deleteRequest([x.id]), 4, 2000)
    t.equal(del.length, 4, 'three servers and the resolver answered the delete')
    await waitFor(async () => !(await admitted(t, servers[0]!, x.user)), { what: 'the deleted account refused' })

    // The deletion above was announced before the resolver answered it: what this hears is a new one.
    const changes = await watchChanges(t, sys, x.id)
    const again = await nscPush(old)
    t.equal(again.ours.error?.reason, 'JWT_OUTDATED', 'the resolver refuses the old JWT')
    t.ok(again.all.filter((r) => r.data?.message === 'jwt updated cache').length >= 1, 'cache servers wrote it to their jwt dir')
    const resent = await changes.next((c) => c.kind === 'deleted', { what: 'the stored deletion sent again' })
    await waitFor(() => servers.every((s) => !fileOn(s, x.id)), { what: 'the old JWT gone from every jwt dir' })
    servers[1] = await restartKeepingDir(suite, servers[1]!)
    await clusterFormed(sys, 3)
    // A service connected to the restarted server may lose the notifier's report and deliver again: let it.
    await waitFor(() => resolver.logs.some((l) => l.msg === 'change delivered' && l.seq === resent.seq), { ms: 20_000, what: 'the re-sent deletion reported' })
    t.notOk(await admitted(t, servers[1]!, x.user), 'refused on the restarted server')
    for (const s of [servers[0]!, servers[2]!]) t.notOk(await admitted(t, s, x.user), `refused on ${s.name}`)
    t.equal(await lookup(x.id), '', 'not served')
  })

  await t.test('pushes made while the resolver was down: newer adopted, older reverted, deleted deleted again', async (t) => {
    const newer = await account('NEWER')
    const older = await account('OLDER')
    const gone = await account('GONE')
    const v1 = newer.version()
    const o1 = older.version()
    const o2 = older.version()
    const g1 = gone.version()
    for (const jwt of [v1, o2, g1]) t.equal((await nscPush(jwt)).ours.data?.code, 200)
    for (const a of [newer, older, gone]) await loadEverywhere(t, a.user)
    await gather(sys, subjects.claimsDelete, deleteRequest([gone.id]), 4, 2000)
    // Delivered before the stop: otherwise the restarted resolver delivers it again, and no pass is needed.
    await waitFor(() => resolver.logs.some((l) => l.msg === 'change delivered' && l.account === gone.id && l.kind === 'deleted'), {
      ms: 15_000,
      what: 'the deletion delivered',
    })

    t.equal(await resolver.stop(), 0, 'resolver stopped')
    const v2 = newer.version({ limits: { ...UNLIMITED, subs: 1000 } })
    for (const jwt of [v2, o1, g1]) {
      const replies = await nscPushNoResolver(jwt)
      t.ok(replies.length === 3 && replies.every((r) => r.data?.code === 200), 'every server took it (nsc reports success)')
    }
    t.ok(servers.some((s) => fileOn(s, gone.id)), "the deleted account's old JWT is in a jwt dir")
    await waitFor(async () => [...(await appliedJwts(sys, newer.id, 3)).values()].every((j) => j === v2), { what: 'servers on v2' })

    const goneChanges = await watchChanges(t, sys, gone.id)
    await restartResolver()
    const pass = await passDone('start')
    t.match(pass, { adopted: 1, reverted: 1 }, 'the pass after the restart adopted the newer and reverted the older')
    // On 2.9.10 a server that looked X up (subtest 1) keeps an empty file for it, which LIST shows: sent again too.
    t.ok(
      await goneChanges.next((c) => c.kind === 'deleted', { ms: 2000 }).then(() => true, () => false),
      'and sent the deleted account its deletion again',
    )
    t.equal(await lookup(newer.id), v2, 'the newer version is stored and served')
    t.equal(await lookup(older.id), o2, 'the stored version is kept')
    await waitFor(async () => [...(await appliedJwts(sys, older.id, 3)).values()].every((j) => j === o2), { what: 'servers back on o2' })
    await waitFor(() => servers.every((s) => !fileOn(s, gone.id)), { what: "the deleted account's file removed again" })

    await withJoined(t, 'n4', async (n4) => {
      t.ok(await admitted(t, n4, newer.user), 'a new server admits the user')
      t.equal((await appliedJwts(sys, newer.id, 4)).get('n4'), v2, 'and got the newer version on LOOKUP')
    })
  })

  await t.test('a revocation pushed while the signer was down is in force on a server started after it returns', async (t) => {
    const r = await account('REVOKE')
    t.equal((await nscPush(r.version())).ours.data?.code, 200)
    await loadEverywhere(t, r.user)
    const userIat = Number(JSON.parse(Buffer.from(r.user.jwt.split('.')[1]!, 'base64url').toString()).iat)
    const revoked = r.version({ revocations: { [r.user.kp.getPublicKey()]: userIat } })

    t.equal(await signer.stop(), 0, 'signer stopped')
    const res = await nscPush(revoked)
    t.equal(res.ours.error?.code, 503, 'the resolver answers 503 without a signer')
    t.notOk(await admitted(t, servers[0]!, r.user), 'the running servers applied the revocation themselves')
    t.not(await lookup(r.id), revoked, 'not stored yet')

    signer = await startService(suite, 'signer', fx, servers)
    await passDone('signer-returned')
    await waitFor(async () => (await lookup(r.id)) === revoked, { what: 'the revocation stored' })
    await withJoined(t, 'n5', async (n5) => {
      t.notOk(await admitted(t, n5, r.user), 'refused on a server started after the signer returned')
    })
  })

  await t.test('on demand: a dry run reports drift per server, a pass repairs it', async (t) => {
    const d = await account('DRIFT')
    t.equal((await nscPush(d.version())).ours.data?.code, 200)
    await loadEverywhere(t, d.user)
    // The legacy subject reaches every server but not the resolver: servers drift from the store.
    const newer = d.version({ limits: { ...UNLIMITED, conn: 50 } })
    sys.publish(subjects.legacyAccountUpdate(d.id), newer)
    await waitFor(async () => [...(await appliedJwts(sys, d.id, 3)).values()].every((j) => j === newer), { what: 'servers on the newer' })

    const dry = await reconcile(true)
    t.equal(dry.dryRun, true)
    t.ok(dry.drift >= 1, 'drift reported')
    t.same(dry.servers.map((s) => [s.name, s.drift >= 1, s.accounts.includes(d.id)]).sort(), [['n1', true, true], ['n2', true, true], ['n3', true, true]])
    t.not(await lookup(d.id), newer, 'a dry run changes nothing')

    const done = await reconcile(false)
    t.match(done, { dryRun: false, adopted: 1, reverted: 0, pending: 0, failed: 0 })
    t.ok(done.accountsChecked >= 1)
    t.equal(await lookup(d.id), newer)
    await waitFor(async () => (await reconcile(true)).drift === 0, { ms: 10_000, what: 'no drift left' })

    const health = (await sys.request(subjects.resolverHealth, '', { timeout: 2000 })).json<{ reconcile: { adopted: number; passes: number } }>()
    t.ok(health.reconcile.adopted >= 2 && health.reconcile.passes >= 2, 'health counts the passes and repairs')
  })

  await t.test('the reconcile endpoint refuses hostile bodies with a clear error and changes nothing', async (t) => {
    for (const body of ['not json', '[]', '"x"', '{"dryRun":"yes"}', 'null']) {
      const m = await sys.request(subjects.resolverReconcile, body, { timeout: 5000 })
      t.equal(m.headers?.get('Nats-Service-Error-Code'), '400', `refused: ${body}`)
    }
  })
})
