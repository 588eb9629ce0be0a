import type { NatsConnection } from '@nats-io/nats-core'
import { isAccountKey, peekClaims, subjects, type Claims } from '../shared/index.ts'
import { CliError } from './cli-error.ts'
import { askResolver, request } from './requests.ts'

/** What the tables show of an account JWT. */
export interface AccountSummary {
  account: string
  name: string | undefined
  iat: number
  /** 0 when it never expires. */
  exp: number
}

export function requireAccountKey(s: string): string {
  if (isAccountKey(s)) return s
  throw new CliError(`${String(s).slice(0, 80)} is not an account public key (A..., 56 characters)`)
}

/** The claims of a JWT, read without verifying (the resolver verified what it stores); undefined if unreadable. */
export function claimsOf(jwt: string): Claims | undefined {
  try {
    const c = peekClaims(jwt)
    return typeof c === 'object' && c !== null ? c : undefined
  } catch {
    return undefined // not a JWT: callers show it as unreadable
  }
}

export function summarize(account: string, jwt: string): AccountSummary {
  const c = claimsOf(jwt)
  return { account, name: c?.name, iat: c?.iat ?? 0, exp: c?.exp ?? 0 }
}

/**
 * The JWT served for `id` by LOOKUP, undefined when unknown (empty reply). Only our resolver answers on a
 * deployment of cache servers; a full-resolver server would answer too, and the first reply wins.
 */
export async function lookupJwt(nc: NatsConnection, id: string, timeoutMs: number): Promise<string | undefined> {
  const m = await request(nc, subjects.lookup(id), '', timeoutMs)
  return m.data.length === 0 ? undefined : m.string()
}

/** The ids our resolver lists (stored, unexpired), from its own LIST reply among the servers'. */
export async function listIds(nc: NatsConnection, timeoutMs: number): Promise<string[]> {
  const r = await askResolver(nc, subjects.claimsList, '', timeoutMs)
  if (r.error !== undefined) throw new CliError(`list failed: ${r.error.description}`)
  if (!Array.isArray(r.data)) throw new CliError('the resolver sent a LIST reply without a list')
  return (r.data as unknown[]).filter((x): x is string => typeof x === 'string')
}
