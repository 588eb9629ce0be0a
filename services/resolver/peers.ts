import { subjects, type Logger, type NatsConnection } from '../../shared/index.ts'

const PING_MS = 500

/**
 * Several `level` instances would each keep a store of their own and diverge: only the jetstream engine
 * shares one. Warns when another resolver answers `$SRV.PING` (how `nats micro ls` finds services).
 */
export async function warnOfLevelPeers(nc: NatsConnection, ownId: string, log: Logger): Promise<void> {
  const others = new Set<string>()
  try {
    const replies = await nc.requestMany(subjects.microPing('resolver'), '', { maxWait: PING_MS })
    for await (const m of replies) {
      try {
        const id = (m.json() as { id?: unknown }).id
        if (typeof id === 'string' && id !== ownId) others.add(id)
      } catch {
        // not a ping reply
      }
    }
  } catch {
    return // nobody else answers
  }
  if (others.size > 0) {
    log.warn(
      { others: [...others] },
      'another resolver instance is running: level stores are not shared, run every instance with RESOLVER_STORE=jetstream',
    )
  }
}
