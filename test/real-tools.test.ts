import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createAccount, createOperator, type KeyPair } from '@nats-io/nkeys'
import { encodeAccount, encodeOperator } from '@nats-io/jwt'
import type { NatsConnection } from '@nats-io/nats-core'
import { isResolverReply, peekClaims, subjects, trustAnchorFrom } from '../shared/index.ts'
import { loadResolverConfig } from '../services/resolver/config.ts'
import { newAccount, newOperator, newUser, type OperatorIdentity } from '../ops/identities.ts'
import { SERVICE_PERMISSIONS } from '../ops/permissions.ts'
import { BootstrapError, chooseUserSigner, sysAccountFrom, sysUserRefusal } from '../ops/sys-user-signer.ts'
import { watchChanges } from './kit/changes.ts'
import { connectWith } from './kit/clients.ts'
import { credsFile, fixtureOf, tempDir } from './kit/fixtures.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { collectLikeNatsCli, type MicroStats } from './kit/micro.ts'
import { freePort, natsServerBinary, type NatsServerHandle } from './kit/nats-server.ts'
import { stopProcess } from './kit/processes.ts'
import { serviceReady, spawnService, type ServiceName } from './kit/services.ts'
import { type ClaimReply, gather, push } from './kit/sys-requests.ts'
import { runBootstrap as runBootstrapIn } from './kit/cli.ts'
import { resolverCountsServers, startMesh } from './kit/mesh.ts'
import { waitFor } from './kit/wait-for.ts'

// What the real nsc and natscli do against the mesh, reproduced as protocol.md describes it, on whichever
// nats-server is first on PATH (run it with PATH=/var/cache/mesh-tools/nats-server/<version>:$PATH).

const now = () => Math.floor(Date.now() / 1000)
const seedText = (kp: KeyPair) => new TextDecoder().decode(kp.getSeed()) + '\n'

/** nsc's delete request (protocol.md §6): generic claims, `sub` = `iss` = an operator key. */
const deleteRequest = (kp: KeyPair, accounts: string[]) => signClaims({ sub: kp.getPublicKey(), nats: { accounts, version: 2 } }, kp)

/** Our reply among every reply to a request nsc sends (it reads them all: we are one more "nats-server"). */
async function ours(nc: NatsConnection, subject: string, body: string, servers: number): Promise<ClaimReply> {
  const replies = (await gather(nc, subject, body, servers + 1, 3000)).map((m) => m.json<ClaimReply>())
  const r = replies.find(isResolverReply)
  if (r === undefined) throw new Error(`no reply from the resolver: ${JSON.stringify(replies)}`)
  return r
}

/** How long a connect of `creds` takes to be refused; throws if it is admitted. */
async function refusedAfterMs(t: Test, server: NatsServerHandle, creds: string): Promise<number> {
  const start = performance.now()
  try {
    const nc = await connectWith(t, server, creds)
    await nc.close()
  } catch {
    return performance.now() - start
  }
  throw new Error('the connection was admitted')
}

/** Per endpoint of every resolver instance: requests and errors, as `nats micro stats resolver` shows them. */
async function resolverStats(nc: NatsConnection): Promise<Map<string, { requests: number; errors: number }>> {
  const out = new Map<string, { requests: number; errors: number }>()
  for (const m of await collectLikeNatsCli(nc, '$SRV.STATS.resolver', { timeoutMs: 2000, silenceMs: 300 })) {
    for (const e of m.json<MicroStats>().endpoints) {
      const prev = out.get(e.name) ?? { requests: 0, errors: 0 }
      out.set(e.name, { requests: prev.requests + e.num_requests, errors: prev.errors + e.num_errors })
    }
  }
  return out
}
const errorsOf = (s: Map<string, { errors: number }>) => Object.fromEntries([...s].map(([k, v]) => [k, v.errors]))

/**
 * An operator that requires signing keys, as nsc leaves it after `nsc edit operator --require-signing-keys`:
 * its JWT signed by its signing key, SYS signed by that key, and (unless `sysSigningKey` is false) a SYS
 * signing key for users.
 */
async function strictOperator(sysSigningKey = true): Promise<{ op: OperatorIdentity; sysSk: KeyPair }> {
  const op = await newOperator('STRICT', { strict: true, signedBy: 'signing-key' })
  const sysSk = createAccount()
  const signingKeys = sysSigningKey ? [sysSk.getPublicKey()] : []
  op.systemAccount = await newAccount(op, 'SYS', { signing_keys: signingKeys } as Record<string, unknown>, op.systemAccount.kp)
  return { op, sysSk }
}

