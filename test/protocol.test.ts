import { createHash } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import t from 'tap'
import { createAccount } from '@nats-io/nkeys'
import { headers, type Msg, type NatsConnection } from '@nats-io/nats-core'
import { isResolverReply, subjects } from '../shared/index.ts'
import { newUser, UNLIMITED, type AccountIdentity } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture } from './kit/fixtures.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { startNatsServer, freePort } from './kit/nats-server.ts'
import { startResolver, startService } from './kit/services.ts'
import { type ClaimReply, gather, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const now = () => Math.floor(Date.now() / 1000)
const sha256 = (s: string) => createHash('sha256').update(s).digest()

/** The store hash as protocol.md §3.5 defines it, computed here independently of the resolver. */
function storeHash(jwts: string[]): Buffer {
  const h = Buffer.alloc(32)
  for (const j of jwts) {
    const d = sha256(j)
    for (let i = 0; i < 32; i++) h[i]! ^= d[i]!
  }
  return h
}

/** Collects a PACK stream the way nsc pull does: message by message until the first empty one. */
async function pack(nc: NatsConnection, body: Uint8Array = new Uint8Array()): Promise<string[]> {
  const inbox = `_INBOX.pack.${Math.random().toString(36).slice(2)}`
  const sub = nc.subscribe(inbox)
  const out: string[] = []
  const timer = setTimeout(() => sub.unsubscribe(), 3000)
  nc.publish(subjects.claimsPack, body, { reply: inbox })
  for await (const m of sub) {
    if (m.data.length === 0) {
      out.push('')
      break
    }
    out.push(m.string())
  }
  clearTimeout(timer)
  sub.unsubscribe()
  return out
}

const claimReplies = (msgs: Msg[]) => msgs.map((m) => m.json<ClaimReply & { data?: unknown }>())
const ours = (msgs: Msg[]) => {
  const r = claimReplies(msgs).find(isResolverReply)
  if (r === undefined) throw new Error('the resolver did not answer')
  return r
}

t.test('list, delete, pack, activations and history against real servers', async (t) => {
  const mesh = await startMesh(t, { servers: 2 })
  const { fx, servers, sys } = mesh
  const resolver = mesh.resolvers[0]!
  let notifier = mesh.notifiers[0]!
  const signing = fx.op.signingKp

  const events: { subject: string; kind: string; seq: number }[] = []
  const sub = sys.subscribe(subjects.resolverChanges())
  void (async () => {
    for await (const m of sub) events.push({ subject: m.subject, kind: m.headers?.get('Mesh-Change') ?? '', seq: Number(m.headers?.get('Mesh-Seq')) })
  })()

  /** An account stored through nsc's push subject, with a user that has connected. */
  async function storedAccount(name: string, nats: Record<string, unknown> = {}): Promise<AccountIdentity & { stored: string[] }> {
    const kp = createAccount()
    const id = kp.getPublicKey()
    const jwt = accountJwt(signing, id, nats, { name, iat: now() - 100 })
    const r = await push(sys, subjects.claimsUpdate, jwt, 2)
    if (r.ours.data?.code !== 200) throw new Error(JSON.stringify(r.ours))
    stored.set(id, jwt)
    return { name, kp, id, jwt, stored: [jwt] }
  }
  const lookup = mesh.lookup
  const list = async () => {
    const r = ours(await gather(sys, subjects.claimsList, '', 3, 1500))
    return r.data as unknown as string[]
  }
  /** A delete request as nsc signs it: generic claims, sub == iss, an operator key. */
  const deleteRequest = (accounts: string[], claims: Record<string, unknown> = {}, kp = signing) =>
    signClaims({ sub: kp.getPublicKey(), ...claims, nats: { accounts, version: 2 } }, kp)
  const sendDelete = async (token: string) => ours(await gather(sys, subjects.claimsDelete, token, 3, 2000))

  /** What the resolver should hold, by id, kept here to check PACK against. */
  const stored = new Map<string, string>([[fx.op.systemAccount.id, fx.op.systemAccount.jwt]])
  let expiredId = ''
  const a = await storedAccount('A')
  const b = await storedAccount('B')
  const c = await storedAccount('C')

  await t.test('LIST answers in nats-server shape with the stored, unexpired accounts', async (t) => {
    const shortLived = createAccount()
    const expiring = accountJwt(signing, shortLived.getPublicKey(), {}, { exp: now() + 2 })
    t.equal((await push(sys, subjects.claimsUpdate, expiring, 2)).ours.data?.code, 200)
    expiredId = shortLived.getPublicKey()
    stored.set(expiredId, expiring)
    const ids = await list()
    t.ok(Array.isArray(ids), 'data is an array')
    for (const x of [a, b, c]) t.ok(ids.includes(x.id), `${x.name} listed`)
    t.ok(ids.includes(fx.op.systemAccount.id), 'the system account is listed')
    t.ok(ids.includes(shortLived.getPublicKey()), 'listed while valid')
    await waitFor(async () => !(await list()).includes(shortLived.getPublicKey()), { ms: 6000, what: 'expiry to drop it from LIST' })
    t.equal(await lookup(shortLived.getPublicKey()), '', 'and not served once expired')
  })

  await t.test('PACK streams every account then an empty message, and only an empty one when hashes match', async (t) => {
    const lines = await pack(sys)
    t.equal(lines.at(-1), '', 'ends with an empty message')
    const body = lines.slice(0, -1)
    for (const line of body) t.equal(line.split('|').length, 2, 'one <id>|<jwt> per message')
    const streamed = new Map(body.map((l) => l.split('|') as [string, string]))
    for (const [id, jwt] of stored) {
      if (id === expiredId) t.notOk(streamed.has(id), 'the expired account is not streamed')
      else t.equal(streamed.get(id), jwt, `${id} streamed as stored`)
    }
    t.equal(streamed.size, stored.size - 1, 'nothing else streamed')
    t.same(await pack(sys, new Uint8Array(32)), lines, 'a foreign hash gets the full stream')
    // The hash covers every stored JWT, expired ones included, as nats-server's does.
    t.same(await pack(sys, storeHash([...stored.values()])), [''], 'a matching hash gets one empty message')
    const bad = await sys.request(subjects.claimsPack, new Uint8Array(5), { timeout: 1000 })
    t.match(bad.json<ClaimReply>().error, { code: 400, reason: 'REQUEST_INVALID' }, 'a body that is no hash is refused')
    t.equal(bad.headers, undefined, 'with no headers, as servers read replies raw')
  })

  await t.test('delete requests that are unsigned, account-signed, stale, naming SYS or replayed are refused', async (t) => {
    const cases: [string, string, string][] = [
      ['unsigned', (() => {
        const [h, p] = deleteRequest([a.id]).split('.')
        return `${h}.${p}.`
      })(), 'JWT_MALFORMED'],
      ['garbage', 'not a jwt', 'JWT_MALFORMED'],
      ['signed by an account key', deleteRequest([a.id], {}, a.kp), 'ISSUER_UNTRUSTED'],
      ['not self-signed', deleteRequest([a.id], { sub: fx.op.kp.getPublicKey() }), 'REQUEST_INVALID'],
      ['stale', deleteRequest([a.id], { iat: now() - 3600 }), 'REQUEST_STALE'],
      ['expired', deleteRequest([a.id], { exp: now() - 10 }), 'JWT_EXPIRED'],
      ['naming the system account', deleteRequest([a.id, fx.op.systemAccount.id]), 'SYSTEM_ACCOUNT_PROTECTED'],
      ['an empty account list', deleteRequest([]), 'REQUEST_INVALID'],
      ['an account list with a non-account key', deleteRequest([fx.op.kp.getPublicKey()]), 'REQUEST_INVALID'],
    ]
    for (const [what, token, reason] of cases) {
      const r = await sendDelete(token)
      t.equal(r.error?.reason, reason, what)
      t.match(r.error?.description, /^delete accounts request by .* failed - /, `${what}: nats-server's wording`)
    }
    t.equal(await lookup(a.id), a.jwt, 'nothing deleted')
    t.ok((await list()).includes(a.id))
    // Servers act on stale requests themselves; the stored version goes out again, so the account works.
    const user = await newUser(a, 'ua')
    await waitFor(async () => {
      try {
        const nc = await connectWith(t, servers[0]!, user.creds)
        await nc.close()
        return true
      } catch {
        return false
      }
    }, { ms: 5000, what: 'account A to be usable after refused deletes' })
  })

  await t.test('single-account removal the way nsc does it: the users are disconnected and refused', async (t) => {
    const user = await newUser(b, 'ub')
    const nc = await connectWith(t, servers[1]!, user.creds)
    await nc.flush()
    const closed = nc.closed()
    const token = deleteRequest([b.id])
    const all = claimReplies(await gather(sys, subjects.claimsDelete, token, 3, 2000))
    const r = all.find(isResolverReply)!
    t.same(r.data, { code: 200, message: 'deleted 1 accounts' })
    await t.resolves(Promise.race([closed, waitFor(() => false, { ms: 5000, what: 'disconnect' })]))
    t.equal(await lookup(b.id), '', 'no longer served')
    t.notOk((await list()).includes(b.id), 'no longer listed')
    await t.rejects(connectWith(t, servers[0]!, user.creds), 'refused afterwards')

    const held = (await sys.request(subjects.resolverGet(b.id), '', { timeout: 2000 })).json<{ state: string; deleted?: { iat: number } }>()
    t.equal(held.state, 'deleted', 'get shows the tombstone')
    t.ok(typeof held.deleted?.iat === 'number')
    const replay = await sendDelete(token)
    t.same(replay.data, { code: 200, message: 'deleted 1 accounts' }, 'the same request while it still holds is already applied (our re-broadcast)')
    t.ok(events.some((e) => e.subject === subjects.resolverChanges(b.id) && e.kind === 'deleted'), 'a deleted event was published')

    const stale = accountJwt(signing, b.id, {}, { iat: now() - 50 })
    const older = await push(sys, subjects.claimsUpdate, stale, 2)
    t.equal(older.ours.error?.reason, 'JWT_OUTDATED', 'a JWT issued before the deletion cannot bring it back')
    t.equal(await lookup(b.id), '')
    const recreated = accountJwt(signing, b.id, {}, { iat: now() + 1 })
    t.equal((await push(sys, subjects.claimsUpdate, recreated, 2)).ours.data?.code, 200, 'a newer JWT re-creates it')
    t.equal(await lookup(b.id), recreated)
    t.equal((await sendDelete(token)).error?.reason, 'REQUEST_REPLAYED', 'once re-created, the old request is a replay')
    t.equal(await lookup(b.id), recreated, 'and deletes nothing')
  })

  await t.test('prune the way nsc push --prune does it: LIST, then DELETE of what nsc does not know', async (t) => {
    const known = new Set([fx.op.systemAccount.id, a.id, b.id])
    const listed = new Set<string>()
    for (const r of claimReplies(await gather(sys, subjects.claimsList, '', 3, 1500))) {
      for (const id of (r.data as unknown as string[] | undefined) ?? []) listed.add(id)
    }
    const prune = [...listed].filter((id) => !known.has(id))
    t.ok(prune.includes(c.id), 'C is to be pruned')
    const r = await sendDelete(deleteRequest(prune))
    t.same(r.data, { code: 200, message: `deleted ${prune.length} accounts` })
    t.same((await list()).sort(), [...known].sort(), 'only what nsc knows is left')
  })

  await t.test('history returns every accepted version in order, with subject and kind', async (t) => {
    const h = (await sys.request(subjects.resolverHistory(b.id), '', { timeout: 2000 })).json<{
      account: string
      versions: { seq: number; kind: string; via: string; jwt: string; at: string }[]
      more: boolean
    }>()
    t.equal(h.account, b.id)
    t.same(h.versions.map((v) => v.kind), ['created', 'deleted', 'created'])
    t.same(h.versions.map((v) => v.via), [subjects.claimsUpdate, subjects.claimsDelete, subjects.claimsUpdate])
    t.equal(h.versions[0]!.jwt, b.jwt)
    t.ok(h.versions.every((v, i) => i === 0 || v.seq > h.versions[i - 1]!.seq), 'in order')
    t.equal(h.more, false)

    const kp = createAccount()
    const id = kp.getPublicKey()
    const versions = [1, 2, 3].map((i) => accountJwt(signing, id, { limits: { ...UNLIMITED, conn: i } }, { iat: now() + i }))
    await push(sys, subjects.claimsUpdate, versions[0]!, 2)
    await push(sys, subjects.accountUpdate(id), versions[1]!, 2)
    await push(sys, subjects.claimsUpdate, versions[2]!, 2)
    const all = (await sys.request(subjects.resolverHistory(id), '', { timeout: 2000 })).json<{ versions: { jwt: string; via: string }[] }>()
    t.same(all.versions.map((v) => v.jwt), versions)
    t.equal(all.versions[1]!.via, subjects.accountUpdate(id))
    const first = all.versions as unknown as { seq: number }[]
    const page = (await sys.request(subjects.resolverHistory(id), JSON.stringify({ after: first[0]!.seq }), { timeout: 2000 })).json<{ versions: { jwt: string }[] }>()
    t.same(page.versions.map((v) => v.jwt), versions.slice(1), 'pages on after a seq')

    const got = (await sys.request(subjects.resolverGet(id), '', { timeout: 2000 })).json<{ state: string; jwt: string }>()
    t.same([got.state, got.jwt], ['stored', versions[2]], 'get serves the stored version')
    const unknown = createAccount().getPublicKey()
    t.same((await sys.request(subjects.resolverGet(unknown), '', { timeout: 2000 })).json(), { account: unknown, state: 'unknown' })
    for (const [what, subject, body] of [
      ['get of an id that is no account key', 'mesh.resolver.get.NOTAKEY', ''],
      ['an id that is no account key', 'mesh.resolver.history.NOTAKEY', ''],
      ['a body that is no JSON', subjects.resolverHistory(id), '{'],
      ['a negative seq', subjects.resolverHistory(id), '{"after":-1}'],
    ] as const) {
      const r = await sys.request(subject, body, { timeout: 2000 })
      t.equal(r.headers?.get('Nats-Service-Error-Code'), '400', what)
    }
  })

  await t.test('a delete delivered late is not sent again once an account it names was re-created', async (t) => {
    const d = await storedAccount('D')
    const e = await storedAccount('E')
    t.equal(await notifier.stop(), 0)
    t.same((await sendDelete(deleteRequest([d.id, e.id]))).data, { code: 200, message: 'deleted 2 accounts' })
    const recreated = accountJwt(signing, e.id, {}, { iat: now() + 5, name: 'E' })
    t.equal((await push(sys, subjects.claimsUpdate, recreated, 2)).ours.data?.code, 200)
    const user = await newUser({ ...e, jwt: recreated }, 'ue')
    const nc = await connectWith(t, servers[0]!, user.creds)
    await nc.flush()

    notifier = await mesh.start('notifier')
    const skipped = await waitFor(
      () => resolver.logs.find((l) => l.msg === 'delete request not sent again: it names re-created accounts' && l.account === d.id),
      { ms: 10_000, what: "the resolver's delivery of D's deletion" },
    )
    t.same(skipped.recreated, [e.id])
    await nc.flush()
    t.notOk(nc.isClosed(), "the re-created account's user stays connected")
    t.equal(await lookup(e.id), recreated)
    t.equal(await lookup(d.id), '', 'D stays deleted')
  })

  await t.test('activation tokens round-trip by hash id; bad ones are refused with reasons', async (t) => {
    const importer = createAccount()
    const exporterKp = createAccount()
    const exporterSigning = createAccount()
    const exports = [{ name: 'help', subject: 'help.>', type: 'service', token_req: true, revocations: { [createAccount().getPublicKey()]: now() } }]
    const exporterJwt = accountJwt(signing, exporterKp.getPublicKey(), { exports, signing_keys: [exporterSigning.getPublicKey()] }, { iat: now() - 10 })
    t.equal((await push(sys, subjects.claimsUpdate, exporterJwt, 2)).ours.data?.code, 200)
    const activation = (claims: Record<string, unknown>, kp = exporterKp) =>
      signClaims({ sub: importer.getPublicKey(), name: 'help', ...claims, nats: { subject: 'help.me', kind: 'service', type: 'activation', version: 2, ...(claims.nats as object) } }, kp)
    const put = (token: string | Uint8Array) => sys.request(subjects.resolverActivationPut, token, { timeout: 3000 })
    const errorOf = (m: Msg) => (m.headers?.get('Nats-Service-Error-Code') ? m.json<{ code: string }>().code : undefined)

    const token = activation({})
    const stored = await put(token)
    t.equal(errorOf(stored), undefined)
    const { hashId, outcome } = stored.json<{ hashId: string; outcome: string }>()
    t.equal(outcome, 'stored')
    // base32 StdEncoding with padding of sha256("<iss>.<sub>.<clean(subject)>"), computed independently
    const expected = base32(sha256(`${exporterKp.getPublicKey()}.${importer.getPublicKey()}.help.me`))
    t.equal(hashId, expected)
    t.equal((await sys.request(subjects.resolverActivationGet, hashId, { timeout: 2000 })).string(), token, 'round trip')
    t.equal((await put(token)).json<{ outcome: string }>().outcome, 'current', 'the same token again is current')

    const bySigningKey = activation({ nats: { subject: 'help.*', issuer_account: exporterKp.getPublicKey() } }, exporterSigning)
    const r = (await put(bySigningKey)).json<{ hashId: string }>()
    t.equal(r.hashId, base32(sha256(`${exporterSigning.getPublicKey()}.${importer.getPublicKey()}.help`)), 'a wildcard subject is cleaned')

    const revokedImporter = Object.keys(exports[0]!.revocations)[0]!
    const cases: [string, string | Uint8Array, string][] = [
      ['garbage', 'garbage', 'JWT_MALFORMED'],
      ['empty', '', 'JWT_MALFORMED'],
      ['signed by another account', activation({ nats: { issuer_account: exporterKp.getPublicKey() } }, createAccount()), 'ACTIVATION_INVALID'],
      ['for an export that does not exist', activation({ nats: { subject: 'other.thing' } }), 'ACTIVATION_INVALID'],
      ['of the wrong kind', activation({ nats: { kind: 'stream' } }), 'ACTIVATION_INVALID'],
      ['expired', activation({ exp: now() - 10 }), 'JWT_EXPIRED'],
      ['revoked by the export', activation({ sub: revokedImporter, iat: now() - 100 }), 'ACTIVATION_INVALID'],
      ['from an unknown exporter', activation({}, createAccount()), 'NOT_FOUND'],
      ['an account JWT', exporterJwt, 'ACTIVATION_INVALID'],
      ['an older version of a stored token', activation({ iat: now() - 1000 }), 'JWT_OUTDATED'],
    ]
    for (const [what, body, code] of cases) t.equal(errorOf(await put(body)), code, what)
    t.equal((await sys.request(subjects.resolverActivationGet, hashId, { timeout: 2000 })).string(), token, 'the stored token is unchanged')
    const missing = await sys.request(subjects.resolverActivationGet, base32(sha256('nothing')), { timeout: 2000 })
    t.equal(errorOf(missing), 'NOT_FOUND')
    const badId = await sys.request(subjects.resolverActivationGet, 'not-a-hash', { timeout: 2000 })
    t.equal(errorOf(badId), 'REQUEST_INVALID')
  })

})

t.test('a full-mode server joining the system account converges with our store through PACK', async (t) => {
  const fx = await makeFixture(t)
  const routePort = await freePort()
  const cache = await startNatsServer(t, fx, { name: 'cache', cluster: { name: 'mesh-pack', port: routePort, routes: [] } })
  const sys = await connectWith(t, cache, fx.sysUser.creds)
  await startResolver(t, fx, [cache])
  await startService(t, 'signer', fx, [cache])
  const ids: string[] = []
  for (let i = 0; i < 5; i++) {
    const id = createAccount().getPublicKey()
    t.equal((await push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, id), 1)).ours.data?.code, 200)
    ids.push(id)
  }
  const full = await startNatsServer(t, fx, {
    name: 'full',
    resolver: 'full',
    interval: '1s',
    cluster: { name: 'mesh-pack', port: await freePort(), routes: [`nats-route://127.0.0.1:${routePort}`] },
  })
  // Each interval the full server asks the `responder` group; whenever we win the draw, it gets our store.
  const files = await waitFor(async () => {
    const names = new Set(await readdir(full.jwtDir))
    return ids.every((id) => names.has(`${id}.jwt`)) ? names : undefined
  }, { ms: 30_000, what: 'the full server to hold every account' })
  t.ok(ids.every((id) => files.has(`${id}.jwt`)), 'every stored account reached the full server')
})

/** RFC 4648 base32 with padding, written here so the test does not trust the code under test. */
function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bitsString = ''
  for (const b of bytes) bitsString += b.toString(2).padStart(8, '0')
  let out = ''
  for (let i = 0; i < bitsString.length; i += 5) out += alphabet[parseInt(bitsString.slice(i, i + 5).padEnd(5, '0'), 2)]
  while (out.length % 8 !== 0) out += '='
  return out
}
