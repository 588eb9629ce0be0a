import type { NatsConnection } from '@nats-io/nats-core'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { subjects } from '../shared/index.ts'
import { jetstreamEnv } from '../test/kit/jetstream.ts'
import { baseEnv, serviceCredsPath, spawnService as spawnKitService, type ServiceName, type ServiceProcess } from '../test/kit/services.ts'
import { waitFor } from '../test/kit/wait-for.ts'
import type { BenchFixture } from './fixture.ts'
import type { BenchServer } from './servers.ts'
import type { Scope } from './scope.ts'

export type { ServiceName }

export interface BenchService extends ServiceProcess {
  pid: number
  /** The resolver's LevelDB directory (in jetstream mode: its local view). */
  dataDir: string
  spawnedAt: number
}

/**
 * Spawns a service through the test kit, as `npm run start:<name>` does, with its own least-privileged
 * system user (as deployed), at the production log level; its log goes to a file so reading it costs the
 * load generator nothing. BENCH_NODE_ARGS (e.g. `--cpu-prof`) go to node.
 */
export async function spawnService(
  scope: Scope,
  fx: BenchFixture,
  name: ServiceName,
  servers: BenchServer[],
  env: Record<string, string> = {},
): Promise<BenchService> {
  const dir = await scope.tempDir(name)
  const dataDir = env.RESOLVER_DATA_DIR ?? join(dir, 'data')
  const spawnedAt = performance.now()
  const svc = spawnKitService(
    scope,
    name,
    {
      ...baseEnv(fx, servers),
      NATS_CREDS: await serviceCredsPath(fx, name),
      LOG_LEVEL: 'info',
      ...(name === 'resolver' ? { RESOLVER_DATA_DIR: dataDir, SYSTEM_ACCOUNT_JWT: fx.sysJwtPath } : {}),
      ...env,
    },
    { logFile: join(dir, `${name}.log`), nodeArgs: process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) },
  )
  // SIGTERM first (the kit's teardown SIGKILLs): a service under --cpu-prof writes its profile on exit.
  scope.defer(() => svc.stop())
  return Object.assign(svc, { pid: svc.proc.pid!, dataDir, spawnedAt })
}

/**
 * Waits until the service serves: the resolver answers a LOOKUP of the system account (it registers its
 * endpoints only once it can answer: in jetstream mode, once its local view caught up), the others answer
 * `$SRV.PING.<name>`.
 */
export async function serviceReady(nc: NatsConnection, fx: BenchFixture, svc: BenchService, ms = 60_000): Promise<BenchService> {
  await waitFor(
    async () => {
      if (svc.proc.exitCode !== null) throw new Error(`${svc.name} exited ${svc.proc.exitCode}: ${svc.output()}`)
      if (svc.name === 'resolver') return (await nc.request(subjects.lookup(fx.op.systemAccount.id), '', { timeout: 500 })).data.length > 0
      const r = await nc.request(`$SRV.PING.${svc.name}`, '', { timeout: 500 })
      return r.json<{ name?: string }>().name === svc.name
    },
    { ms, what: `${svc.name} to answer`, every: 50 },
  )
  return svc
}

export async function startService(
  scope: Scope,
  fx: BenchFixture,
  nc: NatsConnection,
  name: ServiceName,
  servers: BenchServer[],
  env: Record<string, string> = {},
): Promise<BenchService> {
  return serviceReady(nc, fx, await spawnService(scope, fx, name, servers, env))
}

/** A resolver in jetstream mode (R3), `servers[first]` first in its NATS_URL (the client library may shuffle them). */
export function startJsResolver(scope: Scope, fx: BenchFixture, nc: NatsConnection, servers: BenchServer[], first: number): Promise<BenchService> {
  const at = [servers[first]!, ...servers.filter((_, j) => j !== first)]
  return startService(scope, fx, nc, 'resolver', at, jetstreamEnv(fx, servers.length))
}

/** The signer in managed mode: it re-signs self-signed accounts with the operator signing key. */
export async function managedSignerEnv(scope: Scope, fx: BenchFixture): Promise<Record<string, string>> {
  const seedFile = join(await scope.tempDir('seed'), 'signing.nk')
  await writeFile(seedFile, new TextDecoder().decode(fx.op.signingKp.getSeed()), { mode: 0o600 })
  return { SIGNER_SEED_FILE: seedFile }
}
