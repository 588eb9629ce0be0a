import t, { type Test } from 'tap'
import { createAccount } from '@nats-io/nkeys'
import { headers } from '@nats-io/nats-core'
import { gatherJson, isResolverReply, subjects } from '../shared/index.ts'
import { newUser } from '../ops/identities.ts'
import { connectWith } from './kit/clients.ts'
import { makeFixture } from './kit/fixtures.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { resolverCountsServers, startMesh } from './kit/mesh.ts'
import { serverAtLeast, serverVersion, type NatsServerHandle } from './kit/nats-server.ts'
import { gather, push } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

// What differs between the nats-server releases we support (protocol.md §3.6), asserted for the one under test:
// CI runs the suite on Debian's 2.9.10, on 2.10.x and on the newest release, so each branch runs somewhere.
// Boundaries come from protocol.md §3.6; only 2.9.10, 2.10.27 and 2.15.1 were run here, so a boundary between
// 2.10.27 and 2.15.1 (2.11.0, 2.12.1, 2.14.0) is where the changelog puts it, not where it was measured.
const v = serverVersion().text
const now = () => Math.floor(Date.now() / 1000)

/** How long a server takes to refuse a user whose account it must look up (ms), or throws if it admits it. */
async function refusalMs(t: Test, server: NatsServerHandle, creds: string): Promise<number> {
  const start = performance.now()
  try {
    await connectWith(t, server, creds, { timeout: 8000 })
  } catch {
    return performance.now() - start
  }
  throw new Error('the user was admitted')
}

t.test(`nats-server ${v}: an account the mesh does not know`, async (t) => {
  const fx = await makeFixture(t)
  const kp = createAccount()
  const account = { name: 'NOBODY', kp, id: kp.getPublicKey(), jwt: accountJwt(fx.op.signingKp, kp.getPublicKey()) }
  const user = await newUser(account, 'nobody-user')

  await t.test('a lone server refuses its user at once on every version (an empty reply is "not found")', async (t) => {
    const { servers } = await startMesh(t, { fx, signers: 0, notifiers: 0 })
    const ms = await refusalMs(t, servers[0]!, user.creds)
    t.ok(ms < 1500, `refused in ${Math.round(ms)} ms, before the 1.9 s fetch timeout`)
  })

  await t.test('a 3-node cache cluster: at once on every version', async (t) => {
    const { servers, sys } = await startMesh(t, { fx, servers: 3, signers: 0, notifiers: 0 })
    // The resolver learns how many servers a requester waits for from their statistics (server-count.ts).
    await resolverCountsServers(sys, 2)
    const ms = await refusalMs(t, servers[0]!, user.creds)
    // Up to 2.9.16 the first reply wins, ours and empty; from 2.9.17 the requester counts one reply per other
    // server it knows (cache servers never answer LOOKUP), so the resolver sends that many empty replies.
    const why = serverAtLeast('2.9.17') ? 'one empty reply per server it waits for' : 'the first reply, ours and empty, wins'
    t.ok(ms < 1500, `refused in ${Math.round(ms)} ms, before the 1.9 s fetch timeout: ${why}`)
  })
})

t.test(`nats-server ${v}: server replies to a push and to a delete`, async (t) => {
  const mesh = await startMesh(t)
  const { fx, sys } = mesh
  const server = mesh.servers[0]!
  const kp = createAccount()
  const account = { name: 'VERSIONED', kp, id: kp.getPublicKey(), jwt: accountJwt(fx.op.signingKp, kp.getPublicKey(), {}, { iat: now() - 10 }) }

  await t.test('from 2.11 claim replies are typed (server first); before, a map in key order; flags from 2.10, feature_flags from 2.14', async (t) => {
    const replies = await gather(sys, subjects.claimsUpdate, account.jwt, 2, 3000)
    const raw = replies.map((m) => m.string()).find((s) => !s.includes('"name":"resolver"'))
    t.ok(raw !== undefined, 'the server replied')
    const reply = JSON.parse(raw!) as { server: Record<string, unknown>; data?: { code: number } }
    t.equal(reply.data?.code, 200, 'the server took the update')
    t.equal(Object.keys(reply)[0], serverAtLeast('2.11.0') ? 'server' : 'data', 'the first key of the reply')
    t.equal('flags' in reply.server, serverAtLeast('2.10.0'), 'server.flags')
    t.equal('feature_flags' in reply.server, serverAtLeast('2.14.0'), 'server.feature_flags')
    const ours = (await push(sys, subjects.claimsUpdate, account.jwt, 1)).ours
    t.ok(ours.data?.code === 200, 'our resolver holds the account')
  })

  await t.test('a delete that carries headers: servers act on it from 2.12.1; the notifier makes every version do so', async (t) => {
    const user = await newUser(account, 'versioned-user')
    const nc = await connectWith(t, server, user.creds)
    await nc.flush()
    const closed = nc.closed()
    // A request that crossed a service import carries Nats-Request-Info (protocol.md §9.6).
    const h = headers()
    h.set('Nats-Request-Info', JSON.stringify({ acc: fx.op.systemAccount.id }))
    const token = signClaims({ sub: fx.op.signingKp.getPublicKey(), nats: { accounts: [account.id], version: 2 } }, fx.op.signingKp)
    type DeleteReply = { server: { name: string }; data?: { message: string }; error?: { description: string } }
    const replies = await gatherJson<DeleteReply>(sys, subjects.claimsDelete, token, { strategy: 'count', maxMessages: 2, maxWait: 3000, headers: h })
    const ours = replies.find(isResolverReply)
    const theirs = replies.find((r) => !isResolverReply(r))
    t.equal(ours?.data?.message, 'deleted 1 accounts', 'the resolver deletes it whatever the headers')
    if (serverAtLeast('2.12.1')) t.equal(theirs?.data?.message, 'deleted 1 accounts', 'the server strips the headers and deletes')
    else t.match(theirs?.error?.description, /expected 3 chunks/, 'the server reads the headers as part of the token and fails')
    await t.resolves(Promise.race([closed, waitFor(() => false, { ms: 5000, what: 'the user to be disconnected' })]), 'the user is cut off')
    await t.rejects(connectWith(t, server, user.creds), 'and refused afterwards')
  })
})
