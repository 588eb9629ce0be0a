import {
  addHealthEndpoint,
  changeFrom,
  decodeJwt,
  errors,
  isAccountKey,
  subjects,
  type Change,
  type DeliveryReport,
  type MeshService,
  type NatsConnection,
  verifyJwtAhead,
} from '../../shared/index.ts'
import { Broadcaster } from './broadcast.ts'
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

export function addNotifierEndpoints(service: MeshService, nc: NatsConnection, directory: ServerDirectory): void {
  const broadcaster = new Broadcaster(nc, directory)
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
      const servers = await broadcaster.send(change)
      log.info(
        { account: change.id, seq: change.seq, kind: change.kind, servers: servers.map((s) => `${s.name}:${s.outcome}`) },
        'change broadcast',
      )
      const report: DeliveryReport = { seq: change.seq, id: change.id, servers }
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
