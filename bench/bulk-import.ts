import type { Msg, NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { connectAs } from './clients.ts'
import type { BenchFixture, StoredAccounts } from './fixture.ts'
import { sendAll } from './load.ts'
import { cpuMeter, diskUsage, memoryOf } from './proc.ts'
import { withScope } from './scope.ts'
import { startServer } from './servers.ts'
import { startService, type BenchService } from './services.ts'
import { summarize, type Latency } from './stats.ts'

export interface ImportRun {
  system: 'full' | 'mesh'
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
  /** RSS of what holds the store: the full nats-server, or our resolver. */
  rssMb: number
  peakRssMb: number
  /** Mesh: RSS of the signer and notifier, for the whole picture. */
  otherRssMb?: Record<string, number>
  /** CPU time per push, in microseconds, per process. */
  cpuUsPerPush: Record<string, number>
}

interface ClaimReplyShape {
  server?: { name?: string }
  data?: { message?: string }
  error?: unknown
}

/** nsc push -A: every account once on `$SYS.REQ.CLAIMS.UPDATE`, `inFlight` at a time. */
function push(nc: NatsConnection, accounts: StoredAccounts, inFlight: number, from: (r: ClaimReplyShape) => boolean) {
  return sendAll(nc, {
    subject: subjects.claimsUpdate,
    bodies: accounts.jwts,
    concurrency: inFlight,
    judge: (m: Msg) => {
      const r = m.json<ClaimReplyShape>()
      if (!from(r)) return 'ignore'
      return r.error === undefined && /jwt updated/.test(r.data?.message ?? '') ? 'done' : 'error'
    },
  })
}

/** A fresh full-mode nats-server with an empty JWT directory takes the whole import. */
async function importIntoFull(fx: BenchFixture, accounts: StoredAccounts, inFlight: number, round: number): Promise<ImportRun> {
  return withScope(async (scope) => {
    const server = await startServer(scope, fx, { name: 'full1', resolver: 'full' })
    const nc = await connectAs(scope, server, fx.sysUser.creds)
    const cpu = await cpuMeter({ server: server.pid, client: process.pid })
    const r = await push(nc, accounts, inFlight, () => true)
    const used = await cpu()
    const mem = await memoryOf(server.pid)
    const du = await diskUsage(server.jwtDir)
    return {
      system: 'full',
      round,
      accounts: accounts.ids.length,
      seconds: r.seconds,
      perSecond: accounts.ids.length / r.seconds,
      latency: summarize(r.latencies),
      errors: r.errors,
      timeouts: r.timeouts,
      firstErrors: r.firstErrors,
      storeDiskBytes: du.diskBytes,
      storeApparentBytes: du.apparentBytes,
      rssMb: mem.rssMb,
      peakRssMb: mem.peakMb,
      cpuUsPerPush: perPush(used, accounts.ids.length),
    }
  })
}

/** A cache-mode server with the three services: only the resolver's reply counts (it is sent once on disk). */
async function importIntoMesh(fx: BenchFixture, accounts: StoredAccounts, inFlight: number, round: number): Promise<ImportRun> {
  return withScope(async (scope) => {
    const server = await startServer(scope, fx, { name: 'cache1', resolver: 'cache' })
    const nc = await connectAs(scope, server, fx.sysUser.creds)
    const services: Record<string, BenchService> = {}
    for (const name of ['resolver', 'signer', 'notifier'] as const) services[name] = await startService(scope, fx, nc, name, [server])
    // The notifier's broadcasts, seen from outside: when every account has gone out, servers have it all.
    const pending = new Set(accounts.ids)
    const start = performance.now()
    let deliveredAt = 0
    // Either update subject (the notifier may use the per-account or the legacy one): the id is the token
    // before CLAIMS.
    const seen = (_e: unknown, m: Msg) => {
      const t = m.subject.split('.')
      if (pending.delete(t[t.length - 3]!) && pending.size === 0) deliveredAt = performance.now()
    }
    const watches = [nc.subscribe(subjects.accountUpdate(), { callback: seen }), nc.subscribe(subjects.legacyAccountUpdate(), { callback: seen })]
    const cpu = await cpuMeter({
      server: server.pid,
      resolver: services.resolver!.pid,
      signer: services.signer!.pid,
      notifier: services.notifier!.pid,
      client: process.pid,
    })
    const r = await push(nc, accounts, inFlight, (reply) => reply.server?.name === 'resolver')
    const waitUntil = performance.now() + 60_000
    while (pending.size > 0 && performance.now() < waitUntil) await new Promise((res) => setTimeout(res, 20))
    const used = await cpu()
    for (const w of watches) w.unsubscribe()
    const mem = await memoryOf(services.resolver!.pid)
    const du = await diskUsage(services.resolver!.dataDir)
    return {
      system: 'mesh',
      round,
      accounts: accounts.ids.length,
      seconds: r.seconds,
      perSecond: accounts.ids.length / r.seconds,
      latency: summarize(r.latencies),
      errors: r.errors,
      timeouts: r.timeouts,
      firstErrors: r.firstErrors,
      deliveredSeconds: pending.size === 0 ? (deliveredAt - start) / 1000 : NaN,
      storeDiskBytes: du.diskBytes,
      storeApparentBytes: du.apparentBytes,
      rssMb: mem.rssMb,
      peakRssMb: mem.peakMb,
      otherRssMb: {
        signer: (await memoryOf(services.signer!.pid)).rssMb,
        notifier: (await memoryOf(services.notifier!.pid)).rssMb,
      },
      cpuUsPerPush: perPush(used, accounts.ids.length),
    }
  })
}

const perPush = (used: Record<string, number>, n: number) =>
  Object.fromEntries(Object.entries(used).map(([k, ms]) => [k, (ms * 1000) / n]))

/** Alternates full and mesh over `rounds` fresh environments, swapping which goes first each round. */
export async function runImports(
  fx: BenchFixture,
  accounts: StoredAccounts,
  opts: { rounds: number; inFlight: number; log: (s: string) => void },
): Promise<ImportRun[]> {
  const runs: ImportRun[] = []
  for (let round = 0; round < opts.rounds; round++) {
    const order = round % 2 === 0 ? (['full', 'mesh'] as const) : (['mesh', 'full'] as const)
    for (const system of order) {
      const run = system === 'full'
        ? await importIntoFull(fx, accounts, opts.inFlight, round)
        : await importIntoMesh(fx, accounts, opts.inFlight, round)
      opts.log(`  round ${round + 1} ${system.padEnd(4)}: ${Math.round(run.perSecond)} pushes/s, p99 ${run.latency.p99.toFixed(1)} ms, ${run.errors} errors`)
      if (run.errors > 0) opts.log(`    first errors: ${run.firstErrors.join(' | ')}`)
      runs.push(run)
    }
  }
  return runs
}
