import t from 'tap'
import { createAccount } from '@nats-io/nkeys'
import { subjects, type DeliveryReport } from '../shared/index.ts'
import { newAccount, newUser, type AccountIdentity } from '../ops/identities.ts'
import { setTimeout as delay } from 'node:timers/promises'
import { LOOKBACK_MS, PushReceipts } from '../services/resolver/push-receipts.ts'
import { connectWith } from './kit/clients.ts'
import { accountJwt } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { appliedJwts, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

t.test('which pushes the servers\' own replies may vouch for', async (t) => {
  let now = 1_000_000
  const r = new PushReceipts(() => now)
  t.teardown(() => r.close())
  r.arrived('A0', 'jwt-1', '_INBOX.a.0')
  r.servedJwt('A1')
  t.equal(r.take('A0', 'jwt-1'), undefined, 'the first push after a quiet time: lookups just before it were not recorded')
  now += LOOKBACK_MS
  r.arrived('A1', 'jwt-1', '_INBOX.a.1')
  t.equal(r.take('A1', 'jwt-1'), undefined, 'lookups are recorded from the first push on')
  r.arrived('A1b', 'jwt-1', '_INBOX.a.1')
  t.equal(r.take('A1b', 'jwt-1'), '_INBOX.a.1', 'a lone push, stored as sent')

  r.arrived('A2', 'jwt-1', '_INBOX.a.2')
  t.equal(r.take('A2', 'jwt-other'), undefined, 'what is delivered is not the pushed token (re-signed, or an older change)')

  r.arrived('A3', 'jwt-1', '_INBOX.a.3')
  r.arrived('A3', 'jwt-2', '_INBOX.a.4')
  t.equal(r.take('A3', 'jwt-2'), undefined, 'two pushes of one account at once may reach servers in either order')
  r.arrived('A3', 'jwt-3', '_INBOX.a.5')
  t.equal(r.take('A3', 'jwt-3'), undefined, 'nor one that follows another within the quiet period')

  r.arrived('A4', 'jwt-1', '_INBOX.a.6')
  r.servedJwt('A4')
  t.equal(r.take('A4', 'jwt-1'), undefined, 'a server may have loaded the version before it meanwhile')
  r.servedJwt('A5')
  r.arrived('A5', 'jwt-1', '_INBOX.a.7')
  t.equal(r.take('A5', 'jwt-1'), undefined, 'or just before the push reached us')

  r.arrived('A6', 'jwt-1', undefined)
  t.equal(r.take('A6', 'jwt-1'), undefined, 'a push without a reply subject has no answers to read')

  r.arrived('A7', 'jwt-1', '_INBOX.a.8')
  r.ended('A7', 'jwt-1')
  t.equal(r.take('A7', 'jwt-1'), undefined, 'a refused push is forgotten')
})

t.test('a burst of pushes: the servers\' replies stand for the broadcast, and every server still serves the stored version', async (t) => {
  const mesh = await startMesh(t, { servers: 3 })
  const { fx, servers, sys } = mesh
  const reports = new Map<string, DeliveryReport[]>()
  sys.subscribe(subjects.resolverDeliveries(), {
    callback: (_, m) => {
      const r = m.json<DeliveryReport>()
      reports.set(r.id, [...(reports.get(r.id) ?? []), r])
    },
  })
  const broadcasts: string[] = []
  sys.subscribe(subjects.accountUpdate(), { callback: (_, m) => void broadcasts.push(m.subject) })
  await sys.flush()
  const delivered = (ids: string[]) => waitFor(() => ids.every((id) => reports.has(id)), { ms: 20_000, what: 'every delivery report' })

  // nsc push -A: new accounts, 32 in flight; the servers have none of them loaded and answer "skipped"
  const accounts: AccountIdentity[] = await Promise.all(Array.from({ length: 96 }, (_, i) => newAccount(fx.op, `BULK${i}`)))
  const pushAll = async (list: AccountIdentity[]) => {
    for (let i = 0; i < list.length; i += 32) {
      const outs = await Promise.all(list.slice(i, i + 32).map((a) => push(sys, subjects.claimsUpdate, a.jwt, 3)))
      for (const o of outs) t.equal(o.ours.data?.code, 200)
    }
  }
  // lookups are recorded from a burst's first push on, and a push is vouched for only once they have been
  t.equal((await push(sys, subjects.claimsUpdate, (await newAccount(fx.op, 'FIRST')).jwt, 3)).ours.data?.code, 200)
  await delay(LOOKBACK_MS)
  await pushAll(accounts)
  await delivered(accounts.map((a) => a.id))

  const vouched = accounts.flatMap((a) => reports.get(a.id)!).filter((r) => r.fromPush === true)
  t.ok(vouched.length > 0, `some changes of the burst were not broadcast (${vouched.length} of ${accounts.length})`)
  const ofBurst = broadcasts.filter((subject) => accounts.some((a) => subject === subjects.accountUpdate(a.id)))
  t.equal(ofBurst.length, accounts.length - vouched.length, 'a change is broadcast exactly when no push replies vouched for it')
  for (const r of vouched) {
    t.same(r.servers.map((s) => `${s.name}:${s.outcome}`).sort(), ['n1:skipped', 'n2:skipped', 'n3:skipped'], 'every server answered the push')
  }
  // what counts: every server serves each account, at the version stored
  for (const a of [accounts[0]!, vouched.length > 0 ? accounts.find((x) => x.id === vouched[0]!.id)! : accounts[1]!]) {
    const user = await newUser(a, 'u')
    for (const s of servers) await (await connectWith(t, s, user.creds)).close()
    t.same([...(await appliedJwts(sys, a.id, 3)).values()], [a.jwt, a.jwt, a.jwt], `${a.name} is in force on every server`)
  }
})

t.test('what the servers may not hold is broadcast: a looked-up account, and two pushes of one account', async (t) => {
  const mesh = await startMesh(t, { servers: 3 })
  const { fx, servers, sys } = mesh
  const reports: DeliveryReport[] = []
  sys.subscribe(subjects.resolverDeliveries(), { callback: (_, m) => void reports.push(m.json<DeliveryReport>()) })
  await sys.flush()

  // loaded on every server (each looked it up), then pushed again within a burst
  const kp = createAccount()
  const loaded: AccountIdentity = { name: 'LOADED', kp, id: kp.getPublicKey(), jwt: accountJwt(fx.op.signingKp, kp.getPublicKey(), {}, { iat: 1000, name: 'LOADED' }) }
  t.equal((await push(sys, subjects.claimsUpdate, loaded.jwt, 3)).ours.data?.code, 200)
  const user = await newUser(loaded, 'u')
  for (const s of servers) await (await connectWith(t, s, user.creds)).close()
  await delay(LOOKBACK_MS) // past the first push's look-back: what follows is judged on the lookups
  const twice = createAccount().getPublicKey()
  const newer = accountJwt(fx.op.signingKp, kp.getPublicKey(), {}, { iat: 2000, name: 'LOADED' })
  const filler = await Promise.all(Array.from({ length: 31 }, (_, i) => newAccount(fx.op, `F${i}`)))
  const arm = await Promise.all(Array.from({ length: 32 }, (_, i) => newAccount(fx.op, `ARM${i}`)))
  await Promise.all(arm.map((a) => push(sys, subjects.claimsUpdate, a.jwt, 3)))
  await waitFor(() => arm.every((a) => reports.some((r) => r.id === a.id)), { what: 'the first burst delivered' })

  const outs = await Promise.all([
    push(sys, subjects.claimsUpdate, newer, 3),
    push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, twice, {}, { iat: 1000 }), 3),
    push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, twice, {}, { iat: 2000 }), 3),
    ...filler.map((a) => push(sys, subjects.claimsUpdate, a.jwt, 3)),
  ])
  // the older of the two versions of one account may land second, and is then rightly refused as outdated
  outs.forEach((o, i) => (i === 1 && o.ours.error?.reason === 'JWT_OUTDATED' ? t.pass('the older version refused as outdated') : t.equal(o.ours.data?.code, 200)))
  const last = (id: string) => waitFor(() => reports.filter((r) => r.id === id).at(-1), { what: `the report of ${id}` })
  await waitFor(() => filler.every((a) => reports.some((r) => r.id === a.id)), { what: 'the second burst delivered' })

  const ofLoaded = reports.filter((r) => r.id === kp.getPublicKey()).at(-1)!
  t.notOk(ofLoaded.fromPush, 'the account servers looked up is broadcast')
  t.same(ofLoaded.servers.map((s) => `${s.name}:${s.outcome}`).sort(), ['n1:applied', 'n2:applied', 'n3:applied'])
  t.same([...(await appliedJwts(sys, kp.getPublicKey(), 3)).values()], [newer, newer, newer], 'every server holds the newer version')
  const ofTwice = await last(twice)
  t.notOk(ofTwice.fromPush, 'an account pushed twice at once is broadcast')
})

