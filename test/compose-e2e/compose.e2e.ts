import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createAccount, fromSeed } from '@nats-io/nkeys'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator, type NatsConnection } from '@nats-io/nats-core'
import { newUser } from '../../ops/identities.ts'
import { subjects } from '../../shared/index.ts'
import { accountJwt } from '../kit/jwts.ts'
import { freePort } from '../kit/nats-server.ts'
import { waitFor } from '../kit/wait-for.ts'

// `npm run test:compose`: docker-compose.yml on a real engine, from a clean clone of the committed tree (so
// nothing untracked leaks into the build). Needs DOCKER_HOST pointing at an engine with Compose v2, e.g.
//   sudo ../shared/tools/docker-host.sh up && eval "$(../shared/tools/docker-host.sh env)"
// A unique project name and a free NATS_PORT keep it clear of any other stack on the machine.
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const project = `mesh-e2e-${process.pid}`
const CLI = join(ROOT, 'cli', 'mesh.mjs')

interface Run {
  code: number
  out: string
  ms: number
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  const start = performance.now()
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
        resolve({ code, out: `${stdout}${stderr}`, ms: performance.now() - start })
      },
    )
  })
}

const decode = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { iss: string; sub: string }

t.test('docker compose from a clean clone: up, push, connect, re-sign, delete, restart, ha, down', async (t) => {
  const suite = t
  const engine = await run('docker', ['compose', 'version'])
  if (engine.code !== 0) {
    t.fail(`needs docker with Compose v2 (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset'}): ${engine.out.trim()}`)
    return
  }
  const work = await mkdtemp(join(tmpdir(), 'mesh-e2e-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))
  const repo = join(work, 'repo')
  const clone = await run('git', ['clone', '-q', ROOT, repo])
  t.equal(clone.code, 0, `git clone of the committed tree: ${clone.out.trim()}`)
  const port = await freePort()
  const url = `nats://127.0.0.1:${port}`
  const env = { NATS_PORT: String(port), COMPOSE_PROJECT_NAME: project }
  const compose = (args: string[], extra: Record<string, string> = {}) => run('docker', ['compose', ...args], { cwd: repo, env: { ...env, ...extra } })
  // Whatever happens, leave nothing behind: containers of every profile, volumes, network.
  t.teardown(async () => void (await compose(['--profile', 'ha', 'down', '-v', '--remove-orphans', '-t', '5'])))
  const containerIds = async () => (await compose(['ps', '-a', '-q'])).out.split('\n').filter(Boolean).sort()
  const health = async (profileArgs: string[] = []) =>
    (await compose([...profileArgs, 'ps', '-a', '--format', '{{.Service}} {{.State}} {{.Health}} {{.ExitCode}}'])).out.trim().split('\n').sort()

  await t.test('an identities directory the container user may not write: one line naming the uid', async (t) => {
    const rootOwned = join(work, 'root-owned')
    await mkdir(rootOwned, { mode: 0o700 })
    const r = await compose(['run', '--rm', '--no-deps', '--build', 'bootstrap'], { MESH_IDENTITIES: rootOwned })
    t.not(r.code, 0, 'the bootstrap fails')
    const line = r.out.split('\n').find((l) => l.startsWith('bootstrap failed'))
    t.match(line, /permission denied .*\/mesh.*writable by uid 1000/, `names the ownership it needs: ${line}`)
  })

  let sys: NatsConnection | undefined
  const files: Record<string, string> = {}
  await t.test('up --build --wait: every service healthy; a second up recreates nothing', async (t) => {
    const up = await compose(['up', '-d', '--build', '--wait', '--wait-timeout', '300'])
    t.equal(up.code, 0, `up took ${Math.round(up.ms / 1000)} s${up.code === 0 ? '' : `: ${up.out.slice(-2000)}`}`)
    t.notMatch(up.out, /EBADENGINE/, 'npm ci in the image build warns of no engine mismatch')
    t.same(await health(), [
      'bootstrap exited  0',
      'nats running healthy 0',
      'notifier running healthy 0',
      'resolver running healthy 0',
      'signer running healthy 0',
    ])
    const before = await containerIds()
    const again = await compose(['up', '-d', '--wait', '--wait-timeout', '120'])
    t.equal(again.code, 0)
    t.notMatch(again.out, /Recreate/, 'nothing is recreated')
    t.same(await containerIds(), before, 'the same containers')
    for (const [name, path] of [['sys.creds', '/mesh/sys.creds'], ['demo.creds', '/mesh/demo.creds'], ['operator.jwt', '/mesh/operator.jwt'], ['signing.nk', '/mesh/keys/operator-signing.nk']]) {
      files[name!] = join(work, name!)
      t.equal((await compose(['cp', `resolver:${path}`, files[name!]!])).code, 0, `copied ${path} out of the volume`)
    }
    const nc = await connect({ servers: url, authenticator: credsAuthenticator(await readFile(files['sys.creds']!)), reconnect: true, maxReconnectAttempts: -1 })
    suite.teardown(() => (nc.isClosed() ? undefined : nc.close()))
    sys = nc
  })

  if (sys === undefined || files['signing.nk'] === undefined) return
  const nc: NatsConnection = sys
  const signing = fromSeed(new TextEncoder().encode((await readFile(files['signing.nk'], 'utf8')).trim()))
  const alpha = createAccount()
  const alphaJwt = accountJwt(signing, alpha.getPublicKey(), {}, { name: 'alpha' })
  const managed = createAccount()
  const held = async (id: string) => (await nc.request(subjects.resolverGet(id), '', { timeout: 5000 })).json<{ state: string; jwt?: string }>()
  const userConnects = async (creds: string) => {
    const nc = await connect({ servers: url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)), reconnect: false, timeout: 5000 })
    const sub = nc.subscribe('e2e.echo', { max: 1 })
    nc.publish('e2e.echo', 'hi')
    for await (const m of sub) if (m.string() !== 'hi') throw new Error('echo mismatch')
    return nc
  }

  await t.test('push with the CLI from the host and from inside a container; users connect', async (t) => {
    const file = join(work, 'alpha.jwt')
    await writeFile(file, alphaJwt)
    const host = await run(process.execPath, [CLI, '-s', url, '--creds', files['sys.creds']!, 'push', file])
    t.equal(host.code, 0, `mesh push from the host: ${host.out.trim()}`)
    t.equal((await held(alpha.getPublicKey())).jwt, alphaJwt, 'the resolver stores it')
    const inside = await compose(['exec', '-T', 'resolver', 'mesh', '--creds', '/mesh/sys.creds', 'push', '/mesh/demo.jwt'])
    t.equal(inside.code, 0, `mesh push inside the resolver container (the README's DEMO push): ${inside.out.trim()}`)
    t.match(inside.out, /DEMO\s+ok/)
    const demo = await userConnects(await readFile(files['demo.creds']!, 'utf8'))
    await demo.close()
    t.pass('the demo user connects and gets its own message back')
    const user = await newUser({ name: 'alpha', kp: alpha, id: alpha.getPublicKey(), jwt: alphaJwt }, 'alpha-user')
    await (await userConnects(user.creds)).close()
    t.pass('a user of the account pushed from the host connects')
  })

  await t.test('managed re-signing: a self-signed account is stored signed by the operator signing key', async (t) => {
    // Limits left out: the signer sets each to the managed-account policy's cap (README, Configuration).
    const selfSigned = accountJwt(managed, managed.getPublicKey(), { limits: {} }, { name: 'managed' })
    const file = join(work, 'managed.jwt')
    await writeFile(file, selfSigned)
    const r = await run(process.execPath, [CLI, '-s', url, '--creds', files['sys.creds']!, 'push', file])
    t.equal(r.code, 0, r.out.trim())
    const stored = (await held(managed.getPublicKey())).jwt!
    t.equal(decode(stored).iss, signing.getPublicKey(), 'issued by the operator signing key')
    const user = await newUser({ name: 'managed', kp: managed, id: managed.getPublicKey(), jwt: stored }, 'managed-user')
    await (await userConnects(user.creds)).close()
    t.pass('its user connects')
  })

  await t.test('delete: the account is gone and its user refused', async (t) => {
    const user = await newUser({ name: 'alpha', kp: alpha, id: alpha.getPublicKey(), jwt: alphaJwt }, 'alpha-user-2')
    const r = await run(process.execPath, [CLI, '-s', url, '--creds', files['sys.creds']!, 'delete', alpha.getPublicKey(), '--operator-key', files['signing.nk']!, '--yes'])
    t.equal(r.code, 0, r.out.trim())
    t.equal((await held(alpha.getPublicKey())).state, 'deleted')
    await t.rejects(userConnects(user.creds), 'its user is refused')
  })

  await t.test('down and up with the volumes kept: identities and data survive', async (t) => {
    const operator = await readFile(files['operator.jwt']!, 'utf8')
    t.equal((await compose(['down'])).code, 0)
    const up = await compose(['up', '-d', '--wait', '--wait-timeout', '180'])
    t.equal(up.code, 0, `up again in ${Math.round(up.ms / 1000)} s`)
    const copy = join(work, 'operator-after.jwt')
    await compose(['cp', 'resolver:/mesh/operator.jwt', copy])
    t.equal(await readFile(copy, 'utf8'), operator, 'the same operator')
    await waitFor(async () => (await held(managed.getPublicKey()).catch(() => ({ state: 'no reply' }))).state === 'stored', { ms: 30_000, what: 'the resolver after the restart' })
    t.equal((await held(alpha.getPublicKey())).state, 'deleted', 'the deletion is kept')
    await (await userConnects(await readFile(files['demo.creds']!, 'utf8'))).close()
    t.pass('the demo user still connects')
  })

  // As the README says: with COMPOSE_PROFILES=ha in the environment, every later command (a plain `down`
  // included) covers the ha services too; without it a plain `down` leaves them running.
  const ha = { COMPOSE_PROFILES: 'ha' }
  await t.test('the ha profile: eight services healthy; a node stopped, the mesh carries on', async (t) => {
    const before = await containerIds()
    const up = await compose(['up', '-d', '--wait', '--wait-timeout', '240'], ha)
    t.equal(up.code, 0, `ha up in ${Math.round(up.ms / 1000)} s`)
    const after = await containerIds()
    t.ok(before.every((id) => after.includes(id)), 'the running services are not recreated')
    const states = await health(['--profile', 'ha'])
    t.equal(states.length, 9, 'the default services and four more')
    t.equal(states.filter((s) => s.includes('running healthy')).length, 8, states.join(', '))
    const stop = await compose(['stop', 'nats-2'], ha)
    t.equal(stop.code, 0, 'nats-2 stopped')
    const beta = createAccount()
    const betaJwt = accountJwt(signing, beta.getPublicKey(), {}, { name: 'beta' })
    await waitFor(
      async () => {
        const replies = await nc.request(subjects.claimsUpdate, betaJwt, { timeout: 3000 }).catch(() => undefined)
        return replies !== undefined && (await held(beta.getPublicKey())).jwt === betaJwt
      },
      { ms: 30_000, what: 'a push to be stored with nats-2 down' },
    )
    const user = await newUser({ name: 'beta', kp: beta, id: beta.getPublicKey(), jwt: betaJwt }, 'beta-user')
    await (await userConnects(user.creds)).close()
    const inside = await compose(['exec', '-T', 'signer-2', 'mesh', '--creds', '/mesh/sys.creds', '--json', 'get', beta.getPublicKey()], ha)
    t.equal(inside.code, 0, `asked from signer-2's container through another node, the resolver holds it: ${inside.out.slice(0, 200)}`)
  })

  await t.test('down -v with COMPOSE_PROFILES=ha leaves nothing, in seconds', async (t) => {
    await nc.close()
    const down = await compose(['down', '-v'], ha)
    t.equal(down.code, 0, down.out.slice(-1000))
    t.ok(down.ms < 15_000, `down -v took ${Math.round(down.ms / 100) / 10} s`)
    const label = `label=com.docker.compose.project=${project}`
    for (const kind of ['ps -a', 'volume ls', 'network ls']) {
      const r = await run('docker', [...kind.split(' '), '-q', '--filter', label])
      t.equal(r.out.trim(), '', `no ${kind.split(' ')[0]} left`)
    }
  })
})
