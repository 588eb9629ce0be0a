import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator, type NatsConnection } from '@nats-io/nats-core'
import { signJwt, subjects } from '../shared/index.ts'
import { loadResolverConfig } from '../services/resolver/config.ts'
import { createAccount, createOperator, createUser } from '@nats-io/nkeys'
import { fmtCreds } from '@nats-io/jwt'
import { newAccount, newUser, UNLIMITED, type AccountIdentity } from '../ops/identities.ts'
import { askResolver, mapLimit, type ClaimReply } from '../cli/requests.ts'
import { runMesh } from './kit/cli.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture, tempDir, type Fixture } from './kit/fixtures.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { freePort, startNatsServer, type NatsServerHandle, type StartOptions } from './kit/nats-server.ts'
import { jetstreamEnv } from './kit/jetstream.ts'
import { startMesh } from './kit/mesh.ts'
import { startResolver, startService } from './kit/services.ts'
import { appliedJwts, clusterFormed, gather, type ClaimReply as ServerClaimReply } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

// The rolling switch of the README's "Moving a fleet onto the mesh", on whichever nats-server is first on
// PATH (PATH=/var/cache/mesh-tools/nats-server/<version>:$PATH): a 3-node fleet of full-resolver servers (or
// of URL-resolver servers reading a nats-account-server store) is imported into the mesh and turned into
// cache servers one restart at a time, while users connect and nsc-style pushes go on. Several resolver
// instances run only in jetstream mode (one stream in the storage account MESH), so every node of the fleet
// runs JetStream (beside its full or URL resolver, then its cache resolver) and keeps its JetStream
// directory, and so its replica, across its restart.

const ACCOUNTS = 200
const enc = (s: string) => new TextEncoder().encode(s)

interface Tenant {
  acc: AccountIdentity
  creds: string
}

interface Fleet {
  fx: Fixture
  tenants: Tenant[]
  /**
   * Client and route port and JetStream directory of each node: a restarted node comes back where its peers
   * and clients expect it, with its replica of the mesh's stream.
   */
  nodes: { name: string; port: number; routePort: number; storeDir: string }[]
  servers: NatsServerHandle[]
  urls: string[]
}

interface ImportJson {
  dryRun: boolean
  results: { source: string; kind: string; account?: string; outcome: string; message: string; reason?: string }[]
}

async function meshImport(fleet: Fleet, args: string[]): Promise<{ code: number | null; json: ImportJson; stderr: string }> {
  const r = await runMesh(['import', ...args, '--json', '-s', fleet.urls.join(','), '--creds', fleet.fx.sysCredsPath, '--timeout', '10s'])
  return { code: r.code, json: JSON.parse(r.stdout || '{"results":[]}') as ImportJson, stderr: r.stderr }
}

/** How many of the fleet's tenant accounts got `outcome` (the system account may be in a source too). */
const countOf = (fleet: Fleet, j: ImportJson, outcome: string) => {
  const ids = new Set(fleet.tenants.map((x) => x.acc.id))
  return j.results.filter((r) => r.account !== undefined && ids.has(r.account) && r.outcome === outcome).length
}

/** Fails after `ms` instead of waiting forever on a connection a restarting server dropped. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)))
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/**
 * Accounts signed by the operator's signing key and one user each, signed through OpenSSL (signJwt): nacl
 * would take seconds for the 400 signatures on a busy machine.
 */
function makeTenants(fx: Fixture): Tenant[] {
  const iat = Math.floor(Date.now() / 1000) - 60
  return Array.from({ length: ACCOUNTS }, (_, i) => {
    const kp = createAccount()
    const id = kp.getPublicKey()
    const claims = { sub: id, name: `T${i}`, iat, nats: { limits: { ...UNLIMITED }, type: 'account', version: 2 } }
    const jwt = signJwt(claims as Parameters<typeof signJwt>[0], fx.op.signingKp)
    const user = createUser()
    const userClaims = { sub: user.getPublicKey(), name: `u${i}`, iat, nats: { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: 'user', version: 2 } }
    const userJwt = signJwt(userClaims as Parameters<typeof signJwt>[0], kp)
    return { acc: { name: `T${i}`, kp, id, jwt }, creds: new TextDecoder().decode(fmtCreds(userJwt, user)) }
  })
}

