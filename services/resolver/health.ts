import { addHealthEndpoint, subjects, type MeshService, type NatsConnection } from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'

/**
 * `mesh.resolver.health`: healthy while connected and the store is open. Lookups need nothing else, so a
 * missing signer or notifier does not make the resolver unhealthy (pushes report those on their own).
 */
export function addResolverHealth(
  service: MeshService,
  nc: NatsConnection,
  store: AccountStore,
  /** Other parts' figures to show beside (reconciliation counts). */
  details: () => Record<string, unknown> = () => ({}),
): void {
  addHealthEndpoint(service, nc, {
    subject: subjects.resolverHealth,
    description: 'Reports the NATS connection and whether the account store is open',
    async check() {
      const ready = store.ready
      return { ok: ready, store: ready ? 'ready' : 'not ready', ...details() }
    },
  })
}
