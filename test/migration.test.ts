import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator, type NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { loadResolverConfig } from '../services/resolver/config.ts'
import { newAccount, newUser, type AccountIdentity } from '../ops/identities.ts'
import { mapLimit } from '../cli/requests.ts'
import { connectWith } from './helpers/clients.ts'
import { makeFixture, tempDir, type Fixture } from './helpers/fixtures.ts'
import { accountJwt } from './helpers/jwts.ts'
import { freePort, startNatsServer, type NatsServerHandle, type StartOptions } from './helpers/nats-server.ts'
import { startResolver, startService } from './helpers/services.ts'
import { appliedJwts, clusterFormed, gather, push, type ClaimReply } from './helpers/sys-requests.ts'
import { waitFor } from './helpers/wait-for.ts'

// The rolling switch of the README's "Moving a fleet onto the mesh", on whichever nats-server is first on
// PATH (PATH=/var/cache/mesh-tools/nats-server/<version>:$PATH): a 3-node fleet of full-resolver servers (or
// of URL-resolver servers reading a nats-account-server store) is imported into the mesh and turned into
// cache servers one restart at a time, while users connect and nsc-style pushes go on.

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const BIN = join(ROOT, 'cli', 'mesh.mjs')
const ACCOUNTS = 200
const enc = (s: string) => new TextEncoder().encode(s)

interface Tenant {
  acc: AccountIdentity
  creds: string
}

interface Fleet {
  fx: Fixture
  tenants: Tenant[]
  /** Client and route port of each node: a restarted node comes back where its peers and clients expect it. */
  nodes: { name: string; port: number; routePort: number }[]
  servers: NatsServerHandle[]
  urls: string[]
}

