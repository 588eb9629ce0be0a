import { createInbox, type NatsConnection } from '@nats-io/nats-core'
import { resolverReplyOf, subjects } from '../shared/index.ts'
import { gather } from '../test/kit/sys-requests.ts'
import { waitFor } from '../test/kit/wait-for.ts'
import { connectAs, connectOnce } from './clients.ts'
import { makeConnectableAccount, makeUser, userAuthenticator, type BenchFixture, type ConnectableAccount } from './fixture.ts'
import type { Scope } from './scope.ts'
import { startCluster, type BenchServer } from './servers.ts'
import { managedSignerEnv, startService } from './services.ts'
import { summarize, type Latency } from './stats.ts'

export type EnforceSystem = 'full' | 'mesh' | 'mesh-managed'

export interface EnforceCase {
  system: EnforceSystem
  /** From the push to each user's disconnect, every server of every trial. */
  disconnect: Latency
  /** From the push to the last of the three disconnects, per trial. */
  allDisconnected: Latency
  /** Mesh: from the push to the resolver's reply (the JWT is on disk). */
  ack?: Latency
  /** Mesh: from the push to the notifier's broadcast reaching our observer. */
  broadcast?: Latency
  /** Users still connected 5 s after the push. */
  missed: number
  trials: number
}

interface Setup {
  system: EnforceSystem
  servers: BenchServer[]
  sys: NatsConnection
  account: ConnectableAccount
  /** Signs the revoking JWT: the operator signing key, or the account itself (managed mode). */
  sign: (revocations: Record<string, number>) => string
}

const now = () => Math.floor(Date.now() / 1000)

/**
 * A user connected to each of three clustered servers; an nsc-style push (`$SYS.REQ.CLAIMS.UPDATE`, raw JWT)
 * revokes all three. Measured: push → each disconnect. Systems:
 * - full: three full-mode servers, which apply the push themselves;
 * - mesh: three cache-mode servers with resolver, signer and notifier. The servers hear nsc's push too and
 *   apply an operator-signed JWT on their own, so this shows that the mesh does not slow that path;
 * - mesh-managed: a self-signed JWT in managed mode. Servers store it but cannot apply it; only the mesh's
 *   path (signer re-signs, resolver stores durably, notifier delivers) disconnects the users: this is the
 *   mesh's own push-to-enforcement time.
 */
