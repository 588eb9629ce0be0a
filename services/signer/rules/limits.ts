import { hasWildcards } from './subjects.ts'

/** The limits as Go decoded them: every absent number is 0, so an account without limits allows nothing. */
export interface GoLimits {
  imports?: number
  exports?: number
  wildcards?: boolean
  tiered_limits?: Record<string, unknown> | null
  [k: string]: unknown
}

const NO_LIMIT = -1

/**
 * OperatorLimits.Validate and the limit checks of Account.Validate (v2/account_claims.go). Tiered and
 * non-tiered JetStream limits together are accepted (jwt 2.8 keeps the tiers); a blank tier name is not.
 * Any negative count other than -1 refuses every list, even an empty one, as jwt does. Wildcard exports are
 * checked only when exports are limited.
 */
export function limitIssues(limits: GoLimits | undefined, counts: { imports: number; exports: number; exportSubjects: string[] }, why = ''): string[] {
  const l = limits ?? {}
  const issues: string[] = []
  if (l.tiered_limits && Object.keys(l.tiered_limits).length > 0 && '' in l.tiered_limits) {
    issues.push('Tiered JetStream Limits can not contain a blank "" tier name')
  }
  const imports = l.imports ?? 0
  const exports = l.exports ?? 0
  if (imports !== NO_LIMIT && counts.imports > imports) {
    issues.push(`the account contains more imports (${counts.imports}) than allowed by the operator (${imports})${why}`)
  }
  if (exports !== NO_LIMIT) {
    if (counts.exports > exports) {
      issues.push(`the account contains more exports (${counts.exports}) than allowed by the operator (${exports})${why}`)
    }
    if (l.wildcards !== true && counts.exportSubjects.some(hasWildcards)) {
      issues.push(`the account contains wildcard exports that are not allowed by the operator${why}`)
    }
  }
  return issues
}
