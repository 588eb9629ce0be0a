import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core'
import { perConnection } from './coalesce.ts'
import { isNoResponders, serviceErrorOf } from './service-error.ts'
import { subjects } from './subjects.ts'

/**
 * A change to an account, as it travels between our services: the JWT (or, for a deletion, the
 * operator-signed delete request) as the raw body, the rest in headers. Used both for the resolver's change
 * events, which anyone in the system account may watch, and for its delivery requests to the notifier.
 */
export const ChangeHeader = {
  account: 'Mesh-Account',
  seq: 'Mesh-Seq',
  kind: 'Mesh-Change',
  /** The resolver instance that accepted the change, so it can skip its own events. */
  origin: 'Mesh-Origin',
  /** Present (`1`) on a change that revokes users or lowers the connection limit: the notifier watches it. */
  enforce: 'Mesh-Enforce',
  /** On a delivery request only: the reply subject of the client push that brought the change (Change.receipt). */
  receipt: 'Mesh-Receipt',
} as const

export type ChangeKind = 'created' | 'updated' | 'deleted' | 'restore'
const KINDS = new Set<string>(['created', 'updated', 'deleted', 'restore'])

export interface Change {
  seq: number
  id: string
  kind: ChangeKind
  /** The account JWT, or for `deleted` the delete request that servers act on. */
  jwt: string
  /** Revokes users or lowers limits compared with the version it replaced (shared/enforcement.ts). */
  enforce?: boolean
  /**
   * On a delivery request only, never stored or announced: the reply subject on which every server answered
   * the client push that brought exactly this JWT (services/resolver/push-receipts.ts). The notifier may take
   * those answers for the report instead of broadcasting (services/notifier/push-replies.ts).
   */
  receipt?: string
}

/** A reply subject a receipt may name: a client inbox, as nsc, natscli and nats.js make them. */
export function isReceipt(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 256 && s.startsWith('_INBOX.') && !/[\s*>]/.test(s)
}

export function changeHeaders(c: Change): MsgHdrs {
  const h = headers()
  h.set(ChangeHeader.account, c.id)
  h.set(ChangeHeader.seq, String(c.seq))
  h.set(ChangeHeader.kind, c.kind)
  if (c.enforce === true) h.set(ChangeHeader.enforce, '1')
  return h
}

/** Reads a change from a message; undefined when the headers are missing or wrong (a receipt that is no client inbox). */
export function changeFrom(msg: { headers?: MsgHdrs; string(): string }): Change | undefined {
  const id = msg.headers?.get(ChangeHeader.account) ?? ''
  const seq = Number(msg.headers?.get(ChangeHeader.seq))
  const kind = msg.headers?.get(ChangeHeader.kind) ?? ''
  if (id === '' || !Number.isSafeInteger(seq) || seq < 0 || !KINDS.has(kind)) return undefined
  const enforce = msg.headers?.get(ChangeHeader.enforce) === '1'
  const receipt = msg.headers?.get(ChangeHeader.receipt) ?? ''
  if (receipt !== '' && !isReceipt(receipt)) return undefined
  return { id, seq, kind: kind as ChangeKind, jwt: msg.string(), ...(enforce ? { enforce } : {}), ...(receipt !== '' ? { receipt } : {}) }
}

/** What the notifier reports for one server after a broadcast. */
export interface ServerOutcome {
  id: string
  name: string
  outcome: 'applied' | 'skipped' | 'refused' | 'no-reply'
  message: string
}

/** A connection a server closed while a change was enforced (from its disconnect event). */
export interface ClosedConnection {
  /** The user's public key. */
  user: string
  /** The user JWT's name, when it has one. */
  name?: string
  reason: string
}

/** Whether one server cut off what an enforcing change revoked, within the grace period. */
export interface ServerEnforcement {
  id: string
  name: string
  /** Connections of the account it closed for the change: revoked users, or over the new connection limit. */
  closed: number
  connections: ClosedConnection[]
  /** Revoked (or over-limit) connections it still held when the grace period ended; -1: it never answered. */
  stillConnected: number
  outcome: 'enforced' | 'failed'
}

export interface Enforcement {
  graceMs: number
  servers: ServerEnforcement[]
}

export interface DeliveryReport {
  seq: number
  id: string
  servers: ServerOutcome[]
  /** sha256 (hex) of the JWT delivered: what `mesh push` matches its push against. */
  digest?: string
  /** Only on the report an enforcing change publishes after its grace period (subjects.notifierReports). */
  enforcement?: Enforcement
  /** The servers' outcomes are their answers to the client's own push of this JWT: nothing was broadcast. */
  fromPush?: true
}

/** Publishes a change event for anyone in the system account to watch; other resolver instances apply it. */
export function publishChange(nc: NatsConnection, c: Change, origin?: string): void {
  const h = changeHeaders(c)
  if (origin !== undefined) h.set(ChangeHeader.origin, origin)
  nc.publish(subjects.resolverChanges(c.id), c.jwt, { headers: h })
}

