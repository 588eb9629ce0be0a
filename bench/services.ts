import { spawn, type ChildProcess } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { stopProcess } from '../test/kit/processes.ts'
import { waitFor } from '../test/kit/wait-for.ts'
import type { BenchFixture } from './fixture.ts'
import type { BenchServer } from './servers.ts'
import type { Scope } from './scope.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

export type ServiceName = 'resolver' | 'signer' | 'notifier'

export interface BenchService {
  name: ServiceName
  pid: number
  proc: ChildProcess
  logFile: string
  /** The resolver's LevelDB directory. */
  dataDir: string
  spawnedAt: number
}

/**
 * Spawns a service exactly as `npm run start:<name>` does (node + tsx, configured by the environment) at the
 * production log level; its log goes to a file so reading it costs the load generator nothing.
 */
export async function spawnService(
  scope: Scope,
  fx: BenchFixture,
  name: ServiceName,
  servers: BenchServer[],
  env: Record<string, string> = {},
): Promise<BenchService> {
  const dir = await scope.tempDir(name)
  const logFile = join(dir, `${name}.log`)
  const dataDir = env.RESOLVER_DATA_DIR ?? join(dir, 'data')
  const fd = openSync(logFile, 'a')
  const spawnedAt = performance.now()
  const proc = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', `services/${name}/main.ts`], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'info',
      NATS_URL: servers.map((s) => s.url).join(','),
      NATS_CREDS: fx.sysCredsPath,
      OPERATOR_JWT: fx.operatorJwtPath,
      ...(name === 'resolver' ? { RESOLVER_DATA_DIR: dataDir, SYSTEM_ACCOUNT_JWT: fx.sysJwtPath } : {}),
      ...env,
    },
    stdio: ['ignore', fd, fd],
  })
  closeSync(fd)
  scope.defer(() => stopProcess(proc))
  return { name, pid: proc.pid!, proc, logFile, dataDir, spawnedAt }
}

/**
 * Waits until the service serves: the resolver answers a LOOKUP of the system account (it registers its
 * endpoints only after catching up with peers), the others answer `$SRV.PING.<name>`.
 */
export async function serviceReady(nc: NatsConnection, fx: BenchFixture, svc: BenchService, ms = 60_000): Promise<BenchService> {
  await waitFor(
    async () => {
      if (svc.proc.exitCode !== null) throw new Error(`${svc.name} exited ${svc.proc.exitCode}: ${await readFile(svc.logFile, 'utf8')}`)
      if (svc.name === 'resolver') return (await nc.request(subjects.lookup(fx.op.systemAccount.id), '', { timeout: 500 })).data.length > 0
      const r = await nc.request(`$SRV.PING.${svc.name}`, '', { timeout: 500 })
      return r.json<{ name?: string }>().name === svc.name
    },
    { ms, what: `${svc.name} to answer $SRV.PING`, every: 50 },
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

/** The signer in managed mode: it re-signs self-signed accounts with the operator signing key. */
export async function managedSignerEnv(scope: Scope, fx: BenchFixture): Promise<Record<string, string>> {
  const seedFile = join(await scope.tempDir('seed'), 'signing.nk')
  await writeFile(seedFile, new TextDecoder().decode(fx.op.signingKp.getSeed()), { mode: 0o600 })
  return { SIGNER_SEED_FILE: seedFile }
}
