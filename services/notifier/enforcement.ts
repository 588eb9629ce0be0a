import {
  admissionOf,
  isServerId,
  jsonOf,
  isUserRevoked,
  tryPeek,
  subjects,
  type AccountAdmission,
  type ClosedConnection,
  type ServerEnforcement,
  type NatsConnection,
  type ServerOutcome,
} from '../../shared/index.ts'
import type { DisconnectLog } from './disconnect-log.ts'
import type { KnownServer } from './server-directory.ts'

/** How often servers are asked for the account's connections while revoked ones remain. */
const POLL_MS = 250
/** How long each CONNZ round waits for the servers' answers. */
const CONNZ_WAIT_MS = 1000
/** The last CONNZ round's wait for servers that never answered a shorter one. */
const LAST_CHANCE_MS = 3000
/** Disconnect events may trail the CONNZ round that shows the connection gone. */
const SETTLE_MS = 200
/** More connections than this per server are not paged through: the check is about a handful of users. */
const CONNZ_LIMIT = 10_000

/** A connection as CONNZ (`auth: true`) or a disconnect event describes it. */
export interface ConnSeen {
  user: string
  /** The user JWT, from which its `iat` and name are read. */
  jwt?: string
}

const userClaims = (jwt: string | undefined): { iat?: unknown; name?: unknown } => {
  return (jwt === undefined ? undefined : tryPeek(jwt)) ?? {}
}
const userIat = (jwt: string | undefined): number => {
  const iat = userClaims(jwt).iat
  return typeof iat === 'number' ? iat : 0
}
/** The user JWT's name (the server's `name_tag` is the account's name on newer versions). */
const userName = (jwt: string | undefined): string | undefined => {
  const name = userClaims(jwt).name
  return typeof name === 'string' && name !== '' ? name.slice(0, 100) : undefined
}

/** Whether the account version in force should no longer admit this connection. */
export function isRevokedConn(a: AccountAdmission, c: ConnSeen): boolean {
  return isUserRevoked(a, c.user, userIat(c.jwt))
}

/**
 * Connections a server still holds that the new version forbids: revoked users, and connections beyond the
 * connection limit (the limit counts the whole cluster, so a server holding more than it alone breaks it).
 */
export function forbiddenCount(a: AccountAdmission, conns: ConnSeen[]): number {
  const revoked = conns.filter((c) => isRevokedConn(a, c)).length
  const over = a.conn >= 0 ? Math.max(0, conns.length - revoked - a.conn) : 0
  return revoked + over
}

/** The verdict on one server once the watch is over: failed when it kept anything forbidden, or never answered. */
export function judgeServer(server: KnownServer, closed: ClosedConnection[], stillConnected: number): ServerEnforcement {
  return {
    id: server.id,
    name: server.name,
    closed: closed.length,
    connections: closed,
    stillConnected,
    outcome: stillConnected === 0 ? 'enforced' : 'failed',
  }
}

interface ConnzReply {
  server?: { id?: unknown }
  data?: { connections?: { account?: unknown; authorized_user?: unknown; jwt?: unknown; kind?: unknown }[] }
}

/**
 * How far back a forced disconnect counts for a change: servers apply a client's push on their own, before
 * the resolver validated and stored it and the notifier got it (milliseconds, unless the signer is slow).
 */
const LOOKBACK_MS = 10_000

/**
 * Watches one enforcing change: which connections the servers closed for it (their disconnect events, see
 * DisconnectLog), then every server's connections of the account until none it should have cut off remains
 * or the grace period ends. Only enforcing changes get one, so ordinary pushes cost no extra request.
 */
export class EnforcementWatch {
  private readonly admission: AccountAdmission
  private readonly since = Date.now() - LOOKBACK_MS

  constructor(
    private readonly nc: NatsConnection,
    private readonly disconnects: DisconnectLog,
    private readonly account: string,
    jwt: string,
  ) {
    this.admission = admissionOf(jwt)
  }

  /** What the servers closed for this change, by server: revoked users, or connections over the limit. */
  private closedByServer(): Map<string, ClosedConnection[]> {
    const taken = this.disconnects.take(
      this.account,
      this.since,
      (e) => isRevokedConn(this.admission, e) || /maximum account connections/i.test(e.reason),
    )
    const out = new Map<string, ClosedConnection[]>()
    for (const e of taken) {
      const name = userName(e.jwt)
      out.set(e.server, [...(out.get(e.server) ?? []), { user: e.user, ...(name ? { name } : {}), reason: e.reason }])
    }
    return out
  }

  /**
   * Polls the servers until none holds a forbidden connection or `graceMs` passed; then judges each. A server
   * that answered the broadcast "skipped" has not loaded the account (protocol.md §3.2), so it holds none of
   * its connections; it is not asked, since a CONNZ naming the account could make it fetch the account.
   */
  async finish(servers: ServerOutcome[], graceMs: number): Promise<ServerEnforcement[]> {
    const deadline = Date.now() + graceMs
    const ask = servers.filter((s) => s.outcome !== 'skipped')
    let still = new Map<string, number>(servers.filter((s) => s.outcome === 'skipped').map((s) => [s.id, 0]))
    while (ask.length > 0) {
      // A server silent in one round keeps what it said in the last.
      still = new Map([...still, ...(await this.forbiddenNow(ask))])
      const clean = ask.every((s) => still.get(s.id) === 0)
      if (clean || Date.now() + POLL_MS >= deadline) break
      await new Promise((r) => setTimeout(r, POLL_MS))
    }
    // "Never answered" must mean unresponsive, not slow under load: the silent get one longer last chance.
    const silent = ask.filter((s) => !still.has(s.id))
    if (silent.length > 0) still = new Map([...still, ...(await this.forbiddenNow(silent, LAST_CHANCE_MS))])
    await new Promise((r) => setTimeout(r, SETTLE_MS))
    const closed = this.closedByServer()
    return servers.map((s) => judgeServer(s, closed.get(s.id) ?? [], still.get(s.id) ?? -1))
  }

  /** One CONNZ round, to each server directly: per server that answered, its forbidden connections. */
  private async forbiddenNow(servers: KnownServer[], waitMs = CONNZ_WAIT_MS): Promise<Map<string, number>> {
    // `acc` is ConnzOptions' account filter; `auth` adds each connection's user and JWT.
    const body = JSON.stringify({ acc: this.account, auth: true, limit: CONNZ_LIMIT })
    const ask = (s: KnownServer) =>
      this.nc.request(subjects.serverConnz(s.id), body, { timeout: waitMs }).then(
        (m) => jsonOf<ConnzReply>(m),
        () => undefined, // silent this round: judged by what it said before
      )
    const out = new Map<string, number>()
    for (const r of await Promise.all(servers.map(ask))) {
      if (!isServerId(r?.server?.id)) continue
      const conns = (r.data?.connections ?? [])
        .filter((c) => c.account === this.account && typeof c.authorized_user === 'string')
        .map((c) => ({ user: c.authorized_user as string, jwt: typeof c.jwt === 'string' ? c.jwt : undefined }))
      out.set(r.server.id, forbiddenCount(this.admission, conns))
    }
    return out
  }
}
