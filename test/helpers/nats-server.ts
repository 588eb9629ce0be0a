import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Test } from 'tap'
import { renderServerConf, type ServerConfOptions } from '../../ops/server-conf.ts'
import type { Fixture } from './fixtures.ts'
import { tempDir } from './fixtures.ts'
import { stopProcess } from './processes.ts'
import { waitFor } from './wait-for.ts'

export interface NatsServerHandle {
  name: string
  url: string
  port: number
  proc: ChildProcess
  stop(): Promise<void>
  /** Where the server keeps account JWTs (`<id>.jwt`). */
  jwtDir: string
  /** The end of its log (stderr), to explain a failure. */
  output?(): string
}

/** A free loopback port, for the cluster routes that must be known before the servers start. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export interface StartOptions {
  name?: string
  resolver?: 'cache' | 'full'
  cluster?: ServerConfOptions['cluster']
  /** A port to reuse, for restarting a server where its clients expect it. */
  port?: number
  maxPayload?: number
  /** A full resolver's PACK sync interval (a Go duration). */
  interval?: string
  /** A URL resolver (what fleets of the retired nats-account-server run) fetching `<url><id>` instead. */
  resolverUrl?: string
  /** JetStream on, with the fixture's storage account (MESH) preloaded beside SYS. */
  jetstream?: boolean
  /** Where JetStream keeps its data: pass the same one to restart a node with its data. */
  storeDir?: string
}

/** Starts a real nats-server in operator mode on a free loopback port; stopped when the test ends. */
export async function startNatsServer(t: Test, fx: Fixture, opts: StartOptions = {}): Promise<NatsServerHandle> {
  const dir = await tempDir(t, 'nats')
  const jwtDir = join(dir, 'jwt')
  await mkdir(jwtDir)
  const name = opts.name ?? 'n1'
  const conf = join(dir, 'server.conf')
  const rendered = renderServerConf({
    serverName: name,
    port: opts.port ?? -1,
    portsFileDir: dir,
    operatorJwtPath: fx.operatorJwtPath,
    systemAccount: fx.op.systemAccount.id,
    systemAccountJwt: fx.op.systemAccount.jwt,
    resolver: opts.resolver === 'full' ? { type: 'full', dir: jwtDir, interval: opts.interval } : { type: 'cache', dir: jwtDir },
    cluster: opts.cluster,
    maxPayload: opts.maxPayload,
    ...(opts.jetstream ? { jetstream: { dir: opts.storeDir ?? join(dir, 'js') }, preload: { [fx.mesh.id]: fx.mesh.jwt } } : {}),
  })
  await writeFile(
    conf,
    opts.resolverUrl === undefined
      ? rendered
      : // a URL resolver takes no preloads: the system account comes from the URL like any other
        rendered.replace(/^resolver: \{.*\}$/m, `resolver: URL(${JSON.stringify(opts.resolverUrl)})`).replace(/^resolver_preload: .*\n/m, ''),
  )
  const proc = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000)
  })
  const stop = async () => void (await stopProcess(proc))
  t.teardown(stop)
  const ports = await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`nats-server exited: ${stderr}`)
      return JSON.parse(await readFile(join(dir, `nats-server_${proc.pid}.ports`), 'utf8')) as { nats: string[] }
    },
    { ms: 10_000, what: 'nats-server ports file' },
  )
  const url = ports.nats[0]!
  return { name, url, port: Number(new URL(url).port), proc, stop, jwtDir, output: () => stderr }
}

/** Three cache-mode servers routed into one cluster. */
export async function startCluster(
  t: Test,
  fx: Fixture,
  size = 3,
  opts: Pick<StartOptions, 'maxPayload' | 'jetstream'> & { fixtureOf?: (i: number) => Fixture } = {},
): Promise<NatsServerHandle[]> {
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()))
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`)
  return Promise.all(
    routePorts.map((port, i) =>
      startNatsServer(t, opts.fixtureOf?.(i) ?? fx, {
        name: `n${i + 1}`,
        cluster: { name: 'mesh-test', port, routes: routes.filter((_, j) => j !== i) },
        maxPayload: opts.maxPayload,
        jetstream: opts.jetstream,
      }),
    ),
  )
}
