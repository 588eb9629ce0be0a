import { setTimeout as delay } from 'node:timers/promises'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator, type NatsConnection } from '@nats-io/nats-core'
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream'
import { errors, type Logger } from '../../../shared/index.ts'

/** The stream that holds every accepted version, deletion, remembered request and activation token. */
export const STREAM = 'MESH_RESOLVER'
/** The one durable consumer all instances share to hand changes to the notifier. */
export const DELIVERY_CONSUMER = 'resolver-delivery'

/** Subjects inside the storage account (not the system account: nothing there can publish here). */
export const streamSubjects = {
  all: 'resolver.>',
  /** Versions and deletions of one account: the subject optimistic concurrency is checked on. */
  version: (id: string) => `resolver.chg.${id}.v`,
  /** "Deliver the stored version again" (after a refused push): delivery only, not history. */
  restore: (id: string) => `resolver.chg.${id}.r`,
  changes: 'resolver.chg.>',
  replay: (hash: string) => `resolver.replay.${hash}`,
  activation: (hashId: string) => `resolver.actv.${hashId}`,
}

export const Header = { kind: 'Mesh-Kind', via: 'Mesh-Via', at: 'Mesh-At', enforce: 'Mesh-Enforce' } as const

/** nats-server's "wrong last sequence": another instance wrote this subject since we read it. */
export const WRONG_LAST_SEQUENCE = 10071
const JETSTREAM_NOT_ENABLED = [10039, 10076]
const INSUFFICIENT_RESOURCES = [10023, 10005]
/** "replicas > 1 not supported in non-clustered mode": no waiting changes that. */
const NOT_CLUSTERED = 10074
const SETUP_MS = 60_000
// A just-formed 2.10 cluster refused R3 placement for more than 10 s once (test/migration.test.ts).
const SETTLE_MS = 30_000
const DEFAULT_REPLICAS = 3

export interface StorageConnection {
  nc: NatsConnection
  js: JetStreamClient
  jsm: JetStreamManager
}

/** One line for the operator, exit code 2 (shared/startup.ts). */
const fatal = (what: string) => errors.config([what])

/**
 * Connects to the storage account and makes sure the stream and the delivery consumer exist. Wrong creds,
 * an account without JetStream, or replicas that cannot be placed stop the resolver with one line; a cluster
 * still electing its leaders is waited for.
 */
export async function openStorage(
  cfg: { servers: string[]; creds: string; replicas: number | undefined },
  log: Logger,
): Promise<StorageConnection> {
  const deadline = Date.now() + SETUP_MS
  let nc: NatsConnection | undefined
  for (let attempt = 1; nc === undefined; attempt++) {
    try {
      nc = await connect({
        servers: cfg.servers,
        name: 'resolver-store',
        authenticator: credsAuthenticator(new TextEncoder().encode(cfg.creds)),
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        noAsyncTraces: true,
      })
    } catch (e) {
      const message = (e as Error).message
      if (/authoriz|authentic|permission/i.test(message)) throw fatal(`RESOLVER_JS_CREDS: the storage account refused them (${message})`)
      if (Date.now() > deadline) throw fatal(`RESOLVER_JS_URL: no nats-server reachable (${message})`)
      log.warn({ attempt, err: { message } }, 'storage connection failed, retrying')
      await delay(Math.min(2000, 250 * attempt))
    }
  }
  const js = jetstream(nc, { timeout: 2500 })
  // A cluster that has just formed may still say "not enabled" or "no suitable peers" for a few seconds:
  // such answers stop the resolver only once they have persisted this long.
  const settledBy = Date.now() + SETTLE_MS
  let replicas = cfg.replicas ?? DEFAULT_REPLICAS
  // Once the stream exists its replicas are placed, and the consumer's go on the same peers: a "no suitable
  // peers" then only means the meta leader does not see those peers yet (2.10.27, after a restore, for over
  // 25 s under load). It is waited out to the end of the setup deadline rather than taken as a wrong replica
  // count.
  let streamExists = false
  let step = 'stream'
  for (let attempt = 1; ; attempt++) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2500 })
      step = 'stream'
      await ensureStream(jsm, replicas, () => (streamExists = true))
      step = 'consumer'
      await ensureDeliveryConsumer(jsm, replicas)
      return { nc, js, jsm }
    } catch (e) {
      const code = e instanceof JetStreamApiError ? e.code : 0
      const message = (e as Error).message
      const settled = streamExists ? Date.now() > deadline : Date.now() > settledBy
      if ((JETSTREAM_NOT_ENABLED.includes(code) || /not enabled/i.test(message)) && settled) {
        await nc.close()
        throw fatal(`RESOLVER_JS_CREDS: the storage account has no JetStream (${message})`)
      }
      if (code === NOT_CLUSTERED && cfg.replicas === undefined && replicas > 1) {
        log.info({ replicas: 1 }, 'JetStream is not clustered: the store is kept on this one server')
        replicas = 1
        continue
      }
      if (code === NOT_CLUSTERED || ((INSUFFICIENT_RESOURCES.includes(code) || /replica|insufficient|peers/i.test(message)) && settled)) {
        await nc.close()
        throw fatal(`RESOLVER_JS_REPLICAS: ${replicas} replicas cannot be placed (${message})`)
      }
      if (Date.now() > deadline) {
        await nc.close()
        throw fatal(`RESOLVER_JS_URL: JetStream did not answer (${message})`)
      }
      log.warn({ attempt, step, streamExists, err: { message } }, 'jetstream not ready, retrying')
      await delay(Math.min(1000, 250 * attempt))
    }
  }
}

/** `found` hears that the stream exists, so its replicas were placed, before anything else is asked of it. */
async function ensureStream(jsm: JetStreamManager, replicas: number, found: () => void): Promise<void> {
  try {
    const { config } = await jsm.streams.info(STREAM)
    found()
    // a stream made before restore markers rolled up: without it, every refused push would stay in it forever
    if (config.allow_rollup_hdrs !== true) await jsm.streams.update(STREAM, { ...config, allow_rollup_hdrs: true })
    return
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.code === 10059)) throw e // 10059: stream not found
  }
  await jsm.streams.add({
    name: STREAM,
    subjects: [streamSubjects.all],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: replicas,
    max_msgs: -1,
    max_bytes: -1,
    max_age: 0,
    max_msgs_per_subject: -1,
    // a push retried after a lost ack must not be stored twice
    duplicate_window: 120_000_000_000,
    // restore markers ("deliver the stored version again") replace the earlier ones of their account
    allow_rollup_hdrs: true,
  })
}

async function ensureDeliveryConsumer(jsm: JetStreamManager, replicas: number): Promise<void> {
  try {
    await jsm.consumers.info(STREAM, DELIVERY_CONSUMER)
    return
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.code === 10014)) throw e // 10014: consumer not found
  }
  await jsm.consumers.add(STREAM, {
    durable_name: DELIVERY_CONSUMER,
    filter_subject: streamSubjects.changes,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 30_000_000_000,
    max_deliver: -1,
    max_ack_pending: 1000,
    num_replicas: replicas,
  })
}
