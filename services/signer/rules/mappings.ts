import { show, subjectProblems } from './subjects.ts'
import { transformIssues } from './transforms.ts'

interface GoWeightedMapping {
  subject?: string
  weight?: number
  cluster?: string
}

/**
 * Mapping.Validate (v2/account_claims.go, as nats-server 2.15 applies it): a target without a weight counts
 * as 100%, in a cluster or not, and the weights of one cluster, like those outside any cluster, may not add
 * up to more than 100%. Then nats-server's own transform checks (transforms.ts).
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
      const weight = m.weight || 100
      const cluster = m.cluster ?? ''
      if (cluster !== '') perCluster.set(cluster, (perCluster.get(cluster) ?? 0) + weight)
      else total += weight
    }
    for (const [cluster, sum] of perCluster) {
      if (sum > 100) issues.push(`${at}: weights in cluster ${show(cluster)} exceed 100%`)
    }
    if (total > 100) issues.push(`${at}: weights exceed 100%`)
    issues.push(...transformIssues(from, (targets ?? []).map((m) => m.subject ?? '')))
  }
  return issues
}
