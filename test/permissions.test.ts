import { readFile } from 'node:fs/promises'
import t from 'tap'
import { createAccount } from '@nats-io/nkeys'
import { subjects } from '../shared/index.ts'
import { newAccount, newUser } from '../ops/identities.ts'
import { permissionsMarkdown, SERVICE_PERMISSIONS } from '../ops/permissions.ts'
import { connectWith } from './kit/clients.ts'
import { accountJwt } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { allEndpoints, concreteSubject, requestCounts } from './kit/service-endpoints.ts'
import { serviceCredsPath, type ServiceProcess } from './kit/services.ts'
import { appliedJwts, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const violations = (svc: ServiceProcess) => svc.output().split('\n').filter((l) => /permissions? violation/i.test(l))

t.test('the README shows the permissions of ops/permissions.ts', async (t) => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  t.ok(readme.includes(permissionsMarkdown()), 'README carries the table rendered from ops/permissions.ts')
  for (const p of Object.values(SERVICE_PERMISSIONS)) {
    t.notOk(p.pub.includes('>') || p.sub.includes('>'), 'no service may use every subject')
  }
})

t.test('services run least-privileged, and nothing outside the system account reaches them', async (t) => {
  // The kit gives each service its own user with exactly SERVICE_PERMISSIONS.
  const mesh = await startMesh(t, { cluster: true })
  const { fx, servers, sys } = mesh
  const services = [...mesh.resolvers, ...mesh.signers, ...mesh.notifiers]
  const demo = await newAccount(fx.op, 'DEMO')
  const demoUser = await newUser(demo, 'demo')

  await t.test('the whole pipeline works under exactly those permissions', async (t) => {
    const { ours } = await push(sys, subjects.claimsUpdate, demo.jwt, 1)
    t.equal(ours.data?.code, 200, JSON.stringify(ours))
    t.equal((await sys.request(subjects.lookup(demo.id), '', { timeout: 2000 })).string(), demo.jwt, 'served by LOOKUP')
    const nc = await connectWith(t, servers, demoUser.creds)
    await nc.flush()
    const next = accountJwt(fx.op.signingKp, demo.id, {}, { iat: Math.floor(Date.now() / 1000) + 1 })
    t.equal((await push(sys, subjects.accountUpdate(demo.id), next, 1)).ours.data?.code, 200)
    await waitFor(async () => (await appliedJwts(sys, demo.id, 1)).get('n1') === next, { what: 'the notifier to deliver it' })
    for (const name of ['resolver', 'signer', 'notifier']) {
      const r = (await sys.request(`$SRV.PING.${name}`, '', { timeout: 2000 })).json<{ name: string }>()
      t.equal(r.name, name, `${name} answers $SRV.PING`)
    }
    for (const svc of services) t.same(violations(svc), [], `${svc.name} hit no permission violation`)
  })

  await t.test('a user of a normal account gets no reply from any endpoint', async (t) => {
    const endpoints = await allEndpoints(sys, 3)
    t.ok(endpoints.length >= 8, `INFO lists ${endpoints.length} endpoints`)
    // Background work also counts requests: the notifier's delivery of both versions pushed above, and the
    // resolver hearing each delivery's broadcast beside the one direct push. Start once all of it is counted
    // (on a loaded machine a delivery can trail its push by seconds) and nothing moves.
    let before = await requestCounts(sys, 3)
    await waitFor(async () => {
      const now = await requestCounts(sys, 3)
      const quiet = JSON.stringify([...now]) === JSON.stringify([...before])
      before = now
      // two versions delivered, alone or in one batch; the resolver hears each broadcast beside the direct push
      const requests = (now.get('notifier/notify') ?? 0) + (now.get('notifier/notify-batch') ?? 0)
      return quiet && requests >= 1 && (now.get('resolver/account-update') ?? 0) >= 3
    }, { ms: 30_000, what: 'request counts to settle after both deliveries' })
    const nc = await connectWith(t, servers, demoUser.creds)
    const targets = [
      ...endpoints.map((e) => concreteSubject(e.subject, demo.id)),
      '$SRV.PING',
      '$SRV.INFO',
      '$SRV.STATS.resolver',
      subjects.claimsList,
    ]
    for (const subject of targets) {
      await t.rejects(nc.request(subject, demo.jwt, { timeout: 500 }), `${subject}: no responders`)
    }
    const after = await requestCounts(sys, 3)
    t.same(after, before, 'no endpoint of ours received a request')
  })

  await t.test("each service's user is held to its own list", async (t) => {
    const as = async (name: 'resolver' | 'signer' | 'notifier') =>
      connectWith(t, servers, await readFile(await serviceCredsPath(fx, name), 'utf8'))
    const fresh = createAccount().getPublicKey()
    const jwt = accountJwt(fx.op.signingKp, fresh)

    // Only the notifier may talk to the servers, and only the resolver may take pushes.
    const signer = await as('signer')
    await t.rejects(signer.request(subjects.claimsUpdate, jwt, { timeout: 1000 }), 'the signer may not push')
    const resolver = await as('resolver')
    await t.rejects(resolver.request(subjects.accountUpdate(fresh), jwt, { timeout: 1000 }), 'the resolver may not broadcast to servers')
    t.equal((await sys.request(subjects.lookup(fresh), '', { timeout: 2000 })).data.length, 0, 'nothing was stored')

    const notifier = await as('notifier')
    const errors: string[] = []
    void (async () => {
      for await (const s of notifier.status()) if (s.type === 'error') errors.push(s.error.message)
    })()
    notifier.subscribe(subjects.lookup())
    await notifier.flush()
    await waitFor(() => errors.some((e) => /permissions violation/i.test(e)), { what: 'a subscribe permission violation' })
    t.equal((await sys.request(subjects.lookup(demo.id), '', { timeout: 2000 })).data.length > 0, true, 'LOOKUP still answered by the resolver')
  })
})
