import t from 'tap'
import { createAccount } from '@nats-io/nkeys'
import { changeFrom, subjects, type Change } from '../shared/index.ts'
import { newUser, type AccountIdentity } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { accountJwt } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { appliedJwts, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const LONG = process.env.MESH_LONG_TESTS === '1'
const VERSIONS = 30
const ROUNDS = LONG ? 6 : 2

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j]!, a[i]!]
  }
  return a
}

t.test(`${VERSIONS} versions of one account pushed at once, in random order, on both update subjects`, async (t) => {
  const { fx, servers, sys } = await startMesh(t, { servers: 3 })

  const kp = createAccount()
  const id = kp.getPublicKey()
  const account: AccountIdentity = { name: 'RACE', kp, id, jwt: '' }
  let iat = Math.floor(Date.now() / 1000) - 100_000
  t.equal((await push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, id, {}, { iat: ++iat }), 3)).ours.data?.code, 200)
  // Load the account on every server: a cache server skips updates of accounts it has not loaded.
  const user = await newUser(account, 'u')
  for (const s of servers) await (await connectWith(t, s, user.creds)).close()

  const events: Change[] = []
  const watch = sys.subscribe(subjects.resolverChanges(id))
  void (async () => {
    for await (const m of watch) {
      const c = changeFrom(m)
      if (c !== undefined) events.push(c)
    }
  })()

  for (let round = 1; round <= ROUNDS; round++) {
    await t.test(`round ${round}`, async (t) => {
      const versions = Array.from({ length: VERSIONS }, (_, i) =>
        accountJwt(fx.op.signingKp, id, {}, { iat: iat + 1 + i, name: `r${round}v${i}` }),
      )
      iat += VERSIONS
      const newest = versions.at(-1)!
      const firstEvent = events.length
      const order = shuffle(versions.map((jwt, i) => ({ jwt, i })))
      const replies = await Promise.all(
        order.map(({ jwt }, k) => push(sys, k % 2 === 0 ? subjects.claimsUpdate : subjects.accountUpdate(id), jwt, 3)),
      )

      const outcomes = new Map<number, string>()
      order.forEach(({ i }, k) => outcomes.set(i, replies[k]!.ours.data ? 'ok' : (replies[k]!.ours.error?.reason ?? '?')))
      t.equal(outcomes.get(VERSIONS - 1), 'ok', 'the newest version is accepted')
      t.same(
        [...outcomes.values()].filter((o) => o !== 'ok' && o !== 'JWT_OUTDATED'),
        [],
        'every other version is accepted or refused as outdated, nothing else',
      )
      t.comment(`${[...outcomes.values()].filter((o) => o === 'ok').length} accepted, the rest outdated`)

      t.equal((await sys.request(subjects.lookup(id), '', { timeout: 2000 })).string(), newest, 'LOOKUP serves the newest')
      await waitFor(() => events.slice(firstEvent).some((e) => e.jwt === newest), { what: 'the change event of the newest' })
      const last = events.slice(firstEvent).reduce((a, b) => (b.seq > a.seq ? b : a))
      t.equal(last.jwt, newest, 'the last change event (by sequence) carries the newest version')
      await waitFor(
        async () => {
          const applied = await appliedJwts(sys, id, 3)
          return applied.size === 3 && [...applied.values()].every((j) => j === newest)
        },
        { ms: 10_000, what: 'every server to end on the newest version' },
      )
      t.pass('every server of the cluster ends on the newest version (ACCOUNTZ)')
    })
  }
})
