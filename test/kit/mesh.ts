import type { NatsConnection } from '@nats-io/nats-core'
import { createAccount } from '@nats-io/nkeys'
import type { Test } from 'tap'
import { subjects } from '../../shared/index.ts'
import { connectWith } from './clients.ts'
import { makeFixture, type Fixture } from './fixtures.ts'
import { jetstreamEnv, startJsCluster } from './jetstream.ts'
import { startCluster, startNatsServer, type NatsServerHandle, type StartOptions } from './nats-server.ts'
import { startResolver, startService, type ServiceName, type ServiceProcess } from './services.ts'
import { clusterFormed, gather, jetstreamFormed, push, type ClaimReply } from './sys-requests.ts'
import { waitFor } from './wait-for.ts'

export type ResolverProcess = ServiceProcess & { dataDir: string }

export interface MeshOptions {
  /** The operator and its files; a new one (makeFixture) when not given. */
  fx?: Fixture
  /** How many nats-servers (1). */
  servers?: number
  /** Route the servers into one cluster (default: when there are several). */
  cluster?: boolean
  /** JetStream on every server (with the storage account MESH preloaded). */
  jetstream?: boolean
  /** The resolvers' store: with JetStream on, the jetstream store replicated on up to 3 nodes unless 'level'. */
  store?: 'level' | 'jetstream'
  /** How many instances of each service (1 each); 0 starts none. */
  resolvers?: number
  signers?: number
  notifiers?: number
  /** Extra environment for every service, then for each kind. */
  env?: Record<string, string>
  resolverEnv?: Record<string, string>
  signerEnv?: Record<string, string>
  notifierEnv?: Record<string, string>
  /** Server options beyond these (a full resolver, a larger max_payload...). */
  server?: Pick<StartOptions, 'maxPayload' | 'resolver' | 'port'>
  /** Node i of a cluster trusts this fixture's operator instead (an operator mid-rotation, say). */
  fixtureOf?: (i: number) => Fixture
}

export interface Mesh {
  fx: Fixture
  servers: NatsServerHandle[]
  /** The system user, on every server; reconnects when servers may go away (jetstream, several servers). */
  sys: NatsConnection
  resolvers: ResolverProcess[]
  signers: ServiceProcess[]
  notifiers: ServiceProcess[]
  /** The servers still running. */
  alive(): NatsServerHandle[]
  /**
   * Another instance of a service with the mesh's environment plus `env`, connected first to `servers[first]`;
   * it stops when the mesh's test ends (not a subtest's), unless `test` says otherwise.
   */
  start(name: 'resolver', env?: Record<string, string>, first?: number, test?: Test): Promise<ResolverProcess>
  start(name: ServiceName, env?: Record<string, string>, first?: number, test?: Test): Promise<ServiceProcess>
  /** Starts node i again on its port (and with its JetStream data when jetstream). */
  restartServer(i: number): Promise<NatsServerHandle>
  /** Pushes as nsc does on `$SYS.REQ.CLAIMS.UPDATE` (or `subject`), expecting a reply from every live server. */
  push(jwt: string | Uint8Array, subject?: string): Promise<{ ours: ClaimReply; all: ClaimReply[] }>
  /** What the mesh answers a server's lookup of `id` ('' when it does not know it). */
  lookup(id: string, timeout?: number): Promise<string>
}

const isAlive = (s: NatsServerHandle) => s.proc.exitCode === null && s.proc.signalCode === null

/** `servers` in the order a client connected first to `servers[first]` tries them. */
const startingAt = (servers: NatsServerHandle[], first: number) => {
  const live = servers.filter(isAlive)
  const i = first % live.length
  return [live[i]!, ...live.filter((_, j) => j !== i)]
}

/** The system user's `$SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP`, as a nats-server asks it. */
export async function lookup(sys: NatsConnection, id: string, timeout = 3000): Promise<string> {
  return (await sys.request(subjects.lookup(id), '', { timeout })).string()
}

/**
 * Servers plus services in one call: the fixture, `servers` nats-servers (routed and formed when a cluster),
 * a system-user connection, then the resolvers (in parallel), signers and notifiers, instance i connected
 * first to node i. Everything stops when `t` ends.
 */