const fx = await makeFixture(t)
const tenants = makeTenants(fx)

async function startFleet(t: Test, opts: Pick<StartOptions, 'resolver' | 'resolverUrl'>): Promise<Fleet> {
  const nodes = await Promise.all(
    ['n1', 'n2', 'n3'].map(async (name) => ({ name, port: await freePort(), routePort: await freePort(), storeDir: await tempDir(t, `js-${name}`) })),
  )
  const fleet: Fleet = { fx, tenants, nodes, servers: [], urls: nodes.map((n) => `nats://127.0.0.1:${n.port}`) }
  fleet.servers = await Promise.all(nodes.map((_, i) => startNode(t, fleet, i, opts)))
  await jetstreamReady(t, fleet)
  return fleet
}

/**
 * JetStream can place three replicas for the storage account, as an operator would check before starting
 * the mesh: a throwaway R3 stream is created (and deleted) once the cluster accepts it. A fleet just started
 * has a meta leader within seconds, but 2.10.27 answered "no suitable peers for placement" to R3 creates for
 * over 10 s after that here, longer than a resolver waits before it stops (RESOLVER_JS_REPLICAS cannot be placed).
 */
async function jetstreamReady(t: Test, fleet: Fleet): Promise<void> {
  const nc = await connectWith(t, fleet.servers, await readFile(fleet.fx.meshCredsPath, 'utf8'))
  const probe = { name: 'PLACEMENT_PROBE', subjects: ['placement.probe'], num_replicas: 3, storage: 'memory' }
  try {
    await waitFor(
      async () => {
        const r = (await nc.request(`$JS.API.STREAM.CREATE.${probe.name}`, JSON.stringify(probe), { timeout: 2000 })).json<{ error?: { description?: string } }>()
        if (r.error !== undefined) throw new Error(r.error.description ?? JSON.stringify(r.error))
        return true
      },
      { ms: 60_000, every: 250, what: 'JetStream to place three replicas for the storage account' },
    )
    await nc.request(`$JS.API.STREAM.DELETE.${probe.name}`, '', { timeout: 5000 })
  } finally {
    await nc.close()
  }
}

function startNode(t: Test, fleet: Fleet, i: number, opts: Pick<StartOptions, 'resolver' | 'resolverUrl'>): Promise<NatsServerHandle> {
  const n = fleet.nodes[i]!
  return startNatsServer(t, fleet.fx, {
    name: n.name,
    port: n.port,
    cluster: { name: 'fleet', port: n.routePort, routes: fleet.nodes.filter((_, j) => j !== i).map((m) => `nats-route://127.0.0.1:${m.routePort}`) },
    jetstream: true,
    storeDir: n.storeDir,
    ...opts,
  })
}

/** The mesh instances pinned to one node: stopped before it restarts and started again once it is back. */
type Pinned = Map<number, () => Promise<{ stop(): Promise<number | null> }[]>>

/**
 * Two instances each of resolver and signer, each pinned to one node (n1 and n3), as replicas spread over a
 * cluster would be, and a notifier on all nodes (its outbox rides out its reconnects). The resolvers run in
 * jetstream mode, the stream replicated on all three nodes: each keeps its local view (RESOLVER_DATA_DIR)
 * across its node's restart and catches up from the stream. Returns how to start the instances of each pinned
 * node, for the switch.
 */
