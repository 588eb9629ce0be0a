import t, { type Test } from 'tap'
import { headers } from '@nats-io/nats-core'
import { changeHeaders, SignerHeader, subjects, type DeliveryReport } from '../shared/index.ts'
import { newAccount, type AccountIdentity } from '../ops/identities.ts'
import { startMesh } from './kit/mesh.ts'
import { startNatsServer } from './kit/nats-server.ts'
import { startService, type ServiceProcess } from './kit/services.ts'
import { push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const LOOKUPS = 2000
const PUSHES = 40
const REQUEST_TIMEOUT_MS = 15_000
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** Counts replies as they arrive, so the test can show work was still in flight when the signal went out. */
function counter() {
  let n = 0
  return { done: <T>(p: Promise<T>) => p.finally(() => n++), get value() { return n } }
}

function shutdownLogs(t: Test, svc: ServiceProcess): void {
  const stopping = svc.logs.findIndex((l) => l.msg === 'stopping')
  const stopped = svc.logs.findIndex((l) => l.msg === 'stopped')
  t.ok(stopping >= 0 && stopped > stopping, `${svc.name} logged stopping, then stopped`)
  t.equal(svc.logs[stopped]?.exitCode, 0, `${svc.name} stopped with exit code 0`)
  // Warnings too: a delivery cut off by the draining connection would say "delivery failed, will retry".
  const troubles = svc.logs.slice(stopping).filter((l) => typeof l.level === 'number' && l.level >= 40)
  t.same(troubles.map((l) => l.msg), [], `${svc.name} logged no warning or error while stopping`)
}

t.test('SIGTERM under load: the resolver answers every request it was sent, then exits 0', async (t) => {
  const mesh = await startMesh(t)
  const { fx, sys } = mesh
  let resolver = mesh.resolvers[0]!

  const stored = await Promise.all(range(10).map((i) => newAccount(fx.op, `STORED${i}`)))
  for (const a of stored) t.equal((await push(sys, subjects.claimsUpdate, a.jwt, 1)).ours.data?.code, 200, `${a.name} stored`)
  const pushed = await Promise.all(range(PUSHES).map((i) => newAccount(fx.op, `PUSHED${i}`)))

  const lookupReplies = counter()
  const pushReplies = counter()
  const lookups = range(LOOKUPS).map((i) => {
    const a = stored[i % stored.length]!
    return lookupReplies.done(sys.request(subjects.lookup(a.id), '', { timeout: REQUEST_TIMEOUT_MS }).then((m) => m.string() === a.jwt))
  })
  const pushes = pushed.map((a) => pushReplies.done(push(sys, subjects.claimsUpdate, a.jwt, 1).then((r) => r.ours)))
  // Once the server has answered our PING it has handed every request above to the resolver.
  await sys.flush()
  const answeredAtSignal = { lookups: lookupReplies.value, pushes: pushReplies.value }
  resolver.proc.kill('SIGTERM')

  const lookupResults = await Promise.allSettled(lookups)
  const pushResults = await Promise.allSettled(pushes)
  const exitCode = await resolver.exited
  t.ok(
    answeredAtSignal.pushes < PUSHES,
    `work in flight at the signal: ${answeredAtSignal.lookups} of ${LOOKUPS} lookups and ${answeredAtSignal.pushes} of ${PUSHES} pushes answered`,
  )
  const failedLookups = lookupResults.filter((r) => r.status === 'rejected').map((r) => String(r.reason))
  t.same(failedLookups.slice(0, 3), [], `no lookup failed or timed out (${failedLookups.length} did)`)
  t.equal(lookupResults.filter((r) => r.status === 'fulfilled' && r.value).length, LOOKUPS, 'every lookup got its account JWT')
  const failedPushes = pushResults.filter((r) => r.status === 'rejected').map((r) => String(r.reason))
  t.same(failedPushes.slice(0, 3), [], `no push went unanswered (${failedPushes.length} did)`)
  const codes = pushResults.map((r) => (r.status === 'fulfilled' ? r.value.data?.code ?? r.value.error?.code : 'none'))
  t.same(codes, pushed.map(() => 200), 'every push was acknowledged')
  t.equal(exitCode, 0, 'the resolver exited 0')
  shutdownLogs(t, resolver)

  await t.test('every acknowledged push is in the store after a restart', async (t) => {
    resolver = await mesh.start('resolver', { RESOLVER_DATA_DIR: resolver.dataDir }, 0, t)
    for (const a of pushed) {
      const jwt = (await sys.request(subjects.lookup(a.id), '', { timeout: 2000 })).string()
      if (jwt !== a.jwt) t.fail(`${a.name} missing after the restart`)
    }
    t.pass(`all ${PUSHES} pushed accounts served`)
  })
})

t.test('SIGTERM under load: the signer and the notifier answer what they were sent, then exit 0', async (t) => {
  const mesh = await startMesh(t, { resolvers: 0 })
  const { fx, sys } = mesh
  const [signer, notifier] = [mesh.signers[0]!, mesh.notifiers[0]!]
  const accounts: AccountIdentity[] = await Promise.all(range(20).map((i) => newAccount(fx.op, `V${i}`)))

  for (const [svc, send] of [
    [
      signer,
      (i: number) => {
        const a = accounts[i % accounts.length]!
        const h = headers()
        h.set(SignerHeader.account, a.id)
        return sys.request(subjects.signerValidate, a.jwt, { timeout: REQUEST_TIMEOUT_MS, headers: h }).then((m) => !m.headers && m.json<{ id: string }>().id === a.id)
      },
    ],
    [
      notifier,
      (i: number) => {
        const a = accounts[i % accounts.length]!
        const h = changeHeaders({ seq: i + 1, id: a.id, kind: 'updated', jwt: a.jwt })
        return sys.request(subjects.notifierNotify, a.jwt, { timeout: REQUEST_TIMEOUT_MS, headers: h }).then((m) => !m.headers && m.json<DeliveryReport>().id === a.id)
      },
    ],
  ] as const) {
    const replies = counter()
    const sent = range(500).map((i) => replies.done(send(i)))
    await sys.flush()
    const answeredAtSignal = replies.value
    svc.proc.kill('SIGTERM')
    const results = await Promise.allSettled(sent)
    t.ok(answeredAtSignal < sent.length, `${svc.name}: ${answeredAtSignal} of ${sent.length} answered at the signal`)
    const failed = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason))
    t.same(failed.slice(0, 3), [], `${svc.name}: no request failed or timed out (${failed.length} did)`)
    t.equal(results.filter((r) => r.status === 'fulfilled' && r.value).length, sent.length, `${svc.name}: every reply is a success`)
    t.equal(await svc.exited, 0, `${svc.name} exited 0`)
    shutdownLogs(t, svc)
  }
})

