import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile, rm, stat } from 'node:fs/promises'
import { bootstrap, readStorageAccount } from '../ops/bootstrap.ts'
import { JetStreamStore } from '../services/resolver/store/jetstream.ts'
import { LevelStore } from '../services/resolver/store/level.ts'
import { createAccount } from '@nats-io/nkeys'
import { createLogger, subjects } from '../shared/index.ts'
import { newAccount, newUser } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { credsFile, makeFixture, tempDir } from './kit/fixtures.ts'
import { jetstreamEnv } from './kit/jetstream.ts'
import { accountJwt } from './kit/jwts.ts'
import { startMesh, type ResolverProcess } from './kit/mesh.ts'
import { startNatsServer } from './kit/nats-server.ts'
import { baseEnv, serviceCredsPath, spawnService, startResolver } from './kit/services.ts'
import { push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

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

t.test('without RESOLVER_JS_REPLICAS a single server keeps one replica', async (t) => {
  const fx = await makeFixture(t)
  const ns = await startNatsServer(t, fx, { jetstream: true })
  const env = jetstreamEnv(fx)
  delete env.RESOLVER_JS_REPLICAS
  const resolver = await startResolver(t, fx, [ns], env)
  t.ok(resolver.logs.some((l) => l.msg === 'JetStream is not clustered: the store is kept on this one server'))
  const sys = await connectWith(t, ns, fx.sysUser.creds)
  t.equal((await sys.request(subjects.lookup(fx.op.systemAccount.id), '', { timeout: 2000 })).string(), fx.op.systemAccount.jwt)
})

t.test('two instances on a 3-node JetStream cluster share one store; internal subjects serve nothing', async (t) => {
  const mesh = await startMesh(t, { servers: 3, jetstream: true, resolvers: 2, notifiers: 0 })
  const { fx, sys } = mesh
  const [r1, r2] = mesh.resolvers as [ResolverProcess, ResolverProcess]

  const announced = new Set<string>()
  const events = sys.subscribe(subjects.resolverChanges(), { callback: (_e, m) => void announced.add(m.headers?.get('Mesh-Account') ?? '') })
  const ids = Array.from({ length: 10 }, () => createAccount().getPublicKey())
  for (const id of ids) {
    t.equal((await mesh.push(accountJwt(fx.op.signingKp, id, {}, { iat: now() }))).ours.data?.code, 200)
  }
  await waitFor(() => ids.every((id) => announced.has(id)), { what: 'a change event for every push' })
  t.pass('change events are still published on mesh.resolver.changes.<id>')
  events.unsubscribe()
  const allServed = async (who: string) => {
    for (const id of ids) t.not((await sys.request(subjects.lookup(id), '', { timeout: 2000 })).string(), '', `${id} served by ${who}`)
  }
  // each instance answers for all of them: one stopped at a time
  t.equal(await r2.stop(), 0)
  await allServed('the first instance alone')
  const r2again = await mesh.start('resolver', { RESOLVER_DATA_DIR: r2.dataDir }, 2)
  t.equal(await r1.stop(), 0)
  await allServed('the second instance alone, restarted on its local view')
  t.ok(r2again.logs.some((l) => l.msg === 'local view loaded' && Number(l.applied) >= ids.length), 'it caught up with the stream before answering')

  await t.test('JWTs a system-account user publishes on internal subjects are not served', async (t) => {
    await mesh.start('resolver', {}, 0, t)
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

t.test('migrate-store copies a level store into the stream: accounts, deletions, history, replay memory, activations', async (t) => {
  const fx = await makeFixture(t)
  const ns = await startNatsServer(t, fx, { jetstream: true })
  const levelDir = await tempDir(t, 'level')
  const level = await LevelStore.open(levelDir)
  const [kept, gone] = [createAccount().getPublicKey(), createAccount().getPublicKey()]
  const v1 = accountJwt(fx.op.signingKp, kept, {}, { iat: now() - 20 })
  const v2 = accountJwt(fx.op.signingKp, kept, {}, { iat: now() - 10 })
  await level.save(kept, v1, { via: 'test' })
  await level.save(kept, v2, { via: 'test' })
  await level.save(gone, accountJwt(fx.op.signingKp, gone, {}, { iat: now() - 20 }), { via: 'test' })
  const token = accountJwt(fx.op.signingKp, fx.op.signingKp.getPublicKey(), {}, { iat: now() - 5 })
  await level.remove({ token, accounts: [gone], iat: now() - 5, hash: 'h'.repeat(64), rememberUntil: now() + 600, via: 'test' })
  const activation = { hashId: 'A'.repeat(56), token: 'tok', iat: 1, exporter: kept, importer: gone, subject: 's', kind: 'stream', at: '' }
  await level.activations.put(activation)
  await level.close()

  const run = async () => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'ops/migrate-store.ts', levelDir], {
      cwd: new URL('..', import.meta.url),
      env: { PATH: process.env.PATH ?? '', NATS_URL: ns.url, RESOLVER_JS_CREDS: fx.meshCredsPath, RESOLVER_JS_REPLICAS: '1', LOG_LEVEL: 'warn' },
    })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const [code] = (await once(p, 'exit')) as [number]
    return { code, out }
  }
  const first = await run()
  t.equal(first.code, 0, first.out)
  t.match(first.out, /copied 2 accounts \(4 versions\), 1 remembered delete requests, 1 activation tokens/)
  const second = await run()
  t.match(second.out, /copied 0 accounts .* 2 accounts the stream already had/, 'a second run copies nothing twice')

  const js = await JetStreamStore.open(await tempDir(t, 'view'), { servers: [ns.url], creds: await readFile(fx.meshCredsPath, 'utf8'), replicas: 1 }, createLogger('silent', 't'))
  t.teardown(() => js.close())
  await js.catchUp()
  t.equal(js.readNow(kept)?.jwt, v2)
  t.equal(js.readNow(gone), undefined)
  t.equal((await js.tombstoneOf(gone))?.token, token)
  t.same((await js.historyOf(kept)).map((e) => e.jwt), [v1, v2])
  t.equal((await js.activations.get(activation.hashId))?.token, 'tok')
  t.equal(
    await js.remove({ token, accounts: [gone], iat: now() - 5, hash: 'h'.repeat(64), rememberUntil: now() + 600, via: 'test' }).then(
      () => 'removed',
      (e: { code?: string }) => e.code,
    ),
    'REQUEST_REPLAYED',
  )
})

t.test('a local view of another stream (recreated or restored) stops the instance with one line', async (t) => {
  const fx = await makeFixture(t)
  const creds = await readFile(fx.meshCredsPath, 'utf8')
  const log = createLogger('silent', 't')
  const dir = await tempDir(t, 'view')
  const first = await startNatsServer(t, fx, { jetstream: true })
  const store = await JetStreamStore.open(dir, { servers: [first.url], creds, replicas: 1 }, log)
  for (let i = 0; i < 3; i++) {
    const id = createAccount().getPublicKey()
    await store.save(id, accountJwt(fx.op.signingKp, id, {}, { iat: now() }), { via: 'test' })
  }
  await store.close()
  const other = await startNatsServer(t, fx, { jetstream: true })
  const again = await JetStreamStore.open(dir, { servers: [other.url], creds, replicas: 1 }, log)
  await t.rejects(again.catchUp(), { code: 'CONFIG_INVALID', message: /start with an empty RESOLVER_DATA_DIR/ })
})

t.test('bootstrap creates the storage account with JetStream and its creds, also in a directory made before them', async (t) => {
  const dir = await tempDir(t, 'boot')
  const { paths } = await bootstrap(dir)
  const storage = await readStorageAccount(paths)
  t.ok(storage !== undefined, 'mesh.jwt written')
  const claims = JSON.parse(Buffer.from(storage!.jwt.split('.')[1]!, 'base64url').toString()) as { name: string; nats: { limits: Record<string, number> } }
  t.equal(claims.name, 'MESH')
  t.equal(claims.nats.limits.disk_storage, -1, 'JetStream enabled (file storage)')
  t.equal((await stat(paths.storeCreds)).mode & 0o777, 0o600, 'resolver-store.creds is 0600')
  t.match(await readFile(paths.storeCreds, 'utf8'), /BEGIN NATS USER JWT/)
  const again = await bootstrap(dir)
  t.same(await readStorageAccount(again.paths), storage, 'a reused directory keeps its storage account')
  await rm(paths.meshJwt)
  await rm(paths.storeCreds)
  await bootstrap(dir)
  t.ok(await readStorageAccount(paths), 'a directory made before the storage account gets one')
})

t.test('a lookup miss asks the stream: an account another instance stored a moment ago is served, an unknown one is not', async (t) => {
  const fx = await makeFixture(t)
  const creds = await readFile(fx.meshCredsPath, 'utf8')
  const log = createLogger('silent', 't')
  const ns = await startNatsServer(t, fx, { jetstream: true })
  const open = async (name: string) => {
    const store = await JetStreamStore.open(await tempDir(t, name), { servers: [ns.url], creds, replicas: 1 }, log)
    t.teardown(() => store.close())
    return store
  }
  const [a, b] = [await open('a'), await open('b')]
  const id = createAccount().getPublicKey()
  const jwt = accountJwt(fx.op.signingKp, id, {}, { iat: now() })
  await a.save(id, jwt, { via: 'test' })
  // b's view may or may not have applied it yet: either way the recheck answers with it
  t.equal((await b.recheckMissing(id))?.jwt, jwt, 'the other instance serves the account once the stream says it exists')
  t.equal(await b.recheckMissing(createAccount().getPublicKey()), undefined, 'an id the stream never held stays unknown')
  await ns.stop()
  const started = Date.now()
  t.equal(await b.recheckMissing(createAccount().getPublicKey()), undefined, 'without JetStream the miss stays a miss')
  t.ok(Date.now() - started < 5000, `and answers within the recheck bound (${Date.now() - started} ms)`)
  t.equal(b.readNow(id)?.jwt, jwt, 'the view still serves what it holds')
})