async function startFleetMesh(t: Test, fleet: Fleet, env: Record<string, string>): Promise<{ pinned: Pinned; running: Map<number, { stop(): Promise<number | null> }[]> }> {
  const pinned: Pinned = new Map()
  for (const i of [0, 2]) {
    const dataDir = await tempDir(t, 'resolver')
    pinned.set(i, async () => {
      const node = fleet.servers[i]!
      return Promise.all([
        startService(t, 'signer', fleet.fx, [node]),
        startResolver(t, fleet.fx, [node], { ...jetstreamEnv(fleet.fx, 3), ...env, RESOLVER_DATA_DIR: dataDir }),
      ])
    })
  }
  const running = new Map<number, { stop(): Promise<number | null> }[]>()
  await Promise.all([
    ...[...pinned].map(async ([i, start]) => running.set(i, await start())),
    startService(t, 'notifier', fleet.fx, fleet.servers),
  ])
  return { pinned, running }
}

/**
 * Asked from the node itself: every server and every mesh instance answers, so the node is routed to all
 * its peers and each instance is connected (a node that has a route to one peer only would send its lookups
 * to that peer alone).
 */
async function nodeReady(t: Test, fleet: Fleet, i: number): Promise<void> {
  const probe = await connectWith(t, fleet.servers[i]!, fleet.fx.sysUser.creds)
  try {
    await waitFor(async () => (await gather(probe, subjects.serverPing, '', 3, 500)).length === 3, { ms: 15_000, what: `${fleet.nodes[i]!.name} routed to every peer` })
    await waitFor(async () => (await gather(probe, '$SRV.PING', '', 5, 500)).length === 5, { ms: 15_000, what: 'every mesh instance connected' })
  } finally {
    await probe.close()
  }
}

/** Users connecting continuously: one connect every ~100 ms, each to the next node in rotation and the next account. */
function connectLoop(fleet: Fleet, inRotation: Set<number>) {
  const failures: string[] = []
  const servedBy = new Map<string, number>()
  let connects = 0
  let stopping = false
  let current: Promise<unknown> = Promise.resolve()
  const done = (async () => {
    for (let i = 0; !stopping; i++) {
      const started = Date.now()
      const live = [...inRotation].sort()
      const first = live[i % live.length]!
      const order = [first, ...live.filter((j) => j !== first)].map((j) => fleet.urls[j]!)
      const tenant = fleet.tenants[(i * 7) % ACCOUNTS]!
      try {
        await (current = within(10_000, 'a connect', (async () => {
          const nc = await connect({ servers: order, noRandomize: true, reconnect: false, timeout: 5000, authenticator: credsAuthenticator(enc(tenant.creds)) })
          await nc.flush()
          const name = nc.info?.server_name ?? '?'
          servedBy.set(name, (servedBy.get(name) ?? 0) + 1)
          await nc.close()
        })()))
        connects++
      } catch (e) {
        failures.push(`${tenant.acc.name} (${tenant.acc.id}) via ${fleet.nodes[first]?.name} at ${new Date().toISOString()}: ${(e as Error).message}`)
      }
      await delay(Math.max(0, 100 - (Date.now() - started)))
    }
  })()
  return {
    failures,
    servedBy,
    connects: () => connects,
    /** Settles when the connect under way (which may be to any node) is over. */
    settled: () => current.catch(() => undefined),
    stop: async () => void ((stopping = true), await done),
  }
}

/**
 * nsc-style pushes of new account versions on `$SYS.REQ.CLAIMS.UPDATE`, one every ~250 ms, each to another
 * account. A push that gets no verdict from the mesh (its reply lost while a node restarts) or a 5xx (the
 * signer unreachable, or the store's JetStream electing a new leader while a node restarts: 503
 * STORE_UNAVAILABLE) is sent again, as whoever ran `nsc push` would; `retried` counts those. Such a push was not
 * acknowledged, so nothing acknowledged is dropped by retrying; checkEnd then asks that the mesh holds the
 * last version of every account. A refusal (4xx) is never retried: it is a problem.
 */
