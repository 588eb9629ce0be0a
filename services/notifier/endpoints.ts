import {
  batchBody,
  itemRefusal,
  addHealthEndpoint,
  changeFrom,
  changeOf,
  decodeJwt,
  errors,
  isAccountKey,
  jwtDigest,
  MAX_NOTIFY_BATCH,
  subjects,
  type BatchDelivery,
  type Change,
  type DeliveryReport,
  type Logger,
  type MeshService,
  type NatsConnection,
} from '../../shared/index.ts'
import type { ServiceMsg } from '@nats-io/services'
import { Broadcaster } from './broadcast.ts'
import { DisconnectLog } from './disconnect-log.ts'
import { EnforcementWatch } from './enforcement.ts'
import { PushReplies } from './push-replies.ts'
import type { ServerDirectory } from './server-directory.ts'

/**
 * Refuses to broadcast anything but what the resolver sends: an intact account JWT of the account the change
 * names, or for a deletion a JWT (the delete request). Whether it is trusted or current is the resolver's and
 * signer's business; this only keeps garbage and mislabelled tokens off the servers' subjects. The signature
 * is not checked here: every server checks it on receipt and reports a bad one as refused, and a client that
 * may publish here may publish to the servers' subjects directly, so a check here (about 100 µs, a third of
 * the notifier's CPU per change) guarded nothing.
 */
function checkBody(change: Change): void {
  const { claims } = decodeJwt(change.jwt, { unverified: true })
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
  const pushReplies = new PushReplies(nc, broadcaster.prefix)
  const disconnects = new DisconnectLog(nc)
  /** Checks and broadcasts one change, and reports what each server did. */
  async function deliver(change: Change, log: Logger): Promise<DeliveryReport> {
    if (!isAccountKey(change.id)) throw errors.requestInvalid(`${change.id} is not an account key`)
    if (change.jwt.length === 0) throw errors.requestInvalid('empty body: nothing to deliver')
    checkBody(change)
    const enforcing = change.enforce === true && change.kind !== 'deleted'
    const watch = enforcing ? new EnforcementWatch(nc, disconnects, change.id, change.jwt) : undefined
    const vouched = change.receipt === undefined ? undefined : pushReplies.vouched(change, await directory.current())
    const servers = vouched ?? (await broadcaster.send(change))
    // at debug: the resolver logs the same report as "change delivered", and publishes it
    log.debug(
      { account: change.id, seq: change.seq, kind: change.kind, servers: servers.map((s) => `${s.name}:${s.outcome}`) },
      vouched ? 'change already answered by every server' : 'change broadcast',
    )
    const report: DeliveryReport = {
      seq: change.seq,
      id: change.id,
      servers,
      ...(watch ? { digest: jwtDigest(change.jwt) } : {}),
      ...(vouched ? { fromPush: true as const } : {}),
    }
    if (watch !== undefined) reportEnforcement(nc, watch, report, opts.enforceGraceMs, log)
    return report
  }
  service.endpoint({
    name: 'notify',
    subject: subjects.notifierNotify,
    description: 'Delivers a stored account change to every nats-server and reports what each did',
    async handle(msg, log) {
      const change = changeFrom(msg)
      if (change === undefined) throw errors.requestInvalid('missing or invalid Mesh-Account, Mesh-Seq, Mesh-Change or Mesh-Receipt header')
      pushReplies.asked(1)
      return JSON.stringify(await deliver(change, log))
    },
  })
  service.endpoint({
    name: 'notify-batch',
    subject: subjects.notifierNotifyBatch,
    description: `Delivers up to ${MAX_NOTIFY_BATCH} stored changes (JSON list) to every nats-server, all at once, one report each`,
    async handle(msg, log) {
      const items = batchBody(msg, MAX_NOTIFY_BATCH, 'changes')
      pushReplies.asked(items.length)
      // Every change's broadcast goes out at once: none waits for another's replies.
      const answers = await Promise.all(
        items.map(async (item): Promise<BatchDelivery> => {
          try {
            const change = changeOf(item)
            if (change === undefined) throw errors.requestInvalid('a change must be {"id": string, "seq": number, "kind": string, "jwt": string, "enforce"?: boolean, "receipt"?: client inbox}')
            return { report: await deliver(change, log) }
          } catch (e) {
            return itemRefusal(e, log)
          }
        }),
      )
      return JSON.stringify(answers)
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
