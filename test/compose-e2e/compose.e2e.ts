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

t.test('docker compose from a clean clone: up, push, connect, re-sign, delete, restart, to ha (JetStream, migrate-store), down, ha from nothing', async (t) => {
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
  const nodes = ['nats', 'nats-2', 'nats-3']
  // A user connects to one node from inside the compose network (only `nats` publishes a port) and gets its
  // own message back: the node resolved its account through the mesh.
  const CONNECT = [
    "import { connect, credsAuthenticator } from '@nats-io/transport-node'",
    "import { readFileSync } from 'node:fs'",
    "const nc = await connect({ servers: process.argv[1], authenticator: credsAuthenticator(readFileSync(process.argv[2])), reconnect: false, timeout: 5000 })",
    "const sub = nc.subscribe('e2e.echo', { max: 1 }); nc.publish('e2e.echo', 'hi')",
    "for await (const m of sub) process.stdout.write(m.string() === 'hi' ? 'echo ok\\n' : 'echo mismatch\\n')",
    'await nc.close()',
  ].join('\n')
  const connectOnce = (node: string, creds: string) =>
    compose(['exec', '-T', 'signer-2', 'node', '--input-type=module', '-e', CONNECT, `nats://${node}:4222`, creds], ha)
  // A push is acknowledged once it is in the stream; the other instance's view applies it a moment later, and a
  // node's LOOKUP may reach either instance: a first connect right after a push can be refused. Retried for 30 s,
  // the refusals counted in the result.
  const connectsThrough = async (node: string, creds: string) => {
    let refused = 0
    let last = await connectOnce(node, creds)
    const deadline = Date.now() + 30_000
    while (last.out.trim() !== 'echo ok' && Date.now() < deadline) {
      refused++
      await new Promise((r) => setTimeout(r, 500))
      last = await connectOnce(node, creds)
    }
    return { ...last, refused }
  }
  const stream = async (storeNc: NatsConnection, filter?: string) =>
    (await storeNc.request('$JS.API.STREAM.INFO.MESH_RESOLVER', JSON.stringify(filter === undefined ? {} : { subjects_filter: filter }), { timeout: 5000 })).json<{
      config: { num_replicas: number }
      state: { messages: number; subjects?: Record<string, number> }
      cluster?: { leader?: string; replicas?: { name: string; current: boolean }[] }
    }>()

  await t.test('to the ha profile: down, JetStream nodes, migrate-store, then two jetstream resolvers serve the level store', async (t) => {
    t.equal((await compose(['down'])).code, 0, 'the plain stack stopped, volumes kept')
    const nodesUp = await compose(['up', '-d', '--wait', '--wait-timeout', '180', ...nodes], ha)
    t.equal(nodesUp.code, 0, `the three nodes healthy in ${Math.round(nodesUp.ms / 1000)} s${nodesUp.code === 0 ? '' : `: ${nodesUp.out.slice(-1500)}`}`)
    const migrate = await compose(
      ['run', '--rm', '--no-deps', '-e', 'RESOLVER_JS_CREDS=/mesh/resolver-store.creds', '-e', 'RESOLVER_JS_REPLICAS=3',
        'resolver', 'node', '--import', 'tsx', 'ops/migrate-store.ts', '/var/lib/mesh/resolver'],
      ha,
    )
    const copied = migrate.out.split('\n').find((l) => l.startsWith('copied '))
    t.equal(migrate.code, 0, `migrate-store in compose: ${copied ?? migrate.out.slice(-1000)}`)
    t.match(copied, /^copied [1-9]\d* accounts/, 'the level store copied into the stream')
    const up = await compose(['up', '-d', '--wait', '--wait-timeout', '240'], ha)
    t.equal(up.code, 0, `ha up in ${Math.round(up.ms / 1000)} s${up.code === 0 ? '' : `: ${up.out.slice(-2000)}`}`)
    const states = await health(['--profile', 'ha'])
    t.same(states, [
      'bootstrap exited  0',
      'bootstrap-ha exited  0',
      ...['nats', 'nats-2', 'nats-3', 'notifier', 'notifier-2', 'resolver', 'resolver-2', 'signer', 'signer-2'].map((s) => `${s} running healthy 0`),
    ])
    const logs = (await compose(['logs', 'resolver', 'resolver-2'], ha)).out
    t.equal(logs.match(/"msg":"local view loaded"/g)?.length, 2, 'both resolvers run the jetstream engine')
    const jsz = await compose(['exec', '-T', 'nats', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8222/jsz'], ha)
    const meta = (JSON.parse(jsz.out) as { meta_cluster: { leader?: string; cluster_size: number } }).meta_cluster
    t.ok(meta.leader !== undefined && nodes.includes(meta.leader), `a meta leader: ${meta.leader}`)
    t.equal(meta.cluster_size, 3, 'a JetStream cluster of three')
  })

  const storeCreds = join(work, 'resolver-store.creds')
  await compose(['cp', 'resolver:/mesh/resolver-store.creds', storeCreds], ha)
  const store = await connect({ servers: url, authenticator: credsAuthenticator(await readFile(storeCreds).catch(() => new Uint8Array())), reconnect: true, maxReconnectAttempts: -1 }).catch(() => undefined)
  if (store === undefined) {
    t.fail('the storage user connects')
    return
  }
  suite.teardown(() => (store.isClosed() ? undefined : store.close()))
  const gamma = createAccount()
  const gammaJwt = accountJwt(signing, gamma.getPublicKey(), {}, { name: 'gamma' })

  await t.test('ha: the stream R3, a push stored once and served by both instances, users connect through each node', async (t) => {
    const info = await stream(store)
    t.equal(info.config.num_replicas, 3, 'MESH_RESOLVER is R3')
    t.equal((info.cluster?.replicas ?? []).filter((r) => r.current).length + (info.cluster?.leader === undefined ? 0 : 1), 3, `placed on three nodes (leader ${info.cluster?.leader})`)
    const demoPush = await compose(['exec', '-T', 'resolver', 'mesh', '--creds', '/mesh/sys.creds', 'push', '/mesh/demo.jwt'], ha)
    t.equal(demoPush.code, 0, `the README's DEMO push, in jetstream mode: ${demoPush.out.trim().split('\n').at(-1)}`)
    const file = join(work, 'gamma.jwt')
    await writeFile(file, gammaJwt)
    const push = await run(process.execPath, [CLI, '-s', url, '--creds', files['sys.creds']!, 'push', file])
    t.equal(push.code, 0, `mesh push from the host: ${push.out.trim()}`)
    const subject = `resolver.chg.${gamma.getPublicKey()}.v`
    t.same((await stream(store, subject)).state.subjects, { [subject]: 1 }, 'stored once, in the stream')
    // Each instance alone: the other stopped, every account (pushed now or migrated) is answered.
    for (const [down, serving] of [['resolver-2', 'resolver'], ['resolver', 'resolver-2']] as const) {
      t.equal((await compose(['stop', down], ha)).code, 0, `${down} stopped`)
      await waitFor(async () => (await held(gamma.getPublicKey()).catch(() => undefined))?.jwt === gammaJwt, { ms: 60_000, what: `${serving} to answer alone` })
      t.equal((await held(managed.getPublicKey())).state, 'stored', `${serving} alone serves the migrated managed account`)
      t.equal((await held(alpha.getPublicKey())).state, 'deleted', `${serving} alone keeps the migrated deletion`)
      t.equal((await compose(['start', down], ha)).code, 0, `${down} started again`)
    }
    const gammaUser = await newUser({ name: 'gamma', kp: gamma, id: gamma.getPublicKey(), jwt: gammaJwt }, 'gamma-user')
    const gammaCreds = join(work, 'gamma.creds')
    await writeFile(gammaCreds, gammaUser.creds)
    t.equal((await compose(['cp', gammaCreds, 'signer-2:/tmp/gamma.creds'], ha)).code, 0)
    for (const node of nodes) {
      for (const creds of ['/mesh/demo.creds', '/tmp/gamma.creds']) {
        const r = await connectsThrough(node, creds)
        t.equal(r.out.trim(), 'echo ok', `a user of ${creds.includes('demo') ? 'DEMO (migrated)' : 'gamma (pushed in ha)'} connects through ${node} (${r.refused} refused first)${r.code === 0 ? '' : `: ${r.out.slice(0, 300)}`}`)
      }
    }
  })

  await t.test('ha: a node stopped, pushes still stored on the quorum and served', async (t) => {
    t.equal((await compose(['stop', 'nats-3'], ha)).code, 0, 'nats-3 stopped')
    const beta = createAccount()
    const betaJwt = accountJwt(signing, beta.getPublicKey(), {}, { name: 'beta' })
    await waitFor(
      async () => {
        await nc.request(subjects.claimsUpdate, betaJwt, { timeout: 3000 }).catch(() => undefined)
        return (await held(beta.getPublicKey()).catch(() => undefined))?.jwt === betaJwt
      },
      { ms: 30_000, what: 'a push to be stored with nats-3 down' },
    )
    const user = await newUser({ name: 'beta', kp: beta, id: beta.getPublicKey(), jwt: betaJwt }, 'beta-user')
    // The push's reply means it is in the stream; the other instance's view applies it a moment later, and a
    // LOOKUP may reach either instance.
    let refused = 0
    await waitFor(
      async () => {
        const c = await userConnects(user.creds).catch(() => undefined)
        if (c === undefined) return (refused++, false)
        await c.close()
        return true
      },
      { ms: 30_000, what: 'the user of the account pushed with nats-3 down to connect' },
    )
    t.pass(`its user connects (${refused} refused attempts first)`)
    const inside = await compose(['exec', '-T', 'signer-2', 'mesh', '--creds', '/mesh/sys.creds', '--json', 'get', beta.getPublicKey()], ha)
    t.equal(inside.code, 0, `asked from signer-2's container through nats-2, the resolvers hold it: ${inside.out.slice(0, 200)}`)
    await store.close()
  })

  await t.test('down -v with COMPOSE_PROFILES=ha leaves nothing, in seconds', async (t) => {
    await nc.close()
    const down = await compose(['down', '-v'], ha)
    t.equal(down.code, 0, down.out.slice(-1000))
    // Under the 30 s stop grace period: no service waited it out (each drained and exited on SIGTERM).
    t.ok(down.ms < 30_000, `down -v took ${Math.round(down.ms / 100) / 10} s`)
    const label = `label=com.docker.compose.project=${project}`
    for (const kind of ['ps -a', 'volume ls', 'network ls']) {
      const r = await run('docker', [...kind.split(' '), '-q', '--filter', label])
      t.equal(r.out.trim(), '', `no ${kind.split(' ')[0]} left`)
    }
  })

  await t.test('from nothing: --profile ha up --wait, a push served through every node', async (t) => {
    const up = await compose(['--profile', 'ha', 'up', '-d', '--wait', '--wait-timeout', '240'])
    t.equal(up.code, 0, `--profile ha up from nothing in ${Math.round(up.ms / 1000)} s${up.code === 0 ? '' : `: ${up.out.slice(-2000)}`}`)
    t.equal((await health(['--profile', 'ha'])).filter((s) => s.includes('running healthy')).length, 9, 'nine services healthy')
    const storeEnv = await compose(['exec', '-T', 'resolver', 'cat', '/etc/nats-mesh/resolver.env'], ha)
    t.match(storeEnv.out, /^RESOLVER_STORE=jetstream$/m, 'the resolver runs the jetstream store')
    const jsz = await compose(['exec', '-T', 'nats', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8222/jsz?accounts=true&streams=true'], ha)
    const streams = (JSON.parse(jsz.out) as { account_details?: { stream_detail?: { name: string; cluster?: { leader?: string; replicas?: unknown[] } }[] }[] }).account_details?.flatMap((a) => a.stream_detail ?? []) ?? []
    const placed = streams.find((x) => x.name === 'MESH_RESOLVER')?.cluster
    t.ok(placed?.leader !== undefined && placed.replicas?.length === 2, `MESH_RESOLVER placed on three nodes (leader ${placed?.leader})`)
    const push = await compose(['exec', '-T', 'resolver-2', 'mesh', '--creds', '/mesh/sys.creds', 'push', '/mesh/demo.jwt'], ha)
    t.equal(push.code, 0, `DEMO pushed from resolver-2's container: ${push.out.trim().split('\n').at(-1)}`)
    for (const node of nodes) {
      const r = await connectsThrough(node, '/mesh/demo.creds')
      t.equal(r.out.trim(), 'echo ok', `the demo user connects through ${node} (${r.refused} refused first)${r.code === 0 ? '' : `: ${r.out.slice(0, 300)}`}`)
    }
  })
})
