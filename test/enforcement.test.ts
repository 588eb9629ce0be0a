import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { headers, type NatsConnection } from '@nats-io/nats-core'
import { jetstreamManager } from '@nats-io/jetstream'
import { createAccount, createOperator, type KeyPair } from '@nats-io/nkeys'
import { encodeOperator } from '@nats-io/jwt'
import { admissionOf, ChangeHeader, changeFrom, isEnforcing, isUserRevoked, subjects, type DeliveryReport } from '../shared/index.ts'
import { newUser, UNLIMITED, type AccountIdentity, type UserIdentity } from '../ops/identities.ts'
import { forbiddenCount, judgeServer } from '../services/notifier/enforcement.ts'
import { asksForPurge, describeAssets } from '../services/resolver/jetstream-usage.ts'
import { deleteRequest } from '../cli/commands/delete.ts'
import { enforcementLines, enforcementResult } from '../cli/enforcement-reports.ts'
import { runMesh } from './kit/cli.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture } from './kit/fixtures.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { gather, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const now = () => Math.floor(Date.now() / 1000)
const seedOf = (kp: KeyPair) => new TextDecoder().decode(kp.getSeed())
const JS_LIMITS = { ...UNLIMITED, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 }

t.test('enforcement rules, without servers', async (t) => {
  const u = 'UAHXODPIHJ6JD2BPOFGZ4MWKMYLLMEJYJGCXP3ZND6X62ELLIKUMYI72'
  const kp = createOperator()
  const acct = createAccount().getPublicKey()
  const v = (nats: Record<string, unknown>) => accountJwt(kp, acct, nats)
  t.equal(isEnforcing(undefined, v({ revocations: { [u]: 10 } })), false, 'a first version has nothing to cut off')
  t.equal(isEnforcing(v({}), v({ revocations: { [u]: 10 } })), true, 'a new revocation')
  t.equal(isEnforcing(v({ revocations: { [u]: 10 } }), v({ revocations: { [u]: 20 } })), true, 'a revocation moved later')
  t.equal(isEnforcing(v({ revocations: { [u]: 20 } }), v({ revocations: { [u]: 20 } })), false, 'the same revocations')
  t.equal(isEnforcing(v({ revocations: { [u]: 20 } }), v({})), false, 'a revocation lifted')
  t.equal(isEnforcing(v({}), v({ revocations: { '*': 20 } })), true, 'every user revoked')
  t.equal(isEnforcing(v({}), v({ limits: { ...UNLIMITED, conn: 2 } })), true, 'connection limit lowered from unlimited')
  t.equal(isEnforcing(v({ limits: { ...UNLIMITED, conn: 2 } }), v({ limits: { ...UNLIMITED, conn: 5 } })), false, 'raised')
  t.equal(isEnforcing(v({}), 'garbage'), true, 'no readable limits means conn 0: lowered')
  t.same(admissionOf('not.a.jwt'), { revocations: {}, conn: 0 }, 'malformed reads as nothing revoked')
  t.same(admissionOf(v({ revocations: { [u]: 'x', b: Number.NaN } })).revocations, {}, 'non-numeric revocations ignored')

  const a = admissionOf(v({ revocations: { [u]: 100, '*': 50 }, limits: { ...UNLIMITED, conn: 1 } }))
  t.equal(isUserRevoked(a, u, 100), true, 'issued at the revocation time: revoked')
  t.equal(isUserRevoked(a, u, 101), false, 'issued after: not revoked')
  t.equal(isUserRevoked(a, 'UOTHER', 50), true, '`*` revokes everyone issued before')
  t.equal(isUserRevoked(a, 'UOTHER', 51), false)
  const userJwt = (sub: string, iat: number) => signClaims({ sub, iat, nats: { type: 'user', version: 2 } }, createAccount())
  const conns = [{ user: u, jwt: userJwt(u, 90) }, { user: 'UOTHER', jwt: userJwt('UOTHER', 60) }, { user: 'UTHIRD', jwt: userJwt('UTHIRD', 70) }]
  t.equal(forbiddenCount(a, conns), 2, 'one revoked, and one beyond conn: 1')
  t.equal(forbiddenCount(admissionOf(v({})), conns), 0)

  const server = { id: 'N1', name: 'n1' }
  t.equal(judgeServer(server, [], 0).outcome, 'enforced')
  t.equal(judgeServer(server, [{ user: u, reason: 'Credentials Revoked' }], 1).outcome, 'failed', 'still holding one: failed')
  t.equal(judgeServer(server, [], -1).outcome, 'failed', 'a server that never answered CONNZ failed')

  const none = enforcementResult(undefined)
  t.equal(none.outcome, 'no-report')
  t.match(enforcementLines('DEMO', none, 15_000)[0], /no enforcement report within 15s/)
  const mixed = enforcementResult({
    seq: 1,
    id: acct,
    servers: [],
    enforcement: { graceMs: 2000, servers: [judgeServer(server, [{ user: u, name: 'alice', reason: 'x' }], 0), judgeServer({ id: 'N2', name: 'n2' }, [], 1)] },
  })
  t.same([mixed.outcome, mixed.inForce, mixed.servers, mixed.closed], ['failed', 1, 2, 1])
  t.same(enforcementLines('DEMO', mixed, 15_000), [
    'DEMO: revocation in force on 1/2 servers, 1 connection closed',
    '  n1: closed 1 (alice)',
    '  n2: FAILED, still holds 1 revoked connection(s) after 2s',
  ])

  // Hostile headers on the notifier's input: only `1` marks a change as enforcing.
  const msg = (enforce: string) => {
    const h = headers()
    h.set(ChangeHeader.account, acct)
    h.set(ChangeHeader.seq, '1')
    h.set(ChangeHeader.kind, 'updated')
    h.set(ChangeHeader.enforce, enforce)
    return { headers: h, string: () => 'jwt' }
  }
  t.equal(changeFrom(msg('1'))?.enforce, true)
  for (const bad of ['yes', 'true', '', '11']) t.equal(changeFrom(msg(bad))?.enforce, undefined, `Mesh-Enforce: ${JSON.stringify(bad)}`)

  t.equal(asksForPurge(deleteRequest(kp, [acct], { purgeJetStream: true })), true)
  t.equal(asksForPurge(deleteRequest(kp, [acct])), false, "nsc's requests never ask")
  t.equal(asksForPurge(signClaims({ sub: kp.getPublicKey(), nats: { accounts: [acct], purge_jetstream: 'yes' } }, kp)), false)
  t.equal(asksForPurge('garbage'), false)
  t.equal(describeAssets([{ account: acct, stream: 'ORDERS', consumers: ['proc'] }]), `stream ORDERS (consumers: proc) in ${acct}`)
})

t.test('confirmed revocations and JetStream-aware delete on a 3-node cluster', async (t) => {
  const fx = await makeFixture(t)
  // n3 runs the operator JWT from before a second signing key was added; the mesh and n1, n2 run the new one.
  // Versions signed by that key reach n3 too, which stores them (200) but cannot apply them (protocol.md §3.2):
  // a server that keeps a revoked user connected.
  const key2 = createOperator()
  const rotatedJwt = await encodeOperator('TEST', fx.op.kp, {
    signing_keys: [fx.op.signingKp.getPublicKey(), key2.getPublicKey()],
    system_account: fx.op.systemAccount.id,
  } as Record<string, unknown>)
  const rotatedPath = join(fx.dir, 'operator-rotated.jwt')
  await writeFile(rotatedPath, rotatedJwt)
  const rotated = { ...fx, operatorJwtPath: rotatedPath }
  const live = await startMesh(t, {
    fx,
    servers: 3,
    jetstream: true,
    store: 'level',
    fixtureOf: (i) => (i < 2 ? rotated : fx),
    env: { OPERATOR_JWT: rotatedPath },
    notifierEnv: { NOTIFIER_ENFORCE_GRACE_MS: '2000' },
  })
  const { servers, sys } = live
  const resolver = live.resolvers[0]!

  const secrets = [seedOf(fx.op.signingKp), seedOf(key2), seedOf(fx.op.kp)]
  const mesh = async (...args: string[]) => {
    const r = await runMesh(['--server', servers[0]!.url, '--creds', fx.sysCredsPath, ...args])
    for (const s of secrets) if (r.stdout.includes(s) || r.stderr.includes(s)) throw new Error(`a secret was printed by ${args.join(' ')}`)
    return r
  }
  let iat = now() - 1000
  let file = 0
  const pushFile = async (jwt: string, ...args: string[]) => {
    const path = join(fx.dir, `v${++file}.jwt`)
    await writeFile(path, jwt)
    return mesh('push', path, ...args)
  }
  const newDemo = (name: string): AccountIdentity => {
    const kp = createAccount()
    return { name, kp, id: kp.getPublicKey(), jwt: '' }
  }
  const version = (a: AccountIdentity, nats: Record<string, unknown> = {}, signer = fx.op.signingKp) =>
    accountJwt(signer, a.id, { limits: JS_LIMITS, ...nats }, { iat: ++iat, name: a.name })
  const onEach = async (user: UserIdentity): Promise<NatsConnection[]> => {
    const out: NatsConnection[] = []
    for (const s of servers) {
      const nc = await connectWith(t, s, user.creds)
      await nc.flush()
      out.push(nc)
    }
    return out
  }

  await t.test('a revocation is reported in force with the connections each server closed', async (t) => {
    const demo = newDemo('DEMO')
    const first = await pushFile(version(demo))
    t.equal(first.code, 0, first.stderr)
    t.notMatch(first.stdout, /revocation/, 'a first version is not watched')
    const alice = await newUser(demo, 'alice')
    const bob = await newUser(demo, 'bob')
    const aliceConns = await onEach(alice)
    const bobConns = await onEach(bob)

    const r = await pushFile(version(demo, { revocations: { [alice.kp.getPublicKey()]: now() } }), '--json')
    t.equal(r.code, 0, r.stderr)
    if (process.env.SHOW_OUTPUT) console.error(`OUTPUT0\n${r.stdout}`)
    const [result] = JSON.parse(r.stdout) as { outcome: string; enforcement: ReturnType<typeof enforcementResult> }[]
    t.equal(result!.outcome, 'ok')
    t.match(result!.enforcement, { outcome: 'in-force', inForce: 3, servers: 3, closed: 3, graceMs: 2000 })
    t.same(result!.enforcement.perServer.map((s) => s.name).sort(), ['n1', 'n2', 'n3'])
    for (const s of result!.enforcement.perServer) {
      t.match(s, { closed: 1, stillConnected: 0, outcome: 'enforced' }, `${s.name} closed alice`)
      t.match(s.connections, [{ user: alice.kp.getPublicKey(), name: 'alice', reason: 'Credentials Revoked' }])
    }
    for (const nc of aliceConns) await waitFor(() => nc.isClosed(), { what: 'alice cut off' })
    for (const nc of bobConns) await nc.flush() // bob, not revoked, stays

    // Hostile traffic on the subjects both sides listen to changes nothing: garbage, a forged event from a
    // non-server, reports without a digest or not JSON.
    const forged = { server: { id: 'resolver' }, client: { acc: demo.id, user: bob.kp.getPublicKey() }, reason: 'Credentials Revoked' }
    for (const body of ['garbage', '{}', '[]', JSON.stringify(forged), '{"client":null,"reason":7}']) sys.publish(subjects.accountDisconnect(demo.id), body)
    for (const body of ['garbage', '{"digest":5}', 'null', '{"digest":"00"}']) sys.publish(subjects.notifierReports(demo.id), body)
    await sys.flush()
    const reports: DeliveryReport[] = []
    sys.subscribe(subjects.notifierReports(demo.id), {
      callback: (_e, m) => {
        try {
          reports.push(m.json<DeliveryReport>())
        } catch {
          // not a report (the hostile bodies above)
        }
      },
    })
    await sys.flush()
    const readable = await pushFile(version(demo, { revocations: { [alice.kp.getPublicKey()]: now(), [bob.kp.getPublicKey()]: now() } }))
    t.equal(readable.code, 0, readable.stderr)
    if (process.env.SHOW_OUTPUT) console.error(`OUTPUT1\n${readable.stdout}`)
    t.match(readable.stdout, /DEMO: revocation in force on 3\/3 servers, 3 connections closed/)
    t.match(readable.stdout, /n1: closed 1 \(bob\)/)
    await waitFor(() => reports.some((r) => r.enforcement?.servers.length === 3), { what: "the notifier's enforcement report" })
    t.pass('the notifier published its enforcement report')
  })

  await t.test('a server that keeps a revoked user connected is reported as a failure', async (t) => {
    const demo = newDemo('DRIFT')
    t.equal((await pushFile(version(demo))).code, 0)
    const carol = await newUser(demo, 'carol')
    const conns = await onEach(carol)
    // Signed by the new signing key, which n3's operator JWT does not list.
    const r = await pushFile(version(demo, { revocations: { [carol.kp.getPublicKey()]: now() } }, key2))
    t.equal(r.code, 1, 'push exits 1')
    if (process.env.SHOW_OUTPUT) console.error(`OUTPUT2\n${r.stdout}`)
    t.match(r.stdout, /DRIFT: revocation in force on 2\/3 servers, 2 connections closed/)
    t.match(r.stdout, /n3: FAILED, still holds 1 revoked connection\(s\) after 2s/)
    await conns[2]!.flush() // carol is indeed still connected to n3
    t.ok(conns[0]!.isClosed() || (await waitFor(() => conns[0]!.isClosed())), 'and cut off on n1')
  })

  await t.test('a lowered connection limit is watched too', async (t) => {
    const demo = newDemo('LIMITS')
    t.equal((await pushFile(version(demo))).code, 0)
    const dave = await newUser(demo, 'dave')
    // Three on n1: over a limit of one on that server alone.
    for (let i = 0; i < 3; i++) await (await connectWith(t, servers[0]!, dave.creds)).flush()
    const r = await pushFile(version(demo, { limits: { ...JS_LIMITS, conn: 1 } }), '--json')
    const [result] = JSON.parse(r.stdout) as { enforcement: ReturnType<typeof enforcementResult> }[]
    t.equal(result!.enforcement.outcome, 'in-force', r.stdout)
    t.ok(result!.enforcement.closed >= 2, `connections beyond the limit were closed (${result!.enforcement.closed})`)
  })

  await t.test('push refuses a bad --enforce-wait', async (t) => {
    for (const bad of ['soon', '-1s', '11m', '0']) {
      const r = await mesh('push', 'x.jwt', '--enforce-wait', bad)
      t.equal(r.code, 1, bad)
      t.match(r.stderr, /--enforce-wait/)
    }
  })

  // JetStream: streams live on one server of the cluster (R1); the resolver asks them all.
  const streamsOf = async (id: string): Promise<string[]> => {
    const replies = await gather(sys, subjects.jsz, JSON.stringify({ account: id, streams: true }), 3, 1500)
    const names = replies.flatMap(
      (m) => (m.json<{ data?: { account_details?: { id: string; stream_detail?: { name: string }[] }[] } }>().data?.account_details ?? [])
        .filter((a) => a.id === id)
        .flatMap((a) => (a.stream_detail ?? []).map((s) => s.name)),
    )
    return [...new Set(names)]
  }
  const withStream = async (name: string, stream: string): Promise<AccountIdentity> => {
    const a = newDemo(name)
    t.equal((await pushFile(version(a))).code, 0)
    const user = await newUser(a, 'js')
    const nc = await connectWith(t, servers[0]!, user.creds)
    // A just-pushed account may not have JetStream enabled on this server yet, nor a meta leader to place on.
    const jsm = await waitFor(() => jetstreamManager(nc), { ms: 20_000, what: 'JetStream enabled for the new account', every: 250 })
    await waitFor(() => jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] }).then(() => true), {
      ms: 20_000,
      what: 'the JetStream meta leader to create a stream',
      every: 250,
    })
    await jsm.consumers.add(stream, { durable_name: 'proc' })
    await nc.close()
    await waitFor(async () => (await streamsOf(a.id)).includes(stream), { what: 'stream reported by JSZ' })
    return a
  }
  const keyFile = join(fx.dir, 'operator-signing.nk')
  await writeFile(keyFile, seedOf(fx.op.signingKp) + '\n', { mode: 0o600 })
  const lookup = async (id: string) => (await sys.request(subjects.lookup(id), '', { timeout: 3000 })).string()

  await t.test('mesh delete of an account with a stream is refused naming it; --purge-jetstream purges, then deletes', async (t) => {
    const a = await withStream('JSA', 'ORDERS')
    const refused = await mesh('delete', a.id, '--operator-key', keyFile, '--yes')
    t.equal(refused.code, 1)
    if (process.env.SHOW_OUTPUT) console.error(`OUTPUT3\n${refused.stderr}`)
    t.match(refused.stderr, /stream ORDERS \(consumers: proc\)/)
    t.match(refused.stderr, /JETSTREAM_IN_USE/)
    t.not(await lookup(a.id), '', 'the account is still served')
    t.same(await streamsOf(a.id), ['ORDERS'], 'and the stream kept')

    // Hostile requests on the new subject: refused, nothing purged.
    const ask = async (body: string) => (await sys.request(subjects.resolverDelete, body, { timeout: 5000 })).json<{ error?: { reason?: string } }>()
    const intruder = createOperator()
    t.equal((await ask(deleteRequest(intruder, [a.id], { purgeJetStream: true }))).error?.reason, 'ISSUER_UNTRUSTED')
    const stringy = signClaims({ sub: fx.op.signingKp.getPublicKey(), nats: { accounts: [a.id], version: 2, purge_jetstream: 'yes' } }, fx.op.signingKp)
    t.equal((await ask(stringy)).error?.reason, 'JETSTREAM_IN_USE', 'purge_jetstream must be true, not truthy')
    t.equal((await ask('garbage')).error?.reason, 'JWT_MALFORMED')
    t.equal((await ask('')).error?.reason, 'JWT_MALFORMED')
    t.same(await streamsOf(a.id), ['ORDERS'], 'the stream survived every refused request')

    const purged = await mesh('delete', a.id, '--operator-key', keyFile, '--yes', '--purge-jetstream')
    t.equal(purged.code, 0, purged.stderr)
    if (process.env.SHOW_OUTPUT) console.error(`OUTPUT4\n${purged.stdout}`)
    t.match(purged.stdout, /deleted 1 accounts/)
    t.same(await streamsOf(a.id), [], 'the stream is gone')
    t.equal(await lookup(a.id), '', 'the account is deleted')
  })

  await t.test("nsc's own delete request gets the refusal naming the stream", async (t) => {
    const b = await withStream('JSB', 'EVENTS')
    // Servers act on nsc's DELETE at once and disable the account's JetStream; the resolver names what
    // they reported in their last poll, so wait for one after the stream was created.
    const polls = resolver.logs.length
    await waitFor(() => resolver.logs.slice(polls).some((l) => l.msg === 'jetstream usage remembered' && (l.streams as number) > 0), {
      ms: 15_000,
      what: "the resolver's next JetStream usage poll",
    })
    const { ours } = await push(sys, subjects.claimsDelete, deleteRequest(fx.op.signingKp, [b.id]), 3)
    t.equal(ours.error?.reason, 'JETSTREAM_IN_USE')
    if (process.env.SHOW_OUTPUT) console.error(`OUTPUT5\n${JSON.stringify(ours)}`)
    t.match(ours.error?.description, /^delete accounts request by O[A-Z2-7]+ failed - .*stream EVENTS/)
    t.not(await lookup(b.id), '', 'the account is still served')
    // The servers acted on the request before anyone could refuse it; whether JetStream reloads the stream
    // once the account is sent back is nats-server's business. Recorded, not asserted.
    const back = await waitFor(async () => (await streamsOf(b.id)).includes('EVENTS'), { ms: 3000 }).then(() => true, () => false)
    t.comment(`after the servers' own delete and our restore, JSZ ${back ? 'reports' : 'no longer reports'} stream EVENTS`)
  })
})
