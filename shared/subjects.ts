import { errors } from './errors.ts'
import { isAccountKey } from './nkey.ts'

/**
 * Every subject the mesh speaks, in one place. `$SYS` subjects are nats-server's (protocol.md §2); the
 * `mesh.*` ones are our internal API, reachable only inside the system account.
 */
export const subjects = {
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
  accountz: '$SYS.REQ.SERVER.PING.ACCOUNTZ',
  /** One server's connections; body: nats-server's ConnzOptions (`acc` filters by account). */
  serverConnz: (serverId = '*') => `$SYS.REQ.SERVER.${serverId}.CONNZ`,
  /** Each server's JetStream usage; body: JSzOptions (`account`, `streams`, `consumers`). */
  jsz: '$SYS.REQ.SERVER.PING.JSZ',
  /** One event per closed client connection of the account, from the server that held it. */
  accountDisconnect: (id = '*') => `$SYS.ACCOUNT.${id}.DISCONNECT`,
  /** JetStream's account purge (system account only): removes every stream and consumer of the account. */
  jsAccountPurge: (id: string) => `$JS.API.ACCOUNT.PURGE.${id}`,

  signerValidate: 'mesh.signer.validate',
  /** Several account JWTs in one request (JSON), one verdict each: the resolver's pushes of the same moment. */
  signerValidateBatch: 'mesh.signer.validate-batch',
  signerValidateDelete: 'mesh.signer.validate-delete',
  signerValidateActivation: 'mesh.signer.validate-activation',
  signerHealth: 'mesh.signer.health',
  signerResign: 'mesh.signer.resign',
  signerOperator: 'mesh.signer.operator',
  resolverChanges: (id = '*') => `mesh.resolver.changes.${id}`,
  resolverOutbox: 'mesh.resolver.outbox',
  resolverHealth: 'mesh.resolver.health',
  /** Runs a reconciliation pass (body `{"dryRun":true}` only reports drift) and answers its report. */
  resolverReconcile: 'mesh.resolver.reconcile',
  /** `mesh delete`: the same operator-signed request as `$SYS.REQ.CLAIMS.DELETE`, which servers do not hear. */
  resolverDelete: 'mesh.resolver.delete',
  resolverGet: (id = '*') => `mesh.resolver.get.${id}`,
  resolverHistory: (id = '*') => `mesh.resolver.history.${id}`,
  resolverActivationPut: 'mesh.resolver.activation.put',
  resolverActivationGet: 'mesh.resolver.activation.get',
  notifierNotify: 'mesh.notifier.notify',
  /** Several changes in one request (JSON), one report each: deliveries committed together. */
  notifierNotifyBatch: 'mesh.notifier.notify-batch',
  notifierHealth: 'mesh.notifier.health',
  /** Delivery reports of enforcing changes, published once their grace period is over (or all is cut off). */
  notifierReports: (id = '*') => `mesh.notifier.reports.${id}`,
} as const

/** Queue group nats-server's full resolvers use for PACK: only one member answers each request. */
export const PACK_QUEUE = 'responder'

/** The account id of `$SYS.REQ.ACCOUNT.<id>.CLAIMS.*` (6 tokens, id at index 3), or undefined. */
export function accountOfRequestSubject(subject: string): string | undefined {
  const t = subject.split('.')
  return t.length === 6 && t[0] === '$SYS' && t[1] === 'REQ' && t[2] === 'ACCOUNT' && t[4] === 'CLAIMS'
    ? t[3]
    : undefined
}

/**
 * The account id that ends an internal per-account subject (`mesh.resolver.get.<id>` and the like), given
 * the subject built with an empty id; throws REQUEST_INVALID when it is not an account key.
 */
export function accountAfter(prefix: string, subject: string): string {
  const id = subject.startsWith(prefix) ? subject.slice(prefix.length) : ''
  if (!isAccountKey(id)) throw errors.requestInvalid(`${subject.slice(0, 100)} does not name an account public key`)
  return id
}
