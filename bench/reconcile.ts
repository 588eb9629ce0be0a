import type { NatsConnection } from '@nats-io/nats-core'
import { subjects, type ReconcileReport } from '../shared/index.ts'
import { waitFor } from '../test/kit/wait-for.ts'
import { connectAs, connectOnce } from './clients.ts'
import { makeConnectableAccount, makeUser, userAuthenticator, type BenchFixture, type ConnectableAccount } from './fixture.ts'
import type { Scope } from './scope.ts'
import { seedStore } from './seed-store.ts'
import { startCluster, type BenchServer } from './servers.ts'
import { startService } from './services.ts'
import { summarize, type Latency } from './stats.ts'

export interface ReconcileBench {
  accounts: number
  servers: number
  /** Seconds to load every account on every server (one user connect each): setup, not the pass. */
  loadSeconds: number
  /** A pass that finds nothing to do: every account loaded on every server, all current. */
  clean: Latency
  /** A pass where `drifted` accounts hold an older version on every server and are reverted. */
  drifted: { accounts: number; ms: number; reverted: number }
  checked: number
}

const LOAD_IN_FLIGHT = 48

/**
 * One reconciliation pass over `count` accounts loaded on a 3-node cache cluster: what a periodic pass costs
 * in the steady state (nothing to repair), and one that reverts 1% of the accounts.
 */
export async function runReconcile(
  scope: Scope,
  fx: BenchFixture,
  opts: { count: number; rounds: number; log: (s: string) => void },
): Promise<ReconcileBench> {
  const accounts = Array.from({ length: opts.count }, (_, i) => makeConnectableAccount(fx, `rec-${i}`))
  const dataDir = `${await scope.tempDir('rec-store')}/data`
  await seedStore(dataDir, accounts.map((a) => a.id), accounts.map((a) => a.jwt))
  const servers = await startCluster(scope, fx, { prefix: 'rc', resolvers: ['cache', 'cache', 'cache'] })
  const sys = await connectAs(scope, servers, fx.sysUser.creds)
  // No periodic pass: only the measured ones run (the pass after start finds nothing loaded yet).
  await startService(scope, fx, sys, 'resolver', servers, { RESOLVER_DATA_DIR: dataDir, RESOLVER_RECONCILE_SECONDS: '0' })
  await startService(scope, fx, sys, 'signer', servers)
  await startService(scope, fx, sys, 'notifier', servers)

  const t0 = performance.now()
  await loadEverywhere(servers, accounts)
  const loadSeconds = (performance.now() - t0) / 1000
  opts.log(`  ${opts.count} accounts loaded on ${servers.length} servers in ${loadSeconds.toFixed(1)} s`)

  const clean: number[] = []
  let checked = 0
  for (let i = 0; i < opts.rounds; i++) {
    const r = await pass(sys)
    if (r.drift !== 0 || r.failed !== 0) throw new Error(`a clean pass found drift: ${JSON.stringify(r)}`)
    clean.push(r.durationMs)
    checked = r.accountsChecked
    opts.log(`  clean pass: ${r.accountsChecked} accounts in ${r.durationMs} ms`)
  }

  // 1% of the accounts get an older version on every server (the legacy subject reaches only the servers).
  const stale = accounts.slice(0, Math.max(1, Math.floor(opts.count / 100)))
  for (const a of stale) sys.publish(subjects.legacyAccountUpdate(a.id), fx.signer.account(a.id, { name: 'stale', iat: 1_000_000 }))
  await sys.flush()
  await waitFor(async () => (await pass(sys, true)).drift === stale.length, { ms: 30_000, what: 'servers to apply the stale versions' })
  const r = await pass(sys)
  opts.log(`  drifted pass: ${r.reverted} of ${stale.length} reverted, ${r.accountsChecked} accounts in ${r.durationMs} ms`)
  return {
    accounts: opts.count,
    servers: servers.length,
    loadSeconds,
    clean: summarize(clean),
    drifted: { accounts: stale.length, ms: r.durationMs, reverted: r.reverted },
    checked,
  }
}

async function pass(sys: NatsConnection, dryRun = false): Promise<ReconcileReport> {
  return (await sys.request(subjects.resolverReconcile, JSON.stringify({ dryRun }), { timeout: 600_000 })).json<ReconcileReport>()
}

/** A cache server loads an account when a user of it connects: one connect per account per server. */
async function loadEverywhere(servers: BenchServer[], accounts: ConnectableAccount[]): Promise<void> {
  const work = servers.flatMap((s) => accounts.map((a) => [s, a] as const))
  let next = 0
  await Promise.all(
    Array.from({ length: LOAD_IN_FLIGHT }, async () => {
      while (next < work.length) {
        const [server, account] = work[next++]!
        const nc = await connectOnce(server, userAuthenticator(makeUser(account)), 30_000)
        await nc.close()
      }
    }),
  )
}
