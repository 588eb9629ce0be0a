import { AppError, ErrorCode, validateAccount, type Logger, type NatsConnection } from '../../shared/index.ts'
import type { AccountStore } from './account-store.ts'
import type { AccountPlan, Fallback, StoreSide } from './reconcile-rule.ts'

/** What repairing one account came to; `none` when nothing needed sending after all. */
export type Outcome = 'adopted' | 'reverted' | 'redeleted' | 'pending' | 'unrepairable' | 'failed' | 'none'

export interface RepairDeps {
  nc: NatsConnection
  store: AccountStore
  /** Already bound to the account. */
  log: Logger
  /** No signer answered: the caller retries once one does. */
  signerMissing: () => void
}

/**
 * Carries out one account's plan. Every repair is a change the store reports, delivered by the notifier
 * like any other: an adopted version as a new version, a reverted one as the stored version again, a deleted
 * account as its stored delete request again.
 */
export async function repairAccount(deps: RepairDeps, id: string, side: StoreSide, plan: AccountPlan): Promise<Outcome> {
  try {
    if (plan.action === 'none') return 'none'
    if (plan.action !== 'adopt') return await fallBack(deps, id, plan.action)
    return await adopt(deps, id, side, plan)
  } catch (err) {
    deps.log.error({ err }, 'reconciliation could not repair the account')
    return 'failed'
  }
}

/** Stores a version servers hold if the signer finds it valid and the store takes it; otherwise falls back. */
async function adopt(deps: RepairDeps, id: string, side: StoreSide, plan: AccountPlan): Promise<Outcome> {
  const candidate = plan.candidate!
  try {
    const verdict = await validateAccount(deps.nc, candidate, { account: id, storedIat: side.kind === 'stored' ? side.iat : undefined })
    const result = await deps.store.save(verdict.id, verdict.jwt ?? candidate, { via: 'reconcile' })
    if (result.outcome === 'current') return 'none'
    deps.log.info({ seq: result.change.seq }, 'reconcile: adopted the newer valid version servers hold')
    return 'adopted'
  } catch (e) {
    if (!(e instanceof AppError)) throw e
    if (e.code === ErrorCode.VALIDATION_UNAVAILABLE) {
      deps.signerMissing()
      deps.log.warn('reconcile: no signer to judge the version servers hold; will retry')
      return 'pending'
    }
    deps.log.info({ refused: e.code }, 'reconcile: servers hold a version the store refuses')
    return fallBack(deps, id, plan.fallback)
  }
}

async function fallBack(deps: RepairDeps, id: string, action: Fallback): Promise<Outcome> {
  if (action === 'unrepairable') {
    deps.log.warn('reconcile: servers hold an account the store never held and the signer refuses; only the operator can delete it')
    return 'unrepairable'
  }
  // The store may have changed since the plan: send whatever it holds now, version or deletion.
  const change = (await deps.store.restore(id)) ?? (await deps.store.restoreDeletion(id))
  if (change === undefined) return 'none'
  const outcome = change.kind === 'deleted' ? 'redeleted' : 'reverted'
  deps.log.info({ seq: change.seq }, outcome === 'redeleted' ? 'reconcile: sending the stored deletion again' : 'reconcile: sending the stored version again')
  return outcome
}
