import t from 'tap'
import { createHash } from 'node:crypto'
import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys'
import {
  Algorithms,
  encodeAccount,
  encodeActivation,
  encodeGeneric,
  encodeOperator,
  encodeUser,
  newScopedSigner,
  type Account,
} from '@nats-io/jwt'
import { AppError, decodeJwt, envReader, goJti, trustAnchorFrom, type TrustAnchor } from '../shared/index.ts'
import { newAccount, newOperator, UNLIMITED } from '../ops/identities.ts'
import { validateAccountJwt } from '../services/signer/account-rules.ts'
import { validateDeleteRequest } from '../services/signer/delete-rules.ts'
import { readManagedPolicy, signManagedAccount, type ManagedPolicy } from '../services/signer/managed-policy.ts'

const now = Math.floor(Date.now() / 1000)
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

/** Signs any claims exactly as given (the jwt library stamps iat and type itself), v2 unless told. */
function signRaw(claims: Record<string, unknown>, kp: KeyPair, alg = 'ed25519-nkey'): string {
  const h = b64({ typ: 'JWT', alg })
  const p = b64({ jti: 'fixture', iat: now, ...claims, iss: kp.getPublicKey() })
  const signed = alg === 'ed25519' ? p : `${h}.${p}`
  return `${h}.${p}.${Buffer.from(kp.sign(Buffer.from(signed))).toString('base64url')}`
}

/** Re-encodes the payload with a change but keeps the old signature. */
function tamper(token: string, change: (claims: Record<string, unknown>) => void): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  change(claims)
  return `${h}.${b64(claims)}.${s}`
}

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    if (e instanceof AppError) return e.code
    throw e
  }
  return 'OK'
}

const op = await newOperator('OP')
const trust = trustAnchorFrom(op.jwt)
const strictOp = await newOperator('STRICT', { strict: true })
const strictTrust = trustAnchorFrom(strictOp.jwt)
const foreign = await newOperator('FOREIGN')

const importer = createAccount()
const exporter = createAccount()
const exporterSigner = createAccount()
const stranger = createAccount()
const limited = (extra: Record<string, unknown> = {}) => ({ ...UNLIMITED, ...extra })
const acct = (nats: Partial<Account>, opts: { exp?: number; nbf?: number } = {}) =>
  encodeAccount('acct', importer, nats, { signer: op.signingKp, ...opts })
// getPublicKey() derives the key from the seed in pure JS each time: slow inside a loop
const exporterId = exporter.getPublicKey()
const svcImport = (token?: string, extra: Record<string, unknown> = {}) => ({
  name: 'orders', subject: 'svc.orders.create', account: exporterId, type: 'service', ...(token ? { token } : {}), ...extra,
})
const activation = (subject: string, kind: 'service' | 'stream', opts: { sub?: KeyPair; iss?: KeyPair; signer?: KeyPair } = {}) =>
  encodeActivation('act', opts.sub ?? importer, opts.iss ?? exporter, kind, { subject }, opts.signer ? { signer: opts.signer } : {})