function pushLoop(fleet: Fleet, sys: NatsConnection, also?: (id: string, jwt: string) => Promise<void>) {
  const latest = new Map<string, string>()
  const problems: string[] = []
  let retried = 0
  const why: string[] = []
  let stopping = false
  const pushOnce = async (name: string, jwt: string): Promise<'ok' | 'again'> => {
    let r: ClaimReply
    try {
      r = await within(10_000, 'a push', askResolver(sys, subjects.claimsUpdate, jwt, 5000))
    } catch (e) {
      why.push(`${name}: ${(e as Error).message}`)
      return 'again'
    }
    if (r.data !== undefined) return 'ok'
    if (r.error !== undefined && r.error.code >= 500) {
      why.push(`${name}: ${r.error.code} ${r.error.reason ?? r.error.description}`)
      return 'again'
    }
    problems.push(`${name}: ${JSON.stringify(r.error)}`)
    return 'ok'
  }
  const done = (async () => {
    for (let i = 0; !stopping; i++) {
      const started = Date.now()
      const tenant = fleet.tenants[(i * 13 + 5) % ACCOUNTS]!
      const jwt = accountJwt(fleet.fx.op.signingKp, tenant.acc.id, { tags: [`v${i}`] }, { name: tenant.acc.name, iat: Math.floor(Date.now() / 1000) + 1 })
      await also?.(tenant.acc.id, jwt)
      let tries = 0
      while ((await pushOnce(tenant.acc.name, jwt)) === 'again') {
        if (++tries === 10) {
          problems.push(`${tenant.acc.name}: no verdict from the mesh in ${tries} tries`)
          break
        }
        retried++
        await delay(500) // a 503 comes at once: give the election a moment, as a person re-running nsc would
      }
      latest.set(tenant.acc.id, jwt)
      await delay(Math.max(0, 250 - (Date.now() - started)))
    }
  })()
  return { latest, problems, retried: () => retried, why, stop: async () => void ((stopping = true), await done) }
}

/**
 * The switch itself: each node in turn leaves the clients' rotation, stops, comes back on the same ports as a
 * cache server with a fresh directory, and rejoins the rotation once routed and every mesh instance is back.
 */
async function rollingSwitch(
  t: Test,
  fleet: Fleet,
  sys: NatsConnection,
  inRotation: Set<number>,
  users: { settled(): Promise<unknown> },
  mesh: Awaited<ReturnType<typeof startFleetMesh>>,
): Promise<void> {
  for (let i = 0; i < fleet.nodes.length; i++) {
    // out of the clients' rotation, and no connect still on its way to it (a load balancer's drain)
    inRotation.delete(i)
    await users.settled()
    // the mesh instances on it leave first, answering what they took: a request routed to an instance
    // whose node dies under it is lost, and the user waiting on that lookup is refused after the timeout
    for (const svc of mesh.running.get(i) ?? []) await svc.stop()
    t.comment(`${fleet.nodes[i]!.name} restarts at ${new Date().toISOString()}`)
    await fleet.servers[i]!.stop()
    fleet.servers[i] = await startNode(t, fleet, i, { resolver: 'cache' })
    await clusterFormed(sys, 3)
    const start = mesh.pinned.get(i)
    if (start !== undefined) mesh.running.set(i, await start())
    await nodeReady(t, fleet, i)
    inRotation.add(i)
    await delay(1500) // users and pushes carry on against the mixed fleet
  }
}

/**
 * The resolvers' stream as JetStream reports it, asked as the storage account's user: its replica count and
 * how many replicas are current (the leader and each follower neither offline nor lagging).
 */
async function streamReplicas(t: Test, fleet: Fleet): Promise<{ replicas: number; current: number }> {
  const nc = await connectWith(t, fleet.servers, await readFile(fleet.fx.meshCredsPath, 'utf8'))
  try {
    const info = (await nc.request('$JS.API.STREAM.INFO.MESH_RESOLVER', '', { timeout: 5000 })).json<{
      config: { num_replicas: number }
      cluster?: { leader?: string; replicas?: { current: boolean; offline?: boolean }[] }
    }>()
    const followers = (info.cluster?.replicas ?? []).filter((r) => r.current && r.offline !== true).length
    return { replicas: info.config.num_replicas, current: (info.cluster?.leader === undefined ? 0 : 1) + followers }
  } finally {
    await nc.close()
  }
}

