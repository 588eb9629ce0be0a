import { isAccountKey, type NatsConnection } from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'

// Room left in the request for headers and the JSON envelope around the JWTs.
const ENVELOPE_SLACK = 4096
const DEFAULT_MAX_PAYLOAD = 1_048_576

/** The accounts a pushed JWT's `nats` claims import from with an activation token, read without trusting them. */
function tokenExporters(nats: unknown): string[] {
  const imports = (nats as { imports?: unknown } | undefined)?.imports
  if (!Array.isArray(imports)) return []
  const ids = new Set<string>()
  for (const imp of imports as unknown[]) {
    const { token: t, account } = (imp ?? {}) as { token?: unknown; account?: unknown }
    if (typeof t === 'string' && t !== '' && isAccountKey(account)) ids.add(account)
  }
  return [...ids]
}

/**
 * The stored JWTs of the accounts `token` (whose `nats` claims the caller already read) imports from with an activation token, for the signer to check
 * those tokens against (shared/signer-api.ts validateAccount). Only what fits in one request beside the
 * token is sent; an exporter left out, or not stored, is simply not checked, as before.
 */
export async function exportersFor(store: AccountStore, token: string, nats: unknown, nc: NatsConnection): Promise<Record<string, string>> {
  const ids = tokenExporters(nats)
  const out: Record<string, string> = {}
  if (ids.length === 0) return out
  let room = (nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) - token.length - ENVELOPE_SLACK
  for (const id of ids) {
    const stored = await store.get(id)
    if (stored === undefined) continue
    const cost = stored.jwt.length + id.length + 8
    if (cost > room) continue
    out[id] = stored.jwt
    room -= cost
  }
  return out
}
