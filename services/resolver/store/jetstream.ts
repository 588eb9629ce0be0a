import { setTimeout as delay } from 'node:timers/promises'
import { headers } from '@nats-io/nats-core'
import { JetStreamApiError, type PubAck } from '@nats-io/jetstream'
import { AppError, errors, isEnforcing, peekClaims, type Logger } from '../../../shared/index.ts'
import type { StoredActivation } from './activation-store.ts'
import { AccountLocks } from './account-locks.ts'
import { Header, openStorage, STREAM, streamSubjects, WRONG_LAST_SEQUENCE, type StorageConnection } from './jetstream-stream.ts'
import { StreamView } from './jetstream-view.ts'
import { decideActivation, decideSave, stampOf } from './rules.ts'
import { LocalTables } from './tables.ts'
import type { ActivationTable, DeleteRequest, DeleteResult, HistoryEntry, OnChange, OutboxEntry, ResolverStore, SaveOrigin, SaveResult, StoreOptions, StoredAccount, Tombstone } from './types.ts'

const ATTEMPTS = 8
/** How long a lookup miss waits for the stream's word, and then for this view to apply it. */
const RECHECK_MS = 1000

interface Last {
  seq: number
  deleted: boolean
  body: string
}

/**
 * The `jetstream` engine: the stream in the storage account is the source of truth; this instance's
 * LevelDB is a view of it (StreamView) that every read uses. A write reads the account's last message from
 * the stream, applies the same rules as the level engine, and publishes with the sequence it read as the
 * expected last one: when another instance wrote in between, the publish is refused and the write starts
 * over, so two instances cannot both win. Success means JetStream acknowledged it (stored on a quorum).
 */
export class JetStreamStore implements ResolverStore {
  private readonly locks = new AccountLocks()
  private readonly rechecks = new Map<string, Promise<StoredAccount | undefined>>()
  private onChange: OnChange
  readonly activations: ActivationTable

  private constructor(
    readonly storage: StorageConnection,
    readonly view: StreamView,
    private readonly log: Logger,
    opts: StoreOptions,
  ) {
    this.onChange = opts.onChange ?? (() => {})
    this.activations = {
      get: (hashId) => view.tables.activations.get(hashId),
      put: (a) => this.putActivation(a),
      entries: () => view.tables.activations.entries(),
    }
  }

  static async open(
    dir: string,
    cfg: { servers: string[]; creds: string; replicas: number | undefined },
    log: Logger,
    opts: StoreOptions = {},
  ): Promise<JetStreamStore> {
    const tables = await LocalTables.open(dir, opts.cacheSize ?? 100_000)
    const view = new StreamView(tables, log.child({ part: 'stream-view' }))
    await view.load()
    let storage: StorageConnection
    try {
      storage = await openStorage(cfg, log)
    } catch (e) {
      await tables.close()
      throw e
    }
    await view.start(storage.js, storage.jsm)
    return new JetStreamStore(storage, view, log, opts)
  }

  /** Waits until the view holds everything the stream held when asked: before an instance answers lookups. */
  async catchUp(ms = 120_000): Promise<boolean> {
    let last: number
    try {
      last = (await this.storage.jsm.streams.info(STREAM)).state.last_seq
    } catch (e) {
      this.log.warn({ err: { message: (e as Error).message } }, 'stream unavailable: answering from the local view as it is')
      return false
    }
    // A view of another stream (this one was recreated, or restored from an older backup): its sequences mean
    // nothing here, even once the stream has grown past them again.
    const other = last < this.view.applied ? `the stream ends at ${last}` : (await this.view.sameStream(this.storage.jsm)) ? undefined : 'the stream holds another message there'
    if (other !== undefined) {
      await this.close()
      throw errors.config([
        `RESOLVER_DATA_DIR: the local view has applied up to ${this.view.applied} but ${other} (recreated or restored?); start with an empty RESOLVER_DATA_DIR`,
      ])
    }
    return this.view.caughtUp(last, ms)
  }

  listen(onChange: OnChange): void {
    this.onChange = onChange
  }

  get ready(): boolean {
    return this.view.tables.rdb.ready
  }

  storeHash(): Buffer {
    return this.view.tables.accounts.storeHash()
  }