export async function startMesh(t: Test, opts: MeshOptions = {}): Promise<Mesh> {
  const fx = opts.fx ?? (await makeFixture(t))
  const size = opts.servers ?? 1
  const clustered = opts.cluster ?? size > 1
  const jetstream = opts.jetstream === true
  const jsStore = jetstream && opts.store !== 'level'
  /** The servers, started once, and how to restart node i of them. */
  const launch = async (): Promise<{ servers: NatsServerHandle[]; restart: (i: number) => Promise<NatsServerHandle> }> => {
    if (jetstream && clustered && opts.fixtureOf === undefined) {
      const js = await startJsCluster(t, fx, size)
      return { servers: js.servers, restart: (i) => js.restart(i) }
    }
    const serverOpts = { ...opts.server, jetstream }
    const started = clustered
      ? await startCluster(t, fx, size, { ...serverOpts, fixtureOf: opts.fixtureOf })
      : await Promise.all(Array.from({ length: size }, (_, i) => startNatsServer(t, fx, { ...serverOpts, name: `n${i + 1}` })))
    const restart = async (i: number) => {
      // a routed node would need its route port again, which startCluster does not keep: no test needs it yet
      if (clustered) throw new Error('restartServer: only a lone server or a JetStream cluster node')
      const old = started[i]!
      await old.stop()
      return (started[i] = await startNatsServer(t, fx, { ...serverOpts, name: old.name, port: old.port }))
    }
    return { servers: started, restart }
  }
  let servers: NatsServerHandle[]
  let restartServer: (i: number) => Promise<NatsServerHandle>
  for (let attempt = 1; ; attempt++) {
    const launched = await launch()
    if (jetstream && clustered) {
      // A just-formed 2.10.27 cluster now and then never gets a JetStream meta group with every peer current
      // (seen in CI for over 60 s): such a cluster is replaced by a fresh one, once.
      const probe = await connectWith(t, launched.servers, fx.sysUser.creds, { reconnect: true })
      try {
        await clusterFormed(probe, size)
        await jetstreamFormed(probe, size, attempt === 1 ? 30_000 : 60_000)
      } catch (e) {
        if (attempt === 2) throw e
        await Promise.all(launched.servers.map((s) => s.stop()))
        continue
      } finally {
        await probe.close()
      }
    }
    servers = launched.servers
    restartServer = launched.restart
    break
  }
  const sys = await connectWith(t, servers, fx.sysUser.creds, { reconnect: jetstream || size > 1 })
  if (clustered && size > 1) await clusterFormed(sys, size)
  if (jetstream && clustered && size > 1) await jetstreamFormed(sys, size)

  const common = opts.env ?? {}
  const envOf: Record<ServiceName, Record<string, string>> = {
    resolver: { ...(jsStore ? jetstreamEnv(fx, clustered ? Math.min(size, 3) : 1) : {}), ...common, ...opts.resolverEnv },
    signer: { ...common, ...opts.signerEnv },
    notifier: { ...common, ...opts.notifierEnv },
  }
  function start(name: ServiceName, env: Record<string, string> = {}, first = 0, test: Test = t): Promise<ServiceProcess> {
    const at = startingAt(servers, first)
    return name === 'resolver' ? startResolver(test, fx, at, { ...envOf.resolver, ...env }) : startService(test, name, fx, at, { ...envOf[name], ...env })
  }
  const instances = (name: ServiceName, n: number) => Promise.all(Array.from({ length: n }, (_, i) => start(name, {}, i)))
  const resolvers = (await instances('resolver', opts.resolvers ?? 1)) as ResolverProcess[]
  const [signers, notifiers] = await Promise.all([instances('signer', opts.signers ?? 1), instances('notifier', opts.notifiers ?? 1)])

  const mesh: Mesh = {
    fx,
    servers,
    sys,
    resolvers,
    signers,
    notifiers,
    alive: () => servers.filter(isAlive),
    start: start as Mesh['start'],
    restartServer: (i) => restartServer(i),
    push: (jwt, subject = subjects.claimsUpdate) => push(sys, subject, jwt, mesh.alive().length),
    lookup: (id, timeout) => lookup(sys, id, timeout),
  }
  return mesh
}

/**
 * Waits until the resolver answers a lookup of an unknown account with `replies` empty replies: it then has
 * heard that many servers besides the requester's (services/resolver/server-count.ts), so a requester that
 * waits for one reply per other server is refused at once.
 */
export async function resolverCountsServers(sys: NatsConnection, replies: number, ms = 10_000): Promise<void> {
  const nobody = createAccount().getPublicKey()
  await waitFor(async () => (await gather(sys, subjects.lookup(nobody), '', replies + 1, 500)).length === replies, {
    ms,
    what: `the resolver to send ${replies} empty replies to an unknown account's lookup`,
  })
}
