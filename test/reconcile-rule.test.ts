import t from 'tap'
import { decideServer, planAccount, type HeldOnServer, type StoreSide } from '../services/resolver/reconcile-rule.ts'

const stored: StoreSide = { kind: 'stored', jwt: 'J10', iat: 10 }
const deleted: StoreSide = { kind: 'deleted', iat: 10 }
const unknown: StoreSide = { kind: 'unknown' }
const held = (o: Partial<HeldOnServer> = {}): HeldOnServer => ({ server: 'n1', file: false, ...o })

t.test('decideServer: one server against the store', async (t) => {
  for (const [name, side, h, want] of [
    ['stored, not loaded', stored, held(), 'in-sync'],
    ['stored, not loaded but a file (unreadable from outside)', stored, held({ file: true }), 'in-sync'],
    ['stored, same version', stored, held({ jwt: 'J10', iat: 10 }), 'in-sync'],
    ['stored, newer held', stored, held({ jwt: 'J11', iat: 11 }), 'adopt'],
    ['stored, older held', stored, held({ jwt: 'J9', iat: 9 }), 'revert'],
    ['stored, same iat other bytes', stored, held({ jwt: 'J10b', iat: 10 }), 'revert'],
    ['stored, newer held but expired', stored, held({ jwt: 'J11', iat: 11, expired: true }), 'adopt'],
    ['deleted, loaded expired (deleted there), no file', deleted, held({ jwt: 'J9', iat: 9, expired: true }), 'in-sync'],
    ['deleted, loaded expired, file back (old JWT pushed)', deleted, held({ jwt: 'J9', iat: 9, expired: true, file: true }), 'redelete'],
    ['deleted, file only', deleted, held({ file: true }), 'redelete'],
    ['deleted, old version active', deleted, held({ jwt: 'J9', iat: 9 }), 'redelete'],
    ['deleted, re-created at the deletion iat', deleted, held({ jwt: 'J10', iat: 10 }), 'adopt'],
    ['deleted, re-created later', deleted, held({ jwt: 'J12', iat: 12, file: true }), 'adopt'],
    ['deleted, nothing held', deleted, held(), 'in-sync'],
    ['unknown, active', unknown, held({ jwt: 'J1', iat: 1 }), 'adopt'],
    ['unknown, expired', unknown, held({ jwt: 'J1', iat: 1, expired: true }), 'in-sync'],
    ['unknown, file only', unknown, held({ file: true }), 'in-sync'],
    ['unknown, nothing', unknown, held(), 'in-sync'],
  ] as const) t.equal(decideServer(side, h), want, name)
})

t.test('planAccount: one action per account', async (t) => {
  t.same(planAccount(stored, [held({ jwt: 'J10', iat: 10 }), held({ server: 'n2' })]), { action: 'none', fallback: 'revert', drifting: [] })
  t.same(planAccount(stored, [held({ jwt: 'J9', iat: 9 }), held({ server: 'n2', jwt: 'J10', iat: 10 })]), {
    action: 'revert',
    fallback: 'revert',
    drifting: ['n1'],
  })
  t.same(
    planAccount(stored, [held({ jwt: 'J11', iat: 11 }), held({ server: 'n2', jwt: 'J12', iat: 12 }), held({ server: 'n3', jwt: 'J9', iat: 9 })]),
    { action: 'adopt', candidate: 'J12', fallback: 'revert', drifting: ['n1', 'n2', 'n3'] },
    'the newest held version is the candidate; if refused, the stored one goes out',
  )
  t.same(planAccount(deleted, [held({ file: true }), held({ server: 'n2', jwt: 'J9', iat: 9, expired: true })]), {
    action: 'redelete',
    fallback: 'redelete',
    drifting: ['n1'],
  })
  t.same(planAccount(unknown, [held({ jwt: 'J1', iat: 1 })]), { action: 'adopt', candidate: 'J1', fallback: 'unrepairable', drifting: ['n1'] })
})

t.test('planAccount: a push no signer could check', async (t) => {
  t.same(planAccount(stored, [held()], { jwt: 'J11', iat: 11 }), { action: 'adopt', candidate: 'J11', fallback: 'revert', drifting: [] }, 'validated even where no server has it loaded')
  t.same(planAccount(stored, [held()], { jwt: 'J10', iat: 10 }), { action: 'none', fallback: 'revert', drifting: [] }, 'the stored version itself: nothing to do')
  t.same(
    planAccount(stored, [held({ jwt: 'J9', iat: 9 })], { jwt: 'J9', iat: 9 }),
    { action: 'adopt', candidate: 'J9', fallback: 'revert', drifting: ['n1'] },
    'an older one is handed to the store, which refuses it, and the stored version goes out',
  )
  t.same(planAccount(deleted, [held()], { jwt: 'J9', iat: 9 }), { action: 'adopt', candidate: 'J9', fallback: 'redelete', drifting: [] })
  t.same(
    planAccount(stored, [held({ jwt: 'J12', iat: 12 })], { jwt: 'J11', iat: 11 }).candidate,
    'J12',
    'a newer version a server holds wins over an older deferred push',
  )
})
