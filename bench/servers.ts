import { mkdir, writeFile } from 'node:fs/promises'
import { clusterRoutes, startNatsServer, type NatsServerHandle, type StartOptions } from '../test/kit/nats-server.ts'
import { clusterFormed } from '../test/kit/sys-requests.ts'
import { connectAs } from './clients.ts'
import type { BenchFixture } from './fixture.ts'
import type { Scope } from './scope.ts'

/** A server started by the kit's launcher, with what the bench measures: its pid and when it was spawned. */
export interface BenchServer extends NatsServerHandle {
  pid: number
  /** Just before the launcher was called (performance.now()). */
  spawnedAt: number
  /** With JetStream: where it keeps its data. */
  storeDir?: string
}

export interface ServerSpec extends Pick<StartOptions, 'jwtDir' | 'preload' | 'cluster' | 'port' | 'jetstream' | 'storeDir'> {
  name: string
  resolver: 'cache' | 'full'
}

/**
 * Starts a nats-server in operator mode through the test kit and waits until it listens; stopped when the
 * scope closes. A full server on a large directory reads it all before listening: allow for 1M files.
 */
export async function startServer(scope: Scope, fx: BenchFixture, spec: ServerSpec): Promise<BenchServer> {
  const spawnedAt = performance.now()
  const s = await startNatsServer(scope, fx, { ...spec, readyMs: 600_000 })
  return Object.assign(s, { pid: s.proc.pid!, spawnedAt, storeDir: spec.storeDir })
}

/**
 * `resolvers.length` servers routed into one cluster, `resolvers[i]` picking each one's resolver type;
 * resolves once every route is up. With `jetstream`, each node keeps its JetStream data in a dir of its own.
 */
export async function startCluster(
  scope: Scope,
  fx: BenchFixture,
  opts: { prefix: string; resolvers: ('cache' | 'full')[]; jwtDirs?: (string | undefined)[]; jetstream?: boolean },
): Promise<BenchServer[]> {
  const clusters = await clusterRoutes(opts.prefix, opts.resolvers.length)
  const storeDirs = opts.jetstream ? await Promise.all(clusters.map((_, i) => scope.tempDir(`${opts.prefix}${i + 1}-js`))) : []
  const servers = await Promise.all(
    clusters.map((cluster, i) =>
      startServer(scope, fx, {
        name: `${opts.prefix}${i + 1}`,
        resolver: opts.resolvers[i]!,
        jwtDir: opts.jwtDirs?.[i],
        cluster,
        jetstream: opts.jetstream,
        storeDir: storeDirs[i],
      }),
    ),
  )
  const sys = await connectAs(scope, servers, fx.sysUser.creds)
  await clusterFormed(sys, servers.length)
  await sys.close()
  return servers
}

/** Writes accounts as a full resolver keeps them: one `<id>.jwt` file each. */
export async function writeJwtDir(dir: string, ids: string[], jwts: string[], inFlight = 64): Promise<void> {
  await mkdir(dir, { recursive: true })
  let next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < ids.length) {
        const i = next++
        await writeFile(`${dir}/${ids[i]}.jwt`, jwts[i]!)
      }
    }),
  )
}
