import t from 'tap'
import { createAccount, createOperator } from '@nats-io/nkeys'
import { AppError } from '../shared/index.ts'
import { decideActivation, decideSave, recreatedSince, stillRemembered, whatToDeliver } from '../services/resolver/store/rules.ts'
import type { StoredActivation } from '../services/resolver/store/activation-store.ts'
import type { OutboxEntry } from '../services/resolver/store/types.ts'
import { signClaims } from './kit/jwts.ts'

const outcome = (fn: () => unknown): string => {
  try {
    return String(fn())
  } catch (e) {
    return e instanceof AppError ? e.code : `threw ${(e as Error).message}`
  }
}

t.test('decideSave: newest iat wins, ties with other bytes are accepted, a deletion refuses older JWTs', async (t) => {
  const v = (jwt: string, iat: number) => ({ jwt, iat })
  const cases: [string, Parameters<typeof decideSave>[1], Parameters<typeof decideSave>[2], ReturnType<typeof v>, string][] = [
    ['nothing stored', undefined, undefined, v('a', 10), 'write'],
    ['the same token', v('a', 10), undefined, v('a', 10), 'current'],
    ['a newer iat', v('a', 10), undefined, v('b', 11), 'write'],
    ['an equal iat, other bytes', v('a', 10), undefined, v('b', 10), 'write'],
    ['an older iat', v('a', 10), undefined, v('b', 9), 'JWT_OUTDATED'],
    ['issued before the deletion', undefined, { iat: 10 }, v('b', 9), 'JWT_OUTDATED'],
    ['issued in the second of the deletion', undefined, { iat: 10 }, v('b', 10), 'write'],
    ['issued after the deletion', undefined, { iat: 10 }, v('b', 11), 'write'],
  ]
  for (const [name, stored, tomb, next, want] of cases) t.equal(outcome(() => decideSave('A', stored, tomb, next)), want, name)
})

t.test('decideActivation: a later token replaces, an earlier one is refused', async (t) => {
  const a = (token: string, iat: number): StoredActivation => ({
    hashId: 'H',
    token,
    iat,
    exporter: 'E',
    importer: 'I',
    subject: 's',
    kind: 'stream',
    at: '',
  })
  const cases: [string, StoredActivation | undefined, StoredActivation, string][] = [
    ['nothing stored', undefined, a('x', 5), 'write'],
    ['the same token', a('x', 5), a('x', 5), 'current'],
    ['a later one', a('x', 5), a('y', 6), 'write'],
    ['an equal iat', a('x', 5), a('y', 5), 'write'],
    ['an earlier one', a('x', 5), a('y', 4), 'JWT_OUTDATED'],
  ]
  for (const [name, stored, next, want] of cases) t.equal(outcome(() => decideActivation(stored, next)), want, name)
})

t.test('whatToDeliver: never older than stored, nothing for what was undone since', async (t) => {
  const c = (kind: OutboxEntry['kind'], jwt: string): OutboxEntry => ({ seq: 1, id: 'A', kind, jwt, at: '' })
  const cases: [string, OutboxEntry, { jwt: string } | undefined, OutboxEntry | undefined][] = [
    ['the stored version', c('updated', 'v1'), { jwt: 'v1' }, c('updated', 'v1')],
    ['replaced since: the newer one goes', c('updated', 'v1'), { jwt: 'v2' }, c('updated', 'v2')],
    ['deleted since: nothing', c('updated', 'v1'), undefined, undefined],
    ['a restore of what is stored', c('restore', 'v1'), { jwt: 'v1' }, c('restore', 'v1')],
    ['a deletion still in force', c('deleted', 'req'), undefined, c('deleted', 'req')],
    ['a deletion undone since: nothing', c('deleted', 'req'), { jwt: 'v3' }, undefined],
  ]
  for (const [name, queued, now, want] of cases) t.same(whatToDeliver(queued, now), want, name)
})

t.test('recreatedSince names the other accounts of a delete request that are stored again', async (t) => {
  const op = createOperator()
  const [a, b, c] = [createAccount(), createAccount(), createAccount()].map((k) => k.getPublicKey()) as [string, string, string]
  const req = signClaims({ sub: op.getPublicKey(), nats: { accounts: [a, b, c, 42], type: 'generic' } }, op)
  const change: OutboxEntry = { seq: 1, id: a, kind: 'deleted', jwt: req, at: '' }
  t.same(recreatedSince(change, (id) => id === b || id === a), [b], 'the change’s own account and unstored ones are not named')
  t.same(recreatedSince(change, () => false), [])
})

t.test('stillRemembered keeps a request up to and including its last second', async (t) => {
  t.equal(stillRemembered(100, 99), true)
  t.equal(stillRemembered(100, 100), true)
  t.equal(stillRemembered(100, 101), false)
})
