import { errors } from './errors.ts'
import { isAccountKey } from './nkey.ts'

/** The mesh's own services: their micro name, the `mesh.<service>.*` prefix and the health endpoint. */
export const MESH_SERVICES = ['resolver', 'signer', 'notifier'] as const
export type MeshServiceName = (typeof MESH_SERVICES)[number]
export const isMeshService = (name: unknown): name is MeshServiceName => MESH_SERVICES.includes(name as MeshServiceName)

/** The micro discovery verbs `nats micro ls/info/stats` send (protocol.md §7). */
export type MicroVerb = 'PING' | 'INFO' | 'STATS'

const health = (service: MeshServiceName) => `mesh.${service}.health`

/**
 * Every subject the mesh speaks, in one place. `$SYS` subjects are nats-server's (protocol.md §2); the
 * `mesh.*` ones are our internal API, reachable only inside the system account.
 */
export const subjects = {
  /** `$SYS.REQ.ACCOUNT.<id>.CLAIMS.<verb>`: the per-account claim requests (LOOKUP, UPDATE). */
  accountClaims: (id: string, verb: string) => `$SYS.REQ.ACCOUNT.${id}.CLAIMS.${verb}`,
  lookup: (id = '*') => `$SYS.REQ.ACCOUNT.${id}.CLAIMS.LOOKUP`,
  accountUpdate: (id = '*') => `$SYS.REQ.ACCOUNT.${id}.CLAIMS.UPDATE`,
  legacyAccountUpdate: (id = '*') => `$SYS.ACCOUNT.${id}.CLAIMS.UPDATE`,
  claimsUpdate: '$SYS.REQ.CLAIMS.UPDATE',
  claimsList: '$SYS.REQ.CLAIMS.LIST',
  claimsDelete: '$SYS.REQ.CLAIMS.DELETE',
  claimsPack: '$SYS.REQ.CLAIMS.PACK',
  serverPing: '$SYS.REQ.SERVER.PING',
  /** Each nats-server's statistics, sent when they change and as a heartbeat; how servers learn of each other. */
  serverStatsz: (serverId = '*') => `$SYS.SERVER.${serverId}.STATSZ`,
  microPing: (service: string) => `$SRV.PING.${service}`,
  /** `$SRV.<verb>[.<service>[.<id>]]`: every instance, every instance of a service, or one instance. */
  micro: (verb: MicroVerb, service?: string, id?: string) => ['$SRV', verb, service, id].filter((t) => t !== undefined).join('.'),
  accountz: '$SYS.REQ.SERVER.PING.ACCOUNTZ',
  /** One server's connections; body: nats-server's ConnzOptions (`acc` filters by account). */
  serverConnz: (serverId = '*') => `$SYS.REQ.SERVER.${serverId}.CONNZ`,
  /** Each server's JetStream usage; body: JSzOptions (`account`, `streams`, `consumers`). */
  jsz: '$SYS.REQ.SERVER.PING.JSZ',
  /** One event per closed client connection of the account, from the server that held it. */
  accountDisconnect: (id = '*') => `$SYS.ACCOUNT.${id}.DISCONNECT`,
  /** JetStream's account purge (system account only): removes every stream and consumer of the account. */
  jsAccountPurge: (id: string) => `$JS.API.ACCOUNT.PURGE.${id}`,
  /** Every JetStream consumer ack subject; `mesh lint` flags exports and imports of these. */
  jsAck: '$JS.ACK.>',

  signerValidate: 'mesh.signer.validate',
  /** Several account JWTs in one request (JSON), one verdict each: the resolver's pushes of the same moment. */
  signerValidateBatch: 'mesh.signer.validate-batch',
  signerValidateDelete: 'mesh.signer.validate-delete',
  signerValidateActivation: 'mesh.signer.validate-activation',
  signerHealth: health('signer'),
  signerResign: 'mesh.signer.resign',
  signerOperator: 'mesh.signer.operator',
  resolverChanges: (id = '*') => `mesh.resolver.changes.${id}`,
  resolverOutbox: 'mesh.resolver.outbox',
  resolverHealth: health('resolver'),
  /** Runs a reconciliation pass (body `{"dryRun":true}` only reports drift) and answers its report. */
  resolverReconcile: 'mesh.resolver.reconcile',
  /** `mesh delete`: the same operator-signed request as `$SYS.REQ.CLAIMS.DELETE`, which servers do not hear. */
  resolverDelete: 'mesh.resolver.delete',
  resolverGet: (id = '*') => `mesh.resolver.get.${id}`,
  resolverHistory: (id = '*') => `mesh.resolver.history.${id}`,
  resolverActivationPut: 'mesh.resolver.activation.put',
  resolverActivationGet: 'mesh.resolver.activation.get',
  /** What each delivery reached (a DeliveryReport), published by the resolver instance that asked for it. */
  resolverDeliveries: (id = '*') => `mesh.resolver.deliveries.${id}`,
  notifierNotify: 'mesh.notifier.notify',
  /** Several changes in one request (JSON), one report each: deliveries committed together. */
  notifierNotifyBatch: 'mesh.notifier.notify-batch',
  notifierHealth: health('notifier'),
  /** Delivery reports of enforcing changes, published once their grace period is over (or all is cut off). */
  notifierReports: (id = '*') => `mesh.notifier.reports.${id}`,
  /** Every claim request nats-server answers (UPDATE, LIST, DELETE, PACK and whatever it adds next). */
  claimsAll: '$SYS.REQ.CLAIMS.>',
  /** Where nats-servers want replies to their own requests (protocol.md §9.8). */
  serverInboxes: '$SYS._INBOX.>',
  /** `$SRV.PING|INFO|STATS[.<name>[.<id>]]`: every micro service answers these. */
  microAll: '$SRV.>',
  /** The JetStream API, and the flow-control replies of snapshots and pull consumers. */
  jsApi: '$JS.API.>',
  jsFlowControl: '$JS.FC.>',
  /** The acks of every consumer on `stream`. */
  jsStreamAcks: (stream: string) => `$JS.ACK.${stream}.>`,
  /** Every endpoint of one mesh service (permissions grant these). */
  meshService: (service: MeshServiceName) => `mesh.${service}.>`,
  /** The health endpoint of each mesh service (`mesh.<service>.health`). */
  health,
} as const

