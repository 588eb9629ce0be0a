import { readFile } from 'node:fs/promises'
import t from 'tap'
import { headers, type NatsConnection } from '@nats-io/nats-core'
import {
  accountOfRequestSubject,
  AppError,
  errors,
  gather,
  gatherJson,
  idInSubject,
  isResolverReply,
  serviceErrorOf,
  subjects,
  tryPeek,
} from '../shared/index.ts'
import { arity } from '../cli/args.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture } from './kit/fixtures.ts'
import { startNatsServer } from './kit/nats-server.ts'

const ID = 'ABJ2Y6PMEUZPCSJ2DP4XGRNDZWT3VRTLKEFQ5T6WCW4VDBD4IOEZFIVV'

t.test('an account id is read from a subject one way', async (t) => {
  t.equal(idInSubject(subjects.lookup(), subjects.lookup(ID)), ID, 'LOOKUP')
  t.equal(idInSubject(subjects.resolverGet(), subjects.resolverGet(ID)), ID, 'an internal per-account subject')
  t.equal(idInSubject(subjects.resolverGet(), 'mesh.resolver.get.'), undefined, 'no id')
  t.equal(idInSubject(subjects.resolverGet(), 'mesh.resolver.get.A.B'), undefined, 'two tokens where one belongs')
  t.equal(idInSubject(subjects.lookup(), subjects.accountUpdate(ID)), undefined, 'another subject')
  t.equal(accountOfRequestSubject(subjects.accountUpdate(ID)), ID, 'UPDATE')
  t.equal(accountOfRequestSubject(subjects.claimsUpdate), undefined, 'the general UPDATE names none')
})

t.test('a command takes as many positionals as its args string shows', async (t) => {
  t.same(arity(''), { min: 0, max: 0 })
  t.same(arity('<account>'), { min: 1, max: 1 })
  t.same(arity('[dir]'), { min: 0, max: 1 })
  t.same(arity('<account...>'), { min: 1, max: 1000 })
})

t.test('tryPeek reads any payload object and never throws', async (t) => {
  const seg = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  t.same(tryPeek(`x.${seg({ sub: ID, iat: 5 })}.y`), { sub: ID, iat: 5 })
  for (const bad of ['', 'garbage', `x.${seg(null)}.y`, `x.${seg([1])}.y`, `x.${seg(7)}.y`, 'x.%%%.y']) {
    t.equal(tryPeek(bad), undefined, `nothing from ${JSON.stringify(bad)}`)
  }
})

t.test('gathering replies from several responders', async (t) => {
  const fx = await makeFixture(t)
  const ns = await startNatsServer(t, fx)
  const nc = await connectWith(t, ns, await readFile(fx.sysCredsPath, 'utf8'))
  const respond = (subject: string, delays: number[], body: (i: number) => string | Uint8Array = (i) => JSON.stringify({ i })) =>
    nc.subscribe(subject, {
      callback: (_err, m) => delays.forEach((ms, i) => setTimeout(() => m.respond(body(i)), ms)),
    })
  respond('plumbing.three', [0, 50, 100])
  await nc.flush()

  const timer = await gather(nc, 'plumbing.three', '', { strategy: 'timer', maxWait: 600 })
  t.equal(timer.length, 3, 'timer: every reply within the wait')
  const count = await gather(nc, 'plumbing.three', '', { strategy: 'count', maxMessages: 2, maxWait: 2000 })
  t.equal(count.length, 2, 'count: stops at the count')
  const until = await gatherJson<{ i: number }>(nc, 'plumbing.three', '', { strategy: 'timer', maxWait: 2000, until: (got) => got.some((r) => r.i === 1) })
  t.same(until, [{ i: 0 }, { i: 1 }], 'until: stops once enough')

  respond('plumbing.slow', [0, 30, 600])
  await nc.flush()
  const stall = await gather(nc, 'plumbing.slow', '', { strategy: 'stall', maxWait: 1000, stall: 200 })
  t.equal(stall.length, 2, 'stall: ends when the replies pause')

  respond('plumbing.pack', [0, 20, 40, 300], (i) => (i === 2 ? '' : `line ${i}`))
  await nc.flush()
  const sentinel = await gather(nc, 'plumbing.pack', '', { strategy: 'sentinel', maxWait: 2000 })
  t.same(sentinel.map((m) => m.string()), ['line 0', 'line 1', ''], 'sentinel: up to the empty message')

  respond('plumbing.mixed', [0, 10], (i) => (i === 0 ? 'not json' : '{"ok":true}'))
  await nc.flush()
  t.same(await gatherJson(nc, 'plumbing.mixed', '', { strategy: 'timer', maxWait: 300 }), [{ ok: true }], 'gatherJson leaves out what is not JSON')

  t.same(await gather(nc, 'plumbing.nobody', '', { strategy: 'timer', maxWait: 300 }), [], 'nobody answering is no reply, not an error')
  await t.rejects(gather(nc, 'plumbing.big', new Uint8Array(2 * 1024 * 1024), { strategy: 'timer', maxWait: 300 }), 'a publish over max_payload throws')
})

t.test("the resolver's claim replies are told from a nats-server's by their id, not the name", async (t) => {
  const reply = (id: string) => ({ server: { name: 'resolver', id, time: '', seq: 1, jetstream: false }, data: { code: 200, message: 'ok' } })
  t.ok(isResolverReply(reply('kHf3vPWzQW1bB7yG8o2xRk')), 'a service id')
  t.notOk(isResolverReply(reply('NCSHLXSJ44G3U2ULJPQHCJJBH6A7PKXJDTCWAZ7UVH2LWNSUBXBEEQF6')), 'a nats-server named resolver')
  t.notOk(isResolverReply({ server: { name: 'nats-1', id: 'x' } }), 'another name')
  t.notOk(isResolverReply(null), 'not an object')
})

t.test('micro error replies decode to an AppError', async (t) => {
  const fx = await makeFixture(t)
  const ns = await startNatsServer(t, fx)
  const nc: NatsConnection = await connectWith(t, ns, await readFile(fx.sysCredsPath, 'utf8'))
  const ours = errors.requestInvalid('bad body')
  nc.subscribe('plumbing.err.ours', { callback: (_e, m) => void m.respond(JSON.stringify(ours), { headers: errorHeaders(ours.message, ours.status) }) })
  nc.subscribe('plumbing.err.theirs', { callback: (_e, m) => void m.respond('', { headers: errorHeaders('boom', 503) }) })
  nc.subscribe('plumbing.ok', { callback: (_e, m) => void m.respond('{}') })
  await nc.flush()

  const a = serviceErrorOf(await nc.request('plumbing.err.ours', '', { timeout: 2000 }))
  t.ok(a instanceof AppError, 'an AppError')
  t.match(a, { code: 'REQUEST_INVALID', status: 400, message: 'bad body' }, "our services' code survives the hop")
  t.match(serviceErrorOf(await nc.request('plumbing.err.theirs', '', { timeout: 2000 })), { code: 'INTERNAL', status: 503, message: 'boom' }, "another responder's header text and code")
  t.equal(serviceErrorOf(await nc.request('plumbing.ok', '', { timeout: 2000 })), undefined, 'a success is no error')
})

function errorHeaders(text: string, code: number) {
  const h = headers()
  h.set('Nats-Service-Error', text)
  h.set('Nats-Service-Error-Code', String(code))
  return h
}
