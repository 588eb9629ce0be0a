import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import fc from 'fast-check'
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core'
import { createAccount, createCurve, createOperator, createServer, createUser, type KeyPair } from '@nats-io/nkeys'
import { encodeActivation, encodeGeneric, encodeUser } from '@nats-io/jwt'
import { MAX_JWT_BYTES, subjects, tryPeek } from '../shared/index.ts'
import { UNLIMITED } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture } from './kit/fixtures.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { allEndpoints, concreteSubject, type EndpointInfo } from './kit/service-endpoints.ts'
import { hostileStore } from './kit/hostile-store.ts'
import { startResolver, startService, type ServiceProcess } from './kit/services.ts'
import { push } from './kit/sys-requests.ts'

const LONG = process.env.MESH_LONG_TESTS === '1'
const RUNS = LONG ? 2000 : 200
const REPLY_MS = 3000

// ---- raw JWT building: anything goes ---------------------------------------------------------------------

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
const V2 = { typ: 'JWT', alg: 'ed25519-nkey' }
const sign = (kp: KeyPair, data: string) => Buffer.from(kp.sign(Buffer.from(data))).toString('base64url')

/** header.payload.signature with any header and payload (objects, or raw strings/bytes as given), signed by `kp`. */
function rawJwt(header: unknown, payload: unknown, kp?: KeyPair, sig?: string): string {
  const encode = (v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64url') : b64(v))
  const signed = `${encode(header)}.${encode(payload)}`
  return `${signed}.${sig ?? (kp ? sign(kp, signed) : '')}`
}

const now = () => Math.floor(Date.now() / 1000)

/** JSON nested `depth` levels deep, built as text (JSON.stringify would recurse). */
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth)

// ---- what comes back ---------------------------------------------------------------------------------------

const isServerReply = (m: Msg) => {
  try {
    const id = (JSON.parse(m.string()) as { server?: { id?: unknown } }).server?.id
    return typeof id === 'string' && /^N[A-Z2-7]{55}$/.test(id)
  } catch {
    return false
  }
}

/** Publishes a request and returns the first reply that is not a nats-server's (they answer $SYS subjects too). */
async function ask(nc: NatsConnection, subject: string, body: Uint8Array | string, headers?: MsgHdrs): Promise<Msg | undefined> {
  const inbox = createInbox()
  const sub = nc.subscribe(inbox)
  const timer = setTimeout(() => sub.unsubscribe(), REPLY_MS)
  nc.publish(subject, body, { reply: inbox, headers })
  let ours: Msg | undefined
  for await (const m of sub) {
    if (!isServerReply(m)) {
      ours = m
      break
    }
  }
  clearTimeout(timer)
  sub.unsubscribe()
  return ours
}

type Kind = 'lookup' | 'update' | 'delete' | 'validate' | 'validate-batch' | 'validate-delete' | 'notify' | 'notify-batch' | 'other'

function kindOf(e: EndpointInfo): Kind {
  switch (e.subject) {
    case subjects.lookup():
      return 'lookup'
    case subjects.claimsUpdate:
    case subjects.accountUpdate():
      return 'update'
    case subjects.claimsDelete:
      return 'delete'
    case subjects.signerValidate:
      return 'validate'
    case subjects.signerValidateBatch:
      return 'validate-batch'
    case subjects.signerValidateDelete:
      return 'validate-delete'
    case subjects.notifierNotifyBatch:
      return 'notify-batch'
    case subjects.notifierNotify:
      return 'notify'
    default:
      return 'other'
  }
}

interface Known {
  /** What LOOKUP must serve for an id; anything else must be empty. */
  served: Map<string, string>
  /** Accounts a hostile push may create: self-signed ones with fresh keys, re-signed in managed mode. */
  created: Set<string>
  /** Ids that must never change. */
  protectedIds: Set<string>
}

/** The accounts whose JWTs a notify or notify-batch request would have the notifier broadcast. */
function broadcastAccounts(kind: 'notify' | 'notify-batch', body: Uint8Array | string): string[] {
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body)
  let jwts: unknown[] = [text]
  if (kind === 'notify-batch') {
    try {
      const list: unknown = JSON.parse(text)
      jwts = Array.isArray(list) ? list.map((c) => (c as { jwt?: unknown } | null)?.jwt) : []
    } catch {
      jwts = []
    }
  }
  return jwts.flatMap((j) => {
    const sub = typeof j === 'string' ? tryPeek(j)?.sub : undefined
    return typeof sub === 'string' ? [sub] : []
  })
}

/**
 * Asks, and asks once more when unanswered but byte-identical to the stored version on its account's update
 * subject. While the resolver broadcasts that version (the restore after a refused push of the account sends it)
 * such a message is indistinguishable from its own broadcast's echo, which it leaves unanswered by design
 * (services/resolver/echoes.ts). Past that window the same request must be answered like any other.
 */