export async function runPushEnforcement(
  scope: Scope,
  fx: BenchFixture,
  opts: { trials: number; log: (s: string) => void },
): Promise<EnforceCase[]> {
  const meshServers = await startCluster(scope, fx, { prefix: 'mc', resolvers: ['cache', 'cache', 'cache'] })
  const fullServers = await startCluster(scope, fx, { prefix: 'fc', resolvers: ['full', 'full', 'full'] })
  const meshSys = await connectAs(scope, meshServers, fx.sysUser.creds)
  const fullSys = await connectAs(scope, fullServers, fx.sysUser.creds)
  await startService(scope, fx, meshSys, 'resolver', meshServers)
  await startService(scope, fx, meshSys, 'signer', meshServers, await managedSignerEnv(scope, fx))
  await startService(scope, fx, meshSys, 'notifier', meshServers)

  const operatorSigned = (account: ConnectableAccount) => {
    let iat = now() - 100_000
    return (revocations: Record<string, number>) => fx.signer.account(account.id, { iat: ++iat, nats: { revocations } })
  }
  const full = makeConnectableAccount(fx, 'enforce-full')
  const mesh = makeConnectableAccount(fx, 'enforce-mesh')
  const managed = makeConnectableAccount(fx, 'enforce-managed')
  const setups: Setup[] = [
    { system: 'full', servers: fullServers, sys: fullSys, account: full, sign: operatorSigned(full) },
    { system: 'mesh', servers: meshServers, sys: meshSys, account: mesh, sign: operatorSigned(mesh) },
    {
      system: 'mesh-managed',
      servers: meshServers,
      sys: meshSys,
      account: managed,
      // Self-signed and asking for no more than the signer's policy allows, as a self-service holder would.
      sign: (revocations) => managed.key.account(managed.id, { name: 'enforce-managed', nats: { limits: { conn: 10, subs: 100 }, revocations } }),
    },
  ]
  for (const s of setups) {
    const first = s.sign({})
    const replies = await gather(s.sys, subjects.claimsUpdate, first, 4, 2000)
    if (!replies.some((m) => /jwt updated/.test(m.string()))) throw new Error(`${s.system}: initial push refused: ${replies.map((m) => m.string()).join(' | ')}`)
    await waitFor(async () => (await connectAndClose(s.servers[0]!, s.account)) && true, { ms: 10_000, what: `${s.system} account usable` })
  }

  const acc = new Map<EnforceSystem, { each: number[]; all: number[]; ack: number[]; broadcast: number[]; missed: number }>(
    setups.map((s) => [s.system, { each: [], all: [], ack: [], broadcast: [], missed: 0 }]),
  )
  for (let trial = 0; trial < opts.trials; trial++) {
    for (let k = 0; k < setups.length; k++) {
      const s = setups[(trial + k) % setups.length]!
      const r = await revokeOnce(s)
      const a = acc.get(s.system)!
      a.each.push(...r.each)
      if (r.each.length === 3) a.all.push(Math.max(...r.each))
      a.missed += 3 - r.each.length
      if (r.ack !== undefined) a.ack.push(r.ack)
      if (r.broadcast !== undefined) a.broadcast.push(r.broadcast)
    }
  }
  return setups.map((s) => {
    const a = acc.get(s.system)!
    const c: EnforceCase = {
      system: s.system,
      disconnect: summarize(a.each),
      allDisconnected: summarize(a.all),
      missed: a.missed,
      trials: opts.trials,
      ...(s.system === 'full' ? {} : { ack: summarize(a.ack), broadcast: summarize(a.broadcast) }),
    }
    opts.log(`  ${s.system.padEnd(12)} push→disconnect p50 ${c.disconnect.p50.toFixed(1)} ms, p99 ${c.disconnect.p99.toFixed(1)} ms, ${c.missed} missed`)
    return c
  })
}

async function connectAndClose(server: BenchServer, account: ConnectableAccount): Promise<boolean> {
  const nc = await connectOnce(server, userAuthenticator(makeUser(account)), 5000)
  await nc.close()
  return true
}

/** One trial: three fresh users, one per server; one push revoking them; when did each go. */
async function revokeOnce(s: Setup): Promise<{ each: number[]; ack?: number; broadcast?: number }> {
  const users = s.servers.map(() => makeUser(s.account))
  const conns = await Promise.all(s.servers.map((server, i) => connectOnce(server, userAuthenticator(users[i]!), 5000)))
  await Promise.all(conns.map((nc) => nc.flush()))
  const ts = now()
  const jwt = s.sign(Object.fromEntries(users.map((u) => [u.id, ts])))
  const inbox = createInbox()
  let ack: number | undefined
  let broadcast: number | undefined
  const t0 = performance.now()
  const replies = s.sys.subscribe(inbox, {
    callback: (_e, m) => {
      if (ack === undefined && resolverReplyOf(m) !== undefined) ack = performance.now() - t0
    },
  })
  // The notifier's delivery, seen by an observer: the per-account or the legacy update subject.
  const watches = [subjects.accountUpdate(s.account.id), subjects.legacyAccountUpdate(s.account.id)].map((subject) =>
    s.sys.subscribe(subject, {
      callback: () => {
        broadcast ??= performance.now() - t0
      },
    }),
  )
  await s.sys.flush()
  const each: number[] = []
  const gone = conns.map((nc) => nc.closed().then(() => void each.push(performance.now() - t0)))
  s.sys.publish(subjects.claimsUpdate, jwt, { reply: inbox })
  await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 5000))])
  // The mesh's own reply and broadcast may trail the servers' own enforcement (mesh case): give them time.
  if (s.system !== 'full') await waitFor(() => ack !== undefined && broadcast !== undefined, { ms: 5000, what: 'ack and broadcast' }).catch(() => undefined)
  replies.unsubscribe()
  for (const w of watches) w.unsubscribe()
  for (const nc of conns) if (!nc.isClosed()) await nc.close()
  return { each, ack, broadcast }
}