/** Runs the mesh CLI as its bin does; resolves with exit code and output. */
function mesh(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    proc.on('error', reject)
    proc.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

interface ImportJson {
  dryRun: boolean
  results: { source: string; kind: string; account?: string; outcome: string; message: string; reason?: string }[]
}

async function meshImport(fleet: Fleet, args: string[]): Promise<{ code: number | null; json: ImportJson; stderr: string }> {
  const r = await mesh(['import', ...args, '--json', '-s', fleet.urls.join(','), '--creds', fleet.fx.sysCredsPath, '--timeout', '10s'])
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

async function makeTenants(fx: Fixture): Promise<Tenant[]> {
  return mapLimit(Array.from({ length: ACCOUNTS }, (_, i) => i), 16, async (i) => {
    const acc = await newAccount(fx.op, `T${i}`)
    return { acc, creds: (await newUser(acc, `u${i}`)).creds }
  })
}

async function startFleet(t: Test, opts: Pick<StartOptions, 'resolver' | 'resolverUrl'>): Promise<Fleet> {
  const fx = await makeFixture(t)
  const tenants = await makeTenants(fx)
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map(async (name) => ({ name, port: await freePort(), routePort: await freePort() })))
  const fleet: Fleet = { fx, tenants, nodes, servers: [], urls: nodes.map((n) => `nats://127.0.0.1:${n.port}`) }
  fleet.servers = await Promise.all(nodes.map((_, i) => startNode(t, fleet, i, opts)))
  return fleet
}

function startNode(t: Test, fleet: Fleet, i: number, opts: Pick<StartOptions, 'resolver' | 'resolverUrl'>): Promise<NatsServerHandle> {
  const n = fleet.nodes[i]!
  return startNatsServer(t, fleet.fx, {
    name: n.name,
    port: n.port,
    cluster: { name: 'fleet', port: n.routePort, routes: fleet.nodes.filter((_, j) => j !== i).map((m) => `nats-route://127.0.0.1:${m.routePort}`) },
    ...opts,
  })
}

/**
 * Two instances each of resolver and signer, each pinned to one node (the first and the last restarted), so
 * one of each stays connected while a node restarts, as replicas spread over a cluster would; one notifier,
 * whose outbox rides out its reconnects.
 */
async function startMesh(t: Test, fleet: Fleet, env: Record<string, string>): Promise<void> {
  const [first, , last] = fleet.servers as [NatsServerHandle, NatsServerHandle, NatsServerHandle]
  await Promise.all([
    startService(t, 'signer', fleet.fx, [first]),
    startService(t, 'signer', fleet.fx, [last]),
    startResolver(t, fleet.fx, [first], env),
    startResolver(t, fleet.fx, [last], env),
    startService(t, 'notifier', fleet.fx, fleet.servers),
  ])
}

/** Every mesh instance answers `$SRV.PING`: all five are connected. */
async function meshConnected(sys: NatsConnection): Promise<void> {
  await waitFor(async () => (await gather(sys, '$SRV.PING', '', 5, 500)).length === 5, { ms: 15_000, what: 'every mesh instance connected' })
}

/** Users connecting continuously: one connect every ~100 ms, each to the next node in rotation and the next account. */
function connectLoop(fleet: Fleet, inRotation: Set<number>) {
  const failures: string[] = []
  const servedBy = new Map<string, number>()
  let connects = 0
  let stopping = false
  const done = (async () => {
    for (let i = 0; !stopping; i++) {
      const started = Date.now()
      const live = [...inRotation].sort()
      const first = live[i % live.length]!
      const order = [first, ...live.filter((j) => j !== first)].map((j) => fleet.urls[j]!)
      const tenant = fleet.tenants[(i * 7) % ACCOUNTS]!
      try {
        await within(10_000, 'a connect', (async () => {
          const nc = await connect({ servers: order, noRandomize: true, reconnect: false, timeout: 5000, authenticator: credsAuthenticator(enc(tenant.creds)) })
          await nc.flush()
          const name = nc.info?.server_name ?? '?'
          servedBy.set(name, (servedBy.get(name) ?? 0) + 1)
          await nc.close()
        })())
        connects++
      } catch (e) {
        failures.push(`${tenant.acc.name} via ${order[0]}: ${(e as Error).message}`)
      }
      await delay(Math.max(0, 100 - (Date.now() - started)))
    }
  })()
  return { failures, servedBy, connects: () => connects, stop: async () => void ((stopping = true), await done) }
}

/** nsc-style pushes of new account versions on `$SYS.REQ.CLAIMS.UPDATE`, one every ~250 ms, each to another account. */
function pushLoop(fleet: Fleet, sys: NatsConnection, also?: (id: string, jwt: string) => Promise<void>) {
  const latest = new Map<string, string>()
  const problems: string[] = []
  let stopping = false
  const done = (async () => {
    for (let i = 0; !stopping; i++) {
      const started = Date.now()
      const tenant = fleet.tenants[(i * 13 + 5) % ACCOUNTS]!
      const jwt = accountJwt(fleet.fx.op.signingKp, tenant.acc.id, { tags: [`v${i}`] }, { name: tenant.acc.name, iat: Math.floor(Date.now() / 1000) + 1 })
      await also?.(tenant.acc.id, jwt)
      try {
        const { ours } = await within(10_000, 'a push', push(sys, subjects.claimsUpdate, jwt, 3))
        if (ours.data?.code === 200) latest.set(tenant.acc.id, jwt)
        else problems.push(`${tenant.acc.name}: ${JSON.stringify(ours.error)}`)
      } catch (e) {
        problems.push(`${tenant.acc.name}: ${(e as Error).message}`)
      }
      await delay(Math.max(0, 250 - (Date.now() - started)))
    }
  })()
  return { latest, problems, stop: async () => void ((stopping = true), await done) }
}

/**
 * The switch itself: each node in turn leaves the clients' rotation, stops, comes back on the same ports as a
 * cache server with a fresh directory, and rejoins the rotation once routed and every mesh instance is back.
 */
async function rollingSwitch(t: Test, fleet: Fleet, sys: NatsConnection, inRotation: Set<number>): Promise<void> {
  for (let i = 0; i < fleet.nodes.length; i++) {
    inRotation.delete(i)
    await fleet.servers[i]!.stop()
    fleet.servers[i] = await startNode(t, fleet, i, { resolver: 'cache' })
    await clusterFormed(sys, 3)
    await meshConnected(sys)
    inRotation.add(i)
    await delay(2000) // users and pushes carry on against the mixed fleet
  }
}

/** What the mesh holds for `id`, asked of the resolver itself. */
async function held(sys: NatsConnection, id: string): Promise<{ state: string; jwt?: string }> {
  return (await sys.request(subjects.resolverGet(id), '', { timeout: 5000 })).json()
}

/** The end state: the mesh holds every account at its latest version, and every node serves the pushed ones. */
async function checkEnd(t: Test, fleet: Fleet, sys: NatsConnection, latest: Map<string, string>): Promise<void> {
  const wrong = (
    await mapLimit(fleet.tenants, 32, async ({ acc }) => {
      const h = await held(sys, acc.id)
      return h.state === 'stored' && h.jwt === (latest.get(acc.id) ?? acc.jwt) ? undefined : acc.name
    })
  ).filter((x) => x !== undefined)
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
  const fx = await makeFixture(t)
  const base = { OPERATOR_JWT: fx.operatorJwtPath, SYSTEM_ACCOUNT_JWT: fx.sysJwtPath }
  t.equal(loadResolverConfig(base).authoritative, true)
  t.equal(loadResolverConfig({ ...base, RESOLVER_AUTHORITATIVE: 'false' }).authoritative, false)
  t.throws(() => loadResolverConfig({ ...base, RESOLVER_AUTHORITATIVE: 'no' }), { code: 'CONFIG_INVALID' })
})

