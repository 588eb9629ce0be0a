import tap from 'tap'
import { createAccount, createCurve, createUser, type KeyPair } from '@nats-io/nkeys'
import { Algorithms, encodeAccount, encodeActivation, newScopedSigner } from '@nats-io/jwt'
import { AppError, trustAnchorFrom } from '../shared/index.ts'
import { newOperator, UNLIMITED } from '../ops/identities.ts'
import { validateAccountJwt } from '../services/signer/account-rules.ts'
import { containedPairs } from '../services/signer/rules/overlap.ts'
import { isContainedIn } from '../services/signer/rules/subjects.ts'

// Tables of account claims as nats-io/jwt v2.8 (and nsc, which uses it) writes them, each with the outcome
// nats-server 2.15 gives: OK when it uses the account, the refusal code when it does not.

const now = Math.floor(Date.now() / 1000)
const op = await newOperator('OP')
const trust = trustAnchorFrom(op.jwt)
const importer = createAccount()
const importerId = importer.getPublicKey()
const exporter = createAccount()
const exporterId = exporter.getPublicKey()
const exporter2Id = createAccount().getPublicKey()
const exporterSigner = createAccount()
const userKey = createUser().getPublicKey()
const xkey = createCurve().getPublicKey()

const b64 = (s: string) => Buffer.from(s).toString('base64url')

/** A v2 token from payload text written by hand, so it can hold what JSON.stringify never writes. */
function rawToken(payload: string, kp: KeyPair, header = '{"typ":"JWT","alg":"ed25519-nkey"}'): string {
  const signed = `${b64(header)}.${b64(payload)}`
  return `${signed}.${Buffer.from(kp.sign(Buffer.from(signed))).toString('base64url')}`
}

/** An operator-signed account whose `nats` body is given as JSON text. */
const rawAccount = (natsBody: string, extra = '') =>
  rawToken(`{"jti":"t","iat":${now},"iss":"${op.signingKp.getPublicKey()}","sub":"${importerId}"${extra},"nats":{${natsBody}}}`, op.signingKp)

const account = (nats: Record<string, unknown>) =>
  encodeAccount('acct', importer, { limits: { ...UNLIMITED }, ...nats } as never, { signer: op.signingKp })

const svcImport = (subject: string, extra: Record<string, unknown> = {}) => ({ name: subject, subject, account: exporterId, type: 'service', ...extra })
const streamImport = (subject: string, extra: Record<string, unknown> = {}) => ({ name: subject, subject, account: exporterId, type: 'stream', ...extra })
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

