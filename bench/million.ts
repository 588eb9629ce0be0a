import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { connectAs } from './clients.ts'
import { makeAccounts, type BenchFixture } from './fixture.ts'
import { checkOneResponder, runLookups, type LookupCase, type LookupSystem } from './lookup.ts'
import { diskUsage, memoryOf } from './proc.ts'
import type { Scope } from './scope.ts'
import { StoreSeeder } from './seed-store.ts'
import { startServer, writeJwtDir } from './servers.ts'
import { spawnService } from './services.ts'

export interface SideResult {
  /** Spawn of the process to the first non-empty LOOKUP answer. */
  readyMs: number
  rssReadyMb: number
  rssAfterMb: number
  /** Of rssAfterMb: private memory, and mapped files (LevelDB's tables, the binary and libraries). */
  anonAfterMb: number
  fileAfterMb: number
  storeDiskBytes: number
  storeApparentBytes: number
}

export interface MillionResult {
  accounts: number
  cacheSize: number
  seedSeconds: number
  full: SideResult
  mesh: SideResult
  lookups: LookupCase[]
}

const CHUNK = 50_000
const DEFAULT_CACHE = 100_000

/** Polls LOOKUP of `id` until it is answered with a JWT; returns when (performance.now()). */
async function firstAnswer(nc: NatsConnection, id: string): Promise<number> {
  for (;;) {
    try {
      const r = await nc.request(subjects.lookup(id), '', { timeout: 1000 })
      if (r.data.length > 0) return performance.now()
    } catch {
      // no responder yet
    }
    await new Promise((r) => setTimeout(r, 2))
  }
}

/**
 * A million accounts: both stores are written directly (pushing a million accounts through NATS would take
 * the better part of an hour here), then each side is started and timed to its first answer, and random
 * accounts are looked up: mostly cold, since the resolver keeps 100k in memory by default.
 */
export async function runMillion(
  scope: Scope,
  fx: BenchFixture,
  opts: { accounts: number; rounds: number; warmupMs: number; durationMs: number; log: (s: string) => void },
): Promise<MillionResult> {
  const jwtDir = `${await scope.tempDir('m-full')}/jwt`
  const dataDir = `${await scope.tempDir('m-store')}/data`
  const ids: string[] = []
  const t0 = performance.now()
  let seedMs = 0
  const seeder = await StoreSeeder.open(dataDir)
  let sample: { id: string; jwt: string } | undefined
  for (let done = 0; done < opts.accounts; done += CHUNK) {
    const chunk = makeAccounts(fx, Math.min(CHUNK, opts.accounts - done), `m${done}`)
    sample ??= { id: chunk.ids[0]!, jwt: chunk.jwts[0]! }
    await writeJwtDir(jwtDir, chunk.ids, chunk.jwts)
    const s0 = performance.now()
    await seeder.add(chunk.ids, chunk.jwts)
    seedMs += performance.now() - s0
    for (const id of chunk.ids) ids.push(id)
    opts.log(`  ${ids.length} accounts written (${Math.round((performance.now() - t0) / 1000)} s)`)
  }
  await seeder.close()
  const pick = () => ids[Math.floor(Math.random() * ids.length)]!

  opts.log('  starting the full server on its directory')
  const full = await startServer(scope, fx, { name: 'full1', resolver: 'full', jwtDir })
  const fullNc = await connectAs(scope, full, fx.sysUser.creds)
  const fullReady = (await firstAnswer(fullNc, pick())) - full.spawnedAt
  const fullRssReady = (await memoryOf(full.pid)).rssMb
  opts.log(`  full server ready in ${Math.round(fullReady)} ms`)

  const cache = await startServer(scope, fx, { name: 'cache1', resolver: 'cache' })
  const meshNc = await connectAs(scope, cache, fx.sysUser.creds)
  const resolver = await spawnService(scope, fx, 'resolver', [cache], { RESOLVER_DATA_DIR: dataDir })
  const meshReady = (await firstAnswer(meshNc, pick())) - resolver.spawnedAt
  const meshRssReady = (await memoryOf(resolver.pid)).rssMb
  opts.log(`  resolver ready in ${Math.round(meshReady)} ms`)

  const systems: LookupSystem[] = [
    { name: 'full', nc: fullNc, pids: { server: full.pid } },
    { name: 'mesh', nc: meshNc, pids: { server: cache.pid, resolver: resolver.pid } },
  ]
  for (const s of systems) await checkOneResponder(s, sample!.id, sample!.jwt)
  const lookups = await runLookups(systems, ids, { concurrencies: [1, 16, 64], rounds: opts.rounds, warmupMs: opts.warmupMs, durationMs: opts.durationMs, warm: false, log: opts.log })
  const fullDu = await diskUsage(jwtDir)
  const meshDu = await diskUsage(dataDir)
  const fullMem = await memoryOf(full.pid)
  const meshMem = await memoryOf(resolver.pid)
  return {
    accounts: opts.accounts,
    cacheSize: DEFAULT_CACHE,
    seedSeconds: seedMs / 1000,
    full: { readyMs: fullReady, rssReadyMb: fullRssReady, rssAfterMb: fullMem.rssMb, anonAfterMb: fullMem.anonMb, fileAfterMb: fullMem.fileMb, storeDiskBytes: fullDu.diskBytes, storeApparentBytes: fullDu.apparentBytes },
    mesh: { readyMs: meshReady, rssReadyMb: meshRssReady, rssAfterMb: meshMem.rssMb, anonAfterMb: meshMem.anonMb, fileAfterMb: meshMem.fileMb, storeDiskBytes: meshDu.diskBytes, storeApparentBytes: meshDu.apparentBytes },
    lookups,
  }
}