const runBootstrap = (dir: string, env: Record<string, string> = {}) => runBootstrapIn([dir], env)

t.test('unit: what the trust anchor, the resolver config and the bootstrap accept', async (t) => {
  const { op, sysSk } = await strictOperator()
  await t.test('operator jwts load when nats-server would load them', async (t) => {
    const strict = trustAnchorFrom(op.jwt)
    t.equal(peekClaims(op.jwt).iss, op.signingKp.getPublicKey(), 'the fixture is signed by the signing key, as nsc does')
    t.equal(strict.operatorKey, op.kp.getPublicKey())
    t.ok(strict.strictSigningKeys)
    const plain = await newOperator('PLAIN')
    t.equal(trustAnchorFrom(plain.jwt).operatorKey, plain.kp.getPublicKey(), 'self-signed')
    // nats-server checks only that an operator key signed it (jwt.DecodeOperatorClaims): trust comes from config
    const foreign = await encodeOperator('X', op.kp, { signing_keys: [op.signingKp.getPublicKey()] }, { signer: createOperator() })
    t.equal(trustAnchorFrom(foreign).operatorKey, op.kp.getPublicKey(), 'signed by another operator key')
    const byAccount = signClaims({ sub: op.kp.getPublicKey(), nats: { type: 'operator', version: 2 } }, createAccount())
    t.throws(() => trustAnchorFrom(byAccount), { code: 'JWT_MALFORMED' }, 'signed by an account key')
    t.throws(() => trustAnchorFrom(op.systemAccount.jwt), { code: 'JWT_WRONG_TYPE' }, 'an account jwt')
  })

  await t.test('resolver config: RESOLVER_ALLOW_DELETE and a system account the operator trusts', async (t) => {
    const dir = await tempDir(t, 'cfg')
    const file = async (name: string, text: string) => {
      await writeFile(join(dir, name), text)
      return join(dir, name)
    }
    const base = { OPERATOR_JWT: await file('op.jwt', op.jwt), SYSTEM_ACCOUNT_JWT: await file('sys.jwt', op.systemAccount.jwt) }
    t.equal(loadResolverConfig(base).allowDelete, true, 'deletes allowed by default')
    t.equal(loadResolverConfig({ ...base, RESOLVER_ALLOW_DELETE: 'false' }).allowDelete, false)
    t.throws(() => loadResolverConfig({ ...base, RESOLVER_ALLOW_DELETE: 'no' }), { code: 'CONFIG_INVALID' }, 'only true or false')
    const identitySigned = await encodeAccount('SYS', op.systemAccount.kp, {}, { signer: op.kp })
    const bad = await file('bad.jwt', identitySigned)
    t.throws(() => loadResolverConfig({ ...base, SYSTEM_ACCOUNT_JWT: bad }), { code: 'CONFIG_INVALID' }, 'SYS signed by the identity key of an operator that requires signing keys')
  })

  await t.test('which users of SYS servers admit, and who signs new ones', async (t) => {
    const trust = trustAnchorFrom(op.jwt)
    const sys = sysAccountFrom(op.systemAccount.jwt)
    const byIdentity = await newUser(op.systemAccount, 'u')
    const bySigningKey = await newUser(op.systemAccount, 'u', undefined, sysSk)
    const other = await newUser(await newAccount(op, 'OTHER'), 'u')
    t.match(sysUserRefusal(byIdentity.jwt, sys, trust), /identity key/, 'identity-signed: refused under strict signing keys')
    t.equal(sysUserRefusal(bySigningKey.jwt, sys, trust), undefined, 'signing-key-signed: admitted')
    t.match(sysUserRefusal(other.jwt, sys, trust), /not of the system account/)
    const plainOp = await newOperator('PLAIN')
    const plainUser = await newUser(plainOp.systemAccount, 'u')
    t.equal(sysUserRefusal(plainUser.jwt, sysAccountFrom(plainOp.systemAccount.jwt), trustAnchorFrom(plainOp.jwt)), undefined, 'identity-signed: admitted otherwise')

    const { op: bare } = await strictOperator(false)
    const bareTrust = trustAnchorFrom(bare.jwt)
    const bareSys = sysAccountFrom(bare.systemAccount.jwt)
    const seeds = (...kps: KeyPair[]) => new Map(kps.map((kp) => [kp.getPublicKey(), kp]))
    const none = t.throws(() => chooseUserSigner(bareTrust, bareSys, seeds(bare.systemAccount.kp), 'keys')) as unknown as BootstrapError
    t.ok(none instanceof BootstrapError)
    t.match(none.message, /operator signing key seed/, 'says the operator signing key seed is missing')
    t.notMatch(none.message, /identity seed/, 'and not the SYS identity seed, which is there')
    const made = chooseUserSigner(bareTrust, bareSys, seeds(bare.systemAccount.kp, bare.signingKp), 'keys')
    t.ok(made.resignedSys, 'a signing key was added')
    const resigned = peekClaims<{ signing_keys?: string[] }>(made.resignedSys!)
    t.same(resigned.nats.signing_keys, [made.kp.getPublicKey()], 'the new key is listed')
    t.equal(resigned.iss, bare.signingKp.getPublicKey(), 're-signed by the operator signing key')
    t.ok(resigned.iat > peekClaims(bare.systemAccount.jwt).iat, 'with a newer iat')
    const user = await newUser({ ...bare.systemAccount, jwt: made.resignedSys! }, 'svc', undefined, made.kp)
    t.equal(sysUserRefusal(user.jwt, sysAccountFrom(made.resignedSys!), bareTrust), undefined, 'its users are admitted')
  })
})