async function askPastEcho(nc: NatsConnection, subject: string, body: Uint8Array | string, headers: MsgHdrs | undefined, known: Known): Promise<Msg | undefined> {
  const reply = await ask(nc, subject, body, headers)
  const [, , , id, , op] = subject.split('.')
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body)
  const echoShaped = subject.startsWith('$SYS.REQ.ACCOUNT.') && op === 'UPDATE' && id !== undefined && known.served.get(id) === text
  return reply === undefined && echoShaped ? ask(nc, subject, body, headers) : reply
}

/**
 * Judges one reply. `mustRefuse`: the input is bad, so the endpoint must refuse it (an error reply in its
 * dialect); otherwise any reply is fine as long as it is not a failure of ours (status >= 500).
 */
function judge(kind: Kind, subject: string, reply: Msg | undefined, mustRefuse: boolean, known: Known): string | undefined {
  if (reply === undefined) return 'no reply'
  const errHeader = reply.headers?.get('Nats-Service-Error-Code')
  if (kind === 'lookup') {
    if (reply.headers) return 'LOOKUP reply carries headers'
    const id = subject.split('.')[3] ?? ''
    const want = known.served.get(id)
    if (reply.data.length === 0) return want === undefined || mustRefuse ? undefined : `LOOKUP of ${id} came back empty`
    if (known.created.has(id)) return undefined
    return reply.string() === want ? undefined : `LOOKUP of ${id} served something else`
  }
  if (subject.startsWith('$SYS.')) {
    if (errHeader) return `$SYS reply with micro error headers (${errHeader})`
    let r: { data?: { account?: string; message?: string }; error?: { code?: number; reason?: string } }
    try {
      r = JSON.parse(reply.string()) as typeof r
    } catch {
      return kind === 'update' || kind === 'delete' ? 'not JSON' : undefined // PACK streams raw lines
    }
    if (r.error !== undefined) {
      const code = r.error.code ?? 0
      return code >= 400 && code < 500 ? undefined : `error status ${code} (${r.error.reason})`
    }
    if (kind === 'update' && r.data !== undefined && r.data.message !== 'jwt already current') {
      const id = r.data.account ?? ''
      if (known.protectedIds.has(id)) return `a push changed ${id}`
      if (mustRefuse) return `accepted: ${JSON.stringify(r.data)}`
      known.created.add(id)
    }
    if (kind === 'delete' && r.data !== undefined) return `delete accepted: ${JSON.stringify(r.data)}`
    return undefined
  }
  if (errHeader) {
    const code = Number(errHeader)
    return code >= 400 && code < 500 ? undefined : `error status ${errHeader}: ${reply.headers?.get('Nats-Service-Error')}`
  }
  if (kind === 'validate-batch' || kind === 'notify-batch') return judgeBatch(reply, mustRefuse)
  return mustRefuse ? `accepted: ${reply.string().slice(0, 200)}` : undefined
}

/**
 * A batch endpoint answers one entry per item: `{error}` with a 4xx status for a refused one. Bad items must
 * each be refused; none may fail on our side (5xx).
 */
function judgeBatch(reply: Msg, mustRefuse: boolean): string | undefined {
  let answers: unknown
  try {
    answers = JSON.parse(reply.string())
  } catch {
    return 'batch reply is not JSON'
  }
  if (!Array.isArray(answers) || answers.length === 0) return `batch reply is not a list of answers: ${reply.string().slice(0, 200)}`
  for (const a of answers as { error?: { status?: number; code?: string } }[]) {
    const status = a?.error?.status
    if (status === undefined) {
      if (mustRefuse) return `accepted: ${JSON.stringify(a).slice(0, 200)}`
      continue
    }
    if (status < 400 || status >= 500) return `batch entry with status ${status} (${a.error?.code})`
  }
  return undefined
}

/** One hostile input; bodies may take a moment to build (the jwt library signs asynchronously). */
interface Case {
  name: string
  body: () => string | Uint8Array | Promise<string>
  headers?: () => MsgHdrs
}

/** A short name for what a reply said: its error code, or `ok`. */
function outcome(reply: Msg): string {
  try {
    const r = JSON.parse(reply.string()) as { error?: { reason?: string }; code?: string }
    if (reply.headers?.get('Nats-Service-Error-Code')) return r.code ?? 'error'
    return r.error ? (r.error.reason ?? 'error') : 'ok'
  } catch {
    return 'ok'
  }
}

// ---- the mesh under attack ---------------------------------------------------------------------------------