  cached(id: string): StoredAccount | undefined {
    return this.view.tables.accounts.cached(id)
  }

  readNow(id: string): StoredAccount | undefined {
    return this.view.tables.accounts.readNow(id)
  }

  async get(id: string): Promise<StoredAccount | undefined> {
    return this.readNow(id)
  }

  // A user's first connect right after `nsc push` acked on another instance must not be refused because this
  // view is a few ms behind: a miss asks the stream once (concurrent misses of one id share the question).
  recheckMissing(id: string): Promise<StoredAccount | undefined> {
    let pending = this.rechecks.get(id)
    if (pending === undefined) {
      pending = this.view
        .reachLast(this.storage.jsm, streamSubjects.version(id), RECHECK_MS)
        .then((held) => (held ? this.readNow(id) : undefined))
        .finally(() => this.rechecks.delete(id))
      this.rechecks.set(id, pending)
    }
    return pending
  }

  async tombstoneOf(id: string): Promise<Tombstone | undefined> {
    return this.view.tables.tombs.get(id)
  }

  save(id: string, jwt: string, origin: SaveOrigin): Promise<SaveResult> {
    return this.locks.exclusive(id, async () => {
      const next = stampOf(id, jwt)
      for (let attempt = 1; ; attempt++) {
        const last = await this.last(streamSubjects.version(id))
        const stored = last === undefined || last.deleted ? undefined : stampOf(id, last.body)
        const tomb = last?.deleted ? { iat: peekClaims(last.body).iat ?? 0 } : undefined
        if (decideSave(id, stored, tomb, next) === 'current') return { outcome: 'current' }
        const kind = stored === undefined ? 'created' : 'updated'
        const enforce = isEnforcing(stored?.jwt, jwt)
        const ack = await this.publish(streamSubjects.version(id), jwt, { kind, via: origin.via, enforce }, last?.seq ?? 0, attempt)
        if (ack === undefined) continue
        return { outcome: 'stored', change: await this.settled(ack, { id, kind, jwt, ...(enforce ? { enforce } : {}) }) }
      }
    })
  }

  /**
   * The request is checked against the shared replay memory, each stored account gets a deletion message
   * (with the same optimistic check as a save), then the request is remembered for every instance.
   */
  remove(req: DeleteRequest): Promise<DeleteResult> {
    const ids = [...new Set(req.accounts)].sort()
    return this.locks.exclusiveAll(ids, async () => {
      if ((await this.last(streamSubjects.replay(req.hash))) !== undefined) throw errors.requestReplayed()
      const changes: OutboxEntry[] = []
      for (const id of ids) {
        for (let attempt = 1; ; attempt++) {
          const last = await this.last(streamSubjects.version(id))
          if (last === undefined || last.deleted) break
          const ack = await this.publish(streamSubjects.version(id), req.token, { kind: 'deleted', via: req.via }, last.seq, attempt)
          if (ack === undefined) continue
          changes.push(await this.settled(ack, { id, kind: 'deleted', jwt: req.token }))
          break
        }
      }
      // Published only if absent: of two instances handed the same request at once, one hears it was used.
      const remembered = await this.publish(streamSubjects.replay(req.hash), String(req.rememberUntil), { kind: 'replay', via: req.via }, 0, 1)
      if (remembered === undefined) throw errors.requestReplayed()
      await this.view.caughtUp(remembered.seq)
      return { deleted: ids.length, changes }
    })
  }

  restore(id: string): Promise<OutboxEntry | undefined> {
    return this.locks.exclusive(id, async () => {
      const stored = this.readNow(id)
      if (stored === undefined) return undefined
      const ack = await this.publish(streamSubjects.restore(id), '', { kind: 'restore', via: 'restore', rollup: true }, undefined, ATTEMPTS)
      const change: OutboxEntry = { seq: ack!.seq, id, kind: 'restore', jwt: stored.jwt, at: new Date().toISOString() }
      this.onChange(change)
      return change
    })
  }