/** What the mesh holds for `id`, asked of the resolver itself. */
async function held(sys: NatsConnection, id: string): Promise<{ state: string; jwt?: string }> {
  return (await sys.request(subjects.resolverGet(id), '', { timeout: 5000 })).json()
}

/** The end state: the mesh holds every account at its latest version, and every node serves the pushed ones. */
async function checkEnd(t: Test, fleet: Fleet, sys: NatsConnection, latest: Map<string, string>): Promise<void> {
  // the follower on the node restarted last catches up first (2.10.27 under load: over 15 s)
  const stream = await waitFor(async () => {
    const r = await streamReplicas(t, fleet)
    return r.current === 3 ? r : undefined
  }, { ms: 30_000, every: 250, what: 'every replica of the stream current' }).catch(async () => streamReplicas(t, fleet))
  t.same(stream, { replicas: 3, current: 3 }, 'the resolvers store in one stream, replicated and current on all three nodes')
  const notLatest = async () =>
    (
      await mapLimit(fleet.tenants, 32, async ({ acc }) => {
        const h = await held(sys, acc.id)
        return h.state === 'stored' && h.jwt === (latest.get(acc.id) ?? acc.jwt) ? undefined : acc.name
      })
    ).filter((x) => x !== undefined)
  // An instance answers from its view of the stream, and a view whose consumer's node just restarted applies
  // the last writes only once its watchdog follows the stream anew (seen on 2.9.10: one account, one push behind).
  const wrong = await waitFor(async () => {
    const w = await notLatest()
    return w.length === 0 ? w : undefined
  }, { ms: 15_000, every: 500, what: 'every account at its latest version' }).catch(notLatest)
  t.same(wrong, [], `the mesh holds all ${ACCOUNTS} accounts, each at its latest version`)
  const pushed = [...latest].slice(0, 12)
  for (const [id, jwt] of pushed) {
    const tenant = fleet.tenants.find((x) => x.acc.id === id)!
    for (const s of fleet.servers) {
      const nc = await connectWith(t, s, tenant.creds)
      await nc.close()
    }
    const applied = await appliedJwts(sys, id, 3)
    t.same([...applied.values()], [jwt, jwt, jwt], `${tenant.acc.name}: every node applies the version pushed during the switch`)
  }
}

t.test('RESOLVER_AUTHORITATIVE is true unless set to false', async (t) => {
  const base = { OPERATOR_JWT: fx.operatorJwtPath, SYSTEM_ACCOUNT_JWT: fx.sysJwtPath }
  t.equal(loadResolverConfig(base).authoritative, true)
  t.equal(loadResolverConfig({ ...base, RESOLVER_AUTHORITATIVE: 'false' }).authoritative, false)
  t.throws(() => loadResolverConfig({ ...base, RESOLVER_AUTHORITATIVE: 'no' }), { code: 'CONFIG_INVALID' })
})

