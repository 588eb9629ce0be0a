import { STREAM, streamSubjects } from '../services/resolver/store/jetstream-stream.ts'
import { subjects, type MeshServiceName } from '../shared/index.ts'

/** Publish and subscribe allow lists of a NATS user (user JWT `pub`/`sub`); anything not listed is denied. */
export interface ServicePermissions {
  pub: string[]
  sub: string[]
}

export type { MeshServiceName }

/** Replies to nats-servers go to `$SYS._INBOX.…`, to nsc, natscli and our services to `_INBOX.…` (protocol.md §9.8). */
const SERVER_INBOXES = subjects.serverInboxes
const CLIENT_INBOXES = '_INBOX.>'
const MICRO = subjects.microAll

/**
 * The least each service's NATS user needs, in the system account. The single source for the README's
 * permissions section (checked by test/permissions.test.ts), the tests, which run every service with exactly
 * these, and `npm run bootstrap`, which writes one creds file per service.
 *
 * No response permission (`resp`) is set: a max-1 response permission would cut PACK's stream of replies
 * short (protocol.md §9.8), so replies are allowed by publish permission on the inbox prefixes instead.
 */
export const SERVICE_PERMISSIONS: Readonly<Record<MeshServiceName, ServicePermissions>> = {
  // Each service's container healthcheck (ops/healthcheck.ts) asks its own health endpoint with these creds.
  resolver: {
    sub: [
      subjects.lookup(),
      subjects.accountUpdate(),
      // UPDATE, LIST, DELETE, PACK and whatever claim subject nats-server adds next
      subjects.claimsAll,
      // the resolver's own internal endpoints (history, outbox, health, ...)
      subjects.meshService('resolver'),
      MICRO,
      // replies to its own requests to the signer and the notifier (and to its server pings)
      CLIENT_INBOXES,
      // the servers' statistics: how many replies a "not found" lookup needs (services/resolver/server-count.ts)
      subjects.serverStatsz(),
    ],
    pub: [
      SERVER_INBOXES,
      CLIENT_INBOXES,
      // validate, validate-delete, health
      subjects.meshService('signer'),
      // notify, health
      subjects.meshService('notifier'),
      // change events, and finding another instance (a level instance warns of one)
      subjects.meshService('resolver'),
      subjects.microPing('resolver'),
      // reconciliation reads what the servers hold (it changes nothing there itself)
      subjects.serverPing,
      subjects.accountz,
      subjects.claimsList,
      // before a delete: the accounts' JetStream usage, and their purge when the request asks for it
      subjects.jsz,
      subjects.jsAccountPurge('*'),
    ],
  },
  signer: {
    sub: [subjects.meshService('signer'), MICRO, CLIENT_INBOXES],
    // it answers the resolver and natscli on _INBOX subjects; asks nothing but its own health (healthcheck)
    pub: [CLIENT_INBOXES, subjects.signerHealth, `${subjects.signerHealth}.*`],
  },
  notifier: {
    // disconnect events: which connections an enforcing change closed (services/notifier/enforcement.ts)
    // client inboxes: also, during a bulk import, the servers' replies to nsc's own pushes (push-replies.ts)
    sub: [subjects.meshService('notifier'), MICRO, CLIENT_INBOXES, subjects.accountDisconnect()],
    pub: [
      CLIENT_INBOXES,
      subjects.notifierHealth,
      `${subjects.notifierHealth}.*`,
      subjects.notifierReports(),
      subjects.serverConnz(),
      subjects.accountUpdate(),
      subjects.claimsDelete,
      subjects.serverPing,
      subjects.accountz,
    ],
  },
}

/** The permissions as the Markdown table the README shows. */
export function permissionsMarkdown(): string {
  const code = (list: string[]) => list.map((s) => `\`${s}\``).join(' ')
  const rows = Object.entries(SERVICE_PERMISSIONS).map(([name, p]) => `| \`${name}\` | ${code(p.sub)} | ${code(p.pub)} |`)
  return ['| service | subscribe | publish |', '| --- | --- | --- |', ...rows].join('\n')
}

/**
 * The storage account's user (`resolver-store.creds`, RESOLVER_JS_CREDS): the JetStream API, the stream's
 * subjects, acks of its consumers, and replies. It lives in the storage account MESH, not the system account,
 * so no system-account user can write into the store.
 */
export const STORAGE_PERMISSIONS: Readonly<ServicePermissions> = {
  pub: [subjects.jsApi, streamSubjects.all, subjects.jsStreamAcks(STREAM), subjects.jsFlowControl],
  sub: [CLIENT_INBOXES],
}
