import type { NatsConnection } from '@nats-io/nats-core'
import { connectAs } from './clients.ts'
import type { BenchFixture, StoredAccounts } from './fixture.ts'
import { cpuMeter, diskUsage, memoryOf } from './proc.ts'
import { withScope, type Scope } from './scope.ts'
import { startServer } from './servers.ts'
import { startService, type BenchService } from './services.ts'
import { summarize, type Latency } from './stats.ts'
import { fromResolver, pidsOf, pushAll, startFullCluster, startJsMesh, watchDeliveries, type Store } from './systems.ts'

export interface ImportRun {
  system: 'full' | 'mesh'
  /** level: one full server against the level mesh; jetstream: three clustered full servers against the R3 mesh. */
  store?: Store
  round: number
  accounts: number
  seconds: number
  perSecond: number
  latency: Latency
  errors: number
  timeouts: number
  firstErrors: string[]
  /** Mesh: until the notifier had broadcast every account to the servers. */
  deliveredSeconds?: number
  storeDiskBytes: number
  storeApparentBytes: number
  /** RSS of what holds the store: the (first) full nats-server, or the (first) resolver. */
  rssMb: number
  peakRssMb: number
  /** Mesh: RSS of the other services, for the whole picture. */
  otherRssMb?: Record<string, number>
  /** CPU time per push, in microseconds, per process. */
  cpuUsPerPush: Record<string, number>
}

/** One system ready to take the import, and what to measure on it. */
interface ImportTarget {
  nc: NatsConnection
  /** Every process of the system, named for the CPU meter. */
  pids: Record<string, number>
  /** Whose RSS is reported: what holds the store. */
  holder: number
  others?: Record<string, number>
  /** Where the store is on disk (each replica, for a cluster). */
  storeDirs: string[]
  /** Which replies complete a push, and how many of them. */
  from: (r: { server?: { name?: string } }) => boolean
  replies: number
  /** Mesh: wait for the notifier's broadcast of every account. */
  delivers: boolean
}

/** A fresh full-mode server with an empty JWT directory, or three clustered, take the whole import. */
async function fullTarget(scope: Scope, fx: BenchFixture, store: Store): Promise<ImportTarget> {
  const servers = store === 'level' ? [await startServer(scope, fx, { name: 'full1', resolver: 'full' })] : (await startFullCluster(scope, fx)).servers
  return {
    nc: await connectAs(scope, servers[0]!, fx.sysUser.creds),
    pids: pidsOf('server', servers),
    holder: servers[0]!.pid,
    storeDirs: servers.map((s) => s.jwtDir),
    from: () => true,
    replies: servers.length,
    delivers: false,
  }
}

/** A cache-mode server with the three services (level), or the jetstream deployment: only our resolver's reply counts. */
async function meshTarget(scope: Scope, fx: BenchFixture, store: Store): Promise<ImportTarget> {
  const common = { from: fromResolver, replies: 1, delivers: true }
  if (store === 'jetstream') {
    const m = await startJsMesh(scope, fx)
    return {
      ...common,
      nc: m.nc,
      pids: m.pids,
      holder: m.resolvers[0]!.pid,
      others: { ...Object.fromEntries(m.resolvers.slice(1).map((r, i) => [`resolver${i + 2}`, r.pid])), signer: m.signer.pid, notifier: m.notifier.pid },
      storeDirs: m.servers.map((s) => s.storeDir!),
    }
  }
  const server = await startServer(scope, fx, { name: 'cache1', resolver: 'cache' })
  const nc = await connectAs(scope, server, fx.sysUser.creds)
  const services: Record<string, BenchService> = {}
  for (const name of ['resolver', 'signer', 'notifier'] as const) services[name] = await startService(scope, fx, nc, name, [server])
  return {
    ...common,
    nc,
    pids: { server: server.pid, resolver: services.resolver!.pid, signer: services.signer!.pid, notifier: services.notifier!.pid },
    holder: services.resolver!.pid,
    others: { signer: services.signer!.pid, notifier: services.notifier!.pid },
    storeDirs: [services.resolver!.dataDir],
  }
}

/** Pushes every account into a fresh system and measures throughput, CPU per process, memory and disk. */
async function importInto(
  system: 'full' | 'mesh',
  store: Store,
  fx: BenchFixture,
  accounts: StoredAccounts,
  inFlight: number,
  round: number,
): Promise<ImportRun> {
  return withScope(async (scope) => {
    const t = system === 'full' ? await fullTarget(scope, fx, store) : await meshTarget(scope, fx, store)
    const start = performance.now()
    const delivered = watchDeliveries(t.nc, t.delivers ? accounts.ids : [])
    const cpu = await cpuMeter({ ...t.pids, client: process.pid })
    const r = await pushAll(t.nc, accounts.jwts, inFlight, t.from, t.replies)
    const deliveredAt = await delivered.done()
    const used = await cpu()
    const mem = await memoryOf(t.holder)
    const du = (await Promise.all(t.storeDirs.map(diskUsage))).reduce((a, b) => ({
      diskBytes: a.diskBytes + b.diskBytes,
      apparentBytes: a.apparentBytes + b.apparentBytes,
    }))
    const others = t.others && Object.fromEntries(await Promise.all(Object.entries(t.others).map(async ([k, pid]) => [k, (await memoryOf(pid)).rssMb] as const)))
    return {
      system,
      store,
      round,
      accounts: accounts.ids.length,
      seconds: r.seconds,
      perSecond: accounts.ids.length / r.seconds,
      latency: summarize(r.latencies),
      errors: r.errors,
      timeouts: r.timeouts,
      firstErrors: r.firstErrors,
      ...(t.delivers ? { deliveredSeconds: (deliveredAt - start) / 1000 } : {}),
      storeDiskBytes: du.diskBytes,
      storeApparentBytes: du.apparentBytes,
      rssMb: mem.rssMb,
      peakRssMb: mem.peakMb,
      ...(others ? { otherRssMb: others } : {}),
      cpuUsPerPush: Object.fromEntries(Object.entries(used).map(([k, ms]) => [k, (ms * 1000) / accounts.ids.length])),
    }
  })
}

/** Alternates full and mesh over `rounds` fresh environments, swapping which goes first each round. */
export async function runImports(
  fx: BenchFixture,
  accounts: StoredAccounts,
  opts: { rounds: number; inFlight: number; store: Store; log: (s: string) => void },
): Promise<ImportRun[]> {
  const runs: ImportRun[] = []
  for (let round = 0; round < opts.rounds; round++) {
    const order = round % 2 === 0 ? (['full', 'mesh'] as const) : (['mesh', 'full'] as const)
    for (const system of order) {
      const run = await importInto(system, opts.store, fx, accounts, opts.inFlight, round)
      opts.log(
        `  ${opts.store} round ${round + 1} ${system.padEnd(4)}: ${Math.round(run.perSecond)} pushes/s, p99 ${run.latency.p99.toFixed(1)} ms, ` +
          `${Math.round(Object.values(run.cpuUsPerPush).reduce((a, b) => a + b, 0))} µs CPU/push, ${run.errors} errors`,
      )
      if (run.errors > 0) opts.log(`    first errors: ${run.firstErrors.join(' | ')}`)
      runs.push(run)
    }
  }
  return runs
}