/** Queue group nats-server's full resolvers use for PACK: only one member answers each request. */
export const PACK_QUEUE = 'responder'

/**
 * The one way an account id is read from a subject: `pattern` is the subject built with `*` for the id
 * (`subjects.lookup()`), and the id is the one token `subject` has in its place, or undefined when `subject`
 * does not fit the pattern. Slices rather than splits: LOOKUP's hot path runs it on every request.
 */
export function idInSubject(pattern: string, subject: string): string | undefined {
  const star = pattern.indexOf('*')
  const prefix = pattern.slice(0, star)
  const suffix = pattern.slice(star + 1)
  if (subject.length <= prefix.length + suffix.length || !subject.startsWith(prefix) || !subject.endsWith(suffix)) return undefined
  const id = subject.slice(prefix.length, subject.length - suffix.length)
  return id.includes('.') ? undefined : id
}

/** The account id of `$SYS.REQ.ACCOUNT.<id>.CLAIMS.<verb>`, or undefined. */
export function accountOfRequestSubject(subject: string): string | undefined {
  return idInSubject(subjects.accountClaims('*', subject.slice(subject.lastIndexOf('.') + 1)), subject)
}

/**
 * The account id of an internal per-account subject (`mesh.resolver.get.<id>` and the like), given its
 * pattern (`subjects.resolverGet()`); throws REQUEST_INVALID when it is not an account key.
 */
export function accountAfter(pattern: string, subject: string): string {
  const id = idInSubject(pattern, subject)
  if (!isAccountKey(id)) throw errors.requestInvalid(`${subject.slice(0, 100)} does not name an account public key`)
  return id
}
