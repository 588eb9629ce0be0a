import { infoIssues } from './info.ts'
import { containedPairs } from './overlap.ts'
import { hasWildcards, show, subjectProblems } from './subjects.ts'

/** An export as Go decoded it (go-claims.ts); absent fields are Go's zero values. */
export interface GoExport {
  subject?: string
  type?: 'stream' | 'service'
  token_req?: boolean
  revocations?: Record<string, number> | null
  response_type?: string
  response_threshold?: number
  service_latency?: { sampling?: number; results?: string } | null
  account_token_position?: number
  allow_trace?: boolean
  description?: string
  info_url?: string
}

const RESPONSE_TYPES = new Set(['', 'Singleton', 'Stream', 'Chunked'])

/** Exports.Validate (v2/exports.go): each export, then no export of one kind contained in another. */
export function exportIssues(exports: Array<GoExport | null> | null | undefined): string[] {
  const issues: string[] = []
  const byKind = { service: [] as string[], stream: [] as string[] }
  ;(exports ?? []).forEach((e, i) => {
    if (e === null) return void issues.push(`export ${i}: null export is not allowed`)
    // jwt files anything that is not a service, an invalid type included, with the streams
    byKind[e.type === 'service' ? 'service' : 'stream'].push(e.subject ?? '')
    issues.push(...oneExport(e).map((why) => `export ${i} ${show(e.subject ?? '')}: ${why}`))
  })
  for (const kind of ['service', 'stream'] as const) {
    for (const [inner, outer] of containedPairs(byKind[kind])) {
      issues.push(`${kind} export subject ${show(outer)} already exports ${show(inner)}`)
    }
  }
  return issues
}

function oneExport(e: GoExport): string[] {
  const issues: string[] = []
  const service = e.type === 'service'
  const subject = e.subject ?? ''
  if (e.type === undefined) issues.push('invalid export type')
  if (service && !RESPONSE_TYPES.has(e.response_type ?? '')) issues.push(`invalid response type for service: ${show(e.response_type)}`)
  if (e.type === 'stream') {
    if ((e.response_type ?? '') !== '') issues.push(`invalid response type for stream: ${show(e.response_type)}`)
    if (e.allow_trace === true) issues.push('AllowTrace only valid for service export')
  }
  const latency = e.service_latency
  if (latency !== undefined && latency !== null) {
    if (!service) issues.push('latency tracking only permitted for services')
    // 0 is jwt's `headers` sampling (the caller's headers decide), written 0 or "headers"
    const sampling = latency.sampling ?? 0
    if (sampling !== 0 && (sampling < 1 || sampling > 100)) issues.push('sampling percentage needs to be between 1-100')
    const results = latency.results ?? ''
    issues.push(...subjectProblems(results).map((p) => `latency results ${p}`))
    if (hasWildcards(results)) issues.push('results subject can not contain wildcards')
  }
  const threshold = e.response_threshold ?? 0
  if (threshold < 0) issues.push('negative response threshold is invalid')
  if (threshold > 0 && !service) issues.push('response threshold only valid for services')
  issues.push(...subjectProblems(subject))
  const pos = e.account_token_position ?? 0
  if (pos > 0) {
    const tokens = subject.split('.')
    if (!hasWildcards(subject)) issues.push('Account Token Position can only be used with wildcard subjects')
    else if (pos > tokens.length) issues.push(`Account Token Position ${pos} exceeds length of subject`)
    else if (tokens[pos - 1] !== '*') issues.push(`Account Token Position ${pos} matches ${show(tokens[pos - 1])} but must match a *`)
  }
  issues.push(...infoIssues('', e.description, e.info_url))
  return issues
}