t.test('a full-resolver fleet moves onto the mesh with no failed connect and no lost push', async (t) => {
  const clock = Date.now()
  const mark = (what: string) => t.comment(`${what}: ${((Date.now() - clock) / 1000).toFixed(1)} s`)
  const fleet = await startFleet(t, { resolver: 'full' })
  mark('fleet started')
  const sys = await connectWith(t, fleet.servers, fleet.fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)
  // the fleet as nsc built it: every account pushed to the full servers, before any mesh runs
  const preload = await mapLimit(fleet.tenants, 32, async ({ acc }) => (await gather(sys, subjects.claimsUpdate, acc.jwt, 3)).map((m) => m.json<ServerClaimReply>()))
  t.ok(preload.every((r) => r.length === 3 && r.every((x) => x.data?.message === 'jwt updated')), 'every full server stored every account')

  mark('accounts pushed to the fleet')
  // not authoritative while full servers may hold what the mesh lacks
  const meshes = await startFleetMesh(t, fleet, { RESOLVER_AUTHORITATIVE: 'false' })
  mark('mesh started')
  const dry = await meshImport(fleet, ['--pack', '--dry-run'])
  t.equal(dry.code, 0, dry.stderr)
  t.equal(countOf(fleet, dry.json, 'store'), ACCOUNTS, 'the dry run would store every account')
  t.same((await held(sys, fleet.tenants[0]!.acc.id)).state, 'unknown', 'and stored nothing')
  const first = await meshImport(fleet, ['--pack'])
  t.equal(first.code, 0, first.stderr)
  t.equal(countOf(fleet, first.json, 'stored'), ACCOUNTS, 'the import stores every account')
  const again = await meshImport(fleet, ['--pack'])
  t.equal(again.code, 0, again.stderr)
  t.equal(countOf(fleet, again.json, 'current'), ACCOUNTS, 'a second run finds every account already current')
  mark('imported')

  const inRotation = new Set([0, 1, 2])
  const users = connectLoop(fleet, inRotation)
  const pushes = pushLoop(fleet, sys)
  await delay(1500)
  await rollingSwitch(t, fleet, sys, inRotation, users, meshes)
  await pushes.stop()
  await users.stop()
  mark('switched')

  t.same(users.failures, [], `no connect failed (${users.connects()} connects)`)
  t.ok(users.connects() >= 50, 'users kept connecting')
  t.same(pushes.problems, [], `every push was accepted by the mesh (${pushes.latest.size} accounts pushed, ${pushes.retried()} pushes sent again after no reply or a 5xx)`)
  for (const w of pushes.why) t.comment(`sent again: ${w}`)
  for (const n of fleet.nodes) t.ok((users.servedBy.get(n.name) ?? 0) > 0, `${n.name} served users`)
  await checkEnd(t, fleet, sys, pushes.latest)
  mark('checked')
  // only cache servers and a silent resolver are left: an unknown account gets no answer at all
  const unknown = (await newAccount(fleet.fx.op, 'NOBODY')).id
  t.equal((await gather(sys, subjects.lookup(unknown), '', 1, 500)).length, 0, 'a resolver that is not authoritative stays silent on an unknown account')
})

/** nats-account-server's store: `<dir>/<last two characters of the key>/<key>.jwt` (sharded). */
const shardPath = (dir: string, id: string) => join(dir, id.slice(-2), `${id}.jwt`)

async function writeShard(dir: string, id: string, jwt: string): Promise<void> {
  await mkdir(join(dir, id.slice(-2)), { recursive: true })
  await writeFile(shardPath(dir, id), jwt)
}

/** The read side of nats-account-server that URL resolvers use: `GET /jwt/v1/accounts/<id>` from its store. */
async function accountServer(t: Test, dir: string): Promise<string> {
  const srv: Server = createServer((req, res) => {
    // nats-server checks the bare URL at start, as nats-account-server's "server test point"
    if (req.url === '/jwt/v1/accounts/') return void res.writeHead(200).end()
    const id = /^\/jwt\/v1\/accounts\/(A[A-Z2-7]{55})$/.exec(req.url ?? '')?.[1]
    if (id === undefined) return void res.writeHead(404).end()
    readFile(shardPath(dir, id), 'utf8').then(
      (jwt) => res.writeHead(200, { 'content-type': 'application/jwt' }).end(jwt),
      () => res.writeHead(404).end(),
    )
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())))
  return `http://127.0.0.1:${(srv.address() as { port: number }).port}/jwt/v1/accounts/`
}

