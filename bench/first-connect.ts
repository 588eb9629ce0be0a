import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { gather } from '../test/kit/sys-requests.ts'
import { waitFor } from '../test/kit/wait-for.ts'
import { connectAs, connectOnce } from './clients.ts'
import { makeConnectableAccount, makeUser, userAuthenticator, type BenchFixture, type BenchUser, type StoredAccounts } from './fixture.ts'
import type { Scope } from './scope.ts'
import { seedStore } from './seed-store.ts'
import { startCluster, startServer, writeJwtDir, type BenchServer } from './servers.ts'
import { startService } from './services.ts'
import { summarize, type Latency } from './stats.ts'

export type ConnectSystem = 'mesh' | 'full-peer' | 'preload'

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
  const accounts = Array.from({ length: opts.samples }, (_, i) => makeConnectableAccount(fx, `first-${i}`))
  const users = accounts.map((a) => makeUser(a))
  const ids = [...fillers.ids, ...accounts.map((a) => a.id)]
  const jwts = [...fillers.jwts, ...accounts.map((a) => a.jwt)]

  const dataDir = `${await scope.tempDir('fc-store')}/data`
  const fullDir = `${await scope.tempDir('fc-full')}/jwt`
  await seedStore(dataDir, ids, jwts)
  await writeJwtDir(fullDir, ids, jwts)

  const meshServer = await startServer(scope, fx, { name: 'mesh1', resolver: 'cache' })
  const meshSys = await connectAs(scope, meshServer, fx.sysUser.creds)
  await startService(scope, fx, meshSys, 'resolver', [meshServer], { RESOLVER_DATA_DIR: dataDir })
  const [peerCache, peerFull] = await startCluster(scope, fx, { prefix: 'peer', resolvers: ['cache', 'full'], jwtDirs: [undefined, fullDir] })
  const peerSys = await connectAs(scope, peerCache!, fx.sysUser.creds)
  await waitFor(async () => (await gather(peerSys, subjects.serverPing, '', 2, 500)).length === 2, { ms: 10_000, what: 'peer cluster' })
  const preloadServer = await startServer(scope, fx, {
    name: 'preload1',
    resolver: 'cache',
    preload: Object.fromEntries(accounts.map((a) => [a.id, a.jwt])),
  })
  await checkOneAnswer(meshSys, accounts[0]!.id, 'mesh')
  await checkOneAnswer(peerSys, accounts[0]!.id, 'full-peer')
  void peerFull

  const targets: Target[] = [
    { system: 'mesh', server: meshServer },
    { system: 'full-peer', server: peerCache! },
    { system: 'preload', server: preloadServer },
  ]
  const times = new Map<ConnectSystem, number[]>(targets.map((t) => [t.system, []]))
  const failures = new Map<ConnectSystem, number>(targets.map((t) => [t.system, 0]))
  // One warm-up connect per system (a SYS-account user is already connected; this loads nothing new).
  for (let i = 0; i < users.length; i++) {
    // Rotate the order each sample so no system always goes first.
    const order = targets.map((_, k) => targets[(i + k) % targets.length]!)
    for (const t of order) {
      const ms = await timeConnect(t.server, users[i]!)
      if (ms === undefined) failures.set(t.system, failures.get(t.system)! + 1)
      else times.get(t.system)!.push(ms)
    }
  }
  const out = targets.map((t) => ({ system: t.system, latency: summarize(times.get(t.system)!), failures: failures.get(t.system)! }))
  for (const c of out) opts.log(`  ${c.system.padEnd(9)} first connect p50 ${c.latency.p50.toFixed(2)} ms, p99 ${c.latency.p99.toFixed(2)} ms, ${c.failures} failed`)
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