t.test('SIGTERM with the nats-server gone: a service stops at once instead of waiting to drain', async (t) => {
  const mesh = await startMesh(t, { notifiers: 0 })
  const { fx } = mesh
  const ns = mesh.servers[0]!
  const [signer, resolver] = [mesh.signers[0]!, mesh.resolvers[0]!]

  await t.test('the server went away before the signal', async (t) => {
    const ns2 = await startNatsServer(t, fx)
    const notifier = await startService(t, 'notifier', fx, [ns2])
    await ns2.stop()
    await waitFor(() => notifier.logs.some((l) => l.msg === 'nats disconnect'), { what: 'the notifier to notice' })
    const started = Date.now()
    t.equal(await notifier.stop(), 1, 'exit code 1: it could not drain')
    t.ok(Date.now() - started < 3000, `stopped in ${Date.now() - started} ms`)
    t.ok(notifier.logs.some((l) => l.msg === 'closing nats without draining: replies still in flight are lost'))
  })

  await t.test('the server and the services are signalled together (Ctrl-C on a process group)', async (t) => {
    const started = Date.now()
    const codes = await Promise.all([ns.stop(), signer.stop(), resolver.stop()])
    t.ok(Date.now() - started < 4000, `all stopped in ${Date.now() - started} ms`)
    for (const [svc, code] of [[signer, codes[1]], [resolver, codes[2]]] as const) {
      t.ok(code === 0 || code === 1, `${svc.name} exited by itself (${code}), not killed`)
      t.ok(svc.logs.some((l) => l.msg === 'stopped'), `${svc.name} logged stopped`)
    }
  })
})