  /** A restore marker whose kind says `deleted`: the delivery consumer sends the tombstone's request. */
  restoreDeletion(id: string): Promise<OutboxEntry | undefined> {
    return this.locks.exclusive(id, async () => {
      const tomb = this.readNow(id) === undefined ? await this.tombstoneOf(id) : undefined
      if (tomb === undefined || tomb.token === '') return undefined
      const ack = await this.publish(streamSubjects.restore(id), '', { kind: 'deleted', via: 'restore', rollup: true }, undefined, ATTEMPTS)
      const change: OutboxEntry = { seq: ack!.seq, id, kind: 'deleted', jwt: tomb.token, at: new Date().toISOString() }
      this.onChange(change)
      return change
    })
  }

  ids(): AsyncIterable<string> {
    return this.view.tables.accounts.ids()
  }

  entries(): AsyncIterable<[string, string]> {
    return this.view.tables.accounts.entries()
  }

  liveIds(now?: number): Promise<string[]> {
    return this.view.tables.accounts.liveIds(now)
  }

  tombstoneEntries(): AsyncIterable<Tombstone> {
    return this.view.tables.tombs.entries()
  }

  historyOf(id: string, opts?: { after?: number; limit?: number }): Promise<HistoryEntry[]> {
    return this.view.tables.log.historyOf(id, opts)
  }

  async close(): Promise<void> {
    await this.view.stop()
    if (!this.storage.nc.isClosed()) await this.storage.nc.close()
    await this.view.tables.close()
  }

  private putActivation(a: StoredActivation): Promise<'stored' | 'current'> {
    return this.locks.exclusive(`actv:${a.hashId}`, async () => {
      for (let attempt = 1; ; attempt++) {
        const last = await this.last(streamSubjects.activation(a.hashId))
        const stored = last === undefined ? undefined : (JSON.parse(last.body) as StoredActivation)
        if (decideActivation(stored, a) === 'current') return 'current'
        const ack = await this.publish(streamSubjects.activation(a.hashId), JSON.stringify(a), { kind: 'activation', via: 'activation-put' }, last?.seq ?? 0, attempt)
        if (ack === undefined) continue
        await this.view.caughtUp(ack.seq)
        return 'stored'
      }
    })
  }

  /** The last message on `subject`, read from the stream (not the view, which may lag). */
  private async last(subject: string): Promise<Last | undefined> {
    try {
      const m = await this.storage.jsm.streams.getMessage(STREAM, { last_by_subj: subject })
      if (m === null) return undefined
      return { seq: m.seq, deleted: m.header?.get(Header.kind) === 'deleted', body: m.string() }
    } catch (e) {
      throw unavailable(e)
    }
  }

  /** Publishes once; undefined when another instance wrote `subject` since we read it (read again). */
  private async publish(
    subject: string,
    body: string,
    h: { kind: string; via: string; enforce?: boolean; rollup?: boolean },
    expectLast: number | undefined,
    attempt: number,
  ): Promise<PubAck | undefined> {
    const hdrs = headers()
    hdrs.set(Header.kind, h.kind)
    hdrs.set(Header.via, h.via)
    hdrs.set(Header.at, new Date().toISOString())
    if (h.enforce === true) hdrs.set(Header.enforce, '1')
    if (h.rollup === true) hdrs.set('Nats-Rollup', 'sub') // replaces the subject's earlier messages: restore markers
    try {
      return await this.storage.js.publish(subject, body, {
        headers: hdrs,
        ...(expectLast === undefined ? {} : { expect: { lastSubjectSequence: expectLast } }),
      })
    } catch (e) {
      if (e instanceof JetStreamApiError && e.code === WRONG_LAST_SEQUENCE && attempt < ATTEMPTS) {
        await delay(Math.random() * 5 * attempt) // two instances racing on one account: let one get ahead
        return undefined
      }
      throw unavailable(e)
    }
  }

  /** After the ack: the view holds the write before the caller replies, and the change is reported. */
  private async settled(ack: PubAck, c: Pick<OutboxEntry, 'id' | 'kind' | 'jwt' | 'enforce'>): Promise<OutboxEntry> {
    await this.view.caughtUp(ack.seq)
    const change: OutboxEntry = { ...c, seq: ack.seq, at: new Date().toISOString() }
    this.onChange(change)
    return change
  }
}

function unavailable(e: unknown): AppError {
  if (e instanceof AppError) return e
  return errors.storeUnavailable(`jetstream: ${(e as Error).message}`, e)
}
