import { AppError, peekClaims, type Logger } from '../../shared/index.ts'
import type { ResolverStore } from './store/types.ts'

/**
 * Stores SYSTEM_ACCOUNT_JWT at start. A newer system account already in the store (pushed since) wins and
 * is kept: the file is the seed of a fresh store, not an override.
 */
export async function storeSystemAccount(store: ResolverStore, jwt: string, log: Logger): Promise<void> {
  const id = peekClaims(jwt).sub
  try {
    const { outcome } = await store.save(id, jwt, { via: 'startup' })
    log.info({ account: id, outcome }, 'system account stored')
  } catch (e) {
    if (e instanceof AppError && e.code === 'STORE_UNAVAILABLE') {
      return void log.warn({ account: id, err: { message: e.message } }, 'SYSTEM_ACCOUNT_JWT not stored now: the store is unavailable')
    }
    if (!(e instanceof AppError && e.code === 'JWT_OUTDATED')) throw e
    log.warn({ account: id }, 'SYSTEM_ACCOUNT_JWT is older than the stored system account; keeping the stored one')
  }
}
