import t from 'tap'
import { hostname } from 'node:os'
import { healthOnHost, PACK_QUEUE, subjects, VERSION, type HealthReport } from '../shared/index.ts'
import { newAccount } from '../ops/identities.ts'
import {
  askInstance,
  collectLikeNatsCli,
  schemaProblems,
  type MicroEndpointStats,
  type MicroInfo,
  type MicroReply,
  type MicroStats,
} from './kit/micro.ts'
import { startMesh } from './kit/mesh.ts'
import { push } from './kit/sys-requests.ts'

const SERVICES = ['notifier', 'resolver', 'signer']

t.test('the schemas refuse what natscli refuses', async (t) => {
  const ping = { type: 'io.nats.micro.v1.ping_response', name: 'resolver', id: 'X1', version: '1.0.0', metadata: {} }
  t.same(schemaProblems('PING', ping), [], 'a good ping passes')
  t.not(schemaProblems('PING', { ...ping, version: '1.0' }).length, 0, 'a version that is not SemVer')
  t.not(schemaProblems('PING', { ...ping, name: 'a.b' }).length, 0, 'a name with a dot')
  t.not(schemaProblems('PING', { ...ping, type: 'io.nats.micro.v1.info_response' }).length, 0, 'the wrong type')
  t.not(schemaProblems('INFO', { ...ping, type: 'io.nats.micro.v1.info_response' }).length, 0, 'info without a description')
  const endpoint = { name: 'lookup', subject: 's', num_requests: 1, num_errors: 0, last_error: '', processing_time: 3, average_processing_time: 3 }
  const stats = { ...ping, type: 'io.nats.micro.v1.stats_response', started: new Date().toISOString(), endpoints: [endpoint] }
  t.same(schemaProblems('STATS', stats), [], 'good stats pass')
  t.not(schemaProblems('STATS', { ...stats, endpoints: null }).length, 0, 'endpoints null (what Go re-encodes a missing list as)')
  t.not(schemaProblems('STATS', { ...stats, started: 'yesterday' }).length, 0, 'started not RFC3339')
  t.not(schemaProblems('STATS', { ...stats, endpoints: [{ ...endpoint, average_processing_time: 1.5 }] }).length, 0, 'a fractional time')
  const { last_error: _, ...noLastError } = endpoint
  t.not(schemaProblems('STATS', { ...stats, endpoints: [noLastError] }).length, 0, 'no last_error')
})

