import type { NatsConnection } from '@nats-io/nats-core'
import type { Test } from 'tap'
import { changeFrom, subjects, type Change } from '../../shared/index.ts'
import { waitFor } from './wait-for.ts'

export interface ChangeWatch {
  /** Every change event heard since the watch began, in order. */
  seen: Change[]
  /** The first event heard (already or later) that `match` accepts. */
  next(match: (c: Change) => boolean, opts?: { ms?: number; what?: string }): Promise<Change>
}

/**
 * Listens to the resolver's change events (`mesh.resolver.changes.<id>`): what it stored, restored or sent a
 * deletion again for. Subscribed once this resolves; stops when the test ends.
 */
export async function watchChanges(t: Test, sys: NatsConnection, id = '*'): Promise<ChangeWatch> {
  const seen: Change[] = []
  const sub = sys.subscribe(subjects.resolverChanges(id), {
    callback: (err, m) => {
      const c = err === null ? changeFrom(m) : undefined
      if (c !== undefined) seen.push(c)
    },
  })
  await sys.flush()
  t.teardown(() => sub.unsubscribe())
  return {
    seen,
    next: (match, { ms = 10_000, what = 'a change event' } = {}) => waitFor(() => seen.find(match), { ms, what }),
  }
}
