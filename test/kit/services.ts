import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Owner } from './owner.ts'
import { newUser } from '../../ops/identities.ts'
import { SERVICE_PERMISSIONS } from '../../ops/permissions.ts'
import type { Fixture } from './fixtures.ts'
import { credsFile, tempDir } from './fixtures.ts'
import type { NatsServerHandle } from './nats-server.ts'
import { stopProcess } from './processes.ts'
import { waitFor } from './wait-for.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export type ServiceName = 'resolver' | 'signer' | 'notifier'

export interface ServiceProcess {
  name: ServiceName
  proc: ChildProcess
  /** Every log line printed so far, parsed. */
  logs: Record<string, unknown>[]
  /** Raw stdout and stderr, for searching for secrets. */
  output(): string
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>
  kill(): Promise<void>
  exited: Promise<number | null>
}

export interface SpawnOptions {
  /**
   * Write the log to this file instead of parsing it: then `logs` stays empty and `output()` reads the file.
   * The bench does so, for reading the log costs the load generator nothing.
   */
  logFile?: string
  /** Node options before `--import tsx` (the bench's `--cpu-prof`, say). */
  nodeArgs?: string[]
}

/** Spawns a service exactly as `npm run start:<name>` does, configured only by `env`. */
export function spawnService(t: Owner, name: ServiceName, env: Record<string, string>, opts: SpawnOptions = {}): ServiceProcess {
  const logFd = opts.logFile === undefined ? undefined : openSync(opts.logFile, 'a')
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', `services/${name}/main.ts`], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
  })
  if (logFd !== undefined) closeSync(logFd)
  const logs: Record<string, unknown>[] = []
  let raw = ''
  let partial = ''
  proc.stdout?.on('data', (d: Buffer) => {
    raw += d.toString()
    const lines = (partial + d.toString()).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        logs.push({ msg: line, unparsed: true })
      }
    }
  })
  proc.stderr?.on('data', (d: Buffer) => {
    raw += d.toString()
  })
  const exited = once(proc, 'exit').then(() => proc.exitCode)
  const svc: ServiceProcess = {
    name,
    proc,
    logs,
    output: () => (opts.logFile === undefined ? raw : readFileSync(opts.logFile, 'utf8')),
    stop: () => stopProcess(proc),
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL')
        await exited
      }
    },
    exited,
  }
  t.teardown(() => svc.kill())
  return svc
}

// A deadline, not a delay: on a loaded 2-core machine (load average 20 seen) spawning node with tsx alone can take
// most of 15 s.
const READY_MS = 30_000

/** Waits until the service has wired every endpoint (its `service ready` log line). */
export async function serviceReady(svc: ServiceProcess, ms = READY_MS): Promise<ServiceProcess> {
  await waitFor(
    () => {
      if (svc.proc.exitCode !== null) throw new Error(`${svc.name} exited ${svc.proc.exitCode}: ${svc.output()}`)
      return svc.logs.some((l) => l.msg === 'service ready')
    },
    { ms, what: `${svc.name} to register` },
  ).catch((e: Error) => {
    // what the service was doing instead: its last log lines
    throw new Error(`${e.message}; its last output: ${svc.output().slice(-3000)}`)
  })
  return svc
}

/** The environment every service needs to reach `servers` as the fixture's system user. */
export function baseEnv(fx: Fixture, servers: NatsServerHandle[]): Record<string, string> {
  return {
    NATS_URL: servers.map((s) => s.url).join(','),
    NATS_CREDS: fx.sysCredsPath,
    OPERATOR_JWT: fx.operatorJwtPath,
  }
}

const serviceCreds = new WeakMap<Fixture, Map<ServiceName, Promise<string>>>()

/**
 * A creds file for the service's own system-account user, with exactly the permissions ops/permissions.ts
 * (and the README) give it: services run least-privileged in every test unless a test passes NATS_CREDS.
 */
export function serviceCredsPath(fx: Fixture, name: ServiceName): Promise<string> {
  let byName = serviceCreds.get(fx)
  if (byName === undefined) serviceCreds.set(fx, (byName = new Map()))
  let path = byName.get(name)
  if (path === undefined) {
    path = newUser(fx.op.systemAccount, name, SERVICE_PERMISSIONS[name]).then((u) => credsFile(fx, u))
    byName.set(name, path)
  }
  return path
}

export async function startResolver(
  t: Owner,
  fx: Fixture,
  servers: NatsServerHandle[],
  env: Record<string, string> = {},
): Promise<ServiceProcess & { dataDir: string }> {
  const dataDir = env.RESOLVER_DATA_DIR ?? (await tempDir(t, 'resolver'))
  const svc = spawnService(t, 'resolver', {
    ...baseEnv(fx, servers),
    NATS_CREDS: await serviceCredsPath(fx, 'resolver'),
    RESOLVER_DATA_DIR: dataDir,
    SYSTEM_ACCOUNT_JWT: fx.sysJwtPath,
    ...env,
  })
  // A jetstream-mode instance registers only once its local view caught up with the stream, and may wait out a
  // cluster's placement for up to its own 60 s setup deadline first: allow for both.
  const readyMs = env.RESOLVER_STORE === 'jetstream' ? 90_000 : READY_MS
  return Object.assign(await serviceReady(svc, readyMs), { dataDir })
}

export async function startService(
  t: Owner,
  name: ServiceName,
  fx: Fixture,
  servers: NatsServerHandle[],
  env: Record<string, string> = {},
): Promise<ServiceProcess> {
  const creds = await serviceCredsPath(fx, name)
  return serviceReady(spawnService(t, name, { ...baseEnv(fx, servers), NATS_CREDS: creds, ...env }))
}
