import { isAccountKey, isPublicKey, KeyRole } from '../../../shared/index.ts'
import { infoIssues } from './info.ts'
import { hasWildcards, show, subjectProblems } from './subjects.ts'

const isUserKey = (k: unknown) => isPublicKey(k, KeyRole.user)
const isCurveKey = (k: unknown) => isPublicKey(k, 'X' as KeyRole)

/** ExternalAuthorization.Validate: auth callout's users, the accounts it may bind to, and its xkey. */
export function authorizationIssues(a: { auth_users?: string[] | null; allowed_accounts?: string[] | null; xkey?: string } | undefined): string[] {
  const users = a?.auth_users ?? []
  const accounts = a?.allowed_accounts ?? []
  const issues: string[] = []
  if (accounts.length > 0 && users.length === 0) issues.push('External authorization cannot have accounts without users specified')
  for (const u of users) if (!isUserKey(u)) issues.push(`AuthUser ${show(u ?? '')} is not a valid user public key`)
  for (const acc of accounts) {
    if (acc === '*') {
      if (accounts.length > 1) issues.push('AllowedAccounts can only be a list of accounts or "*"')
    } else if (!isAccountKey(acc)) issues.push(`Account ${show(acc ?? '')} is not a valid account public key`)
  }
  const xkey = a?.xkey ?? ''
  if (xkey !== '' && !isCurveKey(xkey)) issues.push(`XKey ${show(xkey)} is not a valid public xkey`)
  return issues
}

/** The account's `trace` (message tracing): a publishable destination and a sampling of 0-100. */
export function traceIssues(trace: { dest?: string; sampling?: number } | null | undefined): string[] {
  if (trace === null || trace === undefined) return []
  const issues: string[] = []
  const dest = trace.dest ?? ''
  const problem = subjectProblems(dest)[0]
  if (problem !== undefined) issues.push(`the account Trace.Destination ${problem}`)
  if (hasWildcards(dest)) issues.push(`the account Trace.Destination subject ${show(dest)} is not a valid publish subject`)
  const sampling = trace.sampling ?? 0
  if (sampling < 0 || sampling > 100) issues.push(`the account Trace.Sampling value '${sampling}' is not valid, should be in the range [1..100]`)
  return issues
}

/** ClusterTraffic.Valid as of jwt 2.8.2: empty, `system` or `owner` (`account:<key>` came later). */
export function clusterTrafficIssues(ct: string | undefined): string[] {
  const v = ct ?? ''
  return v === '' || v === 'system' || v === 'owner' ? [] : [`unknown cluster traffic option: ${show(v)}`]
}

interface GoPermission {
  allow?: string[] | null
  deny?: string[] | null
}

/** Permissions.Validate for `default_permissions`: valid subjects, a queue only in subscribe permissions. */
export function permissionIssues(p: { pub?: GoPermission; sub?: GoPermission } | undefined): string[] {
  const issues: string[] = []
  const check = (subj: string, permitQueue: boolean) => {
    const tk = subj.split(' ')
    if (tk.length > 2) return void issues.push(`Permission Subject ${show(subj)} contains too many spaces`)
    for (const t of tk) issues.push(...subjectProblems(t).map((why) => `permission ${why}`))
    if (tk.length === 2 && !permitQueue) issues.push(`Permission Subject ${show(subj)} is not allowed to contain queue`)
  }
  for (const [perm, queue] of [[p?.sub, true], [p?.pub, false]] as const) {
    for (const s of [...(perm?.allow ?? []), ...(perm?.deny ?? [])]) check(s ?? '', queue)
  }
  return issues
}

/** SigningKeys.Validate: every key, scoped or not, is an account public key. */
export function signingKeyIssues(keys: Array<{ key: string }> | null | undefined): string[] {
  return (keys ?? []).filter((k) => !isAccountKey(k.key)).map((k) => `${show(k.key)} is not a valid account signing key`)
}

/** The account-level Info (description and info URL). */
export const accountInfoIssues = (nats: { description?: string; info_url?: string }) =>
  infoIssues('account ', nats.description, nats.info_url)
