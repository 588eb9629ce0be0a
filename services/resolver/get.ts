import { accountAfter, subjects, type AccountState, type MeshService } from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'

/**
 * `mesh.resolver.get.<id>`: the stored JWT, expired ones included, or the tombstone of a deleted account.
 * Unlike LOOKUP, which any full-mode server in the system account also answers, only a resolver answers here,
 * so admin tools see what the mesh holds.
 */
export function addGetEndpoint(service: MeshService, store: AccountStore): void {
  service.endpoint({
    name: 'get',
    subject: subjects.resolverGet(),
    description: 'What the resolver holds for an account: its JWT, its tombstone, or nothing',
    async handle(msg) {
      const id = accountAfter(subjects.resolverGet(), msg.subject)
      // like LOOKUP: an admin reading right after a push another instance acked must not be told "unknown"
      const stored = (await store.get(id)) ?? (await store.recheckMissing?.(id))
      if (stored !== undefined) {
        return JSON.stringify({ account: id, state: 'stored', jwt: stored.jwt, iat: stored.iat, exp: stored.exp } satisfies AccountState)
      }
      const tomb = await store.tombstoneOf(id)
      const reply: AccountState =
        tomb === undefined
          ? { account: id, state: 'unknown' }
          : { account: id, state: 'deleted', deleted: { at: tomb.at, iat: tomb.iat, request: tomb.request } }
      return JSON.stringify(reply)
    },
  })
}
