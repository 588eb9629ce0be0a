import tap from 'tap'
import { createAccount, type KeyPair } from '@nats-io/nkeys'
import { encodeAccount, encodeActivation } from '@nats-io/jwt'
import { AppError, trustAnchorFrom } from '../shared/index.ts'
import { newOperator, UNLIMITED } from '../ops/identities.ts'
import { validateAccountJwt } from '../services/signer/account-rules.ts'
import { containedPairs } from '../services/signer/rules/overlap.ts'
import { isContainedIn } from '../services/signer/rules/subjects.ts'
import { validationCorpus } from './kit/validation-corpus.ts'

// The signer's rules called directly on the corpus of claims nats-io/jwt and nsc write (its outcomes are
// nats-server 2.15's; test/validation.test.ts checks them against a real server), then the checks that need
// the exporter's JWT, and the overlap check's agreement with jwt and its speed.

const now = Math.floor(Date.now() / 1000)
const op = await newOperator('OP')
const trust = trustAnchorFrom(op.jwt)
const importer = createAccount()
const importerId = importer.getPublicKey()
const exporter = createAccount()
const exporterId = exporter.getPublicKey()
const exporterSigner = createAccount()
const corpus = validationCorpus(op.signingKp, exporter)

const account = (nats: Record<string, unknown>) =>
  encodeAccount('acct', importer, { limits: { ...UNLIMITED }, ...nats } as never, { signer: op.signingKp })
const svcImport = (subject: string, extra: Record<string, unknown> = {}) => ({ name: subject, subject, account: exporterId, type: 'service', ...extra })
const act = (subject: string, kind: 'service' | 'stream', signer?: KeyPair) =>
  encodeActivation('act', importer, exporter, kind, { subject }, signer ? { signer } : {})

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'OK'
  } catch (e) {
    if (e instanceof AppError) return e.code
    throw e
  }
}

interface Case {
  name: string
  token: string | Promise<string>
  code: string
  exporters?: Record<string, string>
}

function table(t: Pick<typeof tap, 'equal'>, cases: Case[]) {
  return (async () => {
    for (const c of cases) {
      const token = await c.token
      t.equal(codeOf(() => validateAccountJwt(token, trust, { now, exporters: c.exporters })), c.code, c.name)
    }
  })()
}

for (const [family, title] of [
  ['accepted', 'accounts nats-server uses are stored (former false refusals)'],
  ['refused', 'accounts nats-server refuses are refused with a reason (former false accepts)'],
  ['undecodable', 'tokens Go cannot decode are refused as malformed'],
] as const) {
  tap.test(title, async (t) => {
    for (const c of corpus[family]) {
      const token = await c.build(createAccount())
      t.equal(codeOf(() => validateAccountJwt(token, trust, { now })), c.code, c.name)
    }
  })
}