t.test('with a full-resolver server in the fleet (a migration under way), every change is broadcast', async (t) => {
  // A full server answers LOOKUPs itself: a server that skipped a push could load the account from it, unseen.
  const mesh = await startMesh(t, { servers: 1, server: { resolver: 'full' } })
  const { fx, sys } = mesh
  const reports: DeliveryReport[] = []
  sys.subscribe(subjects.resolverDeliveries(), { callback: (_, m) => void reports.push(m.json<DeliveryReport>()) })
  await sys.flush()
  t.equal((await push(sys, subjects.claimsUpdate, (await newAccount(fx.op, 'FIRST')).jwt, 1)).ours.data?.code, 200)
  await delay(LOOKBACK_MS)
  const accounts = await Promise.all(Array.from({ length: 64 }, (_, i) => newAccount(fx.op, `FULL${i}`)))
  for (let i = 0; i < accounts.length; i += 32) {
    const outs = await Promise.all(accounts.slice(i, i + 32).map((a) => push(sys, subjects.claimsUpdate, a.jwt, 1)))
    for (const o of outs) t.equal(o.ours.data?.code, 200)
  }
  await waitFor(() => accounts.every((a) => reports.some((r) => r.id === a.id)), { ms: 20_000, what: 'every delivery report' })
  const ofBurst = reports.filter((r) => accounts.some((a) => a.id === r.id))
  t.same(ofBurst.filter((r) => r.fromPush), [], 'nothing is taken from the push replies')
  t.ok(ofBurst.every((r) => r.servers.length === 1 && r.servers[0]!.outcome === 'applied'), 'each one broadcast, and applied by the full server')
})
