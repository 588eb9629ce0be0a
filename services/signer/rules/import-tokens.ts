import { isAccountKey } from '../../../shared/index.ts'
import { decodeGoClaims } from '../go-claims.ts'
import type { GoExport } from './exports.ts'
import { decodeActivation, type GoActivation, type GoImport } from './imports.ts'
import { isContainedIn, show } from './subjects.ts'

/** What the signer needs of an exporter's stored JWT: its signing keys and exports. */
export interface ExporterView {
  id: string
  signingKeys: Set<string>
  exports: GoExport[]
}

/**
 * Reads an exporter's stored JWT. The resolver validated it when it was stored, so its signature is not
 * checked again; anything unreadable counts as not held (undefined), never as a reason to refuse.
 */
export function exporterView(id: string, jwt: string): ExporterView | undefined {
  const payload = jwt.split('.')[1]
  if (payload === undefined) return undefined
  const go = decodeGoClaims(Buffer.from(payload, 'base64url').toString('utf8'), 'account')
  if (!go.ok || go.kind !== 'account' || go.claims.sub !== id) return undefined
  const nats = go.claims.nats as { signing_keys?: Array<{ key: string }> | null; exports?: Array<GoExport | null> | null }
  return {
    id,
    signingKeys: new Set((nats.signing_keys ?? []).map((k) => k.key)),
    exports: (nats.exports ?? []).filter((e): e is GoExport => e !== null),
  }
}

/**
 * Import tokens checked against the exporter's JWT the resolver holds, as nats-server checks them when it
 * uses the import (it drops the import otherwise; we refuse the account, a documented strictness): an
 * export contains the import; if it requires a token, the token is issued by the exporter, or names it as
 * `issuer_account` and is signed by one of its signing keys, and the importer is not revoked. A public
 * export (no token_req) ignores the token. Imports from an exporter we do not hold are left as they are.
 */
export function importTokenIssues(importer: string, imports: Array<GoImport | null>, exporters: Readonly<Record<string, string>>): string[] {
  const issues: string[] = []
  const views = new Map<string, ExporterView | undefined>()
  imports.forEach((imp, i) => {
    if (imp === null || (imp.token ?? '') === '' || !isAccountKey(imp.account) || !Object.hasOwn(exporters, imp.account)) return
    if (!views.has(imp.account)) views.set(imp.account, exporterView(imp.account, exporters[imp.account]!))
    const exporter = views.get(imp.account)
    if (exporter === undefined) return
    const why = tokenAgainstExporter(importer, imp, exporter)
    if (why !== undefined) issues.push(`import ${i} ${show(imp.subject ?? '')}: ${why}`)
  })
  return issues
}

function tokenAgainstExporter(importer: string, imp: GoImport, exporter: ExporterView): string | undefined {
  const act = decodeActivation(imp.token!)
  if (act === undefined) return undefined // already a content issue
  const n = act.go.nats as GoActivation
  const iss = act.go.iss ?? ''
  const issuerAccount = act.version === 1 ? (act.go.issuer_account ?? '') : (n.issuer_account ?? '')
  const subject = imp.subject ?? ''
  const exp = exporter.exports.find((e) => e.type === imp.type && isContainedIn(subject, e.subject ?? ''))
  if (exp === undefined) return `the exporting account has no ${imp.type ?? ''} export containing ${show(subject)}`
  // A public export ignores the token, so there is nothing more a server would check.
  if (exp.token_req !== true) return undefined
  if (issuerAccount !== '' && issuerAccount !== exporter.id) return `activation token names ${issuerAccount} as issuer, not the exporter`
  if (iss !== exporter.id && !exporter.signingKeys.has(iss)) {
    return `activation token is signed by ${iss}, which is not a signing key of the exporting account ${exporter.id}`
  }
  const revoked = [exp.revocations?.[importer], exp.revocations?.['*']].some((at) => at !== undefined && at >= (act.go.iat ?? 0))
  if (revoked) return `the export ${show(exp.subject ?? '')} revoked this importer's activation`
  return undefined
}
