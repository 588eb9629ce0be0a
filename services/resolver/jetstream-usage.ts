import { createInbox, type NatsConnection } from '@nats-io/nats-core'
import { errors, peekClaims, subjects, type Logger } from '../../shared/index.ts'

/** How long the servers get to answer a JSZ round; each answers within milliseconds of the others. */
const FIRST_REPLY_MS = 1000
const QUIET_MS = 200
const PURGE_REPLY_MS = 3000
/** How long a purge may take to remove every stream before the delete is refused after all. */
const PURGE_DONE_MS = 10_000
const POLL_MS = 200

/** One stream of an account somewhere in the cluster, with its consumers. */
export interface JetStreamAsset {
  account: string
  stream: string
  consumers: string[]
}

interface JszReply {
  data?: {
    account_details?: {
      id?: unknown
      stream_detail?: { name?: unknown; consumer_detail?: { name?: unknown }[] }[]
    }[]
  }
}

/**
 * Every server's JetStream usage of one account (`$SYS.REQ.SERVER.PING.JSZ` with the account filter): a
 * stream lives on its replicas only, so all servers are asked. A server without JetStream, or where the
 * account has none, reports no details: no usage.
 */
async function usageOf(nc: NatsConnection, account: string): Promise<JetStreamAsset[]> {
  const inbox = createInbox()
  const sub = nc.subscribe(inbox)
  let timer = setTimeout(() => sub.unsubscribe(), FIRST_REPLY_MS)
  nc.publish(subjects.jsz, JSON.stringify({ account, streams: true, consumers: true }), { reply: inbox })
  const found = new Map<string, Set<string>>()
  for await (const m of sub) {
    clearTimeout(timer)
    timer = setTimeout(() => sub.unsubscribe(), QUIET_MS)
    let r: JszReply
    try {
      r = m.json<JszReply>()
    } catch {
      continue // not a server's JSZ reply
    }
    for (const acc of r.data?.account_details ?? []) {
      if (acc.id !== account) continue
      for (const s of acc.stream_detail ?? []) {
        if (typeof s.name !== 'string') continue
        const consumers = found.get(s.name) ?? new Set<string>()
        for (const c of s.consumer_detail ?? []) if (typeof c.name === 'string') consumers.add(c.name)
        found.set(s.name, consumers)
      }
    }
  }
  clearTimeout(timer)
  return [...found].map(([stream, consumers]) => ({ account, stream, consumers: [...consumers].sort() }))
}

export async function jetstreamUsage(nc: NatsConnection, accounts: string[]): Promise<JetStreamAsset[]> {
  return (await Promise.all(accounts.map((id) => usageOf(nc, id)))).flat()
}

/** `stream ORDERS (consumers: proc) in AB…` for each asset, for the refusal's reason. */
export function describeAssets(assets: JetStreamAsset[]): string {
  return assets
    .map((a) => `stream ${a.stream}${a.consumers.length > 0 ? ` (consumers: ${a.consumers.join(', ')})` : ''} in ${a.account}`)
    .join('; ')
}

/**
 * Whether the operator-signed delete request asks for the accounts' JetStream assets to be purged first:
 * `nats.purge_jetstream: true`, a claim nats-server ignores, covered by the operator's signature (nsc's
 * requests never carry it). Read only after the signer verified the request.
 */
export function asksForPurge(token: string): boolean {
  try {
    return (peekClaims<{ purge_jetstream?: unknown }>(token).nats?.purge_jetstream ?? false) === true
  } catch {
    return false
  }
}

/** Asks JetStream (system account only) to purge the account; the meta leader, or the lone server, answers. */
async function purgeAccount(nc: NatsConnection, account: string): Promise<void> {
  let reply: { initiated?: unknown; error?: { description?: unknown } }
  try {
    reply = (await nc.request(subjects.jsAccountPurge(account), '', { timeout: PURGE_REPLY_MS })).json()
  } catch (e) {
    throw errors.jetstreamInUse(`the JetStream account purge API did not answer for ${account} (${(e as Error).message})`)
  }
  if (reply.initiated !== true) {
    throw errors.jetstreamInUse(`JetStream refused to purge ${account}: ${String(reply.error?.description ?? 'no reason given')}`)
  }
}

/**
 * Refuses a delete of accounts that still have streams or consumers (JETSTREAM_IN_USE, naming them), unless
 * the request asks for a purge: then the assets are purged first and the delete goes ahead once every
 * server reports them gone.
 */
export async function guardJetStream(nc: NatsConnection, accounts: string[], purge: boolean, log: Logger): Promise<void> {
  const assets = await jetstreamUsage(nc, accounts)
  if (assets.length === 0) return
  if (!purge) throw errors.jetstreamInUse(`accounts still hold JetStream assets: ${describeAssets(assets)}`)
  const owners = [...new Set(assets.map((a) => a.account))]
  for (const id of owners) await purgeAccount(nc, id)
  log.info({ accounts: owners, streams: assets.map((a) => a.stream) }, 'jetstream purge initiated before delete')
  const deadline = Date.now() + PURGE_DONE_MS
  for (;;) {
    const left = await jetstreamUsage(nc, owners)
    if (left.length === 0) return
    if (Date.now() > deadline) throw errors.jetstreamInUse(`purge did not finish in time, still: ${describeAssets(left)}`)
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}
