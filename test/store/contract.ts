import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { createAccount, createOperator } from '@nats-io/nkeys'
import { AppError } from '../../shared/index.ts'
import { StoreHash } from '../../services/resolver/store/store-hash.ts'
import type { DeleteRequest, OutboxEntry, ResolverStore, StoreOptions } from '../../services/resolver/store/types.ts'
import { accountJwt, signClaims } from '../kit/jwts.ts'
import { tempDir } from '../kit/fixtures.ts'
import { waitFor } from '../kit/wait-for.ts'

/** Opens an engine on `dir`; opening the same `dir` again reopens what was written there. */
export type StoreFactory = (t: Test, dir: string, opts: StoreOptions) => Promise<ResolverStore>

const now = () => Math.floor(Date.now() / 1000)
const operator = createOperator()
const newId = () => createAccount().getPublicKey()
const version = (id: string, iat: number, extra: Record<string, unknown> = {}) => accountJwt(operator, id, {}, { iat, ...extra })

function deleteRequest(accounts: string[], iat = now()): DeleteRequest {
  const token = signClaims({ sub: operator.getPublicKey(), iat, nats: { accounts, type: 'generic' } }, operator)
  return {
    token,
    accounts,
    iat,
    hash: createHash('sha256').update(token).digest('hex'),
    rememberUntil: now() + 600,
    via: 'test',
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'resolved'
  } catch (e) {
    return e instanceof AppError ? e.code : `threw ${(e as Error).message}`
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/**
 * The behaviour every store engine must have, run against each (abstract-level style): reads, the save and
 * delete rules, one change report per stored change, history, activations, and durability across a reopen.
 */
export function storeContract(t: Test, name: string, factory: StoreFactory): Promise<unknown> {
  const open = async (t: Test, opts: StoreOptions = {}) => {
    const dir = await tempDir(t, `store-${name}`)
    const changes: OutboxEntry[] = []
    const store = await factory(t, dir, { ...opts, onChange: (c) => changes.push(c) })
    t.teardown(() => store.close())
    return { dir, store, changes }
  }

  return t.test(`store contract: ${name}`, async (t) => {
    await t.test('save stores a version, reads find it, the same token again is current', async (t) => {
      const { store, changes } = await open(t)
      const id = newId()
      const jwt = version(id, now())
      t.equal(store.readNow(id), undefined, 'unknown before')
      const r = await store.save(id, jwt, { via: 'test' })
      t.equal(r.outcome, 'stored')
      t.equal(store.readNow(id)?.jwt, jwt)
      t.equal((await store.get(id))?.jwt, jwt)
      t.equal((await store.save(id, jwt, { via: 'test' })).outcome, 'current')
      t.same(
        changes.map((c) => [c.id, c.kind, c.jwt]),
        [[id, 'created', jwt]],
        'one change reported, for the stored version only',
      )
      t.same(await collect(store.ids()), [id])
    })

    await t.test('the newest iat wins: newer and equal-iat versions replace, older ones are refused', async (t) => {
      const { store, changes } = await open(t)
      const id = newId()
      const [v1, v2, v2b, old] = [version(id, 100), version(id, 200), version(id, 200, { name: 'b' }), version(id, 150)]
      await store.save(id, v1, { via: 'test' })
      t.equal((await store.save(id, v2, { via: 'test' })).outcome, 'stored')
      t.equal((await store.save(id, v2b, { via: 'test' })).outcome, 'stored', 'equal iat, other bytes')
      t.equal(await codeOf(store.save(id, old, { via: 'test' })), 'JWT_OUTDATED')
      t.equal(store.readNow(id)?.jwt, v2b)
      t.same(changes.map((c) => c.kind), ['created', 'updated', 'updated'])
    })

    await t.test('versions of one account saved at once end with the newest stored', async (t) => {
      const { store } = await open(t)
      const id = newId()
      const versions = Array.from({ length: 30 }, (_, i) => version(id, 1000 + i))
      const shuffled = [...versions].sort(() => Math.random() - 0.5)
      await Promise.allSettled(shuffled.map((jwt) => store.save(id, jwt, { via: 'test' })))
      t.equal(store.readNow(id)?.jwt, versions.at(-1))
    })

    await t.test('remove tombstones what it names, remembers the request and refuses a replay', async (t) => {
      const { store, changes } = await open(t)
      const [a, b, missing] = [newId(), newId(), newId()]
      await store.save(a, version(a, now() - 10), { via: 'test' })
      await store.save(b, version(b, now() - 10), { via: 'test' })
      const req = deleteRequest([a, b, missing])
      const r = await store.remove(req)
      t.equal(r.deleted, 3, 'a missing account counts as deleted, as nats-server counts it')
      t.same(r.changes.map((c) => c.id).sort(), [a, b].sort())
      t.equal(store.readNow(a), undefined)
      t.equal((await store.tombstoneOf(a))?.request, req.hash)
      t.equal(await store.tombstoneOf(missing), undefined, 'nothing stored, nothing tombstoned')
      t.same(await collect(store.ids()), [])
      t.same((await collect(store.tombstoneEntries())).map((x) => x.id).sort(), [a, b].sort())
      t.equal(await codeOf(store.remove(req)), 'REQUEST_REPLAYED')
      t.equal(changes.filter((c) => c.kind === 'deleted').length, 2)
    })

    await t.test('after a deletion only a JWT issued since brings the account back', async (t) => {
      const { store } = await open(t)
      const id = newId()
      await store.save(id, version(id, now() - 100), { via: 'test' })
      await store.remove(deleteRequest([id], now() - 50))
      t.equal(await codeOf(store.save(id, version(id, now() - 60), { via: 'test' })), 'JWT_OUTDATED')
      const back = version(id, now())
      t.equal((await store.save(id, back, { via: 'test' })).outcome, 'stored')
      t.equal(store.readNow(id)?.jwt, back)
      t.equal(await store.tombstoneOf(id), undefined, 'the tombstone is gone')
    })

    await t.test('history keeps every version and deletion in order, and pages', async (t) => {
      const { store } = await open(t)
      const id = newId()
      const vs = [version(id, now() - 30), version(id, now() - 20)]
      for (const v of vs) await store.save(id, v, { via: 'test-subject' })
      const req = deleteRequest([id], now() - 10)
      await store.remove(req)
      const h = await store.historyOf(id)
      t.same(h.map((e) => [e.kind, e.jwt, e.via]), [
        ['created', vs[0], 'test-subject'],
        ['updated', vs[1], 'test-subject'],
        ['deleted', req.token, 'test'],
      ])
      t.ok(h[0]!.seq < h[1]!.seq && h[1]!.seq < h[2]!.seq, 'seqs increase')
      t.same((await store.historyOf(id, { after: h[0]!.seq, limit: 1 })).map((e) => e.jwt), [vs[1]])
      t.same(await store.historyOf(newId()), [])
    })

    await t.test('restore queues the stored version again; nothing for an unknown account', async (t) => {
      const { store, changes } = await open(t)
      const id = newId()
      const jwt = version(id, now())
      await store.save(id, jwt, { via: 'test' })
      const c = await store.restore(id)
      t.equal(c?.kind, 'restore')
      t.equal(c?.jwt, jwt)
      t.equal(await store.restore(newId()), undefined)
      await waitFor(() => changes.some((x) => x.kind === 'restore'), { what: 'the restore reported' })
      t.pass('the restore is reported like any change')
    })

    await t.test('restoreDeletion queues the stored deletion again; nothing for a stored or unknown account', async (t) => {
      const { store, changes } = await open(t)
      const [gone, kept] = [newId(), newId()]
      await store.save(gone, version(gone, now() - 10), { via: 'test' })
      await store.save(kept, version(kept, now() - 10), { via: 'test' })
      const req = deleteRequest([gone])
      await store.remove(req)
      const before = changes.length
      const c = await store.restoreDeletion(gone)
      t.equal(c?.kind, 'deleted')
      t.equal(c?.jwt, req.token, 'the delete request servers act on')
      t.equal(await store.restoreDeletion(kept), undefined, 'a stored account has no deletion to send')
      t.equal(await store.restoreDeletion(newId()), undefined)
      await waitFor(() => changes.slice(before).some((x) => x.kind === 'deleted' && x.id === gone), { what: 'the re-sent deletion reported' })
      t.equal(store.readNow(gone), undefined, 'still deleted')
    })

    await t.test('liveIds leaves out expired accounts; the store hash is the XOR over current JWTs', async (t) => {
      const { store } = await open(t)
      const [live, expired, gone] = [newId(), newId(), newId()]
      const jwts = [version(live, now()), version(expired, now() - 100, { exp: now() - 10 })]
      await store.save(live, jwts[0]!, { via: 'test' })
      await store.save(expired, jwts[1]!, { via: 'test' })
      await store.save(gone, version(gone, now() - 5), { via: 'test' })
      await store.remove(deleteRequest([gone]))
      t.same(await store.liveIds(), [live])
      const h = new StoreHash()
      for (const j of jwts) h.toggle(j)
      t.ok(h.equals(store.storeHash()), 'hash over the two current JWTs')
      t.same((await collect(store.entries())).map(([id]) => id).sort(), [live, expired].sort())
    })

    await t.test('activations: stored, current, a later one replaces, an earlier one is refused', async (t) => {
      const { store } = await open(t)
      const a = { hashId: 'H'.repeat(56), token: 't1', iat: 10, exporter: 'E', importer: 'I', subject: 's', kind: 'stream', at: '' }
      t.equal(await store.activations.put(a), 'stored')
      t.equal(await store.activations.put(a), 'current')
      t.equal(await store.activations.put({ ...a, token: 't2', iat: 11 }), 'stored')
      t.equal(await codeOf(store.activations.put({ ...a, token: 't0', iat: 9 })), 'JWT_OUTDATED')
      t.equal((await store.activations.get(a.hashId))?.token, 't2')
      t.equal(await store.activations.get('X'.repeat(56)), undefined)
    })

    await t.test('what was acknowledged is there after a reopen, replay memory included', async (t) => {
      const dir = await tempDir(t, `store-${name}`)
      const first = await factory(t, dir, {})
      const id = newId()
      const jwt = version(id, now())
      await first.save(id, jwt, { via: 'test' })
      const gone = newId()
      await first.save(gone, version(gone, now() - 5), { via: 'test' })
      const req = deleteRequest([gone])
      await first.remove(req)
      const hash = first.storeHash()
      await first.close()
      const again = await factory(t, dir, {})
      t.teardown(() => again.close())
      t.equal(again.readNow(id)?.jwt, jwt)
      t.equal(again.readNow(gone), undefined)
      t.ok((await again.tombstoneOf(gone)) !== undefined)
      t.equal(await codeOf(again.remove(req)), 'REQUEST_REPLAYED')
      t.same(again.storeHash(), hash)
      t.equal((await again.historyOf(id)).length, 1)
    })
  })
}