tap.test('accounts nats-server uses are stored (former false refusals)', (t) =>
  table(t, [
    { name: 'the same service subject imported from two accounts', token: account({ imports: [svcImport('svc.a'), { ...svcImport('svc.a'), account: exporter2Id }] }), code: 'OK' },
    { name: 'tiered and non-tiered JetStream limits together', token: account({ limits: { ...UNLIMITED, mem_storage: -1, disk_storage: -1, tiered_limits: { R1: { mem_storage: -1, disk_storage: -1 } } } }), code: 'OK' },
    { name: 'wildcard export, unlimited exports, wildcards unset', token: account({ limits: { ...UNLIMITED, wildcards: undefined }, exports: [{ name: 'e', subject: 'events.>', type: 'stream' }] }), code: 'OK' },
    { name: 'null lists and maps', token: rawAccount(`"limits":{"conn":-1,"imports":-1,"exports":-1},"imports":null,"exports":null,"signing_keys":null,"mappings":null,"revocations":null,"tags":null,"authorization":{"auth_users":null,"allowed_accounts":null},"default_permissions":{"pub":{"allow":null}},"type":"account","version":2`), code: 'OK' },
    { name: 'activation for * covering an import of >', token: (async () => account({ imports: [streamImport('>', { token: await act('*', 'stream') })] }))(), code: 'OK' },
    { name: 'activation for svc.* covering a service import of svc.>', token: (async () => account({ imports: [svcImport('svc.>', { token: await act('svc.*', 'service') })] }))(), code: 'OK' },
    { name: 'v1 account JWT', token: encodeAccount('v1', importer, { limits: { ...UNLIMITED } }, { signer: op.signingKp, algorithm: Algorithms.v1 }), code: 'OK' },
    { name: 'subject with > in the middle (jwt checks only spaces and dots)', token: account({ exports: [{ name: 'e', subject: 'a.>.b', type: 'stream' }] }), code: 'OK' },
    { name: 'the same stream imported twice', token: account({ imports: [streamImport('s.a'), streamImport('s.a')] }), code: 'OK' },
    { name: 'signing_keys with a number in the list (jwt skips it)', token: rawAccount(`"limits":{"conn":-1},"signing_keys":[5,"${exporterSigner.getPublicKey()}"],"type":"account","version":2`), code: 'OK' },
    { name: 'scoped signing key template with 3.0 (read through interface{})', token: rawAccount(`"limits":{"conn":-1},"signing_keys":[{"kind":"user_scope","key":"${exporterSigner.getPublicKey()}","role":"r","template":{"subs":3.0}}],"type":"account","version":2`), code: 'OK' },
    { name: 'scoped signing key as nsc writes it', token: account({ signing_keys: [newScopedSigner(exporterSigner, 'role', {})] }), code: 'OK' },
    { name: 'unknown fields', token: rawAccount(`"limits":{"conn":-1},"future_claim":{"x":[1.5,"y"]},"type":"account","version":2`), code: 'OK' },
    { name: 'a list given twice under keys differing in case (Go merges element by element)', token: rawAccount(`"limits":{"conn":-1,"exports":-1},"exports":[{"subject":"a","type":"stream"}],"Exports":[{"subject":"b"}],"type":"account","version":2`), code: 'OK' },
    { name: 'three unweighted targets (jwt adds uint8 weights with wrap-around)', token: account({ mappings: { 'a.b': [{ subject: 'x' }, { subject: 'y' }, { subject: 'z' }] } }), code: 'OK' },
    { name: 'cluster-scoped targets without weights', token: account({ mappings: { 'a.b': [{ subject: 'x', cluster: 'c1' }, { subject: 'y', cluster: 'c1' }] } }), code: 'OK' },
    { name: 'import account not a key (jwt requires only a name)', token: account({ imports: [{ ...svcImport('svc.a'), account: 'nobody' }] }), code: 'OK' },
    { name: 'trace with a sampling of 0 (jwt reads it as 100)', token: account({ trace: { dest: 'trace.here' } }), code: 'OK' },
    { name: 'auth callout with users, accounts and an xkey', token: account({ authorization: { auth_users: [userKey], allowed_accounts: [exporterId], xkey } }), code: 'OK' },
    { name: 'auth callout allowing any account', token: account({ authorization: { auth_users: [userKey], allowed_accounts: ['*'] } }), code: 'OK' },
    { name: 'cluster_traffic owner, system and account:<key>', token: account({ cluster_traffic: `account:${exporterId}` }), code: 'OK' },
    { name: 'export with latency, threshold, token position, allow_trace, info', token: account({ exports: [{ name: 'e', subject: 'svc.*.x', type: 'service', token_req: true, service_latency: { sampling: 50, results: 'lat.r' }, response_threshold: 5_000_000_000, account_token_position: 2, allow_trace: true, description: 'd', info_url: 'https://example.com/x' }] }), code: 'OK' },
    { name: 'import with local_subject, share and allow_trace', token: account({ imports: [svcImport('svc.*', { local_subject: 'mine.$1', share: true }), streamImport('ev.>', { local_subject: 'theirs.>', allow_trace: true })] }), code: 'OK' },
    { name: 'default permissions with a queue on sub', token: account({ default_permissions: { sub: { allow: ['a.b q'] }, pub: { deny: ['x.>'] } } }), code: 'OK' },
    { name: 'info url with a port and a path', token: account({ info_url: 'http://user@host.example:8080/a?b#c', description: 'x'.repeat(8192) }), code: 'OK' },
  ]),
)

