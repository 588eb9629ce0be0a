import { LevelStore } from './store/level.ts'
import type { ResolverStore, StoreOptions } from './store/types.ts'

// The endpoints' view of the store, under the name they have always used: any engine (see store/).
export type {
  DeleteRequest,
  DeleteResult,
  HistoryEntry,
  OutboxEntry,
  SaveOrigin,
  SaveResult,
  StoredAccount,
  Tombstone,
} from './store/types.ts'
export type AccountStore = ResolverStore

/** Opens a `level` store directly (tests, bench seeding); the service picks its engine in store/index.ts. */
export const AccountStore = {
  open: (dir: string, opts: StoreOptions = {}) => LevelStore.open(dir, opts),
}
