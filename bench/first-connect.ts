import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { gather } from '../test/kit/sys-requests.ts'
import { connectAs, connectOnce } from './clients.ts'
import { makeConnectableAccount, makeUser, userAuthenticator, type BenchFixture, type BenchUser, type ConnectableAccount, type StoredAccounts } from './fixture.ts'
import type { Scope } from './scope.ts'
import { seedStore } from './seed-store.ts'
import { startCluster, startServer, writeJwtDir, type BenchServer } from './servers.ts'
import { startService } from './services.ts'
import { summarize, type Latency } from './stats.ts'
import type { JsComparison } from './systems.ts'

export type ConnectSystem = 'mesh' | 'full-peer' | 'preload' | 'mesh-js' | 'full-cluster'

export interface FirstConnectCase {
  system: ConnectSystem
  latency: Latency
  failures: number
}

interface Target {
  system: ConnectSystem
  /** Where the users connect: a cache-mode server that has not seen their accounts (or preloaded them). */
  server: BenchServer
}

/**
 * Three ways for a server to come to know an account a user connects with:
 * - mesh: a cache-mode server asks our resolver (LOOKUP);
 * - full-peer: a cache-mode server clustered with a full-mode server that holds the accounts answers it;
 * - preload: the account is in the server's config (resolver_preload), nothing to fetch: the floor.
 * Every system holds the same accounts (and `fillers` beside them); each sample is a user of an account
 * its server has not loaded yet.
 */
export async function runFirstConnects(
  scope: Scope,
  fx: BenchFixture,
  fillers: StoredAccounts,
  opts: { samples: number; log: (s: string) => void },
): Promise<FirstConnectCase[]> {
  const { accounts, all } = connectableAccounts(fx, fillers, opts.samples)
  const dataDir = `${await scope.tempDir('fc-store')}/data`
  const fullDir = `${await scope.tempDir('fc-full')}/jwt`
  await seedStore(dataDir, all.ids, all.jwts)
  await writeJwtDir(fullDir, all.ids, all.jwts)

  const meshServer = await startServer(scope, fx, { name: 'mesh1', resolver: 'cache' })
  const meshSys = await connectAs(scope, meshServer, fx.sysUser.creds)
  await startService(scope, fx, meshSys, 'resolver', [meshServer], { RESOLVER_DATA_DIR: dataDir })
  const [peerCache] = await startCluster(scope, fx, { prefix: 'peer', resolvers: ['cache', 'full'], jwtDirs: [undefined, fullDir] })
  const peerSys = await connectAs(scope, peerCache!, fx.sysUser.creds)
  const preloadServer = await startServer(scope, fx, {
    name: 'preload1',
    resolver: 'cache',
    preload: Object.fromEntries(accounts.map((a) => [a.id, a.jwt])),
  })
  await checkOneAnswer(meshSys, accounts[0]!.id, 'mesh')
  await checkOneAnswer(peerSys, accounts[0]!.id, 'full-peer')
  return timeFirstConnects(
    [
      { system: 'mesh', server: meshServer },
      { system: 'full-peer', server: peerCache! },
      { system: 'preload', server: preloadServer },
    ],
    accounts,
    opts.log,
  )
}

/** `samples` accounts users can connect to, and every account a system must hold: the fillers and these. */
export function connectableAccounts(fx: BenchFixture, fillers: StoredAccounts, samples: number): { accounts: ConnectableAccount[]; all: StoredAccounts } {
  const accounts = Array.from({ length: samples }, (_, i) => makeConnectableAccount(fx, `first-${i}`))
  return { accounts, all: { ids: [...fillers.ids, ...accounts.map((a) => a.id)], jwts: [...fillers.jwts, ...accounts.map((a) => a.jwt)] } }
}

/**
 * The jetstream comparison: a user connects to a node of the jetstream mesh (which asks our resolver) or to a
 * server of the full cluster (which holds the account itself). Both hold `accounts` (see connectableAccounts).
 */
export async function runFirstConnectsJs(js: JsComparison, accounts: ConnectableAccount[], log: (s: string) => void): Promise<FirstConnectCase[]> {
  await checkOneAnswer(js.mesh.nc, accounts[0]!.id, 'mesh-js')
  return timeFirstConnects(
    [
      { system: 'mesh-js', server: js.mesh.servers[0]! },
      { system: 'full-cluster', server: js.full.servers[0]! },
    ],
    accounts,
    log,
  )
}

/** One new user per account and system connects, the systems' order rotated each sample. */
async function timeFirstConnects(targets: Target[], accounts: ConnectableAccount[], log: (s: string) => void): Promise<FirstConnectCase[]> {
  const times = new Map<ConnectSystem, number[]>(targets.map((t) => [t.system, []]))
  const failures = new Map<ConnectSystem, number>(targets.map((t) => [t.system, 0]))
  const users = accounts.map((a) => makeUser(a))
  for (const [i, user] of users.entries()) {
    // Rotate the order each sample so no system always goes first.
    const order = targets.map((_, k) => targets[(i + k) % targets.length]!)
    for (const t of order) {
      const ms = await timeConnect(t.server, user)
      if (ms === undefined) failures.set(t.system, failures.get(t.system)! + 1)
      else times.get(t.system)!.push(ms)
    }
  }
  const out = targets.map((t) => ({ system: t.system, latency: summarize(times.get(t.system)!), failures: failures.get(t.system)! }))
  for (const c of out) log(`  ${c.system.padEnd(12)} first connect p50 ${c.latency.p50.toFixed(2)} ms, p99 ${c.latency.p99.toFixed(2)} ms, ${c.failures} failed`)
  return out
}

/** A LOOKUP there is answered exactly once, with the JWT: one responder per system. */
async function checkOneAnswer(nc: NatsConnection, id: string, what: string): Promise<void> {
  const replies = await gather(nc, subjects.lookup(id), '', 5, 300)
  if (replies.length !== 1 || replies[0]!.data.length === 0) throw new Error(`${what}: expected one LOOKUP answer, got ${replies.length}`)
}

/** Connect (TCP, INFO, CONNECT with the signed nonce, PING/PONG) until the server has admitted the user. */
async function timeConnect(server: BenchServer, user: BenchUser): Promise<number | undefined> {
  const t0 = performance.now()
  try {
    const nc = await connectOnce(server, userAuthenticator(user), 5000)
    const ms = performance.now() - t0
    await nc.close()
    return ms
  } catch {
    return undefined
  }
}
