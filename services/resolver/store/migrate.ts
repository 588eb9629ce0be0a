import { headers } from '@nats-io/nats-core'
import { nowSeconds, type Logger } from '../../../shared/index.ts'
import { Header, STREAM, streamSubjects, type StorageConnection } from './jetstream-stream.ts'
import type { LevelStore } from './level.ts'
import { stillRemembered } from './rules.ts'

export interface MigrationReport {
  accounts: number
  versions: number
  /** Accounts the stream already had messages for: left as the stream has them. */
  skipped: string[]
  replays: number
  activations: number
}

/**
 * Copies a level store into the jetstream engine's stream: each account's whole history (versions and
 * deletions, in order, with when and how each arrived), the delete requests still remembered, and the
 * activation tokens. An account the stream already knows is left alone, so a second run copies nothing twice.
 * Every copied account is delivered again once a jetstream resolver runs: servers apply the same JWT again.
 */
export async function migrateLevelToStream(level: LevelStore, storage: StorageConnection, log: Logger): Promise<MigrationReport> {
  const report: MigrationReport = { accounts: 0, versions: 0, skipped: [], replays: 0, activations: 0 }
  const ids = new Set<string>()
  for await (const id of level.ids()) ids.add(id)
  for await (const t of level.tombstoneEntries()) ids.add(t.id)
  for (const id of [...ids].sort()) {
    const subject = streamSubjects.version(id)
    if ((await storage.jsm.streams.getMessage(STREAM, { last_by_subj: subject })) !== null) {
      report.skipped.push(id)
      continue
    }
    let history = await level.historyOf(id)
    if (history.length === 0) {
      // a store older than its history: the current version or the deletion is all there is
      const stored = level.readNow(id)
      const tomb = await level.tombstoneOf(id)
      history = stored
        ? [{ seq: 0, kind: 'created', jwt: stored.jwt, iat: stored.iat, at: new Date().toISOString(), via: 'migration' }]
        : tomb
          ? [{ seq: 0, kind: 'deleted', jwt: tomb.token, iat: tomb.iat, at: tomb.at, via: 'migration' }]
          : []
    }
    let last = 0
    for (const e of history) {
      const h = headers()
      h.set(Header.kind, e.kind)
      h.set(Header.via, e.via)
      h.set(Header.at, e.at)
      last = (await storage.js.publish(subject, e.jwt, { headers: h, expect: { lastSubjectSequence: last } })).seq
      report.versions++
    }
    report.accounts++
  }
  const now = nowSeconds()
  for await (const [hash, until] of level.replays()) {
    if (!stillRemembered(until, now)) continue
    if ((await storage.jsm.streams.getMessage(STREAM, { last_by_subj: streamSubjects.replay(hash) })) !== null) continue
    await storage.js.publish(streamSubjects.replay(hash), String(until), { expect: { lastSubjectSequence: 0 } })
    report.replays++
  }
  for await (const a of level.activations.entries()) {
    if ((await storage.jsm.streams.getMessage(STREAM, { last_by_subj: streamSubjects.activation(a.hashId) })) !== null) continue
    await storage.js.publish(streamSubjects.activation(a.hashId), JSON.stringify(a), { expect: { lastSubjectSequence: 0 } })
    report.activations++
  }
  log.info({ ...report, skipped: report.skipped.length }, 'level store copied into the stream')
  return report
}