tap.test('import tokens checked against the exporter we hold', async (t) => {
  const exportsOf = (extra: Record<string, unknown> = {}) => [{ name: 'svc', subject: 'svc.>', type: 'service', token_req: true, ...extra }]
  const exporterJwt = (nats: Record<string, unknown>) =>
    encodeAccount('exp', exporter, { limits: { ...UNLIMITED }, ...nats } as never, { signer: op.signingKp })
  const stranger = createAccount()
  const byStranger = await encodeActivation('act', importer, exporter, 'service', { subject: 'svc.a' }, { signer: stranger })
  const bySigner = await encodeActivation('act', importer, exporter, 'service', { subject: 'svc.a' }, { signer: exporterSigner })
  const direct = await act('svc.a', 'service')
  const withToken = (token: string) => account({ imports: [svcImport('svc.a', { token })] })
  const held = await exporterJwt({ signing_keys: [exporterSigner.getPublicKey()], exports: exportsOf() })
  const iat = JSON.parse(Buffer.from(direct.split('.')[1]!, 'base64url').toString()).iat as number
  await table(t, [
    { name: 'signed by a key the exporter does not have', token: withToken(byStranger), exporters: { [exporterId]: held }, code: 'ACTIVATION_INVALID' },
    { name: 'the same token when the exporter is not held (servers check at use)', token: withToken(byStranger), code: 'OK' },
    { name: 'signed by one of the exporter signing keys', token: withToken(bySigner), exporters: { [exporterId]: held }, code: 'OK' },
    { name: 'signed by the exporter itself', token: withToken(direct), exporters: { [exporterId]: held }, code: 'OK' },
    { name: 'no such export', token: withToken(direct), exporters: { [exporterId]: await exporterJwt({ exports: [{ name: 'o', subject: 'other', type: 'service', token_req: true }] }) }, code: 'ACTIVATION_INVALID' },
    { name: 'importer revoked', token: withToken(direct), exporters: { [exporterId]: await exporterJwt({ exports: exportsOf({ revocations: { [importerId]: iat } }) }) }, code: 'ACTIVATION_INVALID' },
    { name: 'everyone revoked', token: withToken(direct), exporters: { [exporterId]: await exporterJwt({ exports: exportsOf({ revocations: { '*': iat + 5 } }) }) }, code: 'ACTIVATION_INVALID' },
    { name: 'revoked before the token was issued', token: withToken(direct), exporters: { [exporterId]: await exporterJwt({ exports: exportsOf({ revocations: { [importerId]: iat - 5 } }) }) }, code: 'OK' },
    { name: 'public export: servers ignore the token', token: withToken(byStranger), exporters: { [exporterId]: await exporterJwt({ exports: exportsOf({ token_req: false }) }) }, code: 'OK' },
    { name: 'an unreadable exporter JWT counts as not held', token: withToken(byStranger), exporters: { [exporterId]: 'garbage' }, code: 'OK' },
  ])
})

tap.test('overlap checks agree with jwt and stay fast', async (t) => {
  t.ok(isContainedIn('a.>', 'a.*'), "jwt's simple test: a.* contains a.>")
  t.ok(isContainedIn('>', '*'), '* contains >')
  t.notOk(isContainedIn('a', 'a.>'), 'a.> needs one more token')
  t.ok(isContainedIn('a.b.c', 'a.>'))
  t.notOk(isContainedIn('a.*', 'a.b'))
  t.same(containedPairs(['a.b', 'a.b']), [['a.b', 'a.b']], 'a duplicate is contained in its twin')
  t.same(containedPairs(['a.>', 'b.*', 'c']), [], 'disjoint')
  t.same(containedPairs(['x.*', 'x.y']), [['x.y', 'x.*']])
  t.same(containedPairs(['x.>', 'x.y.z']), [['x.y.z', 'x.>']])
  // a naive pairwise comparison over random subjects, checked against the trie
  const words = ['a', 'b', '*', '>']
  for (let n = 0; n < 300; n++) {
    const subjects = Array.from({ length: 6 }, () =>
      Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => words[Math.floor(Math.random() * 4)]).join('.'))
    const naive = subjects.some((s, i) => subjects.some((o, j) => i !== j && isContainedIn(s, o)))
    if ((containedPairs(subjects).length > 0) !== naive) t.fail(`disagrees on ${JSON.stringify(subjects)}`)
  }
  const exports = Array.from({ length: 5000 }, (_, i) => ({ name: `e${i}`, subject: `tenant.${i}.*.>`, type: 'service' }))
  const token = await account({ exports })
  const start = performance.now()
  t.equal(codeOf(() => validateAccountJwt(token, trust, { now })), 'OK', '5000 non-overlapping wildcard exports')
  t.ok(performance.now() - start < 1500, `checked in ${Math.round(performance.now() - start)} ms`)
  const overlapping = await account({ exports: [...exports, { name: 'x', subject: 'tenant.7.>', type: 'service' }] })
  t.equal(codeOf(() => validateAccountJwt(overlapping, trust, { now })), 'JWT_CONTENT_INVALID', 'one overlap among them is found')
})
