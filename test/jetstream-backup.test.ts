import { readFile } from 'node:fs/promises'
import t, { type Test } from 'tap'
import { createAccount, type KeyPair } from '@nats-io/nkeys'
import { jetstreamManager } from '@nats-io/jetstream'
import type { Msg, NatsConnection } from '@nats-io/nats-core'
import { isResolverReply, subjects } from '../shared/index.ts'
import { newUser, UNLIMITED } from '../ops/identities.ts'
import { DELIVERY_CONSUMER, STREAM } from '../services/resolver/store/jetstream-stream.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture, tempDir, type Fixture } from './kit/fixtures.ts'
import { jetstreamEnv, startJsCluster, startJsResolver } from './kit/jetstream.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { startNatsServer, type NatsServerHandle } from './kit/nats-server.ts'
import { baseEnv, serviceCredsPath, spawnService, startService, type ServiceProcess } from './kit/services.ts'
import { backupToDir, restoreFromDir, restoreStream, snapshotStream } from './kit/stream-backup.ts'
import { clusterFormed, gather, jetstreamFormed, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const now = () => Math.floor(Date.now() / 1000)

interface HistoryEntry {
  seq: number
  kind: string
  jwt: string
  via: string
  at: string
}

async function lookup(sys: NatsConnection, id: string): Promise<string> {
  return (await sys.request(subjects.lookup(id), '', { timeout: 3000 })).string()
}

async function historyOf(sys: NatsConnection, id: string): Promise<HistoryEntry[]> {
  return (await sys.request(subjects.resolverHistory(id), '', { timeout: 3000 })).json<{ versions: HistoryEntry[] }>().versions
}

async function pushed(t: Test, sys: NatsConnection, jwt: string, servers: number): Promise<void> {
  const r = await push(sys, subjects.claimsUpdate, jwt, servers)
  t.equal(r.ours.data?.code, 200, `push of ${r.ours.data?.account ?? r.ours.error?.account}: ${r.ours.data?.message ?? r.ours.error?.description}`)
}

/** A delete request as nsc signs it (generic claims, sub == iss, the operator key). */
const deleteRequest = (kp: KeyPair, accounts: string[]) => signClaims({ sub: kp.getPublicKey(), iat: now(), nats: { accounts, version: 2 } }, kp)

/** Signer and notifier beside the resolvers: pushes and deletes need the signer's verdict. */
async function helpers(t: Test, fx: Fixture, servers: NatsServerHandle[]): Promise<ServiceProcess[]> {
  return [await startService(t, 'signer', fx, servers), await startService(t, 'notifier', fx, servers)]
}

/** What the store holds, as the operator would check it after a restore. */
interface Expected {
  /** id -> the JWT LOOKUP must serve ('' for the deleted one). */
  served: Map<string, string>
  histories: Map<string, HistoryEntry[]>
  activation: { hashId: string; token: string }
}

/** Fills a running mesh: accounts, several versions of some, a deletion, an activation token. */
async function fill(t: Test, fx: Fixture, sys: NatsConnection, servers: number): Promise<Expected> {
  const signing = fx.op.signingKp
  const served = new Map<string, string>()
  const ids = Array.from({ length: 12 }, () => createAccount().getPublicKey())
  for (const id of ids) {
    const jwt = accountJwt(signing, id, {}, { iat: now() - 100 })
    await pushed(t, sys, jwt, servers)
    served.set(id, jwt)
  }
  // three versions of three accounts (the newest iat last)
  for (const id of ids.slice(0, 3)) {
    for (const conn of [2, 3]) {
      const jwt = accountJwt(signing, id, { limits: { ...UNLIMITED, conn } }, { iat: now() - 100 + conn })
      await pushed(t, sys, jwt, servers)
      served.set(id, jwt)
    }
  }
  const gone = ids[11]!
  const del = (await gather(sys, subjects.claimsDelete, deleteRequest(fx.op.kp, [gone]), servers + 1, 3000)).map((m: Msg) => m.json<{ server: { name: string }; data?: { code: number } }>())
  t.equal(del.find(isResolverReply)?.data?.code, 200, 'the deletion is accepted')
  served.set(gone, '')

  // an activation token for an export that requires one
  const exporterKp = createAccount()
  const exports = [{ name: 'help', subject: 'help.>', type: 'service', token_req: true }]
  const exporterJwt = accountJwt(signing, exporterKp.getPublicKey(), { exports }, { iat: now() - 50 })
  await pushed(t, sys, exporterJwt, servers)
  served.set(exporterKp.getPublicKey(), exporterJwt)
  const token = signClaims(
    { sub: createAccount().getPublicKey(), name: 'help', nats: { subject: 'help.me', kind: 'service', type: 'activation', version: 2 } },
    exporterKp,
  )
  const put = await sys.request(subjects.resolverActivationPut, token, { timeout: 3000 })
  const { hashId, outcome } = put.json<{ hashId: string; outcome: string }>()
  t.equal(outcome, 'stored', 'the activation token is stored')

  const histories = new Map<string, HistoryEntry[]>()
  for (const id of [...ids.slice(0, 3), gone]) histories.set(id, await historyOf(sys, id))
  t.same(histories.get(ids[0]!)!.map((v) => v.kind), ['created', 'updated', 'updated'], 'three versions in the history')
  t.same(histories.get(gone)!.map((v) => v.kind), ['created', 'deleted'], 'the deletion in the history')
  return { served, histories, activation: { hashId, token } }
}

/** Every account at its newest version, the deleted one empty, histories and the activation token intact. */
async function holdsEverything(t: Test, sys: NatsConnection, want: Expected, who: string): Promise<void> {
  for (const [id, jwt] of want.served) t.equal(await lookup(sys, id), jwt, `${who}: LOOKUP of ${id.slice(0, 8)} ${jwt === '' ? 'stays empty (deleted)' : 'serves its newest version'}`)
  for (const [id, history] of want.histories) t.same(await historyOf(sys, id), history, `${who}: history of ${id.slice(0, 8)} intact (versions, sequences, times)`)
  const got = await sys.request(subjects.resolverActivationGet, want.activation.hashId, { timeout: 3000 })
  t.equal(got.string(), want.activation.token, `${who}: the activation token`)
}

t.test('backup of the stream, restore onto a fresh cluster: new instances serve everything at its newest version', async (t) => {
  const fx = await makeFixture(t)
  const first = await startJsCluster(t, fx)
  const sys = await connectWith(t, first.servers, fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys, 3)
  const resolvers = await Promise.all([startJsResolver(t, fx, first.servers, 0), startJsResolver(t, fx, first.servers, 1)])
  const others = await helpers(t, fx, first.servers)
  const want = await fill(t, fx, sys, 3)

  // An operator's user of the storage account, without the resolver user's limits (see the next test).
  const admin = (await newUser(fx.mesh, 'backup')).creds
  const dir = await tempDir(t, 'backup')
  const source = await connectWith(t, first.servers, admin)
  const jsm = await jetstreamManager(source)
  const before = await jsm.streams.info(STREAM)
  const backup = await backupToDir(source, STREAM, dir)
  t.comment(`backup: ${backup.data.length} bytes in ${backup.chunks} chunks, stream at ${backup.meta.state.last_seq}`)
  t.equal(backup.meta.state.last_seq, before.state.last_seq, 'the backup holds the whole stream')

  // The disaster: every node and every instance gone, with all their data.
  for (const svc of [...resolvers, ...others]) await svc.kill()
  for (const s of first.servers) await s.stop()
  await source.close()
  await sys.close()

  const second = await startJsCluster(t, fx)
  const sys2 = await connectWith(t, second.servers, fx.sysUser.creds, { reconnect: true })
  await clusterFormed(sys2, 3)
  const target = await connectWith(t, second.servers, admin, { reconnect: true })
  // a just-formed cluster may not have elected its meta leader yet
  let restored: Awaited<ReturnType<typeof restoreFromDir>> | undefined
  await waitFor(
    async () => {
      try {
        restored = await restoreFromDir(target, dir)
        return true
      } catch (e) {
        if (/leader|unavailable|timeout|no responders|TIMEOUT|503/i.test((e as Error).message)) return false
        throw e
      }
    },
    { ms: 30_000, what: 'the restore' },
  )
  t.equal(restored!.state.last_seq, before.state.last_seq, 'restored with the same last sequence')
  t.equal(restored!.state.messages, before.state.messages, 'and the same messages')
  const jsm2 = await jetstreamManager(target)
  // The restore lands on the stream's leader first; its followers catch up after. Until they have, a consumer
  // cannot be placed on them (2.10.27 answered "no suitable peers" for over 30 s): start instances only then.
  await waitFor(
    async () => {
      const c = (await jsm2.streams.info(STREAM)).cluster
      return c?.leader !== undefined && c.replicas?.length === 2 && c.replicas.every((r) => r.current && !r.offline)
    },
    { ms: 60_000, what: 'every replica of the restored stream current' },
  )
  // and the meta leader sees every peer current: it places a consumer only on peers it sees (as an operator
  // checks with `nats server report jetstream` before starting the instances)
  await jetstreamFormed(sys2, 3)
  const consumer = () => jsm2.consumers.info(STREAM, DELIVERY_CONSUMER).then(() => true, () => false)
  // A clustered restore brings the stream back; whether the consumer comes with it depends on the server version.
  t.comment(`delivery consumer in the restored stream: ${await consumer()}`)

  const fresh = await Promise.all([startJsResolver(t, fx, second.servers, 0), startJsResolver(t, fx, second.servers, 2)])
  t.ok(await consumer(), 'the delivery consumer exists once the instances started (restored, or created by them)')
  await holdsEverything(t, sys2, want, 'both fresh instances')
  await fresh[0]!.stop()
  await holdsEverything(t, sys2, want, 'the second fresh instance alone')

  await t.test('writes go on after the restore: a newer version is stored, an older one refused', async (t) => {
    await helpers(t, fx, second.servers)
    const [id] = want.histories.keys() as IterableIterator<string>
    const newer = accountJwt(fx.op.signingKp, id!, { limits: { ...UNLIMITED, conn: 9 } }, { iat: now() })
    await pushed(t, sys2, newer, 3)
    t.equal(await lookup(sys2, id!), newer)
    const older = accountJwt(fx.op.signingKp, id!, {}, { iat: now() - 1000 })
    t.not((await push(sys2, subjects.claimsUpdate, older, 3)).ours.data?.code, 200, 'an older version than the restored one is refused')
    const h = await historyOf(sys2, id!)
    t.same(h.slice(0, -1), want.histories.get(id!), 'the history before the restore is kept')
    t.ok(h.at(-1)!.seq > before.state.last_seq, 'the new version follows the restored sequences')
  })
})

/** One JetStream server, one replica: enough for what the local views do with a restored stream. */
async function singleNode(t: Test) {
  const fx = await makeFixture(t)
  const ns = await startNatsServer(t, fx, { jetstream: true })
  const sys = await connectWith(t, ns, fx.sysUser.creds)
  await startService(t, 'signer', fx, [ns])
  const admin = await connectWith(t, ns, (await newUser(fx.mesh, 'backup')).creds)
  const resolver = (dataDir?: string) => startJsResolver(t, fx, [ns], 0, { RESOLVER_JS_REPLICAS: '1', ...(dataDir ? { RESOLVER_DATA_DIR: dataDir } : {}) })
  /** Spawned without waiting for it to register: for instances expected to refuse to start. */
  const resolverProcess = async (dataDir: string) =>
    spawnService(t, 'resolver', { ...baseEnv(fx, [ns]), NATS_CREDS: await serviceCredsPath(fx, 'resolver'), SYSTEM_ACCOUNT_JWT: fx.sysJwtPath, RESOLVER_DATA_DIR: dataDir, ...jetstreamEnv(fx, 1) })
  const pushNew = async (t: Test, n: number) => {
    const out = new Map<string, string>()
    for (let i = 0; i < n; i++) {
      const id = createAccount().getPublicKey()
      const jwt = accountJwt(fx.op.signingKp, id, {}, { iat: now() })
      await pushed(t, sys, jwt, 1)
      out.set(id, jwt)
    }
    return out
  }
  return { fx, ns, sys, admin, resolver, resolverProcess, pushNew, jsm: await jetstreamManager(admin) }
}

t.test('the storage user can back up but not restore; a user of MESH without its limits can', async (t) => {
  const { fx, ns, admin, resolver, pushNew, jsm } = await singleNode(t)
  const r = await resolver()
  await pushNew(t, 3)
  const storage = await connectWith(t, ns, await readFile(fx.meshCredsPath, 'utf8'))
  const backup = await snapshotStream(storage, STREAM)
  t.equal(backup.meta.state.last_seq, (await jsm.streams.info(STREAM)).state.last_seq, 'the storage user can snapshot the stream')
  await t.rejects(restoreStream(admin, backup), /already in use|exists/i, 'no restore over an existing stream')
  await r.stop()
  await jsm.streams.delete(STREAM)
  await t.rejects(restoreStream(storage, backup), /Permissions Violation for Publish to "\$JS\.SNAPSHOT\.RESTORE\.MESH_RESOLVER/, 'the storage user may not send restore data')
  t.equal((await restoreStream(admin, backup)).state.last_seq, backup.meta.state.last_seq, 'a MESH user without those limits restores')
})

t.test('an instance whose local view is newer than the restored stream refuses to start, even after new writes', async (t) => {
  const { sys, admin, jsm, resolver, resolverProcess, pushNew } = await singleNode(t)
  const old = await resolver()
  const kept = await pushNew(t, 3)
  const backup = await snapshotStream(admin, STREAM)
  const lost = await pushNew(t, 3) // acknowledged after the backup: lost with the stream
  t.equal(await old.stop(), 0)
  await jsm.streams.delete(STREAM)
  await restoreStream(admin, backup)

  const refusal = async (what: string) => {
    const svc = await resolverProcess(old.dataDir)
    const exited = await Promise.race([svc.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 30_000).unref())])
    t.equal(exited, 2, `${what}: exit code 2`)
    await svc.kill()
    const fatal = svc.logs.filter((l) => l.level === 60).map((l) => String(l.msg))
    t.match(fatal, [/RESOLVER_DATA_DIR: .*start with an empty RESOLVER_DATA_DIR/], `${what}: ${fatal[0]}`)
  }
  await refusal('the view has applied more than the stream holds')

  // A fresh instance rebuilds its view from the restored stream and takes writes, which reuse the lost
  // sequences: the old view's last sequence exists again, but means another message.
  const fresh = await resolver()
  const after = await pushNew(t, lost.size + 2)
  for (const [id, jwt] of kept) t.equal(await lookup(sys, id), jwt, 'kept by the backup: served')
  for (const id of lost.keys()) t.equal(await lookup(sys, id), '', 'pushed after the backup: gone with the stream, not served')
  for (const [id, jwt] of after) t.equal(await lookup(sys, id), jwt, 'pushed after the restore: served')
  t.equal(await fresh.stop(), 0)
  await refusal('the stream has grown past the view again, with other messages')
})

t.test('the stream lost while instances run: lookups answer from the local views, writes fail with 503', async (t) => {
  const { fx, sys, jsm, resolver, pushNew } = await singleNode(t)
  await resolver()
  const stored = await pushNew(t, 3)
  await jsm.streams.delete(STREAM)
  for (const [id, jwt] of stored) t.equal(await lookup(sys, id), jwt, 'still served from the local view')
  const id = createAccount().getPublicKey()
  const started = Date.now()
  const r = await push(sys, subjects.claimsUpdate, accountJwt(fx.op.signingKp, id, {}, { iat: now() }), 1)
  t.equal(r.ours.error?.code, 503, `a push is refused: ${r.ours.error?.description}`)
  t.ok(Date.now() - started < 5000, 'within seconds')
  t.equal(await lookup(sys, id), '', 'and not served')
})
