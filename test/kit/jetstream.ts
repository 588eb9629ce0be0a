import type { Owner } from './owner.ts'
import type { Fixture } from './fixtures.ts'
import { tempDir } from './fixtures.ts'
import { clusterRoutes, startNatsServer, type NatsServerHandle } from './nats-server.ts'
import { startResolver, type ServiceProcess } from './services.ts'

export interface JsCluster {
  servers: NatsServerHandle[]
  /** Starts node `i` again on its port, with its JetStream data. */
  restart(i: number): Promise<NatsServerHandle>
}

/** A cluster of JetStream-enabled cache-mode servers, the storage account (MESH) preloaded beside SYS. */
export async function startJsCluster(t: Owner, fx: Fixture, size = 3): Promise<JsCluster> {
  const clusters = await clusterRoutes('mesh-js', size)
  const storeDirs = await Promise.all(clusters.map(() => tempDir(t, 'js')))
  const start = (i: number, port?: number) =>
    startNatsServer(t, fx, {
      name: `n${i + 1}`,
      cluster: clusters[i],
      jetstream: true,
      storeDir: storeDirs[i],
      port,
    })
  const servers = await Promise.all(clusters.map((_, i) => start(i)))
  return {
    servers,
    async restart(i) {
      servers[i] = await start(i, servers[i]!.port)
      return servers[i]!
    },
  }
}

/** The environment of a resolver in jetstream mode, replicated on every node of the cluster. */
export const jetstreamEnv = (fx: Fixture, replicas = 3): Record<string, string> => ({
  RESOLVER_STORE: 'jetstream',
  RESOLVER_JS_CREDS: fx.meshCredsPath,
  RESOLVER_JS_REPLICAS: String(replicas),
})

/** A jetstream-mode resolver connected first to `servers[first]`; `dataDir` reuses a local view. */
export function startJsResolver(
  t: Owner,
  fx: Fixture,
  servers: NatsServerHandle[],
  first: number,
  env: Record<string, string> = {},
): Promise<ServiceProcess & { dataDir: string }> {
  const live = servers.filter((s) => s.proc.exitCode === null && s.proc.signalCode === null)
  const at = [live[first % live.length]!, ...live.filter((_, j) => j !== first % live.length)]
  return startResolver(t, fx, at, { ...jetstreamEnv(fx), ...env })
}
