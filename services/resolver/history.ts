import { accountAfter, errors, subjects, type HistoryPage, type HistoryRequest, type MeshService } from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'

// Replies stay well under nats-server's default 1 MiB max_payload; a long history is read in pages.
const PAGE_BYTES = 512 * 1024
const MAX_PAGE = 1000

function pageRequest(body: string): HistoryRequest {
  if (body.trim() === '') return {}
  let req: unknown
  try {
    req = JSON.parse(body)
  } catch {
    throw errors.requestInvalid('body must be empty or JSON like {"after": <seq>}')
  }
  const after = (req as { after?: unknown } | null)?.after
  if (after === undefined) return {}
  if (!Number.isSafeInteger(after) || (after as number) < 0) throw errors.requestInvalid('after must be a whole number')
  return { after: after as number }
}

/**
 * `mesh.resolver.history.<id>`: every version of an account ever accepted, deletions included, oldest first,
 * with when and on which subject it arrived. `more` says another page follows after the last `seq`.
 */
export function addHistoryEndpoint(service: MeshService, store: AccountStore): void {
  service.endpoint({
    name: 'history',
    subject: subjects.resolverHistory(),
    description: 'Every accepted version of an account, oldest first (body {"after": seq} pages on)',
    async handle(msg) {
      const id = accountAfter(subjects.resolverHistory(), msg.subject)
      const { after } = pageRequest(msg.string())
      const entries = await store.historyOf(id, { after, limit: MAX_PAGE + 1 })
      const page = []
      let bytes = 0
      for (const e of entries.slice(0, MAX_PAGE)) {
        bytes += e.jwt.length + 200
        if (page.length > 0 && bytes > PAGE_BYTES) break
        page.push(e)
      }
      return JSON.stringify({ account: id, versions: page, more: page.length < entries.length } satisfies HistoryPage)
    },
  })
}
