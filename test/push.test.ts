import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createAccount, createOperator, createUser } from '@nats-io/nkeys'
import { encodeAccount, encodeUser } from '@nats-io/jwt'
import { subjects } from '../shared/index.ts'
import { newOperator, newUser, UNLIMITED, type AccountIdentity } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { appliedJwts, gather, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const now = () => Math.floor(Date.now() / 1000)

t.test('push pipeline on a 3-node cluster of cache-mode servers', async (t) => {
  const mesh = await startMesh(t, { servers: 3, server: { maxPayload: 4 * 1024 * 1024 } })
  const { fx, servers, sys } = mesh
  const resolver = mesh.resolvers[0]!
  let signer = mesh.signers[0]!
  let notifier = mesh.notifiers[0]!

  const signing = fx.op.signingKp
  const acct = createAccount()
  const id = acct.getPublicKey()
  const demo: AccountIdentity = { name: 'DEMO', kp: acct, id, jwt: '' }
  const alice = await newUser(demo, 'alice')
  let stored = ''
  let iat = now() - 1000
  const version = (nats: Record<string, unknown> = {}) => accountJwt(signing, id, nats, { iat: ++iat, name: 'DEMO' })
  const lookup = async (account = id) => (await sys.request(subjects.lookup(account), '', { timeout: 2000 })).string()
  const allServersHold = (jwt: string) =>
    waitFor(async () => [...(await appliedJwts(sys, id, 3)).values()].every((j) => j === jwt) && (await appliedJwts(sys, id, 3)).size === 3, {
      ms: 5000,
      what: 'every server to hold the stored jwt',
    })

  await t.test('nsc push is answered with nsc-shaped JSON and is in force on every server', async (t) => {
    stored = version()
    const { ours, all } = await push(sys, subjects.claimsUpdate, stored, 3)
    t.same(ours.data, { account: id, code: 200, message: 'jwt updated' })
    t.equal(ours.error, undefined)
    t.match(ours.server, { name: 'resolver', jetstream: false })
    t.ok(Number.isInteger(ours.server.seq) && ours.server.seq > 0, 'seq is an unsigned integer')
    t.ok(!Number.isNaN(Date.parse(ours.server.time)), 'time is RFC3339')
    t.equal(all.length, 4, 'three servers and the resolver answered')
    t.equal(await lookup(), stored)

    // Load the account on every server, then lower the connection limit through the per-account subject.
    for (const s of servers) await (await connectWith(t, s, alice.creds)).close()
    stored = version({ limits: { ...UNLIMITED, conn: 1 } })
    const r = await push(sys, subjects.accountUpdate(id), stored, 3)
    t.equal(r.ours.data?.code, 200)
    await allServersHold(stored)
    const first = await connectWith(t, servers[1]!, alice.creds)
    await first.flush()
    await t.rejects(async () => {
      const second = await connectWith(t, servers[1]!, alice.creds)
      await second.flush()
      await second.request('no.such.service', '', { timeout: 500 })
    }, 'a second connection is refused under conn: 1')
    await first.close()
    stored = version()
    t.equal((await push(sys, subjects.claimsUpdate, stored, 3)).ours.data?.code, 200)
    await allServersHold(stored)
  })

  await t.test('the resolver counts only real servers as delivered to', async (t) => {
    // Older changes of one account may be coalesced into the newest, which is always delivered.
    const lastSeq = Math.max(...resolver.logs.filter((l) => l.msg === 'jwt stored' && l.account === id).map((l) => l.seq as number))
    const delivered = await waitFor(() =>
      resolver.logs.find((l) => l.msg === 'change delivered' && Array.isArray(l.servers) && l.seq === lastSeq) as { servers: string[] } | undefined,
    )
    t.same([...delivered.servers].sort(), ['n1:applied', 'n2:applied', 'n3:applied'])
  })

  await t.test('the notifier broadcasts the bare JWT once, on the per-account subject with a reply', async (t) => {
    const seen: { subject: string; body: string; reply: string | undefined; headers: boolean }[] = []
    for (const subject of [subjects.accountUpdate(id), subjects.legacyAccountUpdate(id)]) {
      sys.subscribe(subject, {
        callback: (_, m) => {
          seen.push({ subject, body: m.string(), reply: m.reply, headers: m.headers !== undefined })
        },
      })
    }
    await sys.flush()
    stored = version()
    t.equal((await push(sys, subjects.claimsUpdate, stored, 3)).ours.data?.code, 200)
    await waitFor(() => seen.length >= 1, { what: 'the broadcast' })
    await allServersHold(stored)
    const perAccount = seen.filter((m) => m.subject === subjects.accountUpdate(id))
    t.equal(perAccount.length, 1, 'one broadcast on the per-account subject')
    t.match(perAccount[0], { body: stored, headers: false }, 'the bare JWT')
    t.ok(perAccount[0]?.reply, 'with a reply subject, to gather what each server did')
    // every server handles both per-account subjects alike (protocol.md §3.2): a second one costs each a verification
    t.same(seen.filter((m) => m.subject === subjects.legacyAccountUpdate(id)), [], 'nothing on the legacy subject')
  })

  await t.test('pushing the same token again is "already current" and nothing is re-broadcast', async (t) => {
    const lastSeq = Math.max(...resolver.logs.filter((l) => l.msg === 'jwt stored').map((l) => l.seq as number))
    await waitFor(() => resolver.logs.some((l) => l.msg === 'change delivered' && l.seq === lastSeq), { what: 'earlier changes delivered' })
    const before = resolver.logs.filter((l) => l.msg === 'change delivered').length
    const { ours } = await push(sys, subjects.claimsUpdate, stored, 3)
    t.same(ours.data, { account: id, code: 200, message: 'jwt already current' })
    t.equal(resolver.logs.filter((l) => l.msg === 'jwt stored' && l.account === id).length, 4)
    t.equal(resolver.logs.filter((l) => l.msg === 'change delivered').length, before)
  })

  await t.test('a revocation disconnects the user from whichever server it is on', async (t) => {
    const nc = await connectWith(t, servers[2]!, alice.creds)
    await nc.flush()
    const closed = nc.closed()
    stored = version({ revocations: { [alice.kp.getPublicKey()]: now() } })
    t.equal((await push(sys, subjects.claimsUpdate, stored, 3)).ours.data?.code, 200)
    await t.resolves(Promise.race([closed, waitFor(() => false, { ms: 5000, what: 'disconnect' })]))
    t.ok(nc.isClosed(), 'revoked user disconnected')
    await t.rejects(connectWith(t, servers[0]!, alice.creds), 'and refused afterwards')
  })

  const foreign = await newOperator('FOREIGN')
  const userKp = createUser()
  const hostile: { name: string; body: () => string | Uint8Array; subject?: string; reason: string }[] = [
    { name: 'an untrusted issuer', body: () => accountJwt(createOperator(), id, {}, { iat: now() }), reason: 'ISSUER_UNTRUSTED' },
    { name: "a foreign operator's signing key", body: () => accountJwt(foreign.signingKp, id, {}, { iat: now() }), reason: 'ISSUER_UNTRUSTED' },
    { name: 'an expired jwt', body: () => accountJwt(signing, id, {}, { iat: now(), exp: now() - 60 }), reason: 'JWT_EXPIRED' },
    { name: 'a jwt not yet valid', body: () => accountJwt(signing, id, {}, { iat: now(), nbf: now() + 3600 }), reason: 'JWT_NOT_YET_VALID' },
    { name: 'an older iat', body: () => accountJwt(signing, id, {}, { iat: iat - 100 }), reason: 'JWT_OUTDATED' },
    {
      name: 'a subject that names another account',
      body: () => accountJwt(signing, id, {}, { iat: now() }),
      subject: subjects.accountUpdate(createAccount().getPublicKey()),
      reason: 'JWT_SUBJECT_MISMATCH',
    },
    { name: 'a user jwt', body: () => signClaims({ sub: userKp.getPublicKey(), nats: { type: 'user', version: 2 } }, acct), reason: 'JWT_WRONG_TYPE' },
    { name: 'an operator jwt', body: () => foreign.jwt, reason: 'JWT_WRONG_TYPE' },
    {
      name: 'a tampered signature',
      body: () => {
        const [h, p, s] = accountJwt(signing, id, { limits: { ...UNLIMITED, conn: 5 } }, { iat: now() }).split('.')
        const other = accountJwt(signing, id, {}, { iat: now() }).split('.')[2]!
        return `${h}.${p}.${other === s ? s.replace(/^./, 'A') : other}`
      },
      reason: 'JWT_BAD_SIGNATURE',
    },
    { name: 'garbage', body: () => 'this is not a jwt', reason: 'JWT_MALFORMED' },
    { name: 'invalid utf-8', body: () => Uint8Array.from([0xff, 0xfe, 0x2e, 0xc3, 0x28, 0x2e, 0xa0]), reason: 'JWT_MALFORMED' },
    { name: 'an empty body', body: () => '', reason: 'JWT_MALFORMED' },
    { name: 'an oversized body', body: () => 'x'.repeat(1_048_577), reason: 'JWT_TOO_LARGE' },
    {
      name: 'a self-signed jwt without managed mode',
      body: () => accountJwt(acct, id, {}, { iat: now() }),
      reason: 'SELF_SIGNED_REFUSED',
    },
  ]
  for (const c of hostile) {
    await t.test(`an update with ${c.name} is refused and every server keeps the stored version`, async (t) => {
      const subject = c.subject ?? subjects.claimsUpdate
      const { ours } = await push(sys, subject, c.body(), 3)
      t.equal(ours.data, undefined)
      t.equal(ours.error?.reason, c.reason)
      t.ok(ours.error && ours.error.code >= 400, 'an error status')
      t.match(ours.error?.description, /^jwt update resulted in error - .+/)
      t.equal(await lookup(), stored, 'the stored jwt is unchanged')
      await allServersHold(stored)
    })
  }

  await t.test('a user jwt on the per-account subject is refused too', async (t) => {
    const user = await encodeUser('u', createUser(), acct)
    const { ours } = await push(sys, subjects.accountUpdate(id), user, 3)
    t.equal(ours.error?.reason, 'JWT_WRONG_TYPE')
    t.equal(await lookup(), stored)
  })

  await t.test('managed mode re-signs a self-signed account; its users connect; policy is enforced', async (t) => {
    const seedFile = join(fx.dir, 'signing.nk')
    await writeFile(seedFile, new TextDecoder().decode(signing.getSeed()), { mode: 0o600 })
    t.equal(await signer.stop(), 0)
    signer = await mesh.start('signer', { SIGNER_SEED_FILE: seedFile, SIGNER_MAX_CONN: '100' })
    const managedKp = createAccount()
    const managed: AccountIdentity = { name: 'MANAGED', kp: managedKp, id: managedKp.getPublicKey(), jwt: '' }
    const selfSigned = await encodeAccount('MANAGED', managedKp, { limits: { conn: 10 } })
    const { ours } = await push(sys, subjects.claimsUpdate, selfSigned, 3)
    t.equal(ours.data?.code, 200, JSON.stringify(ours))
    const served = await lookup(managed.id)
    const claims = JSON.parse(Buffer.from(served.split('.')[1]!, 'base64url').toString()) as { iss: string; sub: string }
    t.equal(claims.iss, signing.getPublicKey(), 're-signed by the operator signing key')
    t.equal(claims.sub, managed.id)
    const bob = await newUser(managed, 'bob')
    const nc = await connectWith(t, servers[0]!, bob.creds)
    await nc.flush()
    await nc.close()

    const greedy = await encodeAccount('MANAGED', managedKp, { limits: { conn: 1000 } })
    const refused = await push(sys, subjects.claimsUpdate, greedy, 3)
    t.equal(refused.ours.error?.reason, 'POLICY_VIOLATION')
    t.equal(await lookup(managed.id), served, 'nothing stored')
  })

  await t.test('with the notifier stopped a revocation is accepted, and delivered when it returns', async (t) => {
    const managedKp = createAccount()
    const managed: AccountIdentity = { name: 'LATE', kp: managedKp, id: managedKp.getPublicKey(), jwt: '' }
    const created = await push(sys, subjects.claimsUpdate, await encodeAccount('LATE', managedKp, { limits: { conn: 10 } }), 3)
    t.equal(created.ours.data?.code, 200, JSON.stringify(created.ours))
    const carol = await newUser(managed, 'carol')
    const nc = await connectWith(t, servers[1]!, carol.creds)
    await nc.flush()

    t.equal(await notifier.stop(), 0)
    // Self-signed, so servers hearing the push store it but do not apply it: only our delivery can.
    const revoking = await encodeAccount('LATE', managedKp, {
      limits: { conn: 10 },
      revocations: { [carol.kp.getPublicKey()]: now() },
    })
    const { ours } = await push(sys, subjects.claimsUpdate, revoking, 3)
    t.equal(ours.data?.code, 200)
    await nc.flush()
    t.notOk(nc.isClosed(), 'still connected while no notifier runs')

    notifier = await mesh.start('notifier')
    await waitFor(() => nc.isClosed(), { ms: 10_000, what: 'the revoked user to be disconnected' })
    t.ok(nc.isClosed())
  })
})

t.test('pushes fail fast with a clear reason while no signer runs; lookups keep working', async (t) => {
  const { fx, sys } = await startMesh(t, { cluster: true, signers: 0, notifiers: 0 })
  const acct = createAccount()
  const start = Date.now()
  const { ours } = await push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, acct.getPublicKey()), 1)
  t.equal(ours.error?.reason, 'VALIDATION_UNAVAILABLE')
  t.equal(ours.error?.code, 503)
  t.ok(Date.now() - start < 2500, 'answered within the signer timeout')
  t.equal((await sys.request(subjects.lookup(acct.getPublicKey()), '', { timeout: 2000 })).data.length, 0, 'nothing stored')
  t.equal((await sys.request(subjects.lookup(fx.op.systemAccount.id), '', { timeout: 2000 })).string(), fx.op.systemAccount.jwt)
})