t.test('3-node cache cluster: "not found" is final at once; a prune and a push count no error', async (t) => {
  const mesh = await startMesh(t, { servers: 3, resolvers: 0, signers: 0, notifiers: 0 })
  const { fx, servers, sys } = mesh
  // The failure mode needs servers that know each other: each then waits for 2 replies to a LOOKUP.
  await waitFor(
    async () => {
      const pings = (await gather(sys, subjects.serverPing, '', 3, 1000)).map((m) => m.json<{ statsz: { active_servers: number } }>())
      return pings.length === 3 && pings.every((p) => p.statsz.active_servers === 3)
    },
    { ms: 30_000, what: 'every server to count 3 servers' },
  )
  const resolver = await mesh.start('resolver')
  await mesh.start('signer')
  await mesh.start('notifier')
  const signing = fx.op.signingKp
  await resolverCountsServers(sys, 2)

  const account = async (name: string) => {
    const kp = createAccount()
    const id = kp.getPublicKey()
    const jwt = accountJwt(signing, id, {}, { name, iat: now() - 10 })
    const r = await push(sys, subjects.claimsUpdate, jwt, 3)
    t.equal(r.ours.data?.code, 200, `${name} stored`)
    return { name, kp, id, jwt }
  }
  const kept = await account('KEPT')
  const pruned = await account('PRUNED')
  const keptUser = await newUser(kept, 'k')
  const prunedUser = await newUser(pruned, 'p')

  await t.test('a stored account is served as before', async (t) => {
    const nc = await connectWith(t, servers[2]!, keptUser.creds)
    await nc.flush()
    t.pass('admitted on n3')
  })

  await t.test('a prune the way nsc does it (LIST, then DELETE) and the re-broadcasts count no error', async (t) => {
    // The pushes above are delivered first: a broadcast of PRUNED still on its way when the delete lands would
    // reach the resolver after it, older than the deletion, and be refused (README, "Reconciliation").
    for (const a of [kept, pruned]) {
      await waitFor(() => resolver.logs.some((l) => l.msg === 'change delivered' && l.account === a.id), { ms: 10_000, what: `${a.name} delivered` })
    }
    const before = await resolverStats(sys)
    const logsBefore = resolver.logs.length
    const lists = (await gather(sys, subjects.claimsList, '', 4, 2000)).map((m) => m.json<{ server: { name: string }; data: string[] }>())
    const known = new Set([fx.op.systemAccount.id, kept.id])
    const unknown = [...new Set(lists.flatMap((l) => l.data))].filter((id) => !known.has(id))
    t.same(unknown, [pruned.id], 'nsc would delete the account it does not know')
    const r = await ours(sys, subjects.claimsDelete, deleteRequest(signing, unknown), 3)
    t.same(r.data, { code: 200, message: 'deleted 1 accounts' })
    // The notifier sends the same request to every server again; the resolver hears it too.
    await waitFor(async () => ((await resolverStats(sys)).get('claims-delete')?.requests ?? 0) >= (before.get('claims-delete')?.requests ?? 0) + 2, {
      ms: 10_000,
      what: 'the notifier re-broadcast to reach the resolver',
    })
    await account('UPDATED')
    await waitFor(async () => ((await resolverStats(sys)).get('account-update')?.requests ?? 0) >= (before.get('account-update')?.requests ?? 0) + 1, {
      ms: 10_000,
      what: 'the notifier re-broadcast of the push to reach the resolver',
    })
    t.same(errorsOf(await resolverStats(sys)), errorsOf(before), 'no endpoint counted an error')
    t.ok(
      resolver.logs.slice(logsBefore).some((l) => String(l.msg).startsWith('delete request heard again') && l.level === 20),
      'the re-broadcast delete was recognised, at debug',
    )
    t.same(
      resolver.logs.slice(logsBefore).filter((l) => JSON.stringify(l).includes('REQUEST_REPLAYED') || (typeof l.level === 'number' && l.level >= 40)),
      [],
      'nothing logged as a replay, nothing at warning level',
    )
  })

  await t.test('users of a deleted and of an unknown account are refused in well under a second', async (t) => {
    const unknown = createAccount()
    const unknownUser = await newUser({ name: 'NEVER', kp: unknown, id: unknown.getPublicKey(), jwt: '' }, 'u')
    for (const [what, creds] of [
      ['deleted', prunedUser.creds],
      ['unknown', unknownUser.creds],
    ] as const) {
      for (const server of servers) {
        const ms = await refusedAfterMs(t, server, creds)
        t.ok(ms < 1000, `${what} account on ${server.name}: refused after ${Math.round(ms)} ms (the fetch timeout is 1.9 s)`)
      }
    }
  })

  // Last: the servers take the forged statistics too and count a server that does not exist.
  await t.test('forged statistics cannot turn a "not found" into a flood', async (t) => {
    const fake = `N${'A'.repeat(55)}`
    sys.publish(subjects.serverStatsz(fake), JSON.stringify({ server: { id: fake, name: 'forged' }, statsz: { active_servers: 1_000_000_000 } }))
    // heard once a lookup gets more empty replies than the two real other servers call for
    const nobody = createAccount().getPublicKey()
    await waitFor(async () => (await gather(sys, subjects.lookup(nobody), '', 3, 500)).length === 3, { ms: 5000, what: 'the forged server heard' })
    const replies = await gather(sys, subjects.lookup(createAccount().getPublicKey()), '', 100_000, 1500)
    t.equal(replies.length, 256, 'at most 256 empty replies')
    t.ok(replies.every((m) => m.data.length === 0), 'all empty')
  })
})

