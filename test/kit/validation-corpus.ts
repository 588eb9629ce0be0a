import { createAccount, createCurve, createUser, type KeyPair } from '@nats-io/nkeys'
import { Algorithms, encodeAccount, encodeActivation, newScopedSigner } from '@nats-io/jwt'
import { UNLIMITED } from '../../ops/identities.ts'

/**
 * Account claims as nats-io/jwt v2.8 (and nsc, which uses it) writes them, by family, each with the outcome
 * nats-server 2.15 gives: OK when it uses the account, otherwise the signer's refusal code. Each case builds
 * its JWT for the account it is given, signed by `signing`, so a test can push every case as a fresh
 * account: the signer's rule tables call the rules directly, the end-to-end test asks a real nats-server.
 */
export interface CorpusCase {
  name: string
  code: 'OK' | 'JWT_CONTENT_INVALID' | 'JWT_MALFORMED'
  build: (account: KeyPair) => Promise<string> | string
  /** A documented strictness: nats-server accepts it, the mesh does not. */
  stricter?: boolean
}

export interface Corpus {
  /** Accounts nats-server uses (the former false refusals among them). */
  accepted: CorpusCase[]
  /** Accounts nats-server decodes but refuses (the former false accepts among them). */
  refused: CorpusCase[]
  /** Tokens Go's decoder cannot read. */
  undecodable: CorpusCase[]
}

const b64 = (s: string) => Buffer.from(s).toString('base64url')

/** A v2 token from payload text written by hand, so it can hold what JSON.stringify never writes. */
export function rawToken(payload: string, kp: KeyPair, header = '{"typ":"JWT","alg":"ed25519-nkey"}'): string {
  const signed = `${b64(header)}.${b64(payload)}`
  return `${signed}.${Buffer.from(kp.sign(Buffer.from(signed))).toString('base64url')}`
}

