import type { Msg, NatsConnection } from '@nats-io/nats-core'
import type { BenchFixture, StoredAccounts } from './fixture.ts'
import { sendAll } from './load.ts'
import type { Scope } from './scope.ts'
import { startCluster, writeJwtDir, type BenchServer } from './servers.ts'
import { startJsResolver, startService, type BenchService } from './services.ts'
import { isResolverReply, subjects } from '../shared/index.ts'
import { connectAs } from './clients.ts'

/** Which engine the mesh's resolver runs: one instance on LevelDB, or several on a JetStream cluster. */
export type Store = 'level' | 'jetstream'

/** The CPU meter's names: `server`, or `server1`.. when there are several. */
export const pidsOf = (role: string, procs: { pid: number }[]): Record<string, number> =>
  Object.fromEntries(procs.map((p, i) => [procs.length === 1 ? role : `${role}${i + 1}`, p.pid]))

/** The resolver instances a jetstream deployment runs (the compose `ha` profile does too). */
export const JS_RESOLVERS = 2

/**
 * Three full-mode servers in one cluster: what the jetstream mode compares with (three nodes, each holding
 * every account). `jwtDirs` holds accounts already written, one directory per server.
 */
export async function startFullCluster(scope: Scope, fx: BenchFixture, jwtDirs?: string[]): Promise<{ servers: BenchServer[]; nc: NatsConnection }> {
  const servers = await startCluster(scope, fx, { prefix: 'full', resolvers: ['full', 'full', 'full'], jwtDirs })
  return { servers, nc: await connectAs(scope, servers[0]!, fx.sysUser.creds) }
}

/** The full cluster's directories, each with `accounts` written as `<id>.jwt`. */
export async function fullClusterDirs(scope: Scope, accounts: StoredAccounts): Promise<string[]> {
  return Promise.all(
    [1, 2, 3].map(async (i) => {
      const dir = `${await scope.tempDir(`full${i}-jwt`)}/jwt`
      await writeJwtDir(dir, accounts.ids, accounts.jwts)
      return dir
    }),
  )
}

export interface JsMesh {
  /** Three JetStream-enabled cache-mode servers, the storage account MESH preloaded. */
  servers: BenchServer[]
  /** A system user on the first node, where the bench's client traffic goes. */
  nc: NatsConnection
  resolvers: BenchService[]
  signer: BenchService
  notifier: BenchService
  /** Every process of the mesh, named for the CPU meter. */
  pids: Record<string, number>
}

/**
 * The jetstream deployment: three JetStream nodes, the resolver's stream at R3, JS_RESOLVERS resolver
 * instances, one signer and one notifier.
 */
export async function startJsMesh(scope: Scope, fx: BenchFixture): Promise<JsMesh> {
  const servers = await startCluster(scope, fx, { prefix: 'js', resolvers: ['cache', 'cache', 'cache'], jetstream: true })
  const nc = await connectAs(scope, servers[0]!, fx.sysUser.creds)
  // One at a time: the first creates the stream and consumer, the next finds them.
  const resolvers: BenchService[] = []
  for (let i = 0; i < JS_RESOLVERS; i++) resolvers.push(await startJsResolver(scope, fx, nc, servers, i % servers.length))
  const signer = await startService(scope, fx, nc, 'signer', servers)
  const notifier = await startService(scope, fx, nc, 'notifier', servers)
  return {
    servers,
    nc,
    resolvers,
    signer,
    notifier,
    pids: { ...pidsOf('server', servers), ...pidsOf('resolver', resolvers), signer: signer.pid, notifier: notifier.pid },
  }
}

/** A reply to a push that comes from our resolver (servers hear the same subject and reply too). */
export const fromResolver = (r: unknown) => isResolverReply(r)

export interface ClaimReplyShape {
  server?: { name?: string }
  data?: { message?: string }
  error?: unknown
}

/**
 * nsc push -A: every account once on `$SYS.REQ.CLAIMS.UPDATE`, `inFlight` at a time. A push is done once
 * `replies` accepted replies came from responders `from` picks (every server of a full cluster stores it).
 */
export function pushAll(nc: NatsConnection, jwts: string[], inFlight: number, from: (r: ClaimReplyShape) => boolean, replies = 1) {
  const accepted = new Map<string, number>()
  return sendAll(nc, {
    subject: subjects.claimsUpdate,
    bodies: jwts,
    concurrency: inFlight,
    judge: (m) => {
      const r = m.json<ClaimReplyShape>()
      if (!from(r)) return 'ignore'
      if (r.error !== undefined || !/jwt updated/.test(r.data?.message ?? '')) return 'error'
      const n = (accepted.get(m.subject) ?? 0) + 1
      if (n < replies) {
        accepted.set(m.subject, n)
        return 'ignore'
      }
      accepted.delete(m.subject)
      return 'done'
    },
  })
}

/**
 * The resolver's delivery reports (`mesh.resolver.deliveries.<id>`): when every account has one, the servers
 * have it all, whether the notifier broadcast it or the servers' replies to the push stood for it. `done()`
 * resolves with when the last one was seen (performance.now()), or NaN after `ms`.
 */
export function watchDeliveries(nc: NatsConnection, ids: string[]): { done(ms?: number): Promise<number> } {
  const pending = new Set(ids)
  let deliveredAt = pending.size === 0 ? performance.now() : 0
  const seen = (_e: unknown, m: Msg) => {
    const id = m.subject.slice(subjects.resolverDeliveries('').length)
    if (pending.delete(id) && pending.size === 0) deliveredAt = performance.now()
  }
  const watches = [nc.subscribe(subjects.resolverDeliveries(), { callback: seen })]
  return {
    async done(ms = 60_000) {
      const until = performance.now() + ms
      while (pending.size > 0 && performance.now() < until) await new Promise((res) => setTimeout(res, 20))
      for (const w of watches) w.unsubscribe()
      return pending.size === 0 ? deliveredAt : NaN
    },
  }
}

/** Fills a running mesh through its front door, as an operator would: every account pushed once and delivered. */
export async function pushIntoMesh(nc: NatsConnection, accounts: StoredAccounts, inFlight = 64): Promise<void> {
  const delivered = watchDeliveries(nc, accounts.ids)
  const r = await pushAll(nc, accounts.jwts, inFlight, fromResolver)
  if (r.errors + r.timeouts > 0) throw new Error(`seeding the mesh: ${r.errors} refused, ${r.timeouts} unanswered: ${r.firstErrors.join(' | ')}`)
  if (Number.isNaN(await delivered.done())) throw new Error('seeding the mesh: not every account was delivered within 60 s')
}

/** The jetstream comparison: three clustered full servers and the jetstream mesh, holding the same accounts. */
export interface JsComparison {
  full: { servers: BenchServer[]; nc: NatsConnection }
  mesh: JsMesh
}

/** Writes the accounts into the full servers' directories and pushes them into the mesh. */
export async function startJsComparison(scope: Scope, fx: BenchFixture, accounts: StoredAccounts, log: (s: string) => void): Promise<JsComparison> {
  log(`writing ${accounts.ids.length} accounts as files for 3 full servers`)
  const full = await startFullCluster(scope, fx, await fullClusterDirs(scope, accounts))
  log(`starting the jetstream mesh (3 nodes, R3, ${JS_RESOLVERS} resolvers) and pushing the ${accounts.ids.length} accounts into it`)
  const mesh = await startJsMesh(scope, fx)
  const t0 = performance.now()
  await pushIntoMesh(mesh.nc, accounts)
  log(`  pushed and delivered in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  return { full, mesh }
}