t.test('an operator that requires signing keys, its JWT signed by its signing key, runs the mesh', async (t) => {
  const { op, sysSk } = await strictOperator()
  const fx = await fixtureOf(t, op, await newUser(op.systemAccount, 'sys', undefined, sysSk))
  const creds = async (name: ServiceName) => ({ NATS_CREDS: await credsFile(fx, await newUser(op.systemAccount, name, SERVICE_PERMISSIONS[name], sysSk)) })
  const { servers, sys } = await startMesh(t, { fx, resolverEnv: await creds('resolver'), signerEnv: await creds('signer'), notifierEnv: await creds('notifier') })
  const server = servers[0]!
  t.pass('resolver, signer and notifier load the operator jwt and connect')
  // Users signed by the SYS identity key are what the servers refuse under strict signing-key usage.
  const identityUser = await newUser(op.systemAccount, 'identity')
  await t.rejects(connectWith(t, server, identityUser.creds), 'the server refuses a SYS user signed by its identity key')

  const kp = createAccount()
  const id = kp.getPublicKey()
  // Under strict usage the account's own users need an account signing key too.
  const accountSk = createAccount()
  const bySigningKey = accountJwt(op.signingKp, id, { signing_keys: [accountSk.getPublicKey()] }, { iat: now() - 10 })
  t.equal((await push(sys, subjects.claimsUpdate, bySigningKey, 1)).ours.data?.code, 200, 'an account signed by a signing key is stored')
  const user = await newUser({ name: 'A', kp, id, jwt: bySigningKey }, 'u', undefined, accountSk)
  const nc = await connectWith(t, server, user.creds)
  await nc.flush()
  t.pass('and its user connects')
  const byIdentity = accountJwt(op.kp, id, {}, { iat: now() })
  t.equal((await push(sys, subjects.claimsUpdate, byIdentity, 1)).ours.error?.reason, 'ISSUER_UNTRUSTED', 'one signed by the operator identity key is refused')
  t.equal((await ours(sys, subjects.claimsDelete, deleteRequest(op.kp, [id]), 1)).error?.reason, 'ISSUER_UNTRUSTED', 'so is a delete the identity key signs')
  t.same((await ours(sys, subjects.claimsDelete, deleteRequest(op.signingKp, [id]), 1)).data, { code: 200, message: 'deleted 1 accounts' }, 'a delete by the signing key is applied')
})