t.test('hostile input on every endpoint: always a reply, never a crash, the store unchanged', async (t) => {
  const fx = await makeFixture(t)
  const store = hostileStore() // level, or jetstream from test/hostile-jetstream.test.ts
  const servers = await store.startServers(t, fx, { maxPayload: 4 * 1024 * 1024 })
  const sys = await connectWith(t, servers, fx.sysUser.creds)
  const seedFile = join(fx.dir, 'signing.nk')
  await writeFile(seedFile, new TextDecoder().decode(fx.op.signingKp.getSeed()), { mode: 0o600 })
  // Managed mode: self-signed claims reach the signer's re-signing code, the widest surface.
  const services: ServiceProcess[] = [
    await startResolver(t, fx, servers, store.resolverEnv(fx)),
    await startService(t, 'signer', fx, servers, { SIGNER_SEED_FILE: seedFile }),
    await startService(t, 'notifier', fx, servers),
  ]

  const knownKp = createAccount()
  const K = knownKp.getPublicKey()
  const SYS = fx.op.systemAccount.id
  const knownJwt = accountJwt(fx.op.signingKp, K, {}, { iat: now() - 10, name: 'KNOWN' })
  t.equal((await push(sys, subjects.claimsUpdate, knownJwt, 1)).ours.data?.code, 200, 'the known account is stored')
  await store.baseline(t, fx, servers)
  const known: Known = {
    served: new Map([
      [K, knownJwt],
      [SYS, fx.op.systemAccount.jwt],
    ]),
    created: new Set(),
    protectedIds: new Set([K, SYS]),
  }

  const endpoints = await allEndpoints(sys, 3)
  t.comment(`endpoints: ${endpoints.map((e) => `${e.service}.${e.name} ${e.subject}`).join(', ')}`)
  t.ok(endpoints.filter((e) => kindOf(e) !== 'other').length >= 7, 'INFO lists the endpoints this suite knows')
  const listEndpoint = endpoints.find((e) => e.subject === subjects.claimsList)
  const listIds = async () => {
    if (listEndpoint === undefined) return undefined
    const r = JSON.parse((await ask(sys, subjects.claimsList, ''))!.string()) as { data: string[] }
    return [...r.data].sort()
  }
  const listBefore = await listIds()

  // Keys of every kind, trusted and not.
  const untrustedOp = createOperator()
  const userKp = createUser()
  const serverKp = createServer()
  const curveKp = createCurve()
  const fresh = () => createAccount()

  const selfSigned = (nats: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const kp = fresh()
    return signClaims({ sub: kp.getPublicKey(), ...extra, nats: { type: 'account', version: 2, ...nats } }, kp)
  }
  const hostileHeaders = () => {
    const h = natsHeaders()
    h.set('Mesh-Account', K)
    h.set('Mesh-Stored-Iat', '99999999999')
    h.set('Nats-Request-Info', '{"acc":"$G","rtt":"1ms"}')
    h.set('Nats-Service-Error-Code', '200')
    return h
  }

  /** Bad account JWTs: each must be refused by the update endpoints and by the signer's validate. */
  const badJwts: Case[] = [
    { name: 'empty body', body: () => '' },
    { name: 'garbage', body: () => 'garbage' },
    { name: 'two segments', body: () => 'a.b' },
    { name: 'four segments', body: () => `${knownJwt}.x` },
    { name: 'dots only', body: () => '..' },
    { name: 'base64 with padding', body: () => knownJwt.split('.').map((s) => `${s}==`).join('.') },
    { name: 'header not JSON', body: () => rawJwt('not json', { sub: K }, untrustedOp) },
    { name: 'payload a JSON array', body: () => rawJwt(V2, [1, 2, 3], fx.op.signingKp) },
    { name: 'payload null', body: () => rawJwt(V2, 'null', fx.op.signingKp) },
    { name: 'alg none', body: () => rawJwt({ typ: 'JWT', alg: 'none' }, { sub: K, iss: fx.op.signingKp.getPublicKey(), nats: { type: 'account', version: 2 } }) },
    { name: 'alg HS256', body: () => signClaims({ sub: K, nats: { type: 'account', version: 2 } }, fx.op.signingKp, { typ: 'JWT', alg: 'HS256' }) },
    { name: 'alg RS256', body: () => signClaims({ sub: K, nats: { type: 'account', version: 2 } }, fx.op.signingKp, { typ: 'JWT', alg: 'RS256' }) },
    // jwt picks what the signature covers by the claims' version, not the header: v2 claims signed the v1 way fail
    {
      name: 'v2 claims signed over the payload only (alg ed25519)',
      body: () => {
        const payload = { sub: K, iat: now(), iss: fx.op.signingKp.getPublicKey(), nats: { type: 'account', version: 2 } }
        return rawJwt({ typ: 'JWT', alg: 'ed25519' }, payload, undefined, sign(fx.op.signingKp, b64(payload)))
      },
    },
    { name: 'typ JWS', body: () => signClaims({ sub: K, nats: { type: 'account', version: 2 } }, fx.op.signingKp, { typ: 'JWS', alg: 'ed25519-nkey' }) },
    { name: 'signature of another token', body: () => `${knownJwt.split('.').slice(0, 2).join('.')}.${accountJwt(untrustedOp, K).split('.')[2]}` },
    { name: 'over the size limit', body: () => 'x'.repeat(MAX_JWT_BYTES + 1) },
    { name: 'huge claims, untrusted issuer', body: () => accountJwt(untrustedOp, K, { tags: Array.from({ length: 60_000 }, (_, i) => `tag-${i}`) }) },
    { name: 'huge claims over the limit, self-signed', body: () => selfSigned({ tags: ['x'.repeat(MAX_JWT_BYTES)] }) },
    {
      name: 'JSON nested 100000 deep, self-signed',
      body: () => {
        const kp = fresh()
        const payload = `{"sub":"${kp.getPublicKey()}","iat":${now()},"iss":"${kp.getPublicKey()}","nats":{"type":"account","version":2,"x":${nested(100_000)}}}`
        return rawJwt(V2, payload, kp)
      },
    },
    {
      name: 'JSON nested 5000 deep, self-signed',
      body: () => {
        const kp = fresh()
        const payload = `{"sub":"${kp.getPublicKey()}","iat":${now()},"iss":"${kp.getPublicKey()}","nats":{"type":"account","version":2,"limits":{"conn":5},"tags":${nested(5000)}}}`
        return rawJwt(V2, payload, kp)
      },
    },
    { name: 'header nested 100000 deep', body: () => rawJwt(nested(100_000), { sub: K }, untrustedOp) },
    { name: 'invalid UTF-8 in the payload', body: () => rawJwt(V2, Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0xc3, 0x28, 0x7d]), untrustedOp) },
    { name: 'invalid UTF-8 as the body', body: () => Uint8Array.from([0xff, 0xfe, 0x2e, 0xc3, 0x28, 0x2e, 0xa0, 0xed, 0xa0, 0x80]) },
    { name: 'issuer a user key', body: () => signClaims({ sub: K, nats: { type: 'account', version: 2 } }, userKp) },
    { name: 'issuer a server key', body: () => signClaims({ sub: K, nats: { type: 'account', version: 2 } }, serverKp) },
    { name: 'issuer a curve key', body: () => rawJwt(V2, { sub: K, iss: curveKp.getPublicKey(), nats: { type: 'account', version: 2 } }, undefined, 'A'.repeat(86)) },
    { name: 'subject a user key', body: () => accountJwt(fx.op.signingKp, userKp.getPublicKey()) },
    { name: 'subject an operator key', body: () => accountJwt(fx.op.signingKp, untrustedOp.getPublicKey()) },
    { name: 'signed by another account', body: () => accountJwt(fresh(), K) },
    { name: 'an untrusted operator', body: () => accountJwt(untrustedOp, K, {}, { iat: now() + 10 }) },
    { name: 'iat a string', body: () => selfSigned({}, { iat: 'yesterday' }) },
    { name: 'exp negative', body: () => selfSigned({}, { exp: -5 }) },
    { name: 'nbf a fraction', body: () => selfSigned({}, { nbf: 1.5 }) },
    { name: 'nats an array', body: () => rawJwt(V2, { sub: K, iss: K, nats: [] }, knownKp) },
    { name: 'limits a string, self-signed', body: () => selfSigned({ limits: 'unlimited' }) },
    { name: 'limits with non-numbers, self-signed', body: () => selfSigned({ limits: { conn: '5', subs: null, data: {}, payload: [] } }) },
    { name: 'imports not a list, self-signed', body: () => selfSigned({ imports: { subject: 'a' } }) },
    { name: 'imports of garbage, self-signed', body: () => selfSigned({ imports: [null, 1, 'x', { type: 'service', subject: '', account: 'x', token: 5 }] }) },
    { name: 'exports of garbage, self-signed', body: () => selfSigned({ exports: [{ type: 'stream', subject: '>' }, { type: 'stream', subject: '>' }, { revocations: 'x' }] }) },
    { name: 'signing keys of garbage, self-signed', body: () => selfSigned({ signing_keys: [5, { kind: 'user_scope', key: 'x', template: 'y' }] }) },
    { name: 'mappings of garbage, self-signed', body: () => selfSigned({ mappings: { 'a.b': [{ subject: 'c', weight: 1000 }], '': 'x' } }) },
    { name: 'conn above the managed cap, self-signed', body: () => selfSigned({ limits: { ...UNLIMITED } }) },
    { name: 'a user JWT', body: () => encodeUser('u', createUser(), knownKp) },
    { name: 'an operator JWT', body: () => fx.op.jwt },
    { name: 'an activation JWT', body: () => encodeActivation('act', fresh(), knownKp, 'service', { subject: 'svc.>' }) },
    { name: 'a generic JWT', body: () => encodeGeneric('g', untrustedOp, 'generic', { accounts: [K] } as never) },
  ]

  /** Bad delete requests: each must be refused. Never a fresh, trusted delete of the known account. */
  const deleteReq = (kp: KeyPair, accounts: unknown, claims: Record<string, unknown> = {}) =>
    signClaims({ sub: kp.getPublicKey(), ...claims, nats: { accounts, version: 2 } }, kp)
  const badDeletes: Case[] = [
    { name: 'empty body', body: () => '' },
    { name: 'garbage', body: () => 'garbage' },
    { name: 'an untrusted operator', body: () => deleteReq(untrustedOp, [K]) },
    { name: 'the system account', body: () => deleteReq(fx.op.kp, [SYS]) },
    { name: 'a stale request', body: () => deleteReq(fx.op.kp, [K], { iat: now() - 86_400 }) },
    { name: 'from the future', body: () => deleteReq(fx.op.kp, [K], { iat: now() + 86_400 }) },
    { name: 'an expired request', body: () => deleteReq(fx.op.kp, [K], { exp: now() - 60 }) },
    { name: 'not self-signed', body: () => signClaims({ sub: untrustedOp.getPublicKey(), nats: { accounts: [K], version: 2 } }, fx.op.kp) },
    { name: 'accounts not a list', body: () => deleteReq(fx.op.kp, K) },
    { name: 'accounts with garbage', body: () => deleteReq(fx.op.kp, ['notakey', '', 5]) },
    { name: 'an account key as issuer', body: () => deleteReq(knownKp, [K]) },
    { name: 'JSON nested 100000 deep', body: () => rawJwt(V2, `{"sub":"x","iss":"y","nats":${nested(100_000)}}`, fx.op.kp) },
    { name: 'an account JWT', body: () => knownJwt },
    { name: 'over the size limit', body: () => 'x'.repeat(MAX_JWT_BYTES + 1) },
  ]

  const changeHeaders = (fields: Record<string, string>) => {
    const h = natsHeaders()
    for (const [k, v] of Object.entries(fields)) h.set(k, v)
    return h
  }
  /** Bad notify requests: each must be refused rather than broadcast. */
  const badNotifies: Case[] = [
    { name: 'no headers', body: () => knownJwt },
    { name: 'no account', body: () => knownJwt, headers: () => changeHeaders({ 'Mesh-Seq': '1', 'Mesh-Change': 'updated' }) },
    { name: 'a bad sequence', body: () => knownJwt, headers: () => changeHeaders({ 'Mesh-Account': K, 'Mesh-Seq': '-1', 'Mesh-Change': 'updated' }) },
    { name: 'an unknown kind', body: () => knownJwt, headers: () => changeHeaders({ 'Mesh-Account': K, 'Mesh-Seq': '1', 'Mesh-Change': 'exploded' }) },
    { name: 'not an account id', body: () => knownJwt, headers: () => changeHeaders({ 'Mesh-Account': 'notakey', 'Mesh-Seq': '1', 'Mesh-Change': 'updated' }) },
    { name: 'an empty body', body: () => '', headers: () => changeHeaders({ 'Mesh-Account': K, 'Mesh-Seq': '1', 'Mesh-Change': 'updated' }) },
    { name: 'garbage to broadcast', body: () => 'garbage', headers: () => changeHeaders({ 'Mesh-Account': K, 'Mesh-Seq': '1', 'Mesh-Change': 'updated' }) },
    {
      name: "another account's JWT",
      body: () => accountJwt(fx.op.signingKp, fresh().getPublicKey()),
      headers: () => changeHeaders({ 'Mesh-Account': K, 'Mesh-Seq': '1', 'Mesh-Change': 'updated' }),
    },
    { name: 'a user JWT', body: () => encodeUser('u', createUser(), knownKp), headers: () => changeHeaders({ 'Mesh-Account': K, 'Mesh-Seq': '1', 'Mesh-Change': 'updated' }) },
    { name: 'a garbage deletion', body: () => 'garbage', headers: () => changeHeaders({ 'Mesh-Account': K, 'Mesh-Seq': '1', 'Mesh-Change': 'deleted' }) },
    {
      name: 'a receipt that is no client inbox',
      body: () => knownJwt,
      headers: () => changeHeaders({ 'Mesh-Account': K, 'Mesh-Seq': '1', 'Mesh-Change': 'updated', 'Mesh-Receipt': '$SYS.REQ.>' }),
    },
  ]

  const asText = (b: string | Uint8Array) => (typeof b === 'string' ? b : new TextDecoder().decode(b))
  /** Bad validate-batch requests: a malformed list is refused whole, each bad JWT in a list gets its own refusal. */
  const badValidateBatches: Case[] = [
    { name: 'empty body', body: () => '' },
    { name: 'not JSON', body: () => 'garbage' },
    { name: 'an object, not a list', body: () => JSON.stringify({ jwt: knownJwt }) },
    { name: 'an empty list', body: () => '[]' },
    { name: 'a list of 129', body: () => JSON.stringify(Array.from({ length: 129 }, () => ({ jwt: 'garbage' }))) },
    { name: 'items not objects', body: () => JSON.stringify([1, 'x', null]) },
    { name: 'a jwt not a string', body: () => JSON.stringify([{ jwt: 5 }]) },
    { name: 'a negative storedIat', body: () => JSON.stringify([{ jwt: 'garbage', storedIat: -1 }]) },
    { name: 'exporters not a map of strings', body: () => JSON.stringify([{ jwt: 'garbage', exporters: { [K]: 5 } }]) },
    { name: 'nested 100000 deep', body: () => nested(100_000) },
    { name: 'the known JWT for another account', body: () => JSON.stringify([{ jwt: knownJwt, account: fresh().getPublicKey() }]) },
    ...badJwts.map((c) => ({ name: `one item: ${c.name}`, body: async () => JSON.stringify([{ jwt: asText(await c.body()) }]) })),
    {
      name: 'every bad JWT in one list',
      body: async () => JSON.stringify(await Promise.all(badJwts.filter((c) => !c.name.includes('size') && !c.name.includes('huge')).map(async (c) => ({ jwt: asText(await c.body()) || 'x' })))),
    },
  ]
  const item = (fields: Record<string, unknown>) => JSON.stringify([{ id: K, seq: 1, kind: 'updated', jwt: knownJwt, ...fields }])
  /** Bad notify-batch requests: a malformed list is refused whole, each bad change in a list gets its own refusal. */
  const badNotifyBatches: Case[] = [
    { name: 'empty body', body: () => '' },
    { name: 'not JSON', body: () => 'garbage' },
    { name: 'an object, not a list', body: () => JSON.stringify({ id: K, seq: 1, kind: 'updated', jwt: knownJwt }) },
    { name: 'an empty list', body: () => '[]' },
    { name: 'a list of 65', body: () => JSON.stringify(Array.from({ length: 65 }, () => ({ id: K, seq: 1, kind: 'updated', jwt: 'garbage' }))) },
    { name: 'nested 100000 deep', body: () => nested(100_000) },
    { name: 'no account', body: () => item({ id: undefined }) },
    { name: 'a bad sequence', body: () => item({ seq: -1 }) },
    { name: 'a string sequence', body: () => item({ seq: '1' }) },
    { name: 'an unknown kind', body: () => item({ kind: 'exploded' }) },
    { name: 'enforce not a boolean', body: () => item({ enforce: 'yes' }) },
    { name: 'not an account id', body: () => item({ id: 'notakey' }) },
    { name: 'an empty JWT', body: () => item({ jwt: '' }) },
    { name: 'garbage to broadcast', body: () => item({ jwt: 'garbage' }) },
    { name: "another account's JWT", body: () => item({ jwt: accountJwt(fx.op.signingKp, fresh().getPublicKey()) }) },
    { name: 'a user JWT', body: () => item({ jwt: encodeUser('u', createUser(), knownKp) }) },
    { name: 'a garbage deletion', body: () => item({ kind: 'deleted', jwt: 'garbage' }) },
    { name: 'items not objects', body: () => JSON.stringify([null, 1, 'x']) },
    { name: 'a receipt not a string', body: () => item({ receipt: 5 }) },
    { name: 'a receipt with a wildcard', body: () => item({ receipt: '_INBOX.>' }) },
    { name: 'a receipt that is no client inbox', body: () => item({ receipt: '$SYS.REQ.CLAIMS.UPDATE' }) },
  ]

  /** Inputs for endpoints that ignore or only loosely read their body: any reply of theirs is fine, 5xx is not. */
  const anyBodies: Case[] = [
    { name: 'empty', body: () => '' },
    { name: 'garbage', body: () => 'garbage' },
    { name: 'JSON', body: () => '{"account":"x","limit":-1}' },
    { name: 'invalid UTF-8', body: () => Uint8Array.from([0xff, 0xfe, 0xc3, 0x28]) },
    { name: 'nested 100000 deep', body: () => nested(100_000) },
    { name: 'a megabyte', body: () => 'x'.repeat(MAX_JWT_BYTES + 1) },
    { name: 'hostile headers', body: () => knownJwt, headers: hostileHeaders },
    { name: 'a 503 status header', body: () => '', headers: () => natsHeaders(503, 'No Responders') },
  ]

  /** The subjects to try for an endpoint: wildcards filled with odd tokens, or the subject itself. */
  const odd = ['notakey', K, SYS, userKp.getPublicKey(), untrustedOp.getPublicKey(), fresh().getPublicKey(), 'ä']
  const subjectsFor = (e: EndpointInfo) => (e.subject.includes('*') || e.subject.includes('>') ? odd.map((x) => concreteSubject(e.subject, x)) : [e.subject])

  const cases: { e: EndpointInfo; subject: string; name: string; body: Uint8Array | string; headers?: MsgHdrs; mustRefuse: boolean }[] = []
  for (const e of endpoints) {
    const kind = kindOf(e)
    const table =
      kind === 'update' || kind === 'validate'
        ? badJwts
        : kind === 'delete' || kind === 'validate-delete'
          ? badDeletes
          : kind === 'notify'
            ? badNotifies
            : kind === 'validate-batch'
              ? badValidateBatches
              : kind === 'notify-batch'
                ? badNotifyBatches
                : anyBodies
    const refuse = kind !== 'lookup' && kind !== 'other'
    for (const subject of kind === 'update' ? subjectsFor(e).slice(0, 3) : subjectsFor(e)) {
      for (const c of table) cases.push({ e, subject, name: c.name, body: await c.body(), headers: c.headers?.(), mustRefuse: refuse })
      cases.push({ e, subject, name: 'hostile headers', body: 'garbage', headers: hostileHeaders(), mustRefuse: refuse })
    }
  }

  await t.test(`a corpus of ${cases.length} hostile requests`, async (t) => {
    for (const c of cases) {
      const reply = await askPastEcho(sys, c.subject, c.body, c.headers, known)
      const problem = judge(kindOf(c.e), c.subject, reply, c.mustRefuse, known)
      if (problem !== undefined) t.fail(`${c.e.service}.${c.e.name} ${c.subject} with ${c.name}: ${problem}`)
    }
    t.pass(`${cases.length} requests answered as they should be`)
  })

  await t.test(`property: ${RUNS} random requests to random endpoints`, async (t) => {
    const keys = [fx.op.signingKp, untrustedOp, userKp, serverKp, knownKp, createAccount()]
    const token = fc.oneof(fc.constantFrom(...odd), fc.stringMatching(/^[A-Za-z0-9_-]{1,60}$/))
    const anyJson = fc.jsonValue({ maxDepth: 3 })
    const subjectish = fc.oneof(fc.constantFrom('a', 'a.b', 'a.*', 'a.>', '>', '*.b', '', ' a', 'a..b'), fc.string({ maxLength: 10 }))
    const keyish = fc.oneof(fc.constantFrom(K, SYS, userKp.getPublicKey(), 'notakey', ''), anyJson)
    const entry = fc.dictionary(fc.constantFrom('type', 'subject', 'account', 'to', 'token', 'local_subject', 'response_type', 'revocations', 'kind', 'key', 'weight'), fc.oneof(subjectish, keyish, fc.constantFrom('service', 'stream', 'Singleton', 'user_scope'), anyJson), { maxKeys: 6 })
    const listish = fc.oneof(fc.array(fc.oneof(entry, anyJson), { maxLength: 6 }), anyJson)
    // Mostly well-formed, so most tokens get past decoding into the signer's content rules and managed signing.
    const mostly = <T,>(good: fc.Arbitrary<T>, weight = 12) => fc.oneof({ arbitrary: good, weight }, { arbitrary: anyJson, weight: 1 })
    const smallInt = fc.integer({ min: -2, max: 30 })
    const extras = fc.record(
      {
        limits: mostly(fc.dictionary(fc.constantFrom('conn', 'subs', 'data', 'payload', 'imports', 'exports', 'wildcards', 'leaf', 'mem_storage', 'tiered_limits'), mostly(smallInt, 4), { maxKeys: 4 }), 4),
        imports: listish,
        exports: listish,
        signing_keys: listish,
        mappings: fc.oneof(fc.dictionary(subjectish, listish, { maxKeys: 2 }), anyJson),
        revocations: anyJson,
        tags: anyJson,
        description: anyJson,
      },
      { requiredKeys: [] },
    )
    const nats = fc
      .record({ type: mostly(fc.constant('account')), version: mostly(fc.constant(2)), extras: fc.oneof(fc.constant({}), extras) })
      .map(({ type, version, extras }) => ({ type, version, ...extras }))
    const claims = fc.record(
      {
        iat: mostly(fc.constant(now())),
        exp: mostly(fc.constant(now() + 3600)),
        nbf: mostly(fc.constant(now() - 60)),
        name: mostly(fc.string({ maxLength: 20 })),
        jti: anyJson,
        nats,
      },
      { requiredKeys: ['iat', 'nats'] },
    )
    // Self-signed by a fresh account most of the time (managed mode signs those), or by any other key with a fresh subject.
    const jwtish = fc.record({ claims, signer: fc.nat({ max: keys.length * 2 }), header: fc.oneof({ arbitrary: fc.constant<unknown>(V2), weight: 6 }, { arbitrary: anyJson, weight: 1 }), sig: fc.constantFrom('valid', 'valid', 'valid', 'valid', 'valid', 'valid', 'garbage', 'none') }).map(
      ({ claims, signer, header, sig }) => {
        const self = fresh()
        const kp = keys[signer] ?? self
        const payload = { ...claims, sub: self.getPublicKey(), iss: kp.getPublicKey() }
        return rawJwt(header, payload, kp, sig === 'garbage' ? 'AAAA' : sig === 'none' ? '' : undefined)
      },
    )
    const body = fc.oneof(
      { arbitrary: jwtish, weight: 6 },
      { arbitrary: fc.uint8Array({ maxLength: 300 }), weight: 1 },
      { arbitrary: fc.string({ unit: 'binary', maxLength: 300 }), weight: 1 },
      { arbitrary: fc.integer({ min: 1, max: 200_000 }).map(nested), weight: 1 },
      { arbitrary: fc.constantFrom(knownJwt, fx.op.jwt, fx.op.systemAccount.jwt, ''), weight: 1 },
    )
    const header = fc.option(
      fc.dictionary(
        fc.oneof(fc.constantFrom('Mesh-Account', 'Mesh-Seq', 'Mesh-Change', 'Mesh-Stored-Iat', 'Nats-Request-Info', 'Accept-Encoding'), fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/)),
        fc.oneof(fc.constantFrom(K, SYS, '1', '-1', 'updated', 'deleted', 'restore', 'snappy', '1e999'), fc.stringMatching(/^[!-~][ -~]{0,40}$/)),
        { maxKeys: 4 },
      ),
    )
    // The endpoints that read a JWT get most of the traffic; every endpoint gets some.
    const sendable = endpoints.flatMap((e) => (['update', 'validate', 'validate-batch', 'delete', 'validate-delete', 'notify', 'notify-batch'].includes(kindOf(e)) ? [e, e, e, e] : [e]))
    let runs = 0
    const outcomes = new Map<string, number>()
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: sendable.length - 1 }), token, body, header, async (i, tok, b, hdr) => {
        runs++
        const e = sendable[i]!
        const subject = concreteSubject(e.subject, tok)
        let h: MsgHdrs | undefined
        if (hdr) {
          h = natsHeaders()
          for (const [k, v] of Object.entries(hdr)) h.set(k, v)
        }
        const kind = kindOf(e)
        // Random input may be a valid managed account (accepted, for a fresh account) or a valid notify of a
        // stored JWT; everything else this generator makes is bad, and must not be a failure of ours.
        const reply = await askPastEcho(sys, subject, b, h, known)
        const problem = judge(kind, subject, reply, false, known)
        if (problem !== undefined) throw new Error(`${e.service}.${e.name} ${subject}: ${problem}`)
        // A notify the notifier took is broadcast on the per-account update subject, which the resolver serves:
        // a valid fresh self-signed account in it is a push like any other, and may create a managed account.
        if ((kind === 'notify' || kind === 'notify-batch') && reply?.headers?.get('Nats-Service-Error-Code') === undefined) {
          for (const id of broadcastAccounts(kind, b)) if (!known.protectedIds.has(id)) known.created.add(id)
        }
        const o = `${kind}:${outcome(reply!)}`
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1)
      }),
      { numRuns: RUNS, endOnFailure: true },
    )
    t.pass(`${runs} random requests answered without a failure of ours`)
    t.comment(`outcomes: ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`)
  })

  await t.test('afterwards: every service alive and answering, the store unchanged', async (t) => {
    for (const svc of services) {
      t.equal(svc.proc.exitCode, null, `${svc.name} still running`)
      const r = (await sys.request(`$SRV.PING.${svc.name}`, '', { timeout: 2000 })).json<{ name: string }>()
      t.equal(r.name, svc.name, `${svc.name} answers $SRV.PING`)
      t.same(svc.logs.filter((l) => l.msg === 'unexpected failure'), [], `${svc.name} logged no unexpected failure`)
    }
    t.equal((await sys.request(subjects.lookup(K), '', { timeout: 2000 })).string(), knownJwt, 'the known account is served unchanged')
    if (listBefore !== undefined) {
      t.same(await listIds(), [...new Set([...listBefore, ...known.created])].sort(), 'LIST holds what it held, plus managed accounts the random pushes created')
    }
    t.comment(`${known.created.size} managed accounts created by random self-signed pushes`)
    await store.unchanged(t, known.created)
  })
})