/** Announces what a delivery reached, for anyone in the system account to watch (`mesh.resolver.deliveries.<id>`). */
export function publishDelivery(nc: NatsConnection, report: DeliveryReport): void {
  nc.publish(subjects.resolverDeliveries(report.id), JSON.stringify(report))
}

/** Reads a change from a notify-batch item; undefined when a field is missing or wrong, as changeFrom. */
export function changeOf(item: unknown): Change | undefined {
  const { id, seq, kind, jwt, enforce, receipt } = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>
  if (typeof id !== 'string' || id === '' || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined
  if (typeof kind !== 'string' || !KINDS.has(kind) || typeof jwt !== 'string' || (enforce !== undefined && typeof enforce !== 'boolean')) return undefined
  if (receipt !== undefined && !isReceipt(receipt)) return undefined
  return { id, seq, kind: kind as ChangeKind, jwt, ...(enforce === true ? { enforce } : {}), ...(receipt !== undefined ? { receipt } : {}) }
}

/** One answer of a notify-batch reply, in the order of the request's changes. */
export type BatchDelivery = { report: DeliveryReport } | { error: { code: string; status: number; message: string } }

/** Most changes one notify-batch request carries; the notifier refuses more. */
export const MAX_NOTIFY_BATCH = 64
const DELIVERY_TIMEOUT_MS = 5000

async function deliverOne(nc: NatsConnection, c: Change): Promise<DeliveryReport> {
  const h = changeHeaders(c)
  if (c.receipt !== undefined) h.set(ChangeHeader.receipt, c.receipt)
  const reply = await nc.request(subjects.notifierNotify, c.jwt, { headers: h, timeout: DELIVERY_TIMEOUT_MS })
  const refused = serviceErrorOf(reply)
  if (refused !== undefined) throw new Error(`notifier refused the change: ${refused.message}`)
  return reply.json<DeliveryReport>()
}

async function deliverMany(nc: NatsConnection, changes: Change[]): Promise<Array<DeliveryReport | Error>> {
  const body = changes.map((c) => ({
    id: c.id,
    seq: c.seq,
    kind: c.kind,
    jwt: c.jwt,
    ...(c.enforce === true ? { enforce: true } : {}),
    ...(c.receipt !== undefined ? { receipt: c.receipt } : {}),
  }))
  let reply
  try {
    reply = await nc.request(subjects.notifierNotifyBatch, JSON.stringify(body), { timeout: DELIVERY_TIMEOUT_MS })
  } catch (e) {
    // A notifier from before batches (a rolling upgrade) has no notify-batch endpoint: one request each.
    if (!isNoResponders(e)) throw e
    return Promise.all(changes.map((c) => deliverOne(nc, c).catch((err: unknown) => err as Error)))
  }
  const refused = serviceErrorOf(reply)
  if (refused !== undefined) throw new Error(`notifier refused the changes: ${refused.message}`)
  const answers = reply.json<BatchDelivery[]>()
  if (!Array.isArray(answers)) throw new Error('notify-batch answered no list')
  return answers.map((a) => ('report' in a ? a.report : new Error(`notifier refused the change: ${a.error?.message ?? 'unknown error'}`)))
}

const batcherOf = perConnection<Change, DeliveryReport>((nc) => ({
  one: (item) => deliverOne(nc, item),
  many: (items) => deliverMany(nc, items),
  size: (item) => item.jwt.length + 160,
  maxItems: MAX_NOTIFY_BATCH,
}))

/**
 * Asks a notifier to deliver a change to every server; resolves with what each server did. Changes handed
 * over in the same moment (committed together) go in one notify-batch request, one report each.
 */
export function requestDelivery(nc: NatsConnection, c: Change): Promise<DeliveryReport> {
  return batcherOf(nc).submit(c)
}

/** What one reconciliation pass found and did on one nats-server (`mesh.resolver.reconcile`). */
export interface ReconcileServerReport {
  id: string
  name: string
  /** Accounts the server has loaded, and accounts it keeps a file for. */
  loaded: number
  files: number
  /** Accounts where the server holds something other than what the store holds. */
  drift: number
  adopted: number
  reverted: number
  redeleted: number
  /** Some of the drifting accounts, for display. */
  accounts: string[]
}

/** The report of one reconciliation pass; with `dryRun` nothing was changed (what `mesh status` shows). */
export interface ReconcileReport {
  trigger: string
  dryRun: boolean
  startedAt: string
  durationMs: number
  accountsChecked: number
  /** Accounts that drift on at least one server. */
  drift: number
  /** Newer valid versions servers held, now stored and delivered. */
  adopted: number
  /** Accounts whose stored version was sent again. */
  reverted: number
  /** Deleted accounts whose deletion was sent again. */
  redeleted: number
  /** Waiting for a signer to answer. */
  pending: number
  /** Versions servers hold of accounts the store has never held, refused by the signer: no stored state to send. */
  unrepairable: number
  failed: number
  servers: ReconcileServerReport[]
}