t.test('a nats-account-server fleet moves onto the mesh from its store directory', async (t) => {
  const storeDir = await tempDir(t, 'nas-store')
  // what nsc pushed to the account server, the system account included; the fleet's servers read it
  // through the account server's HTTP API (URL resolver)
  for (const { acc } of tenants) await writeShard(storeDir, acc.id, acc.jwt)
  await writeShard(storeDir, fx.op.systemAccount.id, fx.op.systemAccount.jwt)
  // and the storage account: URL servers take no preloads, so they fetch MESH from there when the mesh's
  // resolvers connect as its user
  await writeShard(storeDir, fx.mesh.id, fx.mesh.jwt)
  const fleet = await startFleet(t, { resolverUrl: await accountServer(t, storeDir) })
  const sys = await connectWith(t, fleet.servers, fleet.fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)

  // URL servers never ask the mesh, so it can be authoritative from the start
  const meshes = await startFleetMesh(t, fleet, {})
  const dry = await meshImport(fleet, [storeDir, '--dry-run'])
  t.equal(dry.code, 0, dry.stderr)
  t.equal(countOf(fleet, dry.json, 'store'), ACCOUNTS, 'the dry run would store every account of the sharded store')
  t.same((await held(sys, fleet.tenants[0]!.acc.id)).state, 'unknown', 'and stored nothing')
  const first = await meshImport(fleet, [storeDir])
  t.equal(first.code, 0, first.stderr)
  t.equal(countOf(fleet, first.json, 'stored'), ACCOUNTS)
  t.equal(countOf(fleet, (await meshImport(fleet, [storeDir])).json, 'current'), ACCOUNTS, 'a second run finds every account already current')

  const inRotation = new Set([0, 1, 2])
  const users = connectLoop(fleet, inRotation)
  // nsc pushes to the account server (its store) and to the mesh until the last URL server is gone
  const pushes = pushLoop(fleet, sys, (id, jwt) => writeShard(storeDir, id, jwt))
  await delay(1500)
  await rollingSwitch(t, fleet, sys, inRotation, users, meshes)
  await pushes.stop()
  await users.stop()

  t.same(users.failures, [], `no connect failed (${users.connects()} connects)`)
  for (const f of users.failures) {
    const id = /\((A[A-Z2-7]{55})\)/.exec(f)?.[1] ?? '-'
    for (const s of fleet.servers) t.comment(`${s.name}: ${(s.output?.() ?? '').split('\n').filter((l) => l.includes(id) || /ERR|WRN/.test(l)).slice(-8).join('\n')}`)
  }
  t.same(pushes.problems, [], `every push was accepted by the mesh (${pushes.latest.size} accounts pushed, ${pushes.retried()} pushes sent again after no reply or a 5xx)`)
  for (const w of pushes.why) t.comment(`sent again: ${w}`)
  await checkEnd(t, fleet, sys, pushes.latest)
  const unknown = (await newAccount(fleet.fx.op, 'NOBODY')).id
  const replies = await gather(sys, subjects.lookup(unknown), '', 1, 1000)
  t.equal(replies[0]?.data.length, 0, 'an authoritative resolver answers an unknown account with an empty reply')
})

