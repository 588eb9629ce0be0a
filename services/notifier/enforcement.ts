import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core'
import {
  admissionOf,
  isUserRevoked,
  peekClaims,
  subjects,
  type AccountAdmission,
  type ClosedConnection,
  type ServerEnforcement,
} from '../../shared/index.ts'
import { isServerId, type KnownServer } from './server-directory.ts'

/** How often servers are asked for the account's connections while revoked ones remain. */
const POLL_MS = 250
/** How long each CONNZ round waits for the servers' answers. */
const CONNZ_WAIT_MS = 1000
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

const userIat = (jwt: string | undefined): number => {
  try {
    const iat = jwt === undefined ? 0 : peekClaims(jwt).iat
    return typeof iat === 'number' ? iat : 0
  } catch {
    return 0
  }
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

interface DisconnectEvent {
  server?: { id?: unknown }
  client?: { acc?: unknown; user?: unknown; jwt?: unknown; name_tag?: unknown }
  reason?: unknown
}

interface ConnzReply {
  server?: { id?: unknown }
  data?: { connections?: { account?: unknown; authorized_user?: unknown; jwt?: unknown; kind?: unknown }[] }
}

/**
 * Watches one enforcing change: listening to the account's disconnect events from before the broadcast,
 * then asking every server for the account's connections until none it should have cut off remains or the
 * grace period ends. Only enforcing changes get one, so ordinary pushes cost no extra request.
 */
export class EnforcementWatch {
  private readonly closed = new Map<string, ClosedConnection[]>()
  private readonly sub: Subscription

  private constructor(
    private readonly nc: NatsConnection,
    private readonly account: string,
    private readonly admission: AccountAdmission,
  ) {
    this.sub = nc.subscribe(subjects.accountDisconnect(account), {
      callback: (err, m) => {
        if (err === null) this.onEvent(m)
      },
    })
  }

  /**
   * Subscribes before the change goes out; the flush makes our server register the interest, and it passes
   * it on over the same route connections the broadcast then takes, so no server closes a client unseen.
   */
  static async start(nc: NatsConnection, account: string, jwt: string): Promise<EnforcementWatch> {
    const w = new EnforcementWatch(nc, account, admissionOf(jwt))
    await nc.flush()
    return w
  }

  private onEvent(m: Msg): void {
    let e: DisconnectEvent
    try {
      e = m.json<DisconnectEvent>()
    } catch {
      return // not a server's event
    }
    const server = e.server?.id
    const user = e.client?.user
    if (!isServerId(server) || typeof user !== 'string' || e.client?.acc !== this.account) return
    const reason = String(e.reason ?? '')
    const jwt = typeof e.client?.jwt === 'string' ? e.client.jwt : undefined
    // A client leaving on its own during the watch is not the change's doing.
    if (!isRevokedConn(this.admission, { user, jwt }) && !/maximum account connections/i.test(reason)) return
    const name = typeof e.client?.name_tag === 'string' && e.client.name_tag !== '' ? e.client.name_tag : undefined
    const list = this.closed.get(server) ?? []
    list.push({ user, ...(name ? { name } : {}), reason })
    this.closed.set(server, list)
  }

  /** Polls the servers until none holds a forbidden connection or `graceMs` passed; then judges each. */
  async finish(servers: KnownServer[], graceMs: number): Promise<ServerEnforcement[]> {
    const deadline = Date.now() + graceMs
    let still = new Map<string, number>()
    try {
      for (;;) {
        // A server silent in one round keeps what it said in the last.
        still = new Map([...still, ...(await this.forbiddenNow(servers))])
        const clean = servers.every((s) => still.get(s.id) === 0)
        if (clean || Date.now() + POLL_MS >= deadline) break
        await new Promise((r) => setTimeout(r, POLL_MS))
      }
      await new Promise((r) => setTimeout(r, SETTLE_MS))
    } finally {
      this.sub.unsubscribe()
    }
    return servers.map((s) => judgeServer(s, this.closed.get(s.id) ?? [], still.get(s.id) ?? -1))
  }

  /** One CONNZ round: per server that answered, how many forbidden connections of the account it holds. */
  private async forbiddenNow(servers: KnownServer[]): Promise<Map<string, number>> {
    const inbox = createInbox()
    const sub = this.nc.subscribe(inbox, { max: servers.length })
    const timer = setTimeout(() => sub.unsubscribe(), CONNZ_WAIT_MS)
    // `acc` is ConnzOptions' account filter; `auth` adds each connection's user and JWT.
    this.nc.publish(subjects.connz, JSON.stringify({ acc: this.account, auth: true, limit: CONNZ_LIMIT }), { reply: inbox })
    const out = new Map<string, number>()
    for await (const m of sub) {
      let r: ConnzReply
      try {
        r = m.json<ConnzReply>()
      } catch {
        continue
      }
      if (!isServerId(r.server?.id)) continue
      const conns = (r.data?.connections ?? [])
        .filter((c) => c.account === this.account && typeof c.authorized_user === 'string')
        .map((c) => ({ user: c.authorized_user as string, jwt: typeof c.jwt === 'string' ? c.jwt : undefined }))
      out.set(r.server.id, forbiddenCount(this.admission, conns))
    }
    clearTimeout(timer)
    return out
  }
}
