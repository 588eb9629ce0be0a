import { AppError, isAccountKey } from '../../../shared/index.ts'
import { decodeGoToken, type GoToken } from '../go-token.ts'
import { containedPairs } from './overlap.ts'
import { isContainedIn, renamedToSubject, renamingProblems, show, subjectProblems } from './subjects.ts'

/** An import as Go decoded it (go-claims.ts); absent fields are Go's zero values. */
export interface GoImport {
  subject?: string
  account?: string
  token?: string
  to?: string
  local_subject?: string
  type?: 'stream' | 'service'
  share?: boolean
  allow_trace?: boolean
}

/** The activation part of a token, as Go decoded it. */
export interface GoActivation {
  subject?: string
  kind?: 'stream' | 'service'
  issuer_account?: string
}

/** The subject a service import answers on locally: jwt's key for the overlap check. */
export const localServiceSubject = (imp: GoImport) =>
  (imp.to ?? '') || renamedToSubject(imp.local_subject ?? '') || (imp.subject ?? '')

/**
 * Imports.Validate (v2/imports.go, jwt 2.8.1 and later): each import, and no two service imports from one
 * account whose local subjects overlap. The same subject imported from two accounts is fine.
 */
export function importIssues(importer: string, imports: Array<GoImport | null> | null | undefined): string[] {
  const issues: string[] = []
  const serviceSubjects = new Map<string, string[]>()
  ;(imports ?? []).forEach((imp, i) => {
    if (imp === null) return void issues.push(`import ${i}: null import is not allowed`)
    if (imp.type === 'service') {
      const account = imp.account ?? ''
      const list = serviceSubjects.get(account) ?? []
      serviceSubjects.set(account, list)
      list.push(localServiceSubject(imp))
    }
    issues.push(...oneImport(importer, imp).map((why) => `import ${i} ${show(imp.subject ?? '')}: ${why}`))
  })
  for (const [account, subjects] of serviceSubjects) {
    for (const [inner, outer] of containedPairs(subjects)) {
      issues.push(`overlapping subject namespace for ${show(inner)} and ${show(outer)} imported from ${account.slice(0, 12)}…`)
    }
  }
  return issues
}

function oneImport(importer: string, imp: GoImport): string[] {
  const issues: string[] = []
  const subject = imp.subject ?? ''
  if (imp.type === undefined) issues.push('invalid import type')
  if (imp.type === 'service' && imp.allow_trace === true) issues.push('AllowTrace only valid for stream import')
  if ((imp.account ?? '') === '') issues.push('account to import from is not specified')
  issues.push(...subjectProblems(subject))
  if ((imp.local_subject ?? '') !== '') {
    issues.push(...renamingProblems(imp.local_subject!, subject).map((p) => `local_subject: ${p}`))
    if ((imp.to ?? '') !== '') issues.push('Local Subject replaces To')
  }
  if (imp.share === true && imp.type !== 'service') issues.push('sharing information (for latency tracking) is only valid for services')
  if ((imp.token ?? '') !== '') issues.push(...tokenIssues(importer, imp))
  return issues
}

// The content check and the exporter check read the same tokens: keep the last few decoded (a token's
// verdict never changes), so each signature is verified once per push. Only tokens of ordinary size are
// kept, so the memory stays small whatever a hostile account carries.
const decoded = new Map<string, GoToken | undefined>()
const MAX_DECODED = 256
const MAX_KEPT_TOKEN = 4096

/** Decodes an import's activation token as jwt's DecodeActivationClaims would; undefined when Go could not. */
export function decodeActivation(token: string): GoToken | undefined {
  if (decoded.has(token)) return decoded.get(token)
  let result: GoToken | undefined
  try {
    const t = decodeGoToken(token, 'activation')
    result = t.kind === 'activation' ? t : undefined
  } catch (e) {
    if (!(e instanceof AppError)) throw e
  }
  if (token.length > MAX_KEPT_TOKEN) return result
  if (decoded.size >= MAX_DECODED) decoded.delete(decoded.keys().next().value!)
  decoded.set(token, result)
  return result
}

/** The token checks jwt makes within the importer's validation (no time checks, no exporter needed). */
function tokenIssues(importer: string, imp: GoImport): string[] {
  const act = decodeActivation(imp.token!)
  if (act === undefined) return ['contains an invalid activation token']
  const issues: string[] = []
  const n = act.go.nats as GoActivation
  const issuerAccount = act.version === 1 ? (act.go.issuer_account ?? '') : (n.issuer_account ?? '')
  if (act.go.iss !== imp.account && issuerAccount !== imp.account) issues.push("activation token doesn't match account for import")
  if (act.go.sub !== importer) issues.push("activation token doesn't match account it is being included in")
  if (n.kind !== imp.type) issues.push(`mismatch between token import type ${show(n.kind ?? 'unknown')} and type of import`)
  if (n.kind === undefined) issues.push('activation token has an invalid import type')
  issues.push(...subjectProblems(n.subject ?? '').map((p) => `activation token ${p}`))
  if (issuerAccount !== '' && !isAccountKey(issuerAccount)) issues.push('activation token account_id is not an account public key')
  const used = imp.type === 'service' && (imp.to ?? '') !== '' ? imp.to! : (imp.subject ?? '')
  if (!isContainedIn(used, n.subject ?? '')) {
    issues.push(`activation token import subject ${show(n.subject ?? '')} doesn't match import`)
  }
  return issues
}