t.test('mesh import judges every file of a damaged store, stores only what a push would, and changes nothing on a dry run', async (t) => {
  const { servers, sys } = await startMesh(t, { fx })
  const server = servers[0]!
  const fleet: Fleet = { fx, tenants, nodes: [], servers, urls: [server.url] }
  const now = Math.floor(Date.now() / 1000)
  const dir = await tempDir(t, 'damaged')
  const file = async (name: string, text: string) => {
    await mkdir(join(dir, name, '..'), { recursive: true })
    await writeFile(join(dir, name), text)
  }
  const [good, exporter, importer, deleted, older] = tenants.slice(0, 5).map((x) => x.acc) as AccountIdentity[]
  // the mesh already holds a newer version of `older`
  const newer = accountJwt(fx.op.signingKp, older!.id, {}, { name: older!.name, iat: now })
  t.equal((await askResolver(sys, subjects.claimsUpdate, newer, 5000)).data !== undefined, true)
  const exporterJwt = accountJwt(fx.op.signingKp, exporter!.id, { exports: [{ name: 'help', subject: 'help.>', type: 'service', token_req: true }] })
  const activation = signClaims({ sub: importer!.id, name: 'help', nats: { subject: 'help.me', kind: 'service', type: 'activation', version: 2 } }, exporter!.kp)
  const stranger = createAccount()
  await file(`${good!.id}.jwt`, good!.jwt)
  await file(`${exporter!.id.slice(-2)}/${exporter!.id}.jwt`, exporterJwt)
  await file(`==/activation.jwt`, activation)
  await file(`${deleted!.id}.jwt.deleted`, deleted!.jwt)
  await file(`${older!.id}.jwt`, older!.jwt)
  const empty = `${createAccount().getPublicKey()}.jwt`
  await file(empty, '')
  await file('garbage.jwt', 'not a jwt at all')
  await file(`${importer!.id}.jwt`, exporterJwt) // named for one account, holding another
  await file('expired.jwt', accountJwt(fx.op.signingKp, stranger.getPublicKey(), {}, { exp: now - 60 }))
  await file('untrusted.jwt', accountJwt(createOperator(), createAccount().getPublicKey()))
  await file('user.jwt', (await newUser(good!, 'someone')).jwt)

  const byFile = (j: ImportJson) => Object.fromEntries(j.results.map((r) => [r.source, `${r.outcome}${r.reason ? ` ${r.reason}` : ''}`]))
  const expected = (store: string) => ({
    [`${good!.id}.jwt`]: store,
    [`${exporter!.id.slice(-2)}/${exporter!.id}.jwt`]: store,
    '==/activation.jwt': store,
    [`${deleted!.id}.jwt.deleted`]: 'skipped',
    [`${older!.id}.jwt`]: 'newer',
    [empty]: 'skipped',
    'garbage.jwt': 'refused',
    [`${importer!.id}.jwt`]: 'refused',
    'expired.jwt': 'refused JWT_EXPIRED',
    'untrusted.jwt': 'refused ISSUER_UNTRUSTED',
    'user.jwt': 'skipped',
  })
  const dry = await meshImport(fleet, [dir, '--dry-run'])
  t.equal(dry.code, 1, 'refusals make the exit code 1')
  t.ok(dry.json.dryRun)
  t.same(byFile(dry.json), expected('store'), 'each file judged as a push would be')
  t.equal((await held(sys, good!.id)).state, 'unknown', 'the dry run stored nothing')
  t.equal((await held(sys, older!.id)).jwt, newer, 'nor replaced anything')

  const real = await meshImport(fleet, [dir])
  t.equal(real.code, 1)
  t.same(byFile(real.json), expected('stored'), 'the same verdicts, and what would be stored is')
  t.equal((await held(sys, good!.id)).jwt, good!.jwt, 'the valid account is stored')
  t.equal((await held(sys, older!.id)).jwt, newer, 'the newer version the mesh held stays')
  t.equal(real.json.results.find((r) => r.source === '==/activation.jwt')?.message, 'activation stored', 'after its exporter')
  t.equal(countOf(fleet, (await meshImport(fleet, [dir])).json, 'current'), 3, 'a second run finds the three stored tokens current')

  const usage = await runMesh(['import', dir, '--pack', '-s', server.url, '--creds', fx.sysCredsPath])
  t.equal(usage.code, 1)
  t.match(usage.stderr, /usage: mesh import <dir> or mesh import --pack/)
  const missing = await runMesh(['import', join(dir, 'nope'), '-s', server.url, '--creds', fx.sysCredsPath])
  t.match(missing.stderr, /cannot read .*nope \(ENOENT\)/)
  const onlyMesh = await runMesh(['import', '--pack', '-s', server.url, '--creds', fx.sysCredsPath, '--timeout', '1s'])
  t.equal(onlyMesh.code, 1)
  t.match(onlyMesh.stderr, /only the mesh's resolver answered PACK/, 'a cache server and the mesh alone: no full server to read')
})
