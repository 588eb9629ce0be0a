import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createAccount, createOperator, type KeyPair } from '@nats-io/nkeys'
import { subjects } from '../shared/index.ts'
import { newUser, type AccountIdentity } from '../ops/identities.ts'
import { progressBar } from '../cli/progress.ts'
import { renderTable } from '../cli/table.ts'
import { runMesh as run } from './kit/cli.ts'
import { connectWith } from './kit/clients.ts'
import { tempDir } from './kit/fixtures.ts'
import { accountJwt } from './kit/jwts.ts'
import { startMesh } from './kit/mesh.ts'
import { freePort } from './kit/nats-server.ts'
import { appliedJwts } from './kit/sys-requests.ts'
import { waitFor } from './kit/wait-for.ts'

const now = () => Math.floor(Date.now() / 1000)
const seedOf = (kp: KeyPair) => new TextDecoder().decode(kp.getSeed())

t.test('table renderer and progress bar', async (t) => {
  t.equal(renderTable(['name', 'n'], [['a', 1], ['bbb', 22], ['c', undefined]]), 'name   n\n----  --\na      1\nbbb   22\nc      -\n')
  const written: string[] = []
  const bar = progressBar({ out: () => {}, err: (s) => void written.push(s), errIsTTY: true }, 3, 'pushed')
  for (let i = 0; i < 3; i++) bar.tick()
  bar.done()
  t.match(written[0], /^\r\[-+\] 0\/3 pushed$/)
  t.ok(written.some((s) => s.includes('3/3')), 'drawn at the end')
  t.equal(written.at(-1), '\r\x1b[K', 'erased when done')
  const quiet: string[] = []
  progressBar({ out: () => {}, err: (s) => void quiet.push(s), errIsTTY: false }, 3, 'x').tick()
  t.same(quiet, [], 'nothing when stderr is not a terminal')
})

t.test('bootstrap writes identities and prints where, without NATS and without secrets', async (t) => {
  const dir = join(await tempDir(t, 'cli-boot'), 'data')
  const first = await run(['bootstrap', '--dir', dir])
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /^created .*data \(system account A[A-Z2-7]{55}\)/)
  for (const f of ['operator.jwt', 'sys.creds', 'keys/operator-signing.nk', 'resolver.creds']) {
    t.ok(existsSync(join(dir, f)), `${f} written`)
    t.ok(first.stdout.includes(join(dir, f)), `${f} listed`)
  }
  const seed = (await readFile(join(dir, 'keys', 'operator-signing.nk'), 'utf8')).trim()
  const creds = await readFile(join(dir, 'sys.creds'), 'utf8')
  t.notOk(first.stdout.includes(seed), 'no seed printed')
  t.notOk(first.stdout.includes(creds.split('\n')[1]!), 'no creds printed')
  const again = await run(['bootstrap', '--dir', dir, '--json'])
  const j = JSON.parse(again.stdout) as { created: boolean; paths: { sysCreds: string } }
  t.equal(j.created, false, 'a second run reuses the directory')
  t.equal(j.paths.sysCreds, join(dir, 'sys.creds'))
})

