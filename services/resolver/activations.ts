import {
  errors,
  isAccountKey,
  isActivationHashId,
  subjects,
  tokenFrom,
  tryPeek,
  validateActivation,
  type ActivationPutReply,
  type MeshService,
  type NatsConnection,
} from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'

/** The exporting account an activation names, read unverified only to find its JWT; the signer verifies. */
function exporterOf(token: string): string {
  const claims = tryPeek<{ issuer_account?: unknown }>(token)
  if (claims === undefined) throw errors.jwtMalformed('the token does not decode')
  const exporter = claims?.nats?.issuer_account ?? claims?.iss
  if (!isAccountKey(exporter)) throw errors.activationInvalid('not issued by an account key')
  return exporter
}

/**
 * Hosted activation tokens (protocol.md §5), as nats-account-server kept them: `put` stores a token the
 * signer validated against the exporter's stored JWT; `get` returns the raw token for a hash id.
 */
export function addActivationEndpoints(service: MeshService, nc: NatsConnection, store: AccountStore): void {
  service.endpoint({
    name: 'activation-put',
    subject: subjects.resolverActivationPut,
    description: "Stores an activation token after the signer checks it against the exporter's JWT",
    async handle(msg, log) {
      const token = tokenFrom(msg)
      const exporter = exporterOf(token)
      const stored = await store.get(exporter)
      if (stored === undefined) throw errors.notFound(`exporting account ${exporter}`)
      const v = await validateActivation(nc, { token, exporterJwt: stored.jwt })
      const outcome = await store.activations.put({ ...v, token, at: new Date().toISOString() })
      if (outcome === 'stored') log.info({ hashId: v.hashId, exporter: v.exporter, importer: v.importer }, 'activation stored')
      return JSON.stringify({ hashId: v.hashId, outcome } satisfies ActivationPutReply)
    },
  })
  service.endpoint({
    name: 'activation-get',
    subject: subjects.resolverActivationGet,
    description: 'Returns the raw activation token stored under a hash id (the body)',
    async handle(msg) {
      const hashId = msg.string().trim()
      if (!isActivationHashId(hashId)) throw errors.requestInvalid('body must be an activation hash id (56 base32 characters)')
      const a = await store.activations.get(hashId)
      if (a === undefined) throw errors.notFound(`activation ${hashId}`)
      return a.token
    },
  })
}