t.test('$SRV PING, INFO and STATS of the three services, as natscli sees them', async (t) => {
  const { fx, sys } = await startMesh(t)

  const infos = (await collectLikeNatsCli(sys, '$SRV.INFO')).map((m) => m.json<MicroInfo>())

  await t.test('nats micro ls: one valid INFO reply per service', async (t) => {
    t.same(infos.map((i) => i.name).sort(), SERVICES)
    for (const info of infos) {
      t.same(schemaProblems('INFO', info), [], `${info.name} INFO passes info_response`)
      t.equal(info.version, VERSION)
      t.ok(info.description.length > 0, `${info.name} has a description`)
      t.ok(info.metadata !== null && typeof info.metadata === 'object', `${info.name} metadata is an object, not null`)
      t.ok(info.endpoints.length > 0, `${info.name} declares endpoints`)
      t.ok(info.endpoints.some((e) => e.name === 'health'), `${info.name} has a health endpoint`)
      for (const e of info.endpoints) {
        t.ok(e.metadata !== null && typeof e.metadata.description === 'string', `${info.name}.${e.name} metadata describes it`)
        t.equal(e.queue_group, e.subject === subjects.claimsPack ? PACK_QUEUE : 'q', `${info.name}.${e.name} queue group`)
      }
    }
    const byName = new Map(infos.map((i) => [i.name, i]))
    const subjectsOf = (name: string) => new Set(byName.get(name)?.endpoints.map((e) => e.subject))
    for (const s of [subjects.lookup(), subjects.claimsUpdate, subjects.accountUpdate(), subjects.resolverHealth]) {
      t.ok(subjectsOf('resolver').has(s), `resolver listens on ${s}`)
    }
    for (const s of [subjects.signerValidate, subjects.signerValidateBatch, subjects.signerValidateDelete, subjects.signerHealth]) t.ok(subjectsOf('signer').has(s), `signer listens on ${s}`)
    for (const s of [subjects.notifierNotify, subjects.notifierNotifyBatch, subjects.notifierHealth]) t.ok(subjectsOf('notifier').has(s), `notifier listens on ${s}`)
  })

  await t.test("health on this host is answered by this host's instance only", async (t) => {
    for (const subject of [subjects.resolverHealth, subjects.signerHealth, subjects.notifierHealth]) {
      const report = (await sys.request(healthOnHost(subject), '', { timeout: 2000 })).json<HealthReport>()
      t.equal(report.host, hostname(), `${report.service} answers for ${hostname()}`)
      t.equal(report.ok, true)
      await t.rejects(sys.request(healthOnHost(subject, 'some-other-host'), '', { timeout: 500 }), `${report.service}: no instance answers for another host`)
    }
  })

  await t.test('PING on every form of the subject', async (t) => {
    const all = (await collectLikeNatsCli(sys, '$SRV.PING')).map((m) => m.json<MicroReply>())
    t.same(all.map((p) => p.name).sort(), SERVICES)
    for (const info of infos) {
      const byName = (await collectLikeNatsCli(sys, `$SRV.PING.${info.name}`)).map((m) => m.json<MicroReply>())
      const one = await askInstance<MicroReply>(sys, 'PING', info.name, info.id)
      for (const p of [...all.filter((x) => x.name === info.name), ...byName, one]) {
        t.same(schemaProblems('PING', p), [], `${info.name} PING passes ping_response`)
        t.equal(p.id, info.id)
        t.ok(p.metadata !== null && typeof p.metadata === 'object', 'metadata is an object')
      }
      t.equal(byName.length, 1, `one reply on $SRV.PING.${info.name}`)
      const infoByName = await collectLikeNatsCli(sys, `$SRV.INFO.${info.name}`)
      t.equal(infoByName.length, 1, `one reply on $SRV.INFO.${info.name}`)
    }
  })

  await t.test('nats micro stats: STATS of each instance passes stats_response and lists the INFO endpoints', async (t) => {
    for (const info of infos) {
      const stats = await askInstance<MicroStats>(sys, 'STATS', info.name, info.id)
      t.same(schemaProblems('STATS', stats), [], `${info.name} STATS passes stats_response`)
      t.ok(stats.metadata !== null && typeof stats.metadata === 'object', 'metadata is an object')
      t.same(
        stats.endpoints.map((e) => [e.name, e.subject, e.queue_group]),
        info.endpoints.map((e) => [e.name, e.subject, e.queue_group]),
        'the same endpoints as INFO',
      )
      t.ok(Date.parse(stats.started) <= Date.now(), 'started is a past RFC3339 time')
    }
    const all = (await collectLikeNatsCli(sys, '$SRV.STATS')).map((m) => m.json<MicroStats>())
    t.same(all.map((s) => s.name).sort(), SERVICES, 'every instance answers $SRV.STATS')
    for (const s of all) t.same(schemaProblems('STATS', s), [], `${s.name} STATS on the bare subject`)
  })

  await t.test('STATS count real requests, errors and time', async (t) => {
    const id = (name: string) => infos.find((i) => i.name === name)!.id
    const endpointStats = async (name: string) => {
      const stats = await askInstance<MicroStats>(sys, 'STATS', name, id(name))
      t.same(schemaProblems('STATS', stats), [], `${name} STATS still valid`)
      return new Map(stats.endpoints.map((e) => [e.name, e]))
    }
    const before = new Map(await Promise.all(SERVICES.map(async (s) => [s, await endpointStats(s)] as const)))
    const demo = await newAccount(fx.op, 'DEMO')

    // Good requests.
    for (let i = 0; i < 5; i++) await sys.request(subjects.lookup(fx.op.systemAccount.id), '', { timeout: 2000 })
    for (const s of [subjects.resolverHealth, subjects.signerHealth, subjects.notifierHealth]) {
      const h = (await sys.request(s, '', { timeout: 3000 })).json<HealthReport>()
      t.equal(h.ok, true, `${s} ok`)
    }
    t.equal((await push(sys, subjects.claimsUpdate, demo.jwt, 1)).ours.data?.code, 200, 'a valid push is stored')
    // Bad requests, one per dialect: nats-server JSON on $SYS, micro error headers on mesh.*.
    t.ok((await push(sys, subjects.claimsUpdate, 'not a jwt', 1)).ours.error, 'a garbage push is refused')
    const signerReply = await sys.request(subjects.signerValidate, '', { timeout: 2000 })
    t.equal(signerReply.headers?.get('Nats-Service-Error-Code'), '400', 'an empty validate is refused')
    const notifierReply = await sys.request(subjects.notifierNotify, 'no headers', { timeout: 2000 })
    t.equal(notifierReply.headers?.get('Nats-Service-Error-Code'), '400', 'a notify without change headers is refused')

    const after = new Map(await Promise.all(SERVICES.map(async (s) => [s, await endpointStats(s)] as const)))
    const delta = (svc: string, ep: string): { requests: number; errors: number; e: MicroEndpointStats } => {
      const a = after.get(svc)!.get(ep)!
      const b = before.get(svc)!.get(ep)!
      return { requests: a.num_requests - b.num_requests, errors: a.num_errors - b.num_errors, e: a }
    }
    const lookup = delta('resolver', 'lookup')
    t.same([lookup.requests, lookup.errors], [5, 0], 'resolver lookup: 5 requests, no error')
    const update = delta('resolver', 'claims-update')
    t.same([update.requests, update.errors], [2, 1], 'resolver claims-update: 2 requests, 1 error')
    t.ok(update.e.last_error.length > 0, `claims-update last_error: ${update.e.last_error}`)
    const validate = delta('signer', 'validate')
    // The resolver asked the signer about both pushes; the garbage one and our empty one are errors.
    t.same([validate.requests, validate.errors], [3, 2], 'signer validate: 3 requests, 2 errors')
    t.match(validate.e.last_error, /empty/, 'signer last_error names the problem')
    const notify = delta('notifier', 'notify')
    t.equal(notify.errors, 1, 'notifier notify counted the bad request as an error')
    for (const [svc, ep] of [['resolver', 'health'], ['signer', 'health'], ['notifier', 'health']] as const) {
      t.same([delta(svc, ep).requests, delta(svc, ep).errors], [1, 0], `${svc} health: 1 request, no error`)
    }
    for (const [svc, eps] of after) {
      for (const e of eps.values()) {
        if (e.num_requests === 0) continue
        t.ok(e.processing_time > 0, `${svc}.${e.name} processing_time is measured`)
        t.equal(e.average_processing_time, Math.round(e.processing_time / e.num_requests), `${svc}.${e.name} average is the integer mean`)
      }
    }
  })
})
