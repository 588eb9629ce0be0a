import type { Test } from 'tap'
import type { Fixture } from './fixtures.ts'
import { tempDir } from './fixtures.ts'
import { freePort, startNatsServer, type NatsServerHandle } from './nats-server.ts'

export interface JsCluster {
  servers: NatsServerHandle[]
  /** Starts node `i` again on its port, with its JetStream data. */
  restart(i: number): Promise<NatsServerHandle>
}

/** A cluster of JetStream-enabled cache-mode servers, the storage account (MESH) preloaded beside SYS. */
export async function startJsCluster(t: Test, fx: Fixture, size = 3): Promise<JsCluster> {
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()))
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`)
  const storeDirs = await Promise.all(routePorts.map(() => tempDir(t, 'js')))
  const start = (i: number, port?: number) =>
    startNatsServer(t, fx, {
      name: `n${i + 1}`,
      cluster: { name: 'mesh-js', port: routePorts[i]!, routes: routes.filter((_, j) => j !== i) },
      jetstream: true,
      storeDir: storeDirs[i],
      port,
    })
  const servers = await Promise.all(routePorts.map((_, i) => start(i)))
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
