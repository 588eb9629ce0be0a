import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { gather } from '../test/kit/sys-requests.ts'
import { connectAs } from './clients.ts'
import type { BenchFixture, StoredAccounts } from './fixture.ts'
import { closedLoop } from './load.ts'
import { cpuMeter } from './proc.ts'
import type { Scope } from './scope.ts'
import { seedStore } from './seed-store.ts'
import { pidsOf, type JsComparison } from './systems.ts'
import { startServer, writeJwtDir } from './servers.ts'
import { startService } from './services.ts'
import { median, summarize, type Latency } from './stats.ts'

/** One way of answering LOOKUP: nats-server's full resolver, or cache-mode servers with our resolver. */
export interface LookupSystem {
  name: 'full' | 'mesh'
  nc: NatsConnection
  /** The processes whose CPU is measured (beside the client): server(s), resolver instance(s). */
  pids: Record<string, number>
  /** How many replies one LOOKUP gets: every server of a full cluster answers it; the first one counts. */
  responders?: number
}

export interface LookupCase {
  system: 'full' | 'mesh'
  concurrency: number
  /** Median over the rounds. */
  rps: number
  rpsByRound: number[]
  latency: Latency
  errors: number
  timeouts: number
  /** CPU time per request, in microseconds, per process (server, resolver, client). */
  cpuUsPerRequest: Record<string, number>
}

/** Full server with `<id>.jwt` files and cache server + resolver on a store with the same accounts. */
export async function startLookupSystems(
  scope: Scope,
  fx: BenchFixture,
  accounts: StoredAccounts,
  log: (s: string) => void,
  opts: { cacheSize?: number } = {},
): Promise<LookupSystem[]> {
  const jwtDir = `${await scope.tempDir('full-jwt')}/jwt`
  const dataDir = `${await scope.tempDir('mesh-store')}/data`
  log(`writing ${accounts.ids.length} accounts as files for the full resolver and into the resolver store`)
  await writeJwtDir(jwtDir, accounts.ids, accounts.jwts)
  await seedStore(dataDir, accounts.ids, accounts.jwts)
  const full = await startServer(scope, fx, { name: 'full1', resolver: 'full', jwtDir })
  const cache = await startServer(scope, fx, { name: 'cache1', resolver: 'cache' })
  const fullNc = await connectAs(scope, full, fx.sysUser.creds)
  const meshNc = await connectAs(scope, cache, fx.sysUser.creds)
  const env: Record<string, string> = { RESOLVER_DATA_DIR: dataDir }
  if (opts.cacheSize !== undefined) env.RESOLVER_CACHE_SIZE = String(opts.cacheSize)
  const resolver = await startService(scope, fx, meshNc, 'resolver', [cache], env)
  const systems: LookupSystem[] = [
    { name: 'full', nc: fullNc, pids: { server: full.pid } },
    { name: 'mesh', nc: meshNc, pids: { server: cache.pid, resolver: resolver.pid } },
  ]
  for (const s of systems) await checkOneResponder(s, accounts.ids[0]!, accounts.jwts[0]!)
  return systems
}

/**
 * The jetstream comparison's two ways of answering: three clustered full servers (each answers every LOOKUP;
 * the client takes the first reply) and a node of the jetstream mesh, whose resolver instances share the
 * LOOKUPs through their queue group.
 */
export function jsLookupSystems(js: JsComparison): LookupSystem[] {
  return [
    { name: 'full', nc: js.full.nc, pids: pidsOf('server', js.full.servers), responders: js.full.servers.length },
    { name: 'mesh', nc: js.mesh.nc, pids: { ...pidsOf('server', js.mesh.servers), ...pidsOf('resolver', js.mesh.resolvers) } },
  ]
}

/** As many replies as the system has responders, each the right JWT: else the figures would not be what they claim. */
export async function checkOneResponder(s: LookupSystem, id: string, jwt: string): Promise<void> {
  const want = s.responders ?? 1
  const replies = await gather(s.nc, subjects.lookup(id), '', want + 4, 300)
  if (replies.length !== want || replies.some((r) => r.string() !== jwt)) {
    throw new Error(`${s.name}: expected ${want} LOOKUP replies with the JWT, got ${replies.length}`)
  }
}

/** Reads every account once so both systems start from a warm cache (page cache, LRU). */
async function warm(s: LookupSystem, ids: string[]): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < ids.length) await s.nc.request(subjects.lookup(ids[next++]), '', { timeout: 5000 })
    }),
  )
}

export async function runLookups(
  systems: LookupSystem[],
  ids: string[],
  opts: { concurrencies: number[]; rounds: number; warmupMs: number; durationMs: number; warm: boolean; log: (s: string) => void },
): Promise<LookupCase[]> {
  if (opts.warm) for (const s of systems) await warm(s, ids)
  const subjectsById = ids.map((id) => subjects.lookup(id))
  const pick = () => subjectsById[Math.floor(Math.random() * subjectsById.length)]!
  const acc = new Map<string, { rps: number[]; lat: Float64Array[]; errors: number; timeouts: number; cpu: Record<string, number>; n: number }>()
  for (let round = 0; round < opts.rounds; round++) {
    for (const [ci, concurrency] of opts.concurrencies.entries()) {
      // Alternate which system goes first, so drift in the machine's load does not favour one.
      const order = (round + ci) % 2 === 0 ? systems : [...systems].reverse()
      for (const s of order) {
        const cpu = await cpuMeter({ ...s.pids, client: process.pid })
        const r = await closedLoop(s.nc, {
          subject: pick,
          concurrency,
          warmupMs: opts.warmupMs,
          durationMs: opts.durationMs,
          ok: (m) => m.data.length > 0,
        })
        const used = await cpu()
        const key = `${s.name}/${concurrency}`
        const a = acc.get(key) ?? { rps: [], lat: [], errors: 0, timeouts: 0, cpu: {}, n: 0 }
        a.rps.push(r.rps)
        a.lat.push(r.latencies)
        a.errors += r.errors
        a.timeouts += r.timeouts
        // CPU is sampled over warm-up + window; divide by every request sent in that time, approximately.
        const sent = r.rps * ((opts.warmupMs + opts.durationMs) / 1000)
        for (const [k, ms] of Object.entries(used)) a.cpu[k] = (a.cpu[k] ?? 0) + ms * 1000
        a.n += sent
        acc.set(key, a)
        opts.log(`  round ${round + 1} ${s.name.padEnd(4)} ${String(concurrency).padStart(2)} in flight: ${Math.round(r.rps)} req/s`)
      }
    }
  }
  const out: LookupCase[] = []
  for (const s of systems) {
    for (const concurrency of opts.concurrencies) {
      const a = acc.get(`${s.name}/${concurrency}`)!
      const all = new Float64Array(a.lat.reduce((n, l) => n + l.length, 0))
      let o = 0
      for (const l of a.lat) {
        all.set(l, o)
        o += l.length
      }
      out.push({
        system: s.name,
        concurrency,
        rps: median(a.rps),
        rpsByRound: a.rps.map(Math.round),
        latency: summarize(all),
        errors: a.errors,
        timeouts: a.timeouts,
        cpuUsPerRequest: Object.fromEntries(Object.entries(a.cpu).map(([k, us]) => [k, us / a.n])),
      })
    }
  }
  return out
}
