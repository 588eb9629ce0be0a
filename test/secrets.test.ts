import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createAccount, createUser } from '@nats-io/nkeys'
import { encodeAccount } from '@nats-io/jwt'
import type { Msg } from '@nats-io/nats-core'
import { subjects } from '../shared/index.ts'
import { makeFixture } from './kit/fixtures.ts'
import { accountJwt, signClaims } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { allEndpoints } from './kit/service-endpoints.ts'
import { freePort, startCluster } from './kit/nats-server.ts'
import { baseEnv, serviceCredsPath, spawnService, type ServiceProcess } from './kit/services.ts'
import { gather } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const ANY_SEED = /S[OAUNC][A-Z2-7]{56}/g
const seedOf = (kp: { getSeed(): Uint8Array }) => new TextDecoder().decode(kp.getSeed())
const seedInCreds = (creds: string) => creds.match(/-----BEGIN USER NKEY SEED-----\s+(\S+)/)?.[1] ?? ''

t.test('no seed or creds in any log line or reply, managed mode included', async (t) => {
  const fx = await makeFixture(t)
  const seedFile = join(fx.dir, 'signing.nk')
  await writeFile(seedFile, seedOf(fx.op.signingKp) + '\n', { mode: 0o600 })
  // trace: the most a service ever logs
  const env = { LOG_LEVEL: 'trace' }
  const mesh = await startMesh(t, { fx, cluster: true, env, signerEnv: { SIGNER_SEED_FILE: seedFile } })
  const { servers, sys } = mesh
  const services: ServiceProcess[] = [...mesh.resolvers, ...mesh.signers, ...mesh.notifiers]

  const replies: Msg[] = []
  const ask = async (subject: string, body: string | Uint8Array = '', count = 2) => {
    const got = await gather(sys, subject, body, count, 1500)
    replies.push(...got)
    return got
  }
  const now = Math.floor(Date.now() / 1000)

  // Operator-signed pushes on both subjects, a managed (self-signed) account, refusals, lookups, health, $SRV.
  const plain = createAccount().getPublicKey()
  await ask(subjects.claimsUpdate, accountJwt(fx.op.signingKp, plain, {}, { iat: now - 5 }))
  await ask(subjects.accountUpdate(plain), accountJwt(fx.op.signingKp, plain, {}, { iat: now - 4 }))
  const managedKp = createAccount()
  const managed = managedKp.getPublicKey()
  const created = await ask(subjects.claimsUpdate, await encodeAccount('MANAGED', managedKp, { limits: { conn: 5 } }))
  t.ok(created.some((m) => m.string().includes('signed by the operator')), 'a managed account was re-signed')
  await ask(subjects.claimsUpdate, await encodeAccount('GREEDY', createAccount(), { limits: { conn: 1_000_000 } }))
  await ask(subjects.claimsUpdate, 'garbage')
  await ask(subjects.claimsUpdate, accountJwt(createAccount(), plain))
  await ask(subjects.claimsUpdate, seedOf(fx.op.signingKp))
  for (const id of [plain, managed, fx.op.systemAccount.id, 'notakey']) await ask(subjects.lookup(id), '', 1)
  await ask(subjects.signerValidate, 'garbage', 1)
  await ask(subjects.signerValidate, await encodeAccount('M2', createAccount(), { limits: { conn: 5 } }), 1)
  const endpoints = await allEndpoints(sys, 3)
  if (endpoints.some((e) => e.subject === subjects.claimsDelete)) {
    const del = signClaims({ sub: fx.op.kp.getPublicKey(), nats: { accounts: [plain], version: 2 } }, fx.op.kp)
    await ask(subjects.claimsDelete, del)
  }
  for (const e of endpoints.filter((e) => !e.subject.includes('*') && e.subject.startsWith('mesh.') && /health|list/.test(e.name))) {
    await ask(e.subject, '', 1)
  }
  if (endpoints.some((e) => e.subject === subjects.claimsList)) await ask(subjects.claimsList)
  for (const verb of ['PING', 'INFO', 'STATS']) await ask(`$SRV.${verb}`, '', 3)
  t.ok(replies.length > 20, `${replies.length} replies gathered`)

  // A signer given an account seed instead of an operator seed stops with a config error, not an echo of it.
  const wrongSeedFile = join(fx.dir, 'wrong.nk')
  const accountSeed = seedOf(createAccount())
  await writeFile(wrongSeedFile, accountSeed + '\n' + seedOf(createUser()) + '\n', { mode: 0o600 })
  const wrong = spawnService(t, 'signer', { ...baseEnv(fx, servers), ...env, SIGNER_SEED_FILE: wrongSeedFile })
  t.equal(await wrong.exited, 2, 'a seed file without an operator seed stops the signer (exit 2)')

  // A NATS_URL with a password, on a server that is not there: the retry log line must not show it.
  const port = await freePort()
  const withPassword = spawnService(t, 'notifier', { ...baseEnv(fx, servers), ...env, NATS_URL: `nats://mesh:hunter2-not-logged@127.0.0.1:${port}` })
  await waitFor(() => withPassword.logs.some((l) => l.msg === 'nats unreachable, retrying'), { ms: 10_000, what: 'a retry log line' })
  await withPassword.kill()

  const secrets = new Map<string, string>([
    ['operator signing seed', seedOf(fx.op.signingKp)],
    ['operator seed', seedOf(fx.op.kp)],
    ['system account seed', seedOf(fx.op.systemAccount.kp)],
    ['system user seed', seedOf(fx.sysUser.kp)],
    ['account seed in a bad seed file', accountSeed],
    ['URL password', 'hunter2-not-logged'],
    ['creds seed header', 'BEGIN USER NKEY SEED'],
  ])
  for (const name of ['resolver', 'signer', 'notifier'] as const) {
    const creds = await readFile(await serviceCredsPath(fx, name), 'utf8')
    secrets.set(`${name} user seed`, seedInCreds(creds))
    secrets.set(`${name} creds file`, creds.trim())
  }
  const outputs = [...services, wrong, withPassword].map((s) => ({ what: `${s.name} output`, text: s.output() }))
  const replyTexts = replies.map((m, i) => ({
    what: `reply ${i} (${m.subject})`,
    text: m.string() + JSON.stringify(m.headers ? [...m.headers] : []),
  }))
  t.ok(outputs.every((o) => o.text.length > 0), 'every process printed something')
  t.ok(
    services[1]!.logs.some((l) => l.msg === 'managed account signed'),
    'the signer logged its signing, so the search covers that path',
  )
  for (const { what, text } of [...outputs, ...replyTexts]) {
    for (const [name, secret] of secrets) {
      if (secret !== '' && text.includes(secret)) t.fail(`${what} contains the ${name}`)
    }
    const seeds = text.match(ANY_SEED)
    // The only seed that may show up is the one a client sent us as a body (echoed nowhere, but it is theirs).
    if (seeds !== null) t.fail(`${what} contains something shaped like a seed: ${seeds[0]!.slice(0, 4)}…`)
  }
  t.pass(`searched ${outputs.length} outputs and ${replyTexts.length} replies for ${secrets.size} secrets and any seed`)
})

t.test('a seed file others can read is refused at start with one line and a non-zero exit', async (t) => {
  const fx = await makeFixture(t)
  const servers = await startCluster(t, fx, 1)
  const seed = seedOf(fx.op.signingKp)
  for (const mode of [0o644, 0o640, 0o604]) {
    const file = join(fx.dir, `open-${mode.toString(8)}.nk`)
    await writeFile(file, seed + '\n', { mode })
    const signer = spawnService(t, 'signer', { ...baseEnv(fx, servers), SIGNER_SEED_FILE: file })
    const code = await signer.exited
    t.equal(code, 2, `mode ${mode.toString(8)}: exit code 2`)
    const lines = signer.output().split('\n').filter((l) => l.trim() !== '')
    t.equal(lines.length, 1, 'exactly one line of output')
    t.match(lines[0], /SIGNER_SEED_FILE/, 'it names the variable')
    t.match(lines[0], /chmod 600/, 'and says how to fix it')
    t.notOk(signer.output().includes(seed), 'without the seed')
  }
})
