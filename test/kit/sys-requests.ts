import type { Msg, NatsConnection } from '@nats-io/nats-core'
import { gather as gatherReplies, isResolverReply, subjects, type ClaimReply } from '../../shared/index.ts'
import { waitFor } from './wait-for.ts'

export type { ClaimReply } from '../../shared/index.ts'

/** Gathers replies until `count` arrived or `ms` passed (like nsc and natscli). */
export function gather(nc: NatsConnection, subject: string, body: string | Uint8Array, count: number, ms = 2000): Promise<Msg[]> {
  return gatherReplies(nc, subject, body, { strategy: 'count', maxMessages: count, maxWait: ms })
}

/**
 * Pushes a JWT as nsc does and returns every reply: ours (server.name "resolver") and each server's.
 * `servers` is how many nats-servers share the system account.
 */
export async function push(nc: NatsConnection, subject: string, jwt: string | Uint8Array, servers: number): Promise<{ ours: ClaimReply; all: ClaimReply[] }> {
  const replies = (await gather(nc, subject, jwt, servers + 1, 3000)).map((m) => m.json<ClaimReply>())
  const ours = replies.find(isResolverReply)
  if (ours === undefined) throw new Error(`no reply from the resolver among ${replies.length}: ${JSON.stringify(replies)}`)
  return { ours, all: replies }
}

/** The JWT each server has applied for `id` (ACCOUNTZ, protocol.md §8), by server name; undefined = not loaded. */
export async function appliedJwts(nc: NatsConnection, id: string, servers: number): Promise<Map<string, string | undefined>> {
  const replies = await gather(nc, subjects.accountz, JSON.stringify({ account: id }), servers, 2000)
  const out = new Map<string, string | undefined>()
  for (const m of replies) {
    const r = m.json<{ server: { name: string }; data?: { account_detail?: { jwt?: string } } }>()
    out.set(r.server.name, r.data?.account_detail?.jwt)
  }
  return out
}

/** Waits until `size` servers answer SERVER.PING: the routes of a freshly started cluster are up. */
export async function clusterFormed(nc: NatsConnection, size: number): Promise<void> {
  await waitFor(async () => (await gather(nc, subjects.serverPing, '', size, 500)).length === size, {
    ms: 10_000,
    what: `cluster of ${size}`,
  })
}

/**
 * Every server reports the same JetStream meta leader, and the leader every peer current: before then a just-formed cluster
 * may refuse to place replicas ("no suitable peers for placement", for over 30 s on 2.10.27 under load).
 */
export async function jetstreamFormed(nc: NatsConnection, size: number, ms = 60_000): Promise<void> {
  type Meta = { leader?: string; cluster_size?: number; replicas?: { current?: boolean; offline?: boolean }[] }
  await waitFor(
    async () => {
      const metas = (await gather(nc, subjects.jsz, '', size, 1000)).map((m) => m.json<{ data?: { meta_cluster?: Meta } }>().data?.meta_cluster)
      const leaders = new Set(metas.map((m) => m?.leader))
      return (
        metas.length === size &&
        leaders.size === 1 &&
        !leaders.has(undefined) &&
        !leaders.has('') &&
        // only the leader lists its peers
        metas.some((m) => (m?.replicas ?? []).length === size - 1 && m!.replicas!.every((r) => r.current === true && r.offline !== true))
      )
    },
    { ms, what: `a JetStream meta group of ${size} with a leader and every peer current`, every: 250 },
  )
}