t.test('RESOLVER_ALLOW_DELETE=false refuses every delete in nats-server\'s words and deletes nothing', async (t) => {
  const mesh = await startMesh(t, { resolverEnv: { RESOLVER_ALLOW_DELETE: 'false' } })
  const { fx, sys } = mesh
  const server = mesh.servers[0]!
  const kp = createAccount()
  const id = kp.getPublicKey()
  const jwt = accountJwt(fx.op.signingKp, id, {}, { iat: now() - 10 })
  t.equal((await push(sys, subjects.claimsUpdate, jwt, 1)).ours.data?.code, 200)
  const user = await newUser({ name: 'A', kp, id, jwt }, 'u')
  const first = await connectWith(t, server, user.creds)
  await first.flush()
  const changes = await watchChanges(t, sys, id)
  for (const [what, token] of [
    ['a valid request', deleteRequest(fx.op.signingKp, [id])],
    ['an untrusted request', deleteRequest(createOperator(), [id])],
    ['garbage', 'not a jwt'],
  ] as const) {
    const r = await ours(sys, subjects.claimsDelete, token, 1)
    t.equal(r.error?.reason, 'DELETE_DISABLED', what)
    t.match(r.error?.description, /^delete accounts request by \S* failed - delete must be enabled in resolver config/, `${what}: nats-server's wording`)
  }
  const held = (await sys.request(subjects.resolverGet(id), '', { timeout: 2000 })).json<{ state: string; jwt?: string }>()
  t.same(held, { ...held, state: 'stored', jwt }, 'the account is still stored')
  // The cache server deleted it on its own (cache servers always do) and cut its user off. Re-sending the
  // same JWT cannot undo that there (nats-server skips an update with the same claims); a newer one does.
  await waitFor(() => first.isClosed(), { ms: 5000, what: 'the server to cut the user off' })
  await t.rejects(connectWith(t, server, user.creds), 'refused where the account was loaded, until a newer jwt')
  const newer = accountJwt(fx.op.signingKp, id, {}, { iat: now() })
  t.equal((await push(sys, subjects.claimsUpdate, newer, 1)).ours.data?.code, 200)
  await waitFor(
    async () => {
      try {
        const nc = await connectWith(t, server, user.creds)
        await nc.close()
        return true
      } catch {
        return false
      }
    },
    { ms: 10_000, what: 'the account to be usable again' },
  )
  t.pass('with a newer jwt its user connects again')
  t.ok(
    await changes.next((c) => c.kind === 'restore' && c.jwt === jwt, { ms: 2000 }).then(() => true, () => false),
    'the stored version was re-sent after the valid request',
  )
})