export function validationCorpus(signing: KeyPair, exporter: KeyPair): Corpus {
  const now = Math.floor(Date.now() / 1000)
  const exporterId = exporter.getPublicKey()
  const exporter2Id = createAccount().getPublicKey()
  const exporterSigner = createAccount()
  const userKey = createUser().getPublicKey()
  const xkey = createCurve().getPublicKey()
  const rawAccount = (a: KeyPair, natsBody: string, extra = '') =>
    rawToken(`{"jti":"t","iat":${now},"iss":"${signing.getPublicKey()}","sub":"${a.getPublicKey()}"${extra},"nats":{${natsBody}}}`, signing)
  const account = (a: KeyPair, nats: Record<string, unknown>) =>
    encodeAccount('acct', a, { limits: { ...UNLIMITED }, ...nats } as never, { signer: signing })
  const svcImport = (subject: string, extra: Record<string, unknown> = {}) => ({ name: subject, subject, account: exporterId, type: 'service', ...extra })
  const streamImport = (subject: string, extra: Record<string, unknown> = {}) => ({ name: subject, subject, account: exporterId, type: 'stream', ...extra })
  const act = (a: KeyPair, subject: string, kind: 'service' | 'stream') => encodeActivation('act', a, exporter, kind, { subject })
  return {
    accepted: [
    { name: 'the same service subject imported from two accounts', build: (a) => account(a, { imports: [svcImport('svc.a'), { ...svcImport('svc.a'), account: exporter2Id }] }), code: 'OK' },
    { name: 'tiered and non-tiered JetStream limits together', build: (a) => account(a, { limits: { ...UNLIMITED, mem_storage: -1, disk_storage: -1, tiered_limits: { R1: { mem_storage: -1, disk_storage: -1 } } } }), code: 'OK' },
    { name: 'wildcard export, unlimited exports, wildcards unset', build: (a) => account(a, { limits: { ...UNLIMITED, wildcards: undefined }, exports: [{ name: 'e', subject: 'events.>', type: 'stream' }] }), code: 'OK' },
    { name: 'null lists and maps', build: (a) => rawAccount(a, `"limits":{"conn":-1,"imports":-1,"exports":-1},"imports":null,"exports":null,"signing_keys":null,"mappings":null,"revocations":null,"tags":null,"authorization":{"auth_users":null,"allowed_accounts":null},"default_permissions":{"pub":{"allow":null}},"type":"account","version":2`), code: 'OK' },
    { name: 'activation for * covering an import of >', build: (a) => (async () => account(a, { imports: [streamImport('>', { token: await act(a, '*', 'stream') })] }))(), code: 'OK' },
    { name: 'activation for svc.* covering a service import of svc.>', build: (a) => (async () => account(a, { imports: [svcImport('svc.>', { token: await act(a, 'svc.*', 'service') })] }))(), code: 'OK' },
    { name: 'v1 account JWT', build: (a) => encodeAccount('v1', a, { limits: { ...UNLIMITED } }, { signer: signing, algorithm: Algorithms.v1 }), code: 'OK' },
    { name: 'subject with > in the middle (jwt checks only spaces and dots)', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a.>.b', type: 'stream' }] }), code: 'OK' },
    { name: 'the same stream imported twice', build: (a) => account(a, { imports: [streamImport('s.a'), streamImport('s.a')] }), code: 'OK' },
    { name: 'signing_keys with a number in the list (jwt skips it)', build: (a) => rawAccount(a, `"limits":{"conn":-1},"signing_keys":[5,"${exporterSigner.getPublicKey()}"],"type":"account","version":2`), code: 'OK' },
    { name: 'scoped signing key template with 3.0 (read through interface{})', build: (a) => rawAccount(a, `"limits":{"conn":-1},"signing_keys":[{"kind":"user_scope","key":"${exporterSigner.getPublicKey()}","role":"r","template":{"subs":3.0}}],"type":"account","version":2`), code: 'OK' },
    { name: 'scoped signing key as nsc writes it', build: (a) => account(a, { signing_keys: [newScopedSigner(exporterSigner, 'role', {})] }), code: 'OK' },
    { name: 'unknown fields', build: (a) => rawAccount(a, `"limits":{"conn":-1},"future_claim":{"x":[1.5,"y"]},"type":"account","version":2`), code: 'OK' },
    { name: 'a list given twice under keys differing in case (Go merges element by element)', build: (a) => rawAccount(a, `"limits":{"conn":-1,"exports":-1},"exports":[{"subject":"a","type":"stream"}],"Exports":[{"subject":"b"}],"type":"account","version":2`), code: 'OK' },
    { name: 'mapping transforms nats-server knows', build: (a) => account(a, { mappings: { 'm.*.*': [{ subject: 'n.{{wildcard(2)}}.{{partition(3,1)}}.{{split(1,-)}}.{{left(2,1)}}', weight: 50 }, { subject: 'o.$2.$1.{{random(4)}}', weight: 50 }], 'p.x': [{ subject: 'q.{{partition(5)}}' }], 'r.*': [{ subject: 's.x{{wildcard(1)}}.$x' }] } }), code: 'OK' },
    { name: 'export latency sampling "Headers" (any case)', build: (a) => rawAccount(a, `"limits":{"conn":-1,"exports":-1},"exports":[{"subject":"a","type":"service","service_latency":{"sampling":"Headers","results":"r"}}],"type":"account","version":2`), code: 'OK' },
    { name: 'weighted targets adding up to 100%, in a cluster and outside', build: (a) => account(a, { mappings: { 'a.b': [{ subject: 'x', weight: 40 }, { subject: 'y', weight: 60 }, { subject: 'z', cluster: 'c1', weight: 100 }] } }), code: 'OK' },
    { name: 'one unweighted target per cluster', build: (a) => account(a, { mappings: { 'a.b': [{ subject: 'x', cluster: 'c1' }, { subject: 'y', cluster: 'c2' }, { subject: 'z' }] } }), code: 'OK' },
    { name: 'import account not a key (jwt requires only a name)', build: (a) => account(a, { imports: [{ ...svcImport('svc.a'), account: 'nobody' }] }), code: 'OK' },
    { name: 'trace with a sampling of 0 (jwt reads it as 100)', build: (a) => account(a, { trace: { dest: 'trace.here' } }), code: 'OK' },
    { name: 'auth callout with users, accounts and an xkey', build: (a) => account(a, { authorization: { auth_users: [userKey], allowed_accounts: [exporterId], xkey } }), code: 'OK' },
    { name: 'auth callout allowing any account', build: (a) => account(a, { authorization: { auth_users: [userKey], allowed_accounts: ['*'] } }), code: 'OK' },
    { name: 'cluster_traffic owner', build: (a) => account(a, { cluster_traffic: 'owner' }), code: 'OK' },
    { name: 'cluster_traffic system', build: (a) => account(a, { cluster_traffic: 'system' }), code: 'OK' },
    { name: 'export latency sampling 0, read as "headers"', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a', type: 'service', service_latency: { sampling: 0, results: 'r' } }] }), code: 'OK' },
    { name: 'export latency sampling "headers"', build: (a) => rawAccount(a, `"limits":{"conn":-1,"exports":-1},"exports":[{"subject":"a","type":"service","service_latency":{"sampling":"headers","results":"r"}}],"type":"account","version":2`), code: 'OK' },
    { name: 'export with latency, threshold, token position, allow_trace, info', build: (a) => account(a, { exports: [{ name: 'e', subject: 'svc.*.x', type: 'service', token_req: true, service_latency: { sampling: 50, results: 'lat.r' }, response_threshold: 5_000_000_000, account_token_position: 2, allow_trace: true, description: 'd', info_url: 'https://example.com/x' }] }), code: 'OK' },
    { name: 'import with local_subject, share and allow_trace', build: (a) => account(a, { imports: [svcImport('svc.*', { local_subject: 'mine.$1', share: true }), streamImport('ev.>', { local_subject: 'theirs.>', allow_trace: true })] }), code: 'OK' },
    { name: 'default permissions with a queue on sub', build: (a) => account(a, { default_permissions: { sub: { allow: ['a.b q'] }, pub: { deny: ['x.>'] } } }), code: 'OK' },
    { name: 'info url with a port and a path', build: (a) => account(a, { info_url: 'http://user@host.example:8080/a?b#c', description: 'x'.repeat(8192) }), code: 'OK' },
    ],
    refused: [
    { name: 'trace destination with a wildcard', build: (a) => account(a, { trace: { dest: 'trace.*' } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'trace without a destination', build: (a) => account(a, { trace: { sampling: 50 } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'trace sampling over 100', build: (a) => account(a, { trace: { dest: 'trace.x', sampling: 101 } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'trace sampling negative', build: (a) => account(a, { trace: { dest: 'trace.x', sampling: -1 } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: allowed accounts without auth users', build: (a) => account(a, { authorization: { allowed_accounts: [exporterId] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: an account key as auth user', build: (a) => account(a, { authorization: { auth_users: [exporterId] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: a user key as allowed account', build: (a) => account(a, { authorization: { auth_users: [userKey], allowed_accounts: [userKey] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: * mixed with keys', build: (a) => account(a, { authorization: { auth_users: [userKey], allowed_accounts: ['*', exporterId] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'auth callout: bad xkey', build: (a) => account(a, { authorization: { auth_users: [userKey], xkey: exporterId } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'cluster_traffic unknown', build: (a) => account(a, { cluster_traffic: 'everyone' }), code: 'JWT_CONTENT_INVALID' },
    // jwt 2.8.2 knows only owner and system; later versions add account:<key>
    { name: 'cluster_traffic account:<key>', build: (a) => account(a, { cluster_traffic: `account:${exporterId}` }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: latency on a stream', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a', type: 'stream', service_latency: { sampling: 50, results: 'r' } }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: latency sampling 101', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a', type: 'service', service_latency: { sampling: 101, results: 'r' } }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: latency sampling negative', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a', type: 'service', service_latency: { sampling: -1, results: 'r' } }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: latency results with a wildcard', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a', type: 'service', service_latency: { sampling: 5, results: 'r.>' } }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: negative response threshold', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a', type: 'service', response_threshold: -1 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: response threshold on a stream', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a', type: 'stream', response_threshold: 5 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: account token position without a wildcard', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a.b', type: 'stream', account_token_position: 2 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: account token position past the end', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a.*', type: 'stream', account_token_position: 3 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: account token position not at a *', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a.*', type: 'stream', account_token_position: 1 }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: allow_trace on a stream', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a', type: 'stream', allow_trace: true }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'export: bad info url', build: (a) => account(a, { exports: [{ name: 'e', subject: 'a', type: 'stream', info_url: 'not a url' }] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: local_subject together with to', build: (a) => account(a, { imports: [svcImport('svc.a', { local_subject: 'x', to: 'y' })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: local_subject referencing a missing *', build: (a) => account(a, { imports: [svcImport('svc.*', { local_subject: 'x.$2' })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: local_subject not ending in > like its subject', build: (a) => account(a, { imports: [streamImport('ev.>', { local_subject: 'x.y' })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: share on a stream', build: (a) => account(a, { imports: [streamImport('s.a', { share: true })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: allow_trace on a service', build: (a) => account(a, { imports: [svcImport('svc.a', { allow_trace: true })] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'import: overlapping wildcard service imports from one account', build: (a) => account(a, { imports: [svcImport('svc.*'), svcImport('svc.a')] }), code: 'JWT_CONTENT_INVALID' },
    { name: 'info_url without a host', build: (a) => account(a, { info_url: 'http://' }), code: 'JWT_CONTENT_INVALID' },
    { name: 'info_url without a scheme', build: (a) => account(a, { info_url: 'example.com/x' }), code: 'JWT_CONTENT_INVALID' },
    { name: 'description over 8 KiB', build: (a) => account(a, { description: 'x'.repeat(8193) }), code: 'JWT_CONTENT_INVALID' },
    { name: 'default permissions: queue in a publish permission', build: (a) => account(a, { default_permissions: { pub: { allow: ['a q'] } } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'default permissions: too many spaces', build: (a) => account(a, { default_permissions: { sub: { allow: ['a q r'] } } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'default permissions: bad subject', build: (a) => account(a, { default_permissions: { sub: { deny: ['a..b'] } } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: cluster weights over 100%', build: (a) => account(a, { mappings: { 'a.b': [{ subject: 'x', weight: 60, cluster: 'c1' }, { subject: 'y', weight: 50, cluster: 'c1' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: the same destination twice', build: (a) => account(a, { mappings: { 'm.a': [{ subject: 'x', weight: 50 }, { subject: 'x', weight: 50 }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: wildcard index out of range', build: (a) => account(a, { mappings: { 'm.*': [{ subject: 'n.{{wildcard(2)}}' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: $1 from a source without wildcards', build: (a) => account(a, { mappings: { 'm.a': [{ subject: 'n.$1' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: a * in the destination', build: (a) => account(a, { mappings: { 'm.*': [{ subject: 'n.*' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: > in the source only', build: (a) => account(a, { mappings: { 'm.>': [{ subject: 'n' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: an unknown function', build: (a) => account(a, { mappings: { 'm.*': [{ subject: 'n.{{bogus(1)}}' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: a function with too many arguments', build: (a) => account(a, { mappings: { 'm.*': [{ subject: 'n.{{wildcard(1,2)}}' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: a tab in the destination', build: (a) => rawAccount(a, `"limits":{"conn":-1},"mappings":{"m.*":[{"subject":"n\\tx"}]},"type":"account","version":2`), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: two unweighted targets count 100% each', build: (a) => account(a, { mappings: { 'a.b': [{ subject: 'x' }, { subject: 'y' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: three unweighted targets', build: (a) => account(a, { mappings: { 'a.b': [{ subject: 'x' }, { subject: 'y' }, { subject: 'z' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: unweighted cluster-scoped targets count 100% each', build: (a) => account(a, { mappings: { 'a.b': [{ subject: 'x', cluster: 'c1' }, { subject: 'y', cluster: 'c1' }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: an unweighted cluster-scoped target beside a weighted one', build: (a) => account(a, { mappings: { 'a.b': [{ subject: 'x', cluster: 'c1' }, { subject: 'y', cluster: 'c1', weight: 1 }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'mapping: an unweighted target beside a weighted one', build: (a) => account(a, { mappings: { 'a.b': [{ subject: 'x' }, { subject: 'y', weight: 10 }] } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'tiered limits with a blank tier name', build: (a) => account(a, { limits: { ...UNLIMITED, tiered_limits: { '': { mem_storage: -1 } } } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'a negative import limit other than -1', build: (a) => account(a, { limits: { ...UNLIMITED, imports: -2 } }), code: 'JWT_CONTENT_INVALID' },
    { name: 'null export in the list', build: (a) => rawAccount(a, `"limits":{"conn":-1,"exports":-1},"exports":[null],"type":"account","version":2`), code: 'JWT_CONTENT_INVALID' },
    { name: 'a key differing only in case (Go reads EXPORTS as exports)', build: (a) => rawAccount(a, `"limits":{"conn":-1,"exports":-1},"EXPORTS":[{"subject":"a..b","type":"stream"}],"type":"account","version":2`), code: 'JWT_CONTENT_INVALID' },
    ],
    undecodable: [
    { name: 'integer written 3.0', build: (a) => rawAccount(a, `"limits":{"conn":3.0},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'integer written 3e0', build: (a) => rawAccount(a, `"limits":{"conn":3e0},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'iat as a fraction', build: (a) => rawToken(`{"iat":${now}.5,"iss":"${signing.getPublicKey()}","sub":"${a.getPublicKey()}","nats":{"type":"account","version":2}}`, signing), code: 'JWT_MALFORMED' },
    { name: 'version as a string', build: (a) => rawAccount(a, `"type":"account","version":"2"`), code: 'JWT_MALFORMED' },
    { name: 'no version', build: (a) => rawAccount(a, `"type":"account"`), code: 'JWT_MALFORMED' },
    { name: 'a newer version', build: (a) => rawAccount(a, `"type":"account","version":3`), code: 'JWT_MALFORMED' },
    { name: 'a string where a number goes', build: (a) => rawAccount(a, `"limits":{"subs":"5"},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a string where a bool goes', build: (a) => rawAccount(a, `"limits":{"wildcards":"true"},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a number where a string goes', build: (a) => rawAccount(a, `"description":5,"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'an object where a list goes', build: (a) => rawAccount(a, `"exports":{},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'an int64 overflow', build: (a) => rawAccount(a, `"limits":{"data":9223372036854775808},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a mapping weight over 255 (uint8)', build: (a) => rawAccount(a, `"mappings":{"a":[{"subject":"b","weight":300}]},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a negative account token position (uint)', build: (a) => rawAccount(a, `"exports":[{"subject":"a.*","type":"stream","account_token_position":-1}],"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'export type null', build: (a) => rawAccount(a, `"exports":[{"subject":"a","type":null}],"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a revocation time as a string', build: (a) => rawAccount(a, `"revocations":{"${userKey}":"now"},"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'a signing key object of another kind', build: (a) => rawAccount(a, `"signing_keys":[{"kind":"other","key":"${exporterId}"}],"type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'signing_keys not a list', build: (a) => rawAccount(a, `"signing_keys":"${exporterId}","type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'trace not an object', build: (a) => rawAccount(a, `"trace":"t","type":"account","version":2`), code: 'JWT_MALFORMED' },
    { name: 'trailing garbage after the payload JSON', build: (a) => rawToken(`{"iat":${now},"iss":"${signing.getPublicKey()}","sub":"${a.getPublicKey()}","nats":{"type":"account","version":2}} x`, signing), code: 'JWT_MALFORMED' },
    // deliberately stricter: nats-server reads the last of `sub` and `Sub`, the mesh refuses the ambiguity
    { name: 'standard claim differing only in case (Go reads the last)', build: (a) => rawAccount(a, `"type":"account","version":2`, `,"Sub":"${exporterId}"`), code: 'JWT_MALFORMED', stricter: true },
    ],
  }
}
