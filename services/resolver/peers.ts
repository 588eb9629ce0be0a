import { Svcm } from '@nats-io/services'
import type { Logger, NatsConnection } from '../../shared/index.ts'

const PING_MS = 500

/**
 * Several `level` instances would each keep a store of their own and diverge: only the jetstream engine
 * shares one. Warns when another resolver answers `$SRV.PING` (how `nats micro ls` finds services).
 */
export async function warnOfLevelPeers(nc: NatsConnection, ownId: string, log: Logger): Promise<void> {
  const others = new Set<string>()
  try {
    for await (const p of await new Svcm(nc).client({ strategy: 'timer', maxWait: PING_MS }).ping('resolver')) {
      if (typeof p.id === 'string' && p.id !== ownId) others.add(p.id)
    }
  } catch {
    // nobody else answers (no responders), or a reply that is not a ping ended the round: warn of those seen
  }
  if (others.size > 0) {
    log.warn(
      { others: [...others] },
      'another resolver instance is running: level stores are not shared, run every instance with RESOLVER_STORE=jetstream',
    )
  }
}
