import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { renderServerConf } from '../ops/server-conf.ts'
import { freePort, natsServerBinary } from '../test/kit/nats-server.ts'
import { stopProcess } from '../test/kit/processes.ts'
import { waitFor } from '../test/kit/wait-for.ts'
import type { BenchFixture } from './fixture.ts'
import type { Scope } from './scope.ts'

export interface BenchServer {
  name: string
  url: string
  pid: number
  proc: ChildProcess
  /** The resolver's JWT directory: `<id>.jwt` files. */
  jwtDir: string
  /** When the process was spawned (performance.now()). */
  spawnedAt: number
}

export interface ServerSpec {
  name: string
  resolver: 'cache' | 'full'
  /** Fills the JWT directory before the server starts (for a full server: the accounts it holds). */
  jwtDir?: string
  /** Accounts preloaded from the config (resolver_preload), beside the system account. */
  preload?: Record<string, string>
  cluster?: { name: string; port: number; routes: string[] }
  /** Listen on this port rather than a free one picked by the server. */
  port?: number
}

/** Starts a nats-server in operator mode and waits until it listens; stopped when the scope closes. */
export async function startServer(scope: Scope, fx: BenchFixture, spec: ServerSpec): Promise<BenchServer> {
  const dir = await scope.tempDir(`ns-${spec.name}`)
  const jwtDir = spec.jwtDir ?? join(dir, 'jwt')
  await mkdir(jwtDir, { recursive: true })
  const conf = join(dir, 'server.conf')
  await writeFile(
    conf,
    renderServerConf({
      serverName: spec.name,
      port: spec.port ?? -1,
      portsFileDir: dir,
      operatorJwtPath: fx.operatorJwtPath,
      systemAccount: fx.op.systemAccount.id,
      systemAccountJwt: fx.op.systemAccount.jwt,
      preload: spec.preload,
      resolver: { type: spec.resolver, dir: jwtDir },
      cluster: spec.cluster,
    }),
  )
  const spawnedAt = performance.now()
  const proc = spawn(natsServerBinary(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000)
  })
  scope.defer(() => stopProcess(proc))
  const ports = await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`nats-server ${spec.name} exited: ${stderr}`)
      return JSON.parse(await readFile(join(dir, `nats-server_${proc.pid}.ports`), 'utf8')) as { nats: string[] }
    },
    { ms: 600_000, what: `nats-server ${spec.name} to listen`, every: 10 },
  )
  return { name: spec.name, url: ports.nats[0]!, pid: proc.pid!, proc, jwtDir, spawnedAt }
}

/** `size` servers routed into one cluster; `resolvers[i]` picks each one's resolver type. */
export async function startCluster(
  scope: Scope,
  fx: BenchFixture,
  opts: { prefix: string; resolvers: ('cache' | 'full')[]; jwtDirs?: (string | undefined)[] },
): Promise<BenchServer[]> {
  const routePorts = await Promise.all(opts.resolvers.map(() => freePort()))
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`)
  return Promise.all(
    routePorts.map((port, i) =>
      startServer(scope, fx, {
        name: `${opts.prefix}${i + 1}`,
        resolver: opts.resolvers[i]!,
        jwtDir: opts.jwtDirs?.[i],
        cluster: { name: opts.prefix, port, routes: routes.filter((_, j) => j !== i) },
      }),
    ),
  )
}

/** Writes accounts as a full resolver keeps them: one `<id>.jwt` file each. */
export async function writeJwtDir(dir: string, ids: string[], jwts: string[], inFlight = 64): Promise<void> {
  await mkdir(dir, { recursive: true })
  let next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < ids.length) {
        const i = next++
        await writeFile(join(dir, `${ids[i]}.jwt`), jwts[i]!)
      }
    }),
  )
}
