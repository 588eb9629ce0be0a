import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createAccount } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/nats-core'
import { changeFrom, peekClaims, subjects } from '../shared/index.ts'
import { AccountStore } from '../services/resolver/account-store.ts'
import { tempDir } from './kit/fixtures.ts'
import { accountJwt } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { type ServiceProcess } from './kit/services.ts'
import { push, type ClaimReply } from './kit/sys-requests.ts'

const LONG = process.env.MESH_LONG_TESTS === '1'
const ROUNDS = LONG ? 12 : 3
const IN_FLIGHT = 32

/**
 * SIGKILLs the resolver the moment it has announced `count` stored versions (its change events): no polling
 * delay, so others are mid-way. Subscribed synchronously: call it before sending the pushes.
 */
async function killWhenStored(sys: NatsConnection, svc: ServiceProcess, count: number): Promise<void> {
  let seen = 0
  const check = () => {
    if (seen >= count && svc.proc.exitCode === null) svc.proc.kill('SIGKILL')
  }
  const sub = sys.subscribe(subjects.resolverChanges(), {
    callback: (_err, m) => {
      const kind = changeFrom(m)?.kind
      if (kind === 'created' || kind === 'updated') seen++
      check()
    },
  })
  check()
  await svc.exited
  sub.unsubscribe()
}

t.test(`SIGKILL of the resolver with ${IN_FLIGHT} pushes in flight, ${ROUNDS} times: nothing acknowledged is lost`, async (t) => {
  const mesh = await startMesh(t, { cluster: true, resolvers: 0 })
  const { fx, sys } = mesh
  const dataDir = await tempDir(t, 'resolver')
  let resolver = await mesh.start('resolver', { RESOLVER_DATA_DIR: dataDir })

  /** Per account: the version acknowledged last, and every version ever sent (a push without a reply may have landed). */
  const acked = new Map<string, string>()
  const sent = new Map<string, Set<string>>()
  const lookup = async (id: string) => (await sys.request(subjects.lookup(id), '', { timeout: 2000 })).string()
  let iat = Math.floor(Date.now() / 1000) - 10_000
  let unanswered = 0

  for (let round = 1; round <= ROUNDS; round++) {
    await t.test(`round ${round}`, async (t) => {
      // Half new accounts, half newer versions of accounts acknowledged before: creates and overwrites both.
      // Each account at most once per batch: two versions of one account in flight together may land in either
      // order, and the older is then rightly refused as outdated, which is not what this test is about.
      const known = [...acked.keys()].sort(() => Math.random() - 0.5)
      const batch = Array.from({ length: IN_FLIGHT }, (_, i) => {
        const id = i % 2 === 1 && known.length > 0 ? known.pop()! : createAccount().getPublicKey()
        const jwt = accountJwt(fx.op.signingKp, id, {}, { iat: ++iat, name: `crash-${round}-${i}` })
        sent.set(id, (sent.get(id) ?? new Set()).add(jwt))
        const subject = i % 3 === 0 ? subjects.accountUpdate(id) : subjects.claimsUpdate
        return { id, jwt, subject }
      })
      const killAfter = Math.floor(Math.random() * (IN_FLIGHT * 0.75))
      const killed = killWhenStored(sys, resolver, killAfter)
      const replies = Promise.all(
        batch.map((p) => push(sys, p.subject, p.jwt, 1).then((r) => r.ours, (): ClaimReply | undefined => undefined)),
      )
      await killed
      const ours = await replies

      let ok = 0
      batch.forEach((p, i) => {
        const r = ours[i]
        if (r?.data?.code === 200) {
          ok++
          const prev = acked.get(p.id)
          if (prev === undefined || peekClaims(prev).iat < peekClaims(p.jwt).iat) acked.set(p.id, p.jwt)
        } else if (r === undefined) unanswered++
        else t.fail(`push ${i} refused: ${JSON.stringify(r.error)}`)
      })
      t.comment(`killed after ${killAfter} stored: ${ok} acknowledged, ${IN_FLIGHT - ok} unanswered`)

      // A store that needed repair would not open: the resolver would exit instead of registering.
      resolver = await mesh.start('resolver', { RESOLVER_DATA_DIR: dataDir })
      for (const [id, jwt] of acked) {
        const served = await lookup(id)
        // A push whose reply was lost to the kill may have landed after the acknowledged one: only newer is fine.
        const fine = served === jwt || (sent.get(id)!.has(served) && peekClaims(served).iat > peekClaims(jwt).iat)
        if (!fine) t.fail(`${id}: LOOKUP serves ${served === '' ? 'nothing' : 'another version'} instead of the acknowledged one`)
      }
      t.pass(`all ${acked.size} acknowledged accounts served after the restart`)
    })
  }
  t.comment(`${unanswered} pushes in all were cut off by a kill`)

  await t.test('the store is consistent after the crashes: LevelDB opens cleanly, every version has its history', async (t) => {
    t.equal(await resolver.stop(), 0)
    for (const f of (await readdir(dataDir)).filter((f) => /^LOG(\.old)?$/.test(f))) {
      t.notMatch(await readFile(join(dataDir, f), 'utf8'), /corrupt|repair/i, `${f}: no corruption recovered`)
    }
    const store = await AccountStore.open(dataDir)
    t.teardown(() => store.close())
    let ids = 0
    let maxSeq = 0
    for await (const id of store.ids()) {
      ids++
      const current = await store.get(id)
      const history = await store.historyOf(id)
      maxSeq = Math.max(maxSeq, ...history.map((h) => h.seq))
      if (history.at(-1)?.jwt !== current?.jwt) t.fail(`${id}: the current version is not the last in its history`)
    }
    t.ok(ids >= acked.size, `${ids} accounts stored, ${acked.size} acknowledged`)
    for (const c of await store.pendingChanges()) t.ok(c.seq <= maxSeq, 'outbox entries belong to written versions')
    // The next change must not reuse a sequence number already in history or the outbox.
    const fresh = createAccount().getPublicKey()
    const next = await store.save(fresh, accountJwt(fx.op.signingKp, fresh), { via: 'test' })
    t.ok(next.outcome === 'stored' && next.change.seq > maxSeq, 'the store writes on, with a sequence past every stored one')
  })
})
