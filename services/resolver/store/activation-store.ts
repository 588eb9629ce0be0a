import type { Op, ResolverDb } from './resolver-db.ts'
import { decideActivation } from './rules.ts'

/** An activation token as kept: the token itself plus what the signer read from it. */
export interface StoredActivation {
  /** The hash id (protocol.md §5) it is found by. */
  hashId: string
  token: string
  iat: number
  /** The exporting account (the `iss`, or `issuer_account` when a signing key issued it). */
  exporter: string
  /** The importing account (`sub`). */
  importer: string
  subject: string
  kind: string
  at: string
}

/**
 * Activation tokens by hash id, as nats-account-server hosted them, in the local LevelDB. One id names one
 * importer, issuer and subject, so a newer token (a later `iat`) replaces an older one (decideActivation).
 */
export class ActivationStore {
  constructor(private readonly rdb: ResolverDb) {}

  async get(hashId: string): Promise<StoredActivation | undefined> {
    const raw = await this.rdb.actv.get(hashId)
    return raw === undefined ? undefined : (JSON.parse(raw) as StoredActivation)
  }

  async put(a: StoredActivation): Promise<'stored' | 'current'> {
    if (decideActivation(await this.get(a.hashId), a) === 'current') return 'current'
    await this.rdb.synced.commit([this.putOp(a)])
    return 'stored'
  }

  putOp(a: StoredActivation): Op {
    return { type: 'put', sublevel: this.rdb.actv, key: a.hashId, value: JSON.stringify(a) }
  }

  async *entries(): AsyncIterable<StoredActivation> {
    for await (const v of this.rdb.actv.values()) yield JSON.parse(v) as StoredActivation
  }
}