t.test('account JWTs: hostile and valid input', async (t) => {
  const valid = await acct({ limits: limited() })
  const user = await encodeUser('u', createUser(), importer)
  const operatorJwt = await encodeOperator('O2', createOperator())
  const v1 = await encodeAccount('v1', importer, { limits: limited() }, { signer: op.signingKp, algorithm: Algorithms.v1 })
  const noVersion = signRaw({ sub: importer.getPublicKey(), nats: { type: 'account', limits: limited() } }, op.signingKp)
  const userSub = signRaw({ sub: createUser().getPublicKey(), nats: { type: 'account', version: 2 } }, op.signingKp)
  const foreignSigned = await encodeAccount('f', importer, { limits: limited() }, { signer: foreign.signingKp })
  const foreignIdentity = await encodeAccount('f', importer, { limits: limited() }, { signer: foreign.kp })
  const otherAccountSigned = await encodeAccount('o', importer, { limits: limited() }, { signer: stranger })
  const identitySigned = await encodeAccount('i', importer, { limits: limited() }, { signer: op.kp })
  const strictIdentity = await encodeAccount('s', importer, { limits: limited() }, { signer: strictOp.kp })
  const strictSigning = await encodeAccount('s', importer, { limits: limited() }, { signer: strictOp.signingKp })
  const wildcardExport = { name: 'all', subject: 'events.>', type: 'stream' } as const
  const goodSvc = await activation('svc.orders.*', 'service')
  const bySigningKey = await activation('svc.orders.*', 'service', { signer: exporterSigner })

  const cases: { name: string; token: string; trust?: TrustAnchor; account?: string; code: string }[] = [
    { name: 'empty', token: '', code: 'JWT_MALFORMED' },
    { name: 'garbage', token: 'not.a.jwt', code: 'JWT_MALFORMED' },
    { name: 'two segments', token: valid.split('.').slice(0, 2).join('.'), code: 'JWT_MALFORMED' },
    { name: 'oversized (> 1 MiB)', token: 'a'.repeat(1_048_577), code: 'JWT_TOO_LARGE' },
    { name: 'tampered payload', token: tamper(valid, (c) => void (c.name = 'evil')), code: 'JWT_BAD_SIGNATURE' },
    { name: 'tampered signature', token: valid.replace(/\.([A-Za-z0-9_-])([A-Za-z0-9_-]+)$/, (_, c, rest) => `.${c === 'A' ? 'B' : 'A'}${rest}`), code: 'JWT_BAD_SIGNATURE' },
    { name: 'user JWT', token: user, code: 'JWT_WRONG_TYPE' },
    { name: 'operator JWT', token: operatorJwt, code: 'JWT_WRONG_TYPE' },
    { name: 'activation JWT', token: goodSvc, code: 'JWT_WRONG_TYPE' },
    // nats-server still decodes v1 account JWTs (jwt's loadClaims migrates them), so the mesh accepts them
    { name: 'v1 (ed25519) account', token: v1, code: 'OK' },
    { name: 'no nats.version', token: noVersion, code: 'JWT_MALFORMED' },
    { name: 'subject is a user key', token: userSub, code: 'JWT_MALFORMED' },
    { name: 'subject differs from the per-account subject', token: valid, account: stranger.getPublicKey(), code: 'JWT_SUBJECT_MISMATCH' },
    { name: 'foreign operator signing key', token: foreignSigned, code: 'ISSUER_UNTRUSTED' },
    { name: 'foreign operator identity', token: foreignIdentity, code: 'ISSUER_UNTRUSTED' },
    { name: 'another account key', token: otherAccountSigned, code: 'ISSUER_UNTRUSTED' },
    { name: 'operator identity under strict signing keys', token: strictIdentity, trust: strictTrust, code: 'ISSUER_UNTRUSTED' },
    { name: 'expired', token: await acct({ limits: limited() }, { exp: now - 10 }), code: 'JWT_EXPIRED' },
    { name: 'not yet valid', token: await acct({ limits: limited() }, { nbf: now + 3600 }), code: 'JWT_NOT_YET_VALID' },
    { name: 'missing limits with an import', token: await acct({ imports: [svcImport(goodSvc)] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'missing limits with an export', token: await acct({ exports: [{ name: 'e', subject: 'a.b', type: 'stream' }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'wildcard export, wildcards false, exports limited', token: await acct({ limits: limited({ wildcards: false, exports: 5 }), exports: [wildcardExport] }), code: 'JWT_CONTENT_INVALID' },
    // jwt checks wildcards only when exports are limited
    { name: 'wildcard export, wildcards false, exports unlimited', token: await acct({ limits: limited({ wildcards: false }), exports: [wildcardExport] }), code: 'OK' },
    { name: 'too many imports', token: await acct({ limits: limited({ imports: 1 }), imports: [svcImport(goodSvc), svcImport(undefined, { subject: 'svc.orders.list' })] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'too many exports', token: await acct({ limits: limited({ exports: 0 }), exports: [{ name: 'e', subject: 'a.b', type: 'stream' }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'non-numeric limit', token: await acct({ limits: limited({ conn: 'lots' }) as never }), code: 'JWT_MALFORMED' },
    { name: 'imports not a list', token: await acct({ limits: limited(), imports: { a: 1 } as never }), code: 'JWT_MALFORMED' },
    // jwt's Subject rules: `a.>.b` passes them; a number is not a string to Go's decoder
    ...(await Promise.all(([['', 'JWT_CONTENT_INVALID'], ['a..b', 'JWT_CONTENT_INVALID'], ['a.>.b', 'OK'], ['a b', 'JWT_CONTENT_INVALID'], ['.a', 'JWT_CONTENT_INVALID'], [42, 'JWT_MALFORMED']] as const).map(async ([subject, code]) => ({
      name: `import subject ${JSON.stringify(subject)}`,
      token: await acct({ limits: limited(), imports: [svcImport(undefined, { subject })] as never }),
      code,
    })))),
    { name: 'import type bogus', token: await acct({ limits: limited(), imports: [svcImport(undefined, { type: 'bogus' })] as never }), code: 'JWT_MALFORMED' },
    { name: 'import type missing', token: await acct({ limits: limited(), imports: [svcImport(undefined, { type: undefined })] as never }), code: 'JWT_CONTENT_INVALID' },
    // jwt only requires the account to be named; a server drops an import from an unknown account
    { name: 'import account not a key', token: await acct({ limits: limited(), imports: [svcImport(undefined, { account: 'ANOTAKEY' })] as never }), code: 'OK' },
    { name: 'import account missing', token: await acct({ limits: limited(), imports: [svcImport(undefined, { account: '' })] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'duplicate service import', token: await acct({ limits: limited(), imports: [svcImport(), svcImport()] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export type missing', token: await acct({ limits: limited(), exports: [{ name: 'e', subject: 'a.b' }] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'overlapping stream exports', token: await acct({ limits: limited(), exports: [{ name: 'a', subject: 'a.>', type: 'stream' }, { name: 'b', subject: 'a.b', type: 'stream' }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'duplicate service exports', token: await acct({ limits: limited(), exports: [{ name: 'a', subject: 'a.b', type: 'service' }, { name: 'b', subject: 'a.b', type: 'service' }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'stream export with a response type', token: await acct({ limits: limited(), exports: [{ name: 'a', subject: 'a.b', type: 'stream', response_type: 'Singleton' }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'activation garbage', token: await acct({ limits: limited(), imports: [svcImport('garbage')] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'activation tampered', token: await acct({ limits: limited(), imports: [svcImport(tamper(goodSvc, (c) => void (c.sub = stranger.getPublicKey())))] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'activation for another importer', token: await acct({ limits: limited(), imports: [svcImport(await activation('svc.orders.*', 'service', { sub: stranger }))] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'activation by another exporter', token: await acct({ limits: limited(), imports: [svcImport(await activation('svc.orders.*', 'service', { iss: stranger }))] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'activation kind mismatch', token: await acct({ limits: limited(), imports: [svcImport(await activation('svc.orders.*', 'stream'))] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'activation subject too narrow', token: await acct({ limits: limited(), imports: [svcImport(await activation('svc.orders.list', 'service'))] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'activation is a user JWT', token: await acct({ limits: limited(), imports: [svcImport(user)] as never }), code: 'JWT_CONTENT_INVALID' },
    { name: 'signing key not an account key', token: await acct({ limits: limited(), signing_keys: [createUser().getPublicKey()] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'signing key of unknown kind', token: await acct({ limits: limited(), signing_keys: [{ kind: 'other', key: stranger.getPublicKey() }] as never }), code: 'JWT_MALFORMED' },
    { name: 'mapping to a bad subject', token: await acct({ limits: limited(), mappings: { 'a.b': [{ subject: 'a..c' }] } } as never), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping weights over 100%', token: await acct({ limits: limited(), mappings: { 'a.b': [{ subject: 'x', weight: 60 }, { subject: 'y', weight: 50 }] } } as never), code: 'JWT_CONTENT_INVALID' },

    { name: 'valid, signing key', token: valid, account: importer.getPublicKey(), code: 'OK' },
    { name: 'valid, operator identity (not strict)', token: identitySigned, code: 'OK' },
    { name: 'valid, strict operator signing key', token: strictSigning, trust: strictTrust, code: 'OK' },
    { name: 'valid, missing limits and no imports or exports', token: await acct({}), code: 'OK' },
    { name: 'valid, service import with activation', token: await acct({ limits: limited(), imports: [svcImport(goodSvc)] as never }), code: 'OK' },
    { name: 'valid, activation by an exporter signing key', token: await acct({ limits: limited(), imports: [svcImport(bySigningKey)] as never }), code: 'OK' },
    { name: 'valid, wildcard export allowed', token: await acct({ limits: limited(), exports: [wildcardExport, { name: 's', subject: 'events.x', type: 'service' }] }), code: 'OK' },
    { name: 'valid, scoped signing key and mapping', token: await acct({ limits: limited(), signing_keys: [stranger.getPublicKey(), newScopedSigner(createAccount(), 'role', {})], mappings: { 'a.b': [{ subject: 'x', weight: 50 }, { subject: 'y', weight: 50 }] } } as never), code: 'OK' },
  ]
  for (const c of cases) {
    t.equal(codeOf(() => validateAccountJwt(c.token, c.trust ?? trust, { account: c.account, now })), c.code, c.name)
  }
  const v = validateAccountJwt(valid, trust, { now })
  t.same({ id: v.id, selfSigned: v.selfSigned, token: v.token }, { id: importer.getPublicKey(), selfSigned: false, token: valid })
})

t.test('account JWTs: self-signed is reported, not refused', async (t) => {
  const selfSigned = await encodeAccount('mine', importer, { limits: limited() })
  const v = validateAccountJwt(selfSigned, trust, { account: importer.getPublicKey(), now })
  t.equal(v.selfSigned, true)
  t.equal(v.id, importer.getPublicKey())
  // its limits are the holder's wish: the managed policy checks the counts against what it signs
  const noLimits = await encodeAccount('mine', importer, { imports: [svcImport()] as never })
  t.equal(validateAccountJwt(noLimits, trust, { now }).selfSigned, true)
  // content and time rules still apply
  const bad = await encodeAccount('mine', importer, { imports: [svcImport(undefined, { subject: 'a..b' })] as never })
  t.equal(codeOf(() => validateAccountJwt(bad, trust, { now })), 'JWT_CONTENT_INVALID')
  const expired = await encodeAccount('mine', importer, {}, { exp: now - 1 })
  t.equal(codeOf(() => validateAccountJwt(expired, trust, { now })), 'JWT_EXPIRED')
})

t.test('account JWTs: a flood of bad entries gives one bounded error', async (t) => {
  const imports = Array.from({ length: 500 }, () => svcImport(undefined, { subject: '' }))
  const token = await acct({ limits: limited(), imports } as never)
  try {
    validateAccountJwt(token, trust, { now })
    t.fail('should throw')
  } catch (e) {
    t.equal((e as AppError).code, 'JWT_CONTENT_INVALID')
    t.ok((e as AppError).message.length < 4000, 'message stays short')
  }
  const exports = Array.from({ length: 1100 }, (_, i) => ({ name: `e${i}`, subject: `a.${i}.>`, type: 'stream' }))
  const start = Date.now()
  codeOf(() => validateAccountJwt(signRaw({ sub: importer.getPublicKey(), nats: { type: 'account', version: 2, limits: limited(), exports } }, op.signingKp), trust, { now }))
  t.ok(Date.now() - start < 2000, `overlap check bounded (${Date.now() - start} ms)`)
})

t.test('delete requests', async (t) => {
  const a1 = createAccount().getPublicKey()
  const a2 = createAccount().getPublicKey()
  const nsc = (kp: KeyPair, nats: Record<string, unknown>, claims: Record<string, unknown> = {}, alg?: string) =>
    signRaw({ sub: kp.getPublicKey(), ...claims, nats: { version: 2, ...nats } }, kp, alg)
  const ok = nsc(op.signingKp, { accounts: [a1, a2, a1] })
  const accountKp = createAccount()
  const notSelf = signRaw({ sub: createOperator().getPublicKey(), nats: { accounts: [a1], version: 2 } }, op.signingKp)
  const cases: { name: string; token: string; trust?: TrustAnchor; seen?: boolean; code: string }[] = [
    { name: 'empty', token: '', code: 'JWT_MALFORMED' },
    { name: 'garbage', token: 'eyJ.eyJ.xx', code: 'JWT_MALFORMED' },
    { name: 'tampered', token: tamper(ok, (c) => void (c.nats = { accounts: [a2], version: 2 })), code: 'JWT_BAD_SIGNATURE' },
    { name: 'unsigned (alg none)', token: `${b64({ typ: 'JWT', alg: 'none' })}.${b64({ iss: op.kp.getPublicKey(), sub: op.kp.getPublicKey(), nats: { accounts: [a1] } })}.`, code: 'JWT_MALFORMED' },
    { name: 'account-signed', token: nsc(accountKp, { accounts: [a1] }), code: 'ISSUER_UNTRUSTED' },
    { name: 'account-signed via the jwt library', token: await encodeGeneric('d', accountKp, 'generic', { accounts: [a1] } as never), code: 'ISSUER_UNTRUSTED' },
    { name: 'not self signed', token: notSelf, code: 'REQUEST_INVALID' },
    { name: 'foreign operator', token: nsc(foreign.kp, { accounts: [a1] }), code: 'ISSUER_UNTRUSTED' },
    { name: 'operator identity under strict signing keys', token: nsc(strictOp.kp, { accounts: [a1] }), trust: strictTrust, code: 'ISSUER_UNTRUSTED' },
    { name: 'no accounts', token: nsc(op.kp, {}), code: 'REQUEST_INVALID' },
    { name: 'empty accounts', token: nsc(op.kp, { accounts: [] }), code: 'REQUEST_INVALID' },
    { name: 'accounts not a list', token: nsc(op.kp, { accounts: a1 }), code: 'REQUEST_INVALID' },
    { name: 'blank account', token: nsc(op.kp, { accounts: [a1, ''] }), code: 'REQUEST_INVALID' },
    { name: 'user key in accounts', token: nsc(op.kp, { accounts: [createUser().getPublicKey()] }), code: 'REQUEST_INVALID' },
    { name: 'system account included', token: nsc(op.kp, { accounts: [a1, op.systemAccount.id] }), code: 'SYSTEM_ACCOUNT_PROTECTED' },
    { name: 'stale iat', token: nsc(op.kp, { accounts: [a1] }, { iat: now - 600 }), code: 'REQUEST_STALE' },
    { name: 'future iat', token: nsc(op.kp, { accounts: [a1] }, { iat: now + 600 }), code: 'REQUEST_STALE' },
    { name: 'no iat', token: nsc(op.kp, { accounts: [a1] }, { iat: undefined }), code: 'REQUEST_STALE' },
    { name: 'expired', token: nsc(op.kp, { accounts: [a1] }, { exp: now - 1 }), code: 'JWT_EXPIRED' },
    { name: 'replayed', token: ok, seen: true, code: 'REQUEST_REPLAYED' },
    { name: 'valid, signing key', token: ok, code: 'OK' },
    { name: 'valid, operator identity', token: nsc(op.kp, { accounts: [a1] }), code: 'OK' },
    { name: 'valid, strict signing key', token: nsc(strictOp.signingKp, { accounts: [a1] }), trust: strictTrust, code: 'OK' },
    { name: 'valid, v1 signature', token: nsc(op.kp, { accounts: [a1] }, {}, 'ed25519'), code: 'OK' },
  ]
  for (const c of cases) {
    const seen = () => c.seen === true
    const code = codeOf(() => validateDeleteRequest(c.token, c.trust ?? trust, { now, windowSeconds: 120, seen }))
    t.equal(code, c.code, c.name)
  }
  const asked: string[] = []
  const v = validateDeleteRequest(ok, trust, { now, windowSeconds: 120, seen: (h) => (asked.push(h), false) })
  t.same(v, { accounts: [a1, a2], issuer: op.signingKp.getPublicKey(), hash: createHash('sha256').update(ok).digest('hex'), iat: now })
  t.same(asked, [v.hash], 'replay memory asked by sha256 of the token')
})

t.test('managed accounts', async (t) => {
  const policy: ManagedPolicy = {
    maxConn: 10, maxSubs: 100, maxData: -1, maxPayload: 65_536, maxImports: 2, maxExports: 2, maxLeaf: 0,
    allowWildcards: false, allowJetStream: false, maxJwtBytes: 4096,
  }
  const selfSigned = (nats: Record<string, unknown>, opts: { exp?: number } = {}) =>
    encodeAccount('managed', importer, nats as Partial<Account>, opts).then((jwt) => validateAccountJwt(jwt, trust, { now }))

  await t.test('re-signs with the operator signing key', async (t) => {
    const v = await selfSigned({ limits: { conn: 5, subs: 50, extra: 1 }, imports: [svcImport()] }, { exp: now + 3600 })
    t.equal(v.selfSigned, true)
    const jwt = signManagedAccount(v.claims, op.signingKp, policy, undefined, now)
    const { claims } = decodeJwt(jwt)
    t.equal(claims.iss, op.signingKp.getPublicKey())
    t.equal(claims.sub, importer.getPublicKey())
    t.equal(claims.name, 'managed')
    t.equal(claims.exp, now + 3600)
    t.equal(claims.iat, now)
    t.equal(claims.jti, goJti(claims), 'Go-form jti')
    t.same(claims.nats.limits, { conn: 5, subs: 50, data: -1, payload: 65_536, imports: 2, exports: 2, leaf: 0, wildcards: false },
      'caps fill the missing limits; unknown ones are dropped')
    t.same(claims.nats.imports, [svcImport()])
    const again = validateAccountJwt(jwt, trust, { account: importer.getPublicKey(), now })
    t.equal(again.selfSigned, false, 'the result passes validation as operator-signed')
    t.notMatch(jwt, new TextDecoder().decode(op.signingKp.getSeed()), 'no seed in the output')
  })

  await t.test('iat strictly increases per account', async (t) => {
    const v = await selfSigned({})
    t.equal(decodeJwt(signManagedAccount(v.claims, op.signingKp, policy, now - 100, now)).claims.iat, now)
    t.equal(decodeJwt(signManagedAccount(v.claims, op.signingKp, policy, now, now)).claims.iat, now + 1)
    t.equal(decodeJwt(signManagedAccount(v.claims, op.signingKp, policy, now + 7, now)).claims.iat, now + 8)
  })

  await t.test('missing limits do not leave the account without connections', async (t) => {
    const v = await selfSigned({})
    const { claims } = decodeJwt(signManagedAccount(v.claims, op.signingKp, policy, undefined, now))
    t.equal((claims.nats.limits as { conn: number }).conn, 10)
  })

  const violations: { name: string; nats: Record<string, unknown>; code: string }[] = [
    { name: 'unlimited connections', nats: { limits: { conn: -1 } }, code: 'POLICY_VIOLATION' },
    { name: 'subs over the cap', nats: { limits: { subs: 101 } }, code: 'POLICY_VIOLATION' },
    { name: 'payload over the cap', nats: { limits: { payload: 1_048_576 } }, code: 'POLICY_VIOLATION' },
    { name: 'leaf connections', nats: { limits: { leaf: 1 } }, code: 'POLICY_VIOLATION' },
    { name: 'imports over the cap', nats: { limits: { imports: 5 } }, code: 'POLICY_VIOLATION' },
    { name: 'too many imports with no limit stated', nats: { imports: [1, 2, 3].map((i) => svcImport(undefined, { subject: `s.${i}` })) }, code: 'POLICY_VIOLATION' },
    { name: 'wildcards asked', nats: { limits: { wildcards: true } }, code: 'POLICY_VIOLATION' },
    { name: 'JetStream asked', nats: { limits: { disk_storage: -1 } }, code: 'POLICY_VIOLATION' },
    { name: 'JetStream in a tier', nats: { limits: { tiered_limits: { R1: { mem_storage: 1024 } } } }, code: 'POLICY_VIOLATION' },
    { name: 'wildcard export', nats: { exports: [{ name: 'e', subject: 'a.>', type: 'stream' }] }, code: 'POLICY_VIOLATION' },
    { name: 'a signed jwt over the size cap', nats: { limits: { conn: 1 }, description: 'x'.repeat(5000) }, code: 'POLICY_VIOLATION' },
    { name: 'more imports than its own limit', nats: { limits: { imports: 1 }, imports: [svcImport(), svcImport(undefined, { subject: 's.2' })] }, code: 'JWT_CONTENT_INVALID' },
  ]
  for (const c of violations) {
    const v = await selfSigned(c.nats)
    t.equal(codeOf(() => signManagedAccount(v.claims, op.signingKp, policy, undefined, now)), c.code, c.name)
  }
  const open = { ...policy, maxConn: -1, allowWildcards: true, allowJetStream: true }
  const v = await selfSigned({ limits: { conn: -1, wildcards: true, disk_storage: -1 }, exports: [{ name: 'e', subject: 'a.>', type: 'stream' }] })
  const { claims } = decodeJwt(signManagedAccount(v.claims, op.signingKp, open, undefined, now))
  t.match(claims.nats.limits, { conn: -1, wildcards: true, disk_storage: -1 }, 'an open policy passes them')
  const opSigned = validateAccountJwt(await acct({ limits: limited() }), trust, { now })
  t.throws(() => signManagedAccount(opSigned.claims, op.signingKp, policy, undefined, now), TypeError, 'only self-signed claims')
})

t.test('managed policy from the environment', async (t) => {
  const defaults = readManagedPolicy(envReader({}))
  t.same(defaults, {
    allowWildcards: true, allowJetStream: false,
    maxConn: 100, maxSubs: 1000, maxData: -1, maxPayload: 1_048_576, maxImports: 25, maxExports: 25, maxLeaf: 0,
    maxJwtBytes: 65_536,
  })
  const r = envReader({ SIGNER_MAX_CONN: '-1', SIGNER_MAX_LEAF: '3', SIGNER_ALLOW_WILDCARDS: 'false', SIGNER_ALLOW_JETSTREAM: 'true' })
  t.match(readManagedPolicy(r), { maxConn: -1, maxLeaf: 3, allowWildcards: false, allowJetStream: true })
  r.assertValid()
  const bad = envReader({ SIGNER_MAX_CONN: 'lots', SIGNER_MAX_SUBS: '-2', SIGNER_ALLOW_JETSTREAM: 'yes' })
  readManagedPolicy(bad)
  t.throws(() => bad.assertValid(), { code: 'CONFIG_INVALID' })
})
