import type { Level } from 'level'
import { errors } from '../../shared/index.ts'

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
 * Activation tokens by hash id, as nats-account-server hosted them. One id names one importer, issuer and
 * subject, so a newer token (a later `iat`) replaces an older one, and an older one is refused.
 */
export class ActivationStore {
  private readonly db

  constructor(root: Level<string, string>) {
    this.db = root.sublevel<string, string>('actv', { valueEncoding: 'utf8' })
  }

  async get(hashId: string): Promise<StoredActivation | undefined> {
    const raw = await this.db.get(hashId)
    return raw === undefined ? undefined : (JSON.parse(raw) as StoredActivation)
  }

  /** Stores `a` durably; 'current' when the same token is already there. Throws JWT_OUTDATED for an older one. */
  async put(a: StoredActivation): Promise<'stored' | 'current'> {
    const stored = await this.get(a.hashId)
    if (stored?.token === a.token) return 'current'
    if (stored !== undefined && a.iat < stored.iat) throw errors.jwtOutdated(`activation ${a.hashId}`, stored.iat, a.iat)
    // A sublevel passes options through to classic-level, whose `sync` its typings leave out.
    await this.db.put(a.hashId, JSON.stringify(a), { sync: true } as object)
    return 'stored'
  }
}
