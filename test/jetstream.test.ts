import t from 'tap'
import { createAccount } from '@nats-io/nkeys'
import { subjects } from '../shared/index.ts'
import { newAccount, newUser } from '../ops/identities.ts'
import { connectWith } from './helpers/clients.ts'
import { credsFile, makeFixture } from './helpers/fixtures.ts'
import { jetstreamEnv, startJsCluster, startJsResolver } from './helpers/jetstream.ts'
import { accountJwt } from './helpers/jwts.ts'
import { startNatsServer } from './helpers/nats-server.ts'
import { baseEnv, serviceCredsPath, spawnService, startService } from './helpers/services.ts'
import { clusterFormed, push } from './helpers/sys-requests.ts'
import { waitFor } from './helpers/wait-for.ts'

const now = () => Math.floor(Date.now() / 1000)

t.test('jetstream mode stops at start with one line naming the problem', async (t) => {
  const fx = await makeFixture(t)
  const ns = await startNatsServer(t, fx, { jetstream: true })
  const stranger = await credsFile(fx, await newUser(await newAccount(fx.op, 'NOT-PRELOADED'), 'x'))
  const cases: [string, Record<string, string>, RegExp][] = [
    ['creds the storage account refuses', { RESOLVER_JS_CREDS: stranger }, /RESOLVER_JS_CREDS/],
    ['an account without JetStream (the system account)', { RESOLVER_JS_CREDS: fx.sysCredsPath }, /no JetStream/],
    ['replicas a single server cannot place', { RESOLVER_JS_REPLICAS: '3' }, /RESOLVER_JS_REPLICAS: 3 replicas cannot be placed/],
    ['no creds at all', { RESOLVER_JS_CREDS: '' }, /RESOLVER_JS_CREDS: is required/],
  ]
  for (const [name, env, line] of cases) {
    const svc = spawnService(t, 'resolver', {
      ...baseEnv(fx, [ns]),
      NATS_CREDS: await serviceCredsPath(fx, 'resolver'),
      RESOLVER_DATA_DIR: `${fx.dir}/data-${Math.random().toString(36).slice(2)}`,
      ...jetstreamEnv(fx, 1),
      ...env,
    })
    t.equal(await svc.exited, 2, `${name}: exit code 2`)
    const fatal = svc.logs.filter((l) => l.level === 60)
    t.equal(fatal.length, 1, `${name}: one fatal line`)
    t.match(String(fatal[0]?.msg), line, `${name}: ${String(fatal[0]?.msg)}`)
  }
})

t.test('two instances on a 3-node JetStream cluster share one store; internal subjects serve nothing', async (t) => {
  const fx = await makeFixture(t)
  const { servers } = await startJsCluster(t, fx)
  const sys = await connectWith(t, servers, fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)
  const [r1, r2] = await Promise.all([startJsResolver(t, fx, servers, 0), startJsResolver(t, fx, servers, 1)])
  await startService(t, 'signer', fx, servers)

  const ids = Array.from({ length: 10 }, () => createAccount().getPublicKey())
  for (const id of ids) {
    t.equal((await push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, id, {}, { iat: now() }), 3)).ours.data?.code, 200)
  }
  const allServed = async (who: string) => {
    for (const id of ids) t.not((await sys.request(subjects.lookup(id), '', { timeout: 2000 })).string(), '', `${id} served by ${who}`)
  }
  // each instance answers for all of them: one stopped at a time
  t.equal(await r2.stop(), 0)
  await allServed('the first instance alone')
  const r2again = await startJsResolver(t, fx, servers, 2, { RESOLVER_DATA_DIR: r2.dataDir })
  t.equal(await r1.stop(), 0)
  await allServed('the second instance alone, restarted on its local view')
  t.ok(r2again.logs.some((l) => l.msg === 'local view loaded' && Number(l.applied) >= ids.length), 'it caught up with the stream before answering')

  await t.test('JWTs a system-account user publishes on internal subjects are not served', async (t) => {
    await startJsResolver(t, fx, servers, 0)
    const id = createAccount().getPublicKey()
    const jwt = accountJwt(fx.op.signingKp, id, {}, { iat: now() })
    for (const subject of [
      subjects.resolverChanges(id),
      `mesh.resolver.sync.x`,
      `mesh.resolver.delivered.${id}`,
      `resolver.chg.${id}.v`,
      `$JS.API.STREAM.MSG.GET.MESH_RESOLVER`,
    ]) {
      sys.publish(subject, jwt)
    }
    await sys.flush()
    await new Promise((r) => setTimeout(r, 500)) // nothing to wait for: give a wrong apply the chance to happen
    t.equal((await sys.request(subjects.lookup(id), '', { timeout: 2000 })).string(), '', 'not served')
  })
})
