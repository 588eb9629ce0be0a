import { show, subjectProblems } from './subjects.ts'

interface GoWeightedMapping {
  subject?: string
  weight?: number
  cluster?: string
}

/**
 * Mapping.Validate (v2/account_claims.go). Weights are uint8 in Go and add up with wrap-around, exactly as
 * here: per cluster the running sum may not pass 100; without a cluster a missing weight counts as 100 and
 * the total may not pass 100. Transform syntax is not checked: nats-server logs a bad mapping and skips
 * it, but still uses the account.
 */
export function mappingIssues(mappings: Record<string, Array<GoWeightedMapping> | null> | null | undefined): string[] {
  const issues: string[] = []
  for (const [from, targets] of Object.entries(mappings ?? {})) {
    const at = `mapping ${show(from)}`
    issues.push(...subjectProblems(from).map((p) => `${at}: ${p}`))
    const perCluster = new Map<string, number>()
    let total = 0
    for (const m of targets ?? []) {
      issues.push(...subjectProblems(m.subject ?? '').map((p) => `${at}: ${p}`))
      const weight = m.weight ?? 0
      const cluster = m.cluster ?? ''
      if (cluster !== '') {
        const t = ((perCluster.get(cluster) ?? 0) + weight) & 0xff
        perCluster.set(cluster, t)
        if (t > 100) issues.push(`${at}: weights in cluster ${show(cluster)} exceed 100%`)
      } else {
        total = (total + (weight === 0 ? 100 : weight)) & 0xff
      }
    }
    if (total > 100) issues.push(`${at}: weights exceed 100%`)
  }
  return issues
}