tap.test('accounts nats-server refuses are refused with a reason (former false accepts)', (t) =>
  table(t, [
    { name: 'trace destination with a wildcard', token: account({ trace: { dest: 'trace.*' } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'trace without a destination', token: account({ trace: { sampling: 50 } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'trace sampling over 100', token: account({ trace: { dest: 'trace.x', sampling: 101 } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'trace sampling negative', token: account({ trace: { dest: 'trace.x', sampling: -1 } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: allowed accounts without auth users', token: account({ authorization: { allowed_accounts: [exporterId] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: an account key as auth user', token: account({ authorization: { auth_users: [exporterId] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: a user key as allowed account', token: account({ authorization: { auth_users: [userKey], allowed_accounts: [userKey] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: * mixed with keys', token: account({ authorization: { auth_users: [userKey], allowed_accounts: ['*', exporterId] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: bad xkey', token: account({ authorization: { auth_users: [userKey], xkey: exporterId } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'cluster_traffic unknown', token: account({ cluster_traffic: 'everyone' }), code: 'JWT_CONTENT_INVALID' },
    { name: 'cluster_traffic account: with a user key', token: account({ cluster_traffic: `account:${userKey}` }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: latency on a stream', token: account({ exports: [{ name: 'e', subject: 'a', type: 'stream', service_latency: { sampling: 50, results: 'r' } }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: latency sampling 0', token: account({ exports: [{ name: 'e', subject: 'a', type: 'service', service_latency: { sampling: 0, results: 'r' } }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: latency results with a wildcard', token: account({ exports: [{ name: 'e', subject: 'a', type: 'service', service_latency: { sampling: 5, results: 'r.>' } }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: negative response threshold', token: account({ exports: [{ name: 'e', subject: 'a', type: 'service', response_threshold: -1 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: response threshold on a stream', token: account({ exports: [{ name: 'e', subject: 'a', type: 'stream', response_threshold: 5 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: account token position without a wildcard', token: account({ exports: [{ name: 'e', subject: 'a.b', type: 'stream', account_token_position: 2 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: account token position past the end', token: account({ exports: [{ name: 'e', subject: 'a.*', type: 'stream', account_token_position: 3 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: account token position not at a *', token: account({ exports: [{ name: 'e', subject: 'a.*', type: 'stream', account_token_position: 1 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: allow_trace on a stream', token: account({ exports: [{ name: 'e', subject: 'a', type: 'stream', allow_trace: true }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: bad info url', token: account({ exports: [{ name: 'e', subject: 'a', type: 'stream', info_url: 'not a url' }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: local_subject together with to', token: account({ imports: [svcImport('svc.a', { local_subject: 'x', to: 'y' })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: local_subject referencing a missing *', token: account({ imports: [svcImport('svc.*', { local_subject: 'x.$2' })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: local_subject not ending in > like its subject', token: account({ imports: [streamImport('ev.>', { local_subject: 'x.y' })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: share on a stream', token: account({ imports: [streamImport('s.a', { share: true })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: allow_trace on a service', token: account({ imports: [svcImport('svc.a', { allow_trace: true })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: overlapping wildcard service imports from one account', token: account({ imports: [svcImport('svc.*'), svcImport('svc.a')] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'info_url without a host', token: account({ info_url: 'http://' }), code: 'JWT_CONTENT_INVALID' },
    { name: 'info_url without a scheme', token: account({ info_url: 'example.com/x' }), code: 'JWT_CONTENT_INVALID' },
    { name: 'description over 8 KiB', token: account({ description: 'x'.repeat(8193) }), code: 'JWT_CONTENT_INVALID' },
    { name: 'default permissions: queue in a publish permission', token: account({ default_permissions: { pub: { allow: ['a q'] } } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'default permissions: too many spaces', token: account({ default_permissions: { sub: { allow: ['a q r'] } } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'default permissions: bad subject', token: account({ default_permissions: { sub: { deny: ['a..b'] } } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: cluster weights over 100%', token: account({ mappings: { 'a.b': [{ subject: 'x', weight: 60, cluster: 'c1' }, { subject: 'y', weight: 50, cluster: 'c1' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: two unweighted targets count 100% each', token: account({ mappings: { 'a.b': [{ subject: 'x' }, { subject: 'y' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: an unweighted target beside a weighted one', token: account({ mappings: { 'a.b': [{ subject: 'x' }, { subject: 'y', weight: 10 }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'tiered limits with a blank tier name', token: account({ limits: { ...UNLIMITED, tiered_limits: { '': { mem_storage: -1 } } } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'a negative import limit other than -1', token: account({ limits: { ...UNLIMITED, imports: -2 } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'null export in the list', token: rawAccount(`"limits":{"conn":-1,"exports":-1},"exports":[null],"type":"account","version":2`), code: 'JWT_CONTENT_INVALID' },
    { name: 'a key differing only in case (Go reads EXPORTS as exports)', token: rawAccount(`"limits":{"conn":-1,"exports":-1},"EXPORTS":[{"subject":"a..b","type":"stream"}],"type":"account","version":2`), code: 'JWT_CONTENT_INVALID' },
  ]),
)

tap.test('tokens Go cannot decode are refused as malformed', (t) =>
  table(t, [
    { name: 'integer written 3.0', token: rawAccount(`"limits":{"conn":3.0},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'integer written 3e0', token: rawAccount(`"limits":{"conn":3e0},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'iat as a fraction', token: rawToken(`{"iat":${now}.5,"iss":"${op.signingKp.getPublicKey()}","sub":"${importerId}","nats":{"type":"account","version":2}}`, op.signingKp), code: 'JWT_MALFORMED' },
    { name: 'version as a string', token: rawAccount(`"type":"account","version":"2"`), code: 'JWT_MALFORMED' },
    { name: 'no version', token: rawAccount(`"type":"account"`), code: 'JWT_MALFORMED' },
    { name: 'a newer version', token: rawAccount(`"type":"account","version":3`), code: 'JWT_MALFORMED' },
    { name: 'a string where a number goes', token: rawAccount(`"limits":{"subs":"5"},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a string where a bool goes', token: rawAccount(`"limits":{"wildcards":"true"},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a number where a string goes', token: rawAccount(`"description":5,"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'an object where a list goes', token: rawAccount(`"exports":{},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'an int64 overflow', token: rawAccount(`"limits":{"data":9223372036854775808},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a mapping weight over 255 (uint8)', token: rawAccount(`"mappings":{"a":[{"subject":"b","weight":300}]},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a negative account token position (uint)', token: rawAccount(`"exports":[{"subject":"a.*","type":"stream","account_token_position":-1}],"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'export type null', token: rawAccount(`"exports":[{"subject":"a","type":null}],"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a revocation time as a string', token: rawAccount(`"revocations":{"${userKey}":"now"},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a signing key object of another kind', token: rawAccount(`"signing_keys":[{"kind":"other","key":"${exporterId}"}],"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'signing_keys not a list', token: rawAccount(`"signing_keys":"${exporterId}","type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'trace not an object', token: rawAccount(`"trace":"t","type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'trailing garbage after the payload JSON', token: rawToken(`{"iat":${now},"iss":"${op.signingKp.getPublicKey()}","sub":"${importerId}","nats":{"type":"account","version":2}} x`, op.signingKp), code: 'JWT_MALFORMED' },
    { name: 'standard claim differing only in case (Go reads the last)', token: rawAccount(`"type":"account","version":2`, `,"Sub":"${exporterId}"`), code: 'JWT_MALFORMED' },
  ]),
)

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
