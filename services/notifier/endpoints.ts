import {
  addHealthEndpoint,
  changeFrom,
  decodeJwt,
  errors,
  isAccountKey,
  jwtDigest,
  subjects,
  type Change,
  type DeliveryReport,
  type Logger,
  type MeshService,
  type NatsConnection,
  verifyJwtAhead,
} from '../../shared/index.ts'
import { Broadcaster } from './broadcast.ts'
import { DisconnectLog } from './disconnect-log.ts'
import { EnforcementWatch } from './enforcement.ts'
import type { ServerDirectory } from './server-directory.ts'

/**
 * Refuses to broadcast anything but what the resolver sends: an intact, signed account JWT of the account the
 * change names, or for a deletion a signed JWT (the delete request). Whether it is trusted or current is the
 * resolver's and signer's business; this only keeps garbage and mislabelled tokens off the servers' subjects.
 */
function checkBody(change: Change): void {
  const { claims } = decodeJwt(change.jwt)
  if (change.kind === 'deleted') return
  if (claims.nats.type !== 'account') throw errors.jwtWrongType('account', String(claims.nats.type ?? ''))
  if (claims.sub !== change.id) throw errors.subjectMismatch(change.id, claims.sub)
}

/**
 * Finishes watching an enforcing change after its delivery was answered, and publishes the report with
 * what each server cut off. The resolver's delivery does not wait for it: the account's next change would
 * queue behind a grace period.
 */
function reportEnforcement(nc: NatsConnection, watch: EnforcementWatch, report: DeliveryReport, graceMs: number, log: Logger): void {
  watch.finish(report.servers, graceMs).then(
    (enforced) => {
      const full: DeliveryReport = { ...report, enforcement: { graceMs, servers: enforced } }
      try {
        nc.publish(subjects.notifierReports(report.id), JSON.stringify(full))
      } catch (err) {
        // the connection closed during the grace period (shutdown): the report is lost, the change is not
        return void log.warn({ err, account: report.id }, 'enforcement report not published')
      }
      const servers = enforced.map((s) => `${s.name}:${s.outcome}:${s.closed}`)
      log.info({ account: report.id, seq: report.seq, servers }, 'enforcement reported')
    },
    (err: unknown) => log.error({ err, account: report.id }, 'enforcement watch failed'),
  )
}

export function addNotifierEndpoints(
  service: MeshService,
  nc: NatsConnection,
  directory: ServerDirectory,
  opts: { enforceGraceMs: number },
): void {
  const broadcaster = new Broadcaster(nc, directory)
  const disconnects = new DisconnectLog(nc)
  service.endpoint({
    name: 'notify',
    subject: subjects.notifierNotify,
    description: 'Delivers a stored account change to every nats-server and reports what each did',
    async handle(msg, log) {
      const change = changeFrom(msg)
      if (change === undefined) throw errors.requestInvalid('missing or invalid Mesh-Account, Mesh-Seq or Mesh-Change header')
      if (!isAccountKey(change.id)) throw errors.requestInvalid(`${change.id} is not an account key`)
      if (change.jwt.length === 0) throw errors.requestInvalid('empty body: nothing to deliver')
      // Signature checked on the thread pool: deliveries in flight keep being answered meanwhile.
      await verifyJwtAhead(change.jwt)
      checkBody(change)
      const enforcing = change.enforce === true && change.kind !== 'deleted'
      const watch = enforcing ? new EnforcementWatch(nc, disconnects, change.id, change.jwt) : undefined
      const servers = await broadcaster.send(change)
      log.info(
        { account: change.id, seq: change.seq, kind: change.kind, servers: servers.map((s) => `${s.name}:${s.outcome}`) },
        'change broadcast',
      )
      const report: DeliveryReport = { seq: change.seq, id: change.id, servers, ...(watch ? { digest: jwtDigest(change.jwt) } : {}) }
      if (watch !== undefined) reportEnforcement(nc, watch, report, opts.enforceGraceMs, log)
      return JSON.stringify(report)
    },
  })
  addHealthEndpoint(service, nc, {
    subject: subjects.notifierHealth,
    description: 'Reports the NATS connection and which nats-servers the notifier knows',
    async check() {
      return { ok: true, servers: await directory.current() }
    },
  })
}
