import { errors, gatherJson, subjects, tryPeek, type Logger, type NatsConnection } from '../../shared/index.ts'

/** How long the servers get to answer a JSZ round; each answers within milliseconds of the others. */
const FIRST_REPLY_MS = 1000
const QUIET_MS = 200
const PURGE_REPLY_MS = 3000
/** How long a purge may take to remove every stream before the delete is refused after all. */
const PURGE_DONE_MS = 10_000
const POLL_MS = 200
/** How often the servers are asked for every account's usage (see JetStreamUsageMemory). */
const USAGE_POLL_MS = 10_000
/** JSZ pages accounts; more than this many accounts with JetStream are not all remembered. */
const USAGE_ACCOUNT_LIMIT = 10_000

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

type AssetMap = Map<string, Map<string, Set<string>>>

/** Adds the streams and consumers of one JSZ reply to `into` (account → stream → consumers). */
function addReply(into: AssetMap, r: JszReply, only?: string): void {
  for (const acc of r.data?.account_details ?? []) {
    if (typeof acc.id !== 'string' || (only !== undefined && acc.id !== only)) continue
    const streams = into.get(acc.id) ?? new Map<string, Set<string>>()
    for (const s of acc.stream_detail ?? []) {
      if (typeof s.name !== 'string') continue
      const consumers = streams.get(s.name) ?? new Set<string>()
      for (const c of s.consumer_detail ?? []) if (typeof c.name === 'string') consumers.add(c.name)
      streams.set(s.name, consumers)
    }
    if (streams.size > 0) into.set(acc.id, streams)
  }
}

const assetsIn = (map: AssetMap): JetStreamAsset[] =>
  [...map].flatMap(([account, streams]) => [...streams].map(([stream, c]) => ({ account, stream, consumers: [...c].sort() })))

/**
 * Asks every server (`$SYS.REQ.SERVER.PING.JSZ`): a stream lives on its replicas only. Replies are taken
 * until the servers fall quiet. A server without JetStream, or where the account has none, reports no
 * details: no usage. `consumer` (singular) is JSzOptions' name for consumer details.
 */
async function askServers(nc: NatsConnection, filter: Record<string, unknown>, only?: string): Promise<AssetMap> {
  const found: AssetMap = new Map()
  await gatherJson<JszReply>(nc, subjects.jsz, JSON.stringify({ ...filter, streams: true, consumer: true }), {
    strategy: 'stall',
    maxWait: FIRST_REPLY_MS,
    stall: QUIET_MS,
    each: (r) => addReply(found, r, only),
  })
  return found
}

export async function jetstreamUsage(nc: NatsConnection, accounts: string[]): Promise<JetStreamAsset[]> {
  const maps = await Promise.all(accounts.map((account) => askServers(nc, { account }, account)))
  return maps.flatMap(assetsIn)
}

/**
 * The JetStream usage of every account, asked of the servers every few seconds. nsc sends its DELETE on
 * `$SYS.REQ.CLAIMS.DELETE`, which the servers act on the instant it arrives: they disable the accounts'
 * JetStream, so asking them after the fact finds nothing. What they reported shortly before still names the
 * streams the delete would abandon on disk.
 */
export class JetStreamUsageMemory {
  private last: { at: number; assets: JetStreamAsset[] } | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly everyMs = USAGE_POLL_MS,
  ) {}

  start(): void {
    const poll = () =>
      askServers(this.nc, { accounts: true, limit: USAGE_ACCOUNT_LIMIT }).then(
        (map) => {
          this.last = { at: Date.now(), assets: assetsIn(map) }
          this.log.debug({ accounts: map.size, streams: this.last.assets.length }, 'jetstream usage remembered')
        },
        (err: unknown) => this.log.warn({ err }, 'jetstream usage poll failed'),
      )
    void poll()
    this.timer = setInterval(() => void poll(), this.everyMs)
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** What the last poll saw of these accounts (empty before the first). */
  recent(accounts: string[]): JetStreamAsset[] {
    const wanted = new Set(accounts)
    return (this.last?.assets ?? []).filter((a) => wanted.has(a.account))
  }
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
  return tryPeek<{ purge_jetstream?: unknown }>(token)?.nats?.purge_jetstream === true
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
export async function guardJetStream(
  nc: NatsConnection,
  accounts: string[],
  purge: boolean,
  log: Logger,
  memory?: JetStreamUsageMemory,
): Promise<void> {
  const live = await jetstreamUsage(nc, accounts)
  if (!purge) {
    const seen = new Set(live.map((a) => `${a.account}/${a.stream}`))
    const assets = [...live, ...(memory?.recent(accounts) ?? []).filter((a) => !seen.has(`${a.account}/${a.stream}`))]
    if (assets.length > 0) throw errors.jetstreamInUse(`accounts still hold JetStream assets: ${describeAssets(assets)}`)
    return
  }
  if (live.length === 0) return
  const owners = [...new Set(live.map((a) => a.account))]
  for (const id of owners) await purgeAccount(nc, id)
  log.info({ accounts: owners, streams: live.map((a) => a.stream) }, 'jetstream purge initiated before delete')
  const deadline = Date.now() + PURGE_DONE_MS
  for (;;) {
    const left = await jetstreamUsage(nc, owners)
    if (left.length === 0) return
    if (Date.now() > deadline) throw errors.jetstreamInUse(`purge did not finish in time, still: ${describeAssets(left)}`)
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}