t.test('every command against a live mesh', async (t) => {
  const live = await startMesh(t, { servers: 2 })
  const { fx, servers, sys } = live
  const resolver = live.resolvers[0]!
  const signing = fx.op.signingKp
  const secrets = [seedOf(signing), seedOf(fx.op.kp), seedOf(fx.sysUser.kp), fx.sysUser.creds.split('\n')[1]!]
  const conn = ['--server', servers[0]!.url, '--creds', fx.sysCredsPath]
  const mesh = async (...args: string[]) => {
    const r = await run([...conn, ...args])
    for (const s of secrets) if (r.stdout.includes(s) || r.stderr.includes(s)) throw new Error(`a secret was printed by ${args.join(' ')}`)
    return r
  }
  const meshJson = async <T>(...args: string[]) => {
    const r = await mesh(...args, '--json')
    if (r.code !== 0) throw new Error(`mesh ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
    return JSON.parse(r.stdout) as T
  }
  const account = (name: string): AccountIdentity => {
    const kp = createAccount()
    const id = kp.getPublicKey()
    return { name, kp, id, jwt: accountJwt(signing, id, {}, { name, iat: now() - 60 }) }
  }
  const alpha = account('alpha')
  const beta = account('beta')
  const work = await tempDir(t, 'cli-work')

  await t.test('push: a JWT argument, an armored file, an nsc store directory', async (t) => {
    const one = await mesh('push', alpha.jwt)
    t.equal(one.code, 0, one.stderr)
    t.match(one.stdout, new RegExp(`${alpha.id}\\s+alpha\\s+ok\\s+jwt updated`))
    t.match(one.stdout, /1 pushed, 0 failed/)

    const armored = join(work, 'beta.jwt')
    await writeFile(armored, `-----BEGIN NATS ACCOUNT JWT-----\n${beta.jwt}\n------END NATS ACCOUNT JWT------\n`)
    const fromFile = await meshJson<{ account: string; outcome: string; code: number }[]>('push', armored)
    t.match(fromFile, [{ account: beta.id, outcome: 'ok', code: 200 }])

    // nsc's layout: the operator JWT, account JWTs, and user JWTs that must be left out.
    const store = join(work, 'store', 'TEST')
    await mkdir(store, { recursive: true })
    await writeFile(join(store, 'TEST.jwt'), fx.op.jwt)
    const many = Array.from({ length: 60 }, (_, i) => account(`bulk${String(i).padStart(2, '0')}`))
    for (const a of many) {
      await mkdir(join(store, 'accounts', a.name, 'users'), { recursive: true })
      await writeFile(join(store, 'accounts', a.name, `${a.name}.jwt`), a.jwt)
      await writeFile(join(store, 'accounts', a.name, 'users', 'u.jwt'), (await newUser(a, 'u')).jwt)
    }
    const bulk = await meshJson<{ account: string; outcome: string }[]>('push', join(work, 'store'))
    t.equal(bulk.length, 60, 'only the account JWTs, 60 of them')
    t.ok(bulk.every((r) => r.outcome === 'ok'), 'all stored')
    t.same(new Set(bulk.map((r) => r.account)), new Set(many.map((a) => a.id)))
    const table = await mesh('push', join(work, 'store', 'TEST', 'accounts', 'bulk00'))
    t.match(table, { code: 0, stdout: new RegExp(`^account .*\\n-+ .*\\n${many[0]!.id}\\s+bulk00\\s+ok\\s+jwt already current\\n1 pushed, 0 failed\\n$`) })
    const again = await mesh('push', join(work, 'store'))
    t.equal(again.code, 0)
    t.equal(again.stdout, '60 pushed, 0 failed (60 successes not shown; --json lists all)\n', 'a long run lists only failures')
  })

  await t.test('push failures exit 1 with the reason', async (t) => {
    const foreign = accountJwt(createOperator(), createAccount().getPublicKey(), {}, { name: 'foreign' })
    const bad = await mesh('push', foreign)
    t.equal(bad.code, 1)
    t.match(bad.stdout, /foreign\s+failed\s+jwt update resulted in error - issuer .* is not trusted/)
    t.match(bad.stdout, /0 pushed, 1 failed/)
    const badJson = await mesh('push', foreign, '--json')
    t.equal(badJson.code, 1)
    t.match(JSON.parse(badJson.stdout), [{ outcome: 'failed', code: 403, reason: 'ISSUER_UNTRUSTED' }])

    const older = await mesh('push', accountJwt(signing, alpha.id, {}, { name: 'alpha', iat: now() - 3600 }), '--json')
    t.equal(older.code, 1, 'an older version is refused')
    t.match(JSON.parse(older.stdout), [{ outcome: 'failed', code: 409, reason: 'JWT_OUTDATED' }])

    const mixed = join(work, 'mixed')
    await mkdir(mixed)
    await writeFile(join(mixed, 'good.jwt'), account('good').jwt)
    await writeFile(join(mixed, 'foreign.jwt'), foreign)
    const m = await mesh('push', mixed)
    t.equal(m.code, 1, 'one failure among several fails the run')
    t.match(m.stdout, /good\s+ok/)
    t.match(m.stdout, /1 pushed, 1 failed/)

    const huge = join(work, 'huge.jwt')
    await writeFile(huge, `e30.${'A'.repeat(1_100_000)}.sig`)
    const tooBig = await mesh('push', huge, '--json')
    t.equal(tooBig.code, 1, 'a JWT over max_payload fails without an unexpected error')
    t.match(JSON.parse(tooBig.stdout), [{ outcome: 'failed', message: /^cannot send on \$SYS\.REQ\.CLAIMS\.UPDATE: / }])

    const garbage = await mesh('push', 'notajwt')
    t.equal(garbage.code, 1)
    t.equal(garbage.stderr, 'mesh: notajwt is neither a JWT nor a file or directory\n')
    t.equal(garbage.stdout, '')
    const empty = await mesh('push', await tempDir(t, 'cli-empty'))
    t.equal(empty.code, 1)
    t.match(empty.stderr, /^mesh: no account JWTs found under /)
  })

  await t.test('get prints the JWT, --decode its claims; an unknown account exits 1', async (t) => {
    const plain = await mesh('get', alpha.id)
    t.equal(plain.code, 0)
    t.equal(plain.stdout, `${alpha.jwt}\n`)
    const decoded = await mesh('get', alpha.id, '--decode')
    t.match(JSON.parse(decoded.stdout), { sub: alpha.id, name: 'alpha', nats: { type: 'account' } })
    t.match(await meshJson('get', alpha.id), { account: alpha.id, jwt: alpha.jwt, claims: { name: 'alpha' } })

    const unknown = createAccount().getPublicKey()
    const missing = await mesh('get', unknown)
    t.equal(missing.code, 1)
    t.equal(missing.stderr, `mesh: account ${unknown} not found\n`)
    const notKey = await mesh('get', 'ALPHA')
    t.equal(notKey.code, 1)
    t.match(notKey.stderr, /^mesh: ALPHA is not an account public key/)
  })

  await t.test('list shows every stored account with name and iat', async (t) => {
    const table = await mesh('list')
    t.equal(table.code, 0, table.stderr)
    t.match(table.stdout, /^account\s+name\s+iat\s+exp\n/)
    t.match(table.stdout, new RegExp(`${alpha.id}\\s+alpha\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+never`))
    t.match(table.stdout, new RegExp(`${fx.op.systemAccount.id}\\s+SYS`))
    const list = await meshJson<{ account: string; name: string; iat: number }[]>('list')
    t.equal(list.length, 1 + 2 + 60 + 1, 'SYS, alpha, beta, the bulk and "good"')
    t.match(list.find((a) => a.account === beta.id), { name: 'beta', iat: Number })
  })

  await t.test('history pages through every version; an unknown account exits 1', async (t) => {
    const second = accountJwt(signing, alpha.id, {}, { name: 'alpha', iat: now() - 30 })
    t.equal((await mesh('push', second)).code, 0)
    const table = await mesh('history', alpha.id)
    t.equal(table.code, 0)
    t.match(table.stdout, /^seq\s+kind\s+iat\s+at\s+via\n/)
    t.match(table.stdout, /\d+\s+created\s+.*\$SYS\.REQ\.CLAIMS\.UPDATE\n\s*\d+\s+updated\s/)
    const h = await meshJson<{ account: string; versions: { kind: string; jwt: string }[] }>('history', alpha.id)
    t.same(h.versions.map((v) => v.kind), ['created', 'updated'])
    t.same(h.versions.map((v) => v.jwt), [alpha.jwt, second])
    alpha.jwt = second

    const unknown = createAccount().getPublicKey()
    const none = await mesh('history', unknown)
    t.equal(none.code, 1)
    t.equal(none.stderr, `mesh: no history for account ${unknown}\n`)
  })

  await t.test('status: services, health, servers and which version each server holds', async (t) => {
    // Users connecting to n1 make it load alpha and gamma; n2 loads neither. Then a gamma older than ours
    // arrives on the legacy subject, which only the servers hear: n1 holds another version than the resolver.
    const gamma = account('gamma')
    t.equal((await mesh('push', gamma.jwt)).code, 0)
    for (const a of [alpha, gamma]) await connectWith(t, servers[0]!, (await newUser(a, 'u')).creds)
    const stale = accountJwt(signing, gamma.id, {}, { name: 'gamma', iat: now() - 3600 })
    sys.publish(subjects.legacyAccountUpdate(gamma.id), stale)
    await waitFor(async () => (await appliedJwts(sys, gamma.id, 2)).get('n1') === stale, { what: 'n1 to apply the stale version' })

    const table = await mesh('status', '--account', gamma.id)
    t.equal(table.code, 1, 'exits 1 while a server holds a version the store does not')
    t.match(table.stdout, /\ndrift \(what servers hold that the store does not\)\nserver.*\n.*\nn1\s+\d+\s+\d+\s+1\s+0\s+0\s+0\s+A[A-Z2-7]{55}\nn2\s+\d+\s+\d+\s+0\s/)
    for (const name of ['resolver', 'signer', 'notifier']) {
      t.match(table.stdout, new RegExp(`\\n${name}\\s+\\S+\\s+\\d+\\.\\d+\\.\\d+\\s+\\S+\\s+ok\\n`), `${name} listed, healthy`)
    }
    t.match(table.stdout, /\nresolver\s+lookup\s+\$SYS\.REQ\.ACCOUNT\.\*\.CLAIMS\.LOOKUP\s+\d+\s+0\s+\d+\.\d\d ms/)
    t.match(table.stdout, /\nn1\s+N[A-Z2-7]{55}\s+2\.\d+\.\d+\s+mesh-test/)
    const staleIat = (JSON.parse(Buffer.from(stale.split('.')[1]!, 'base64url').toString()) as { iat: number }).iat
    t.match(table.stdout, new RegExp(`\\naccounts\\naccount\\s+name\\s+stored iat\\s+n1\\s+n2\\n.*\\n${gamma.id}\\s+gamma\\s+\\S+ \\S+\\s+other \\(iat ${staleIat}\\)\\s+not loaded\\n\\n`))
    t.match((await mesh('status', '--account', alpha.id)).stdout, new RegExp(`\\n${alpha.id}\\s+alpha\\s+\\S+ \\S+\\s+current\\s+not loaded\\n\\n`))

    type Status = {
      services: { name: string; endpoints: { name: string; requests: number }[] }[]
      health: { service: string; ok: boolean }[]
      servers: { name: string; version: string }[]
      accounts: { total: number; shown: { account: string; servers: { server: string; state: string; iat?: number }[] }[] }
      problems: string[]
    }
    // Exits 1 while n1 drifts: read the JSON without meshJson's exit check.
    const statusJson = async (...args: string[]) => JSON.parse((await mesh('status', '--json', ...args)).stdout) as Status
    const s = await statusJson()
    t.same(s.services.map((x) => x.name), ['notifier', 'resolver', 'signer'])
    t.ok(s.services.find((x) => x.name === 'resolver')!.endpoints.some((e) => e.name === 'claims-update' && e.requests > 40), 'stats count our pushes')
    t.same(s.health.map((h) => [h.service, h.ok]), [['resolver', true], ['signer', true], ['notifier', true]])
    t.same(s.servers.map((x) => x.name), ['n1', 'n2'])
    t.ok(s.servers.every((x) => /^2\./.test(x.version)))
    t.equal(s.accounts.total, 65)
    t.equal(s.accounts.shown.length, 20, 'bounded to 20 accounts by default')
    t.match(s.problems, [/^n1 holds 1 account version\(s\) the store does not/])
    t.equal(s.problems.length, 1)
    t.match(await mesh('status'), { stdout: /accounts \(20 of 65; --all shows every one\)/ })
    const all = await statusJson('--all')
    t.equal(all.accounts.shown.length, 65)
    const sysRow = all.accounts.shown.find((a) => a.account === fx.op.systemAccount.id)!
    t.same(sysRow.servers, [{ server: 'n1', state: 'current', iat: sysRow.servers[0]!.iat }, { server: 'n2', state: 'current', iat: sysRow.servers[1]!.iat }])

    const repaired = await mesh('repair')
    t.equal(repaired.code, 0, repaired.stderr)
    t.match(repaired.stdout, /accounts checked, 1 differed: 0 adopted, 1 reverted/)
    await waitFor(async () => (await mesh('status')).code === 0, { ms: 15_000, what: 'status to exit 0 once n1 is back on the stored version' })
    t.equal((await appliedJwts(sys, gamma.id, 2)).get('n1'), gamma.jwt, 'n1 holds the stored version again')
  })

  await t.test('delete signs an nsc-style request with the operator key', async (t) => {
    const keyFile = join(work, 'operator-signing.nk')
    await writeFile(keyFile, `${seedOf(signing)}\n`, { mode: 0o600 })
    const noYes = await mesh('delete', beta.id, '--operator-key', keyFile)
    t.equal(noYes.code, 1)
    t.equal(noYes.stderr, 'mesh: refusing to delete 1 account(s) without --yes\n')
    t.equal((await mesh('get', beta.id)).code, 0, 'nothing deleted')

    const foreignKey = join(work, 'foreign.nk')
    await writeFile(foreignKey, `${seedOf(createOperator())}\n`)
    const untrusted = await mesh('delete', beta.id, '--operator-key', foreignKey, '--yes')
    t.equal(untrusted.code, 1)
    t.match(untrusted.stderr, /^mesh: delete accounts request by O[A-Z2-7]{55} failed - .*not trusted.* \(ISSUER_UNTRUSTED\)\n$/)
    const notSeed = await mesh('delete', beta.id, '--operator-key', fx.sysCredsPath, '--yes')
    t.equal(notSeed.code, 1)
    t.equal(notSeed.stderr, `mesh: ${fx.sysCredsPath} holds no operator seed (SO...)\n`)

    const ok = await mesh('delete', beta.id, '--operator-key', keyFile, '--yes')
    t.equal(ok.code, 0, ok.stderr)
    t.equal(ok.stdout, 'deleted 1 accounts\n')
    t.match((await mesh('get', beta.id)).stderr, /was deleted at/)
    const h = await meshJson<{ versions: { kind: string; via: string }[] }>('history', beta.id)
    t.same(h.versions.map((v) => v.kind), ['created', 'deleted'])
    t.equal(h.versions[1]!.via, subjects.resolverDelete)
    t.same(await meshJson('delete', alpha.id, '--operator-key', keyFile, '--yes'), { accounts: [alpha.id], ok: true, message: 'deleted 1 accounts' })
  })

  await t.test('connection and service failures are one line and exit 1', async (t) => {
    const port = await freePort()
    const down = await run(['list', '--server', `nats://127.0.0.1:${port}`, '--creds', fx.sysCredsPath])
    t.equal(down.code, 1)
    t.equal(down.stderr, `mesh: cannot connect to nats://127.0.0.1:${port}: connection refused\n`)
    const noCreds = await run(['list', '--server', servers[0]!.url, '--creds', join(work, 'missing.creds')])
    t.equal(noCreds.code, 1)
    t.equal(noCreds.stderr, `mesh: cannot read creds file ${join(work, 'missing.creds')} (no such file)\n`)
    const anonymous = await run(['list'], { cwd: work, env: { NATS_URL: servers[0]!.url } })
    t.equal(anonymous.code, 1, 'no creds at all: the server refuses')
    t.match(anonymous.stderr, /^mesh: nats:\/\/127\.0\.0\.1:\d+ refused the credentials \(none given; use --creds or NATS_CREDS\)\n$/)
    const fromEnv = await run(['get', fx.op.systemAccount.id], {
      cwd: work,
      env: { NATS_URL: servers[1]!.url, NATS_CREDS: fx.sysCredsPath },
    })
    t.equal(fromEnv.stdout.trim(), fx.op.systemAccount.jwt, 'NATS_URL and NATS_CREDS are the defaults')
    const npmScript = await run(['--help'], { argv0: ['--import', 'tsx', 'cli/main.ts'] })
    t.match(npmScript, { code: 0, stdout: /^usage: mesh <command>/ }, 'node --import tsx cli/main.ts works too')

    await resolver.stop()
    const noResolver = await mesh('push', account('late').jwt, '--timeout', '500ms')
    t.equal(noResolver.code, 1)
    t.match(noResolver.stdout, /late\s+failed\s+no reply from the resolver on \$SYS\.REQ\.CLAIMS\.UPDATE within 500 ms/)
    const get = await mesh('get', fx.op.systemAccount.id, '--timeout', '500ms')
    t.equal(get.code, 1)
    t.match(get.stderr, /^mesh: (nothing answers|no reply on) mesh\.resolver\.get\.A[A-Z2-7]{55}/)
    const status = await mesh('status', '--timeout', '500ms', '--json')
    t.equal(status.code, 1, 'status exits 1 while a service is missing')
    t.match(JSON.parse(status.stdout), { problems: [/^resolver: /], accounts: { error: /no reply from the resolver/ } })
  })
})