t.test('a full-resolver fleet moves onto the mesh with no failed connect and no lost push', async (t) => {
  const fleet = await startFleet(t, { resolver: 'full' })
  const sys = await connectWith(t, fleet.servers, fleet.fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)
  // the fleet as nsc built it: every account pushed to the full servers, before any mesh runs
  const preload = await mapLimit(fleet.tenants, 32, async ({ acc }) => (await gather(sys, subjects.claimsUpdate, acc.jwt, 3)).map((m) => m.json<ClaimReply>()))
  t.ok(preload.every((r) => r.length === 3 && r.every((x) => x.data?.message === 'jwt updated')), 'every full server stored every account')

  // not authoritative while full servers may hold what the mesh lacks
  await startMesh(t, fleet, { RESOLVER_AUTHORITATIVE: 'false' })
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

  const inRotation = new Set([0, 1, 2])
  const users = connectLoop(fleet, inRotation)
  const pushes = pushLoop(fleet, sys)
  await delay(1500)
  await rollingSwitch(t, fleet, sys, inRotation)
  await pushes.stop()
  await users.stop()

  t.same(users.failures, [], `no connect failed (${users.connects()} connects)`)
  t.ok(users.connects() >= 50, 'users kept connecting')
  t.same(pushes.problems, [], `every push was accepted by the mesh (${pushes.latest.size} accounts pushed)`)
  for (const n of fleet.nodes) t.ok((users.servedBy.get(n.name) ?? 0) > 0, `${n.name} served users`)
  await checkEnd(t, fleet, sys, pushes.latest)
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
  // the fleet's servers read the store through the account server's HTTP API (URL resolver)
  const fleet = await startFleet(t, { resolverUrl: await accountServer(t, storeDir) })
  for (const { acc } of fleet.tenants) await writeShard(storeDir, acc.id, acc.jwt)
  const sys = await connectWith(t, fleet.servers, fleet.fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)

  // URL servers never ask the mesh, so it can be authoritative from the start
  await startMesh(t, fleet, {})
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
  await rollingSwitch(t, fleet, sys, inRotation)
  await pushes.stop()
  await users.stop()

  t.same(users.failures, [], `no connect failed (${users.connects()} connects)`)
  t.same(pushes.problems, [], `every push was accepted by the mesh (${pushes.latest.size} accounts pushed)`)
  await checkEnd(t, fleet, sys, pushes.latest)
  const unknown = (await newAccount(fleet.fx.op, 'NOBODY')).id
  const replies = await gather(sys, subjects.lookup(unknown), '', 1, 1000)
  t.equal(replies[0]?.data.length, 0, 'an authoritative resolver answers an unknown account with an empty reply')
})