t.test('bootstrap with nsc\'s identities of an operator that requires signing keys', async (t) => {
  // What nsc leaves after `nsc edit operator --require-signing-keys`: the operator JWT signed by its signing
  // key, SYS with no signing key, every seed in the keystore; and creds an earlier bootstrap signed with the
  // SYS identity key, which these servers refuse.
  const { op } = await strictOperator(false)
  const identities = async (seeds: KeyPair[]) => {
    const dir = await tempDir(t, 'nsc-ids')
    await mkdir(join(dir, 'keys', 'A'), { recursive: true })
    await writeFile(join(dir, 'operator.jwt'), op.jwt + '\n')
    await writeFile(join(dir, 'sys.jwt'), op.systemAccount.jwt + '\n')
    for (const kp of seeds) await writeFile(join(dir, 'keys', 'A', `${kp.getPublicKey()}.nk`), seedText(kp), { mode: 0o600 })
    await writeFile(join(dir, 'resolver.creds'), (await newUser(op.systemAccount, 'resolver', SERVICE_PERMISSIONS.resolver)).creds, { mode: 0o600 })
    await writeFile(join(dir, 'sys.creds'), (await newUser(op.systemAccount, 'sys')).creds, { mode: 0o600 })
    return dir
  }

  await t.test('without a key that may sign SYS users it says what is missing and writes nothing', async (t) => {
    const dir = await identities([op.systemAccount.kp])
    const before = await readFile(join(dir, 'resolver.creds'), 'utf8')
    const r = await runBootstrap(dir)
    t.equal(r.code, 1, 'exit 1')
    t.match(r.out, /requires signing keys/)
    t.match(r.out, /an operator signing key seed \(it lists O/, 'names the missing seed')
    t.match(r.out, /resolver\.creds \(servers would refuse it: signed by the SYS identity key/, 'and why the creds there are unusable')
    t.equal(await readFile(join(dir, 'resolver.creds'), 'utf8'), before, 'nothing replaced')
    await t.rejects(readFile(join(dir, 'signer.creds')), 'nothing written')
  })

  await t.test('with the SYS identity seed and an operator signing key it adds a SYS signing key; the services serve', async (t) => {
    const dir = await identities([op.systemAccount.kp, op.signingKp])
    const [port, httpPort] = [await freePort(), await freePort()]
    const conf = join(dir, 'conf', 'nats-server.conf')
    const jwtDir = join(dir, 'jwt')
    const r = await runBootstrap(dir, {
      BOOTSTRAP_SERVER_CONF: conf,
      BOOTSTRAP_NATS_HOST: '127.0.0.1',
      BOOTSTRAP_NATS_PORT: String(port),
      BOOTSTRAP_NATS_HTTP_PORT: String(httpPort),
      BOOTSTRAP_JWT_DIR: jwtDir,
    })
    t.equal(r.code, 0, r.code === 0 ? 'exit 0' : r.out)
    t.match(r.out, /added signing key A\w+ to the system account/)
    const sysJwt = (await readFile(join(dir, 'sys.jwt'), 'utf8')).trim()
    const sys = sysAccountFrom(sysJwt)
    t.equal(sys.signingKeys.length, 1, 'sys.jwt lists the new signing key')
    const trust = trustAnchorFrom(op.jwt)
    for (const name of ['resolver', 'signer', 'notifier', 'sys']) {
      const creds = await readFile(join(dir, `${name}.creds`), 'utf8')
      t.equal(sysUserRefusal(/eyJ\S+/.exec(creds)![0], sys, trust), undefined, `${name}.creds is signed by it`)
    }
    t.match(await readFile(conf, 'utf8'), sysJwt, 'the rendered conf preloads the re-signed SYS')

    await mkdir(jwtDir, { recursive: true })
    const proc = spawn(natsServerBinary(), ['-c', conf], { stdio: 'ignore' })
    t.teardown(() => stopProcess(proc))
    const server: NatsServerHandle = { name: 'nats', url: `nats://127.0.0.1:${port}`, port, proc, stop: async () => void (await stopProcess(proc)), jwtDir }
    const sysCreds = await readFile(join(dir, 'sys.creds'), 'utf8')
    const sysNc = await waitFor(() => connectWith(t, server, sysCreds), { ms: 10_000, what: 'nats-server on the rendered conf' })
    for (const name of ['resolver', 'signer', 'notifier'] as const) {
      const env: Record<string, string> = {
        NATS_URL: server.url,
        NATS_CREDS: join(dir, `${name}.creds`),
        OPERATOR_JWT: join(dir, 'operator.jwt'),
        ...(name === 'resolver' ? { SYSTEM_ACCOUNT_JWT: join(dir, 'sys.jwt'), RESOLVER_DATA_DIR: await tempDir(t, 'resolver') } : {}),
      }
      await serviceReady(spawnService(t, name, env))
    }
    t.pass('the three services connect with the creds the bootstrap wrote')
    const kp = createAccount()
    const id = kp.getPublicKey()
    const accountSk = createAccount()
    const jwt = accountJwt(op.signingKp, id, { signing_keys: [accountSk.getPublicKey()] }, { iat: now() - 10 })
    t.equal((await push(sysNc, subjects.claimsUpdate, jwt, 1)).ours.data?.code, 200, 'and take a push')
    const user = await newUser({ name: 'A', kp, id, jwt }, 'u', undefined, accountSk)
    const nc = await connectWith(t, server, user.creds)
    await nc.flush()
    t.pass('whose user the server admits from our lookup')
    t.equal((await runBootstrap(dir)).code, 0, 'a second run finds everything usable')
  })
})

