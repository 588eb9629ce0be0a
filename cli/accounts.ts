import type { NatsConnection } from '@nats-io/nats-core'
import { isAccountKey, subjects, tryPeek, type AccountState, type Claims } from '../shared/index.ts'
import { CliError } from './cli-error.ts'
import { askResolver, mapLimit, request } from './requests.ts'

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
  return tryPeek(jwt) as Claims | undefined
}

export function summarize(account: string, jwt: string): AccountSummary {
  const c = claimsOf(jwt)
  return { account, name: c?.name, iat: c?.iat ?? 0, exp: c?.exp ?? 0 }
}

/** What the resolver holds for an account (`mesh.resolver.get.<id>`). */
export type HeldAccount = AccountState

/**
 * What our resolver holds for `id`, asked of the resolver itself: LOOKUP would do, but a full-mode server in
 * the system account answers it too, and the first reply wins.
 */
export async function heldAccount(nc: NatsConnection, id: string, timeoutMs: number): Promise<HeldAccount> {
  return (await request(nc, subjects.resolverGet(id), '', timeoutMs)).json<HeldAccount>()
}

/** The JWT our resolver stores for `id`, undefined when it holds none (unknown or deleted). */
export async function storedJwt(nc: NatsConnection, id: string, timeoutMs: number): Promise<string | undefined> {
  const held = await heldAccount(nc, id, timeoutMs)
  return held.state === 'stored' ? held.jwt : undefined
}

/** The ids our resolver lists (stored, unexpired), from its own LIST reply among the servers'. */
export async function listIds(nc: NatsConnection, timeoutMs: number): Promise<string[]> {
  const r = await askResolver(nc, subjects.claimsList, '', timeoutMs)
  if (r.error !== undefined) throw new CliError(`list failed: ${r.error.description}`)
  if (!Array.isArray(r.data)) throw new CliError('the resolver sent a LIST reply without a list')
  return (r.data as unknown[]).filter((x): x is string => typeof x === 'string')
}

const LOOKUPS_IN_FLIGHT = 16

/**
 * Every account the resolver lists, with the JWT it stores; `jwt` is undefined for one deleted or expired
 * between the list and the read.
 */
export async function storedAccounts(nc: NatsConnection, timeoutMs: number): Promise<{ account: string; jwt: string | undefined }[]> {
  const ids = await listIds(nc, timeoutMs)
  return mapLimit(ids, LOOKUPS_IN_FLIGHT, async (account) => ({ account, jwt: await storedJwt(nc, account, timeoutMs) }))
}
