import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { delimiter, join } from 'node:path'
import type { Owner } from './owner.ts'
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

// Every test and the bench start the same nats-server: $NATS_SERVER when set, else `nats-server` found on
// PATH with /usr/sbin appended (where Debian's package puts it). CI runs the suite once per server version.
let binary: string | undefined
let version: ServerVersion | undefined

export interface ServerVersion {
  major: number
  minor: number
  patch: number
  /** As `--version` prints it, e.g. `2.15.1`. */
  text: string
}

/** The nats-server executable the tests run. */
export function natsServerBinary(): string {
  if (binary !== undefined) return binary
  const fromEnv = process.env.NATS_SERVER
  if (fromEnv !== undefined && fromEnv !== '') return (binary = fromEnv)
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin'].filter((d) => d !== '')
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server')
    try {
      accessSync(candidate, constants.X_OK)
      return (binary = candidate)
    } catch {
      // not in this directory
    }
  }
  throw new Error('nats-server not found: set NATS_SERVER or put nats-server on PATH (npm run setup installs it)')
}

/** The version of natsServerBinary(), from its `--version` (run once). */
export function serverVersion(): ServerVersion {
  if (version !== undefined) return version
  const out = execFileSync(natsServerBinary(), ['--version'], { encoding: 'utf8' })
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(out)
  if (m === null) throw new Error(`cannot read a version from \`${natsServerBinary()} --version\`: ${out.trim()}`)
  return (version = { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: `${m[1]}.${m[2]}.${m[3]}` })
}

/** True when the tested nats-server is `at` (e.g. '2.9.17') or newer. */
export function serverAtLeast(at: string): boolean {
  const [major = 0, minor = 0, patch = 0] = at.split('.').map(Number)
  const v = serverVersion()
  return v.major !== major ? v.major > major : v.minor !== minor ? v.minor > minor : v.patch >= patch
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
  /** The resolver's JWT directory, already filled (a full server holding accounts); default: an empty one. */
  jwtDir?: string
  /** Accounts in the config's resolver_preload, beside the system account (and MESH with jetstream). */
  preload?: Record<string, string>
  /** How long the server may take to listen (a full server reads its whole JWT directory first). */
  readyMs?: number
}

/**
 * The client port: any free one (-1) on a lone server. A routed server's route port was only reserved by
 * freePort (found free, then released), so the kernel may hand that very port to the server's own random
 * client listener, and the route listener then fails "address already in use" (seen in CI): pick the client
 * port now, none of the cluster's route ports.
 */
async function clientPort(cluster: StartOptions['cluster']): Promise<number> {
  if (cluster === undefined) return -1
  const reserved = new Set([cluster.port, ...(cluster.routes ?? []).map((r) => Number(new URL(r).port))])
  for (;;) {
    const p = await freePort()
    if (!reserved.has(p)) return p
  }
}

/** Starts a real nats-server in operator mode on a free loopback port; stopped when the test ends. */
export async function startNatsServer(t: Owner, fx: Fixture, opts: StartOptions = {}): Promise<NatsServerHandle> {
  const dir = await tempDir(t, 'nats')
  const jwtDir = opts.jwtDir ?? join(dir, 'jwt')
  await mkdir(jwtDir, { recursive: true })
  const name = opts.name ?? 'n1'
  const conf = join(dir, 'server.conf')
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await clientPort(opts.cluster))
    const rendered = renderServerConf({
      serverName: name,
      port,
      portsFileDir: dir,
      operatorJwtPath: fx.operatorJwtPath,
      systemAccount: fx.op.systemAccount.id,
      systemAccountJwt: fx.op.systemAccount.jwt,
      resolver: opts.resolver === 'full' ? { type: 'full', dir: jwtDir, interval: opts.interval } : { type: 'cache', dir: jwtDir },
      cluster: opts.cluster,
      maxPayload: opts.maxPayload,
      preload: opts.preload,
      ...(opts.jetstream ? { jetstream: { dir: opts.storeDir ?? join(dir, 'js') }, preload: { ...opts.preload, [fx.mesh.id]: fx.mesh.jwt } } : {}),
    })
    await writeFile(
      conf,
      opts.resolverUrl === undefined
        ? rendered
        : // a URL resolver takes no preloads: the system account comes from the URL like any other
          rendered.replace(/^resolver: \{.*\}$/m, `resolver: URL(${JSON.stringify(opts.resolverUrl)})`).replace(/^resolver_preload: .*\n/m, ''),
    )
    const proc = spawn(natsServerBinary(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20_000)
    })
    const stop = async () => void (await stopProcess(proc))
    t.teardown(stop)
    try {
      const ports = await waitFor(
        async () => {
          if (proc.exitCode !== null) throw new Error(`nats-server exited: ${stderr}`)
          return JSON.parse(await readFile(join(dir, `nats-server_${proc.pid}.ports`), 'utf8')) as { nats: string[] }
        },
        { ms: opts.readyMs ?? 10_000, what: `nats-server ${name} ports file`, every: 10 },
      )
      const url = ports.nats[0]!
      return { name, url, port: Number(new URL(url).port), proc, stop, jwtDir, output: () => stderr }
    } catch (e) {
      // A client port picked here was free when picked, then taken before the server bound it (another test's
      // server, or an outgoing connection's ephemeral port, seen on 2.9.10 in CI): pick another.
      const lost = opts.port === undefined && stderr.includes(`listen tcp 127.0.0.1:${port}: bind: address already in use`)
      if (!lost || attempt === 3) throw e
    }
  }
}

/** The cluster block of each of `size` servers routed to one another (route ports picked now, free). */
export async function clusterRoutes(name: string, size: number): Promise<NonNullable<ServerConfOptions['cluster']>[]> {
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()))
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`)
  return routePorts.map((port, i) => ({ name, port, routes: routes.filter((_, j) => j !== i) }))
}

/** Three cache-mode servers routed into one cluster. */
export async function startCluster(
  t: Owner,
  fx: Fixture,
  size = 3,
  opts: Pick<StartOptions, 'maxPayload' | 'jetstream'> & { fixtureOf?: (i: number) => Fixture } = {},
): Promise<NatsServerHandle[]> {
  return Promise.all(
    (await clusterRoutes('mesh-test', size)).map((cluster, i) =>
      startNatsServer(t, opts.fixtureOf?.(i) ?? fx, {
        name: `n${i + 1}`,
        cluster,
        maxPayload: opts.maxPayload,
        jetstream: opts.jetstream,
      }),
    ),
  )
}
