import t from 'tap'
import { makeFixture } from './helpers/fixtures.ts'
import { startNatsServer } from './helpers/nats-server.ts'
import { startResolver } from './helpers/services.ts'
import { waitFor } from './helpers/wait-for.ts'

t.test('a level instance that finds another resolver running warns, naming the jetstream mode', async (t) => {
  const fx = await makeFixture(t)
  const ns = await startNatsServer(t, fx)
  const first = await startResolver(t, fx, [ns])
  const second = await startResolver(t, fx, [ns])
  await waitFor(() => second.logs.some((l) => l.level === 40 && String(l.msg).includes('RESOLVER_STORE=jetstream')), {
    what: 'the warning',
  })
  t.pass('the second instance warns')
  t.notOk(
    first.logs.some((l) => String(l.msg).includes('RESOLVER_STORE=jetstream')),
    'the first, alone when it started, does not',
  )
})
