import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runBootstrap as runBootstrapIn } from './kit/cli.ts'
import { parse } from 'yaml'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator } from '@nats-io/nats-core'
import { isConfigError, type Env } from '../shared/index.ts'
import { bootstrapPaths } from '../ops/bootstrap.ts'
import { loadNotifierConfig } from '../services/notifier/config.ts'
import { loadResolverConfig } from '../services/resolver/config.ts'
import { loadSignerConfig } from '../services/signer/config.ts'
import { tempDir } from './kit/fixtures.ts'
import { freePort, natsServerBinary } from './kit/nats-server.ts'
import { stopProcess } from './kit/processes.ts'
import { serviceReady, spawnService, type ServiceName } from './kit/services.ts'
import { waitFor } from './kit/wait-for.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8')

interface ComposeService {
  image?: string
  build?: string
  pull_policy?: string
  command?: string[]
  environment?: Record<string, string>
  volumes?: string[]
  depends_on?: Record<string, { condition: string; required?: boolean }>
  profiles?: string[]
  healthcheck?: { test: string[] }
  init?: boolean
  stop_grace_period?: string
}
/** The healthcheck the image runs: ops/healthcheck.ts bundled at build time (node without tsx starts fast). */
const HEALTHCHECK_JS = 'dist/healthcheck.mjs'
const compose = parse(read('docker-compose.yml')) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> }
const MESH: ServiceName[] = ['resolver', 'signer', 'notifier']
const LOADERS: Record<ServiceName, (env: Env) => unknown> = {
  resolver: loadResolverConfig,
  signer: loadSignerConfig,
  notifier: loadNotifierConfig,
}

/** Compose interpolation as an empty environment sees it: `${X:-d}` and `${X-d}` become d. */
const interpolate = (v: string) => v.replace(/\$\{[A-Z_]+:?-([^}]*)\}/g, '$1')
const envOf = (svc: ComposeService) =>
  Object.fromEntries(Object.entries(svc.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]))
/** `source:target[:ro]` volume entries, interpolated. */
const mountsOf = (svc: ComposeService) =>
  (svc.volumes ?? []).map((v) => {
    const [source, target, mode] = interpolate(v).split(':')
    return { source: source!, target: target!, readOnly: mode === 'ro' }
  })

/** The service a container runs: its `node` command, also when a shell first sources the rendered store settings. */
const SOURCED = /^set -a && \. (\S+) && exec (.+)$/
const commandOf = (svc: ComposeService) => {
  const cmd = svc.command ?? []
  const m = cmd[0] === 'sh' && cmd[1] === '-c' ? SOURCED.exec(cmd[2] ?? '') : null
  return m === null ? { sourced: undefined, command: cmd } : { sourced: m[1], command: m[2]!.split(' ') }
}
/** What `set -a && . file` adds to env: KEY=value lines, `"$VAR..."` expanded from env. */
function sourceEnv(text: string, env: Record<string, string>): Record<string, string> {
  const out = { ...env }
  for (const line of text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line)
    if (m === null) throw new TypeError(`not a KEY=value line: ${line}`)
    out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/\$([A-Z_][A-Z0-9_]*)/g, (_, k: string) => out[k] ?? '')
  }
  return out
}

/** Every variable a loader reads, found by handing it an environment that records what is asked. */
function variablesRead(name: ServiceName, given: Record<string, string> = {}): { read: Set<string>; required: Set<string> } {
  const read = new Set<string>()
  const env = new Proxy({} as Env, { get: (_, key) => (typeof key === 'string' && read.add(key), given[key as string]) })
  const required = new Set<string>()
  try {
    LOADERS[name](env)
  } catch (e) {
    if (!isConfigError(e)) throw e
    for (const m of e.message.matchAll(/([A-Z_]+): required/g)) required.add(m[1]!)
  }
  return { read, required }
}

/** Variables named in the README's tables (`| \`NAME\` | ...`). */
const documented = new Set([...read('README.md').matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]!))

t.test('docker-compose.yml: structure', async (t) => {
  const byDefault = Object.entries(compose.services).filter(([, svc]) => (svc as { profiles?: string[] }).profiles === undefined)
  t.same(byDefault.map(([name]) => name).sort(), ['bootstrap', 'nats', 'notifier', 'resolver', 'signer'], 'the default services')
  t.same(compose.services.nats!.depends_on?.['bootstrap-ha'], { condition: 'service_completed_successfully', required: false }, 'with the ha profile, nats starts on the conf bootstrap-ha renders')
  const { bootstrap, nats } = compose.services as Record<string, ComposeService>
  t.match(nats!.image, /^nats:2\.(1\d|[1-9]\d)/, 'the official nats image, 2.10 or later')
  const conf = envOf(bootstrap!).BOOTSTRAP_SERVER_CONF
  t.ok(conf, 'the bootstrap renders a nats-server.conf')
  t.same(nats!.command?.slice(0, 2), ['-c', conf], 'nats runs the rendered conf')
  const confDir = conf!.slice(0, conf!.lastIndexOf('/'))
  const confVolume = mountsOf(bootstrap!).find((m) => m.target === confDir)
  t.ok(confVolume, 'the conf is written to a volume')
  t.ok(mountsOf(nats!).some((m) => m.source === confVolume?.source && m.target === confDir && m.readOnly), 'nats mounts it read-only')
  const identities = mountsOf(bootstrap!).find((m) => m.target === envOf(bootstrap!).BOOTSTRAP_DIR)
  t.ok(identities && !identities.readOnly, 'the bootstrap writes identities into a volume')
  t.ok(mountsOf(nats!).some((m) => m.source === identities?.source && m.target === identities?.target), 'nats reads the operator JWT at the same path')
  t.same(nats!.depends_on?.bootstrap, { condition: 'service_completed_successfully' })
  t.ok(nats!.healthcheck?.test.join(' ').includes('/healthz'), 'nats has a healthcheck')
  t.same(bootstrap!.command, ['node', '--import', 'tsx', 'ops/bootstrap-main.ts'])
  t.ok(existsSync(join(ROOT, 'ops/bootstrap-main.ts')))

  t.equal(bootstrap!.build, '.', 'the bootstrap builds the image from the Dockerfile')
  const builders = Object.entries(compose.services).filter(([, svc]) => svc.build !== undefined).map(([name]) => name)
  t.same(builders, ['bootstrap'], 'one service builds the image, so it is built once and a later up recreates nothing')
  for (const name of MESH) {
    const svc = compose.services[name]!
    t.equal(svc.image, bootstrap!.image, `${name} runs the one image`)
    t.equal(svc.pull_policy, 'never', `${name} never pulls the image the bootstrap builds`)
    t.same(commandOf(svc).command, ['node', '--import', 'tsx', `services/${name}/main.ts`], `${name} command`)
    t.ok(existsSync(join(ROOT, `services/${name}/main.ts`)))
    t.same(svc.healthcheck?.test, ['CMD', 'node', HEALTHCHECK_JS, name], `${name} healthcheck asks its health endpoint, in plain JS`)
    t.equal(svc.init, true, `${name} runs under an init that forwards SIGTERM`)
    t.ok(svc.stop_grace_period, `${name} has time to drain`)
    t.same(svc.depends_on, { bootstrap: { condition: 'service_completed_successfully' }, nats: { condition: 'service_healthy' } })
    t.ok(mountsOf(svc).some((m) => m.source === identities?.source && m.target === identities.target && m.readOnly), `${name} reads identities read-only`)
  }
  t.ok(existsSync(join(ROOT, 'ops/healthcheck.ts')))
  t.match(read('Dockerfile'), new RegExp(`esbuild ops/healthcheck\\.ts --bundle[^\\n]*\\n?[^\\n]*--outfile=${HEALTHCHECK_JS}`), 'the image bundles ops/healthcheck.ts into it')
  const named = new Set(Object.values(compose.services).flatMap((s) => mountsOf(s).map((m) => m.source)).filter((s) => !s.startsWith('.') && !s.startsWith('/')))
  t.same([...named].sort(), Object.keys(compose.volumes).sort(), 'every named volume is declared')
})

t.test('docker-compose.yml: the ha profile is a 3-node JetStream cluster with two instances of each service in jetstream mode', async (t) => {
  const services = compose.services
  const ha = Object.entries(services).filter(([, svc]) => svc.profiles?.includes('ha')).map(([name]) => name)
  t.same(ha.sort(), ['bootstrap-ha', 'nats-2', 'nats-3', 'notifier-2', 'resolver-2', 'signer-2'])
  const [bootstrap, bootstrapHa] = [services.bootstrap!, services['bootstrap-ha']!]
  t.same(bootstrapHa.command, bootstrap.command, 'bootstrap-ha is the bootstrap')
  t.same(bootstrapHa.depends_on, { bootstrap: { condition: 'service_completed_successfully' } }, 'after the bootstrap: identities exist')
  const [plainEnv, haEnv] = [envOf(bootstrap), envOf(bootstrapHa)]
  for (const key of ['BOOTSTRAP_DIR', 'BOOTSTRAP_SERVER_CONF', 'BOOTSTRAP_RESOLVER_ENV', 'BOOTSTRAP_JWT_DIR']) t.equal(haEnv[key], plainEnv[key], `it renders ${key} in place`)
  t.same(mountsOf(bootstrapHa), mountsOf(bootstrap), 'into the same volumes')
  const routes = haEnv.BOOTSTRAP_CLUSTER_ROUTES!.split(',')
  t.same(routes.sort(), ['nats://nats-2:6222', 'nats://nats-3:6222', 'nats://nats:6222'], 'routes to all three nodes')
  const jsDir = haEnv.BOOTSTRAP_JETSTREAM_DIR!
  const conf = plainEnv.BOOTSTRAP_SERVER_CONF!
  const flag = (cmd: string[], name: string) => cmd[cmd.indexOf(name) + 1]
  for (const node of ['nats', 'nats-2', 'nats-3']) {
    const svc = services[node]!
    const cmd = svc.command ?? []
    t.same(cmd.slice(0, 2), ['-c', conf], `${node} runs the rendered conf`)
    if (node !== 'nats') {
      t.equal(flag(cmd, '--name'), node, `${node} has a server name of its own`)
      t.same(svc.depends_on, { 'bootstrap-ha': { condition: 'service_completed_successfully' } }, `${node} starts on the ha conf, not after nats is healthy (that needs a meta leader)`)
    }
    const js = mountsOf(svc).find((m) => m.target === jsDir)
    t.ok(js && !js.readOnly && !js.source.startsWith('/'), `${node} keeps its JetStream data in a named volume`)
    t.ok(mountsOf(svc).some((m) => m.target === '/data/jwt'), `${node} has a JWT cache`)
  }
  const volumeOf = (node: string, target: string) => mountsOf(services[node]!).find((m) => m.target === target)?.source
  for (const target of ['/data/jwt', jsDir]) {
    t.equal(new Set(['nats', 'nats-2', 'nats-3'].map((n) => volumeOf(n, target))).size, 3, `each node its own ${target}`)
  }
  for (const name of MESH.filter((n) => n !== 'resolver')) {
    const first = services[name]!
    const second = services[`${name}-2`]!
    t.same(second.command, first.command, `${name}-2 runs the same service`)
    t.same(second.healthcheck?.test, first.healthcheck?.test)
    const [a, b] = [envOf(first), envOf(second)]
    t.same(Object.keys(b).sort(), Object.keys(a).sort(), `${name}-2 is configured like ${name}`)
    for (const key of Object.keys(a).filter((k) => k !== 'NATS_URL')) t.equal(b[key], a[key], `${name}-2 ${key}`)
  }
  for (const name of MESH) {
    const second = services[`${name}-2`]!
    t.same(envOf(second).NATS_URL!.split(',').sort(), ['nats://nats-2:4222', 'nats://nats-3:4222', 'nats://nats:4222'], `${name}-2 knows all three nodes`)
    t.notOk(envOf(second).NATS_URL!.startsWith('nats://nats:'), `${name}-2 connects to another node first`)
    // Compose stops a service before what it depends on: a node stopped under it would cut its drain short.
    for (const node of ['nats-2', 'nats-3']) t.same(second.depends_on?.[node], { condition: 'service_healthy' }, `${name}-2 depends on ${node}`)
  }
  const resolver = services.resolver!
  const resolver2 = services['resolver-2']!
  t.same(resolver2.command, commandOf(resolver).command, 'resolver-2 runs the same service')
  t.same(resolver2.healthcheck?.test, resolver.healthcheck?.test)
  t.equal(commandOf(resolver).sourced, plainEnv.BOOTSTRAP_RESOLVER_ENV, 'the resolver takes its store settings from the file the bootstrap renders with the conf')
  t.ok(mountsOf(resolver).some((m) => m.source === mountsOf(bootstrap).find((b) => m.target === b.target)?.source && m.readOnly), 'read-only from the bootstrap volume')
  t.equal(envOf(resolver).RESOLVER_STORE, undefined, 'not set in its environment: the rendered file decides (level on one node)')
  const env2 = envOf(resolver2)
  t.equal(env2.RESOLVER_STORE, 'jetstream')
  t.equal(env2.RESOLVER_JS_CREDS, bootstrapPaths(plainEnv.BOOTSTRAP_DIR!).storeCreds, 'the storage user the bootstrap writes')
  t.equal(env2.RESOLVER_JS_REPLICAS, '3', 'R3 on three nodes')
  t.notSame(volumeOf('resolver-2', env2.RESOLVER_DATA_DIR!), volumeOf('resolver', envOf(resolver).RESOLVER_DATA_DIR!), 'resolver-2 keeps its local view in a volume of its own')
  t.same(resolver2.depends_on?.resolver, { condition: 'service_healthy' }, 'resolver-2 starts once the first instance has created the stream')
})

t.test('docker-compose.yml: the environment contract', async (t) => {
  const paths = bootstrapPaths(envOf(compose.services.bootstrap!).BOOTSTRAP_DIR!)
  for (const name of MESH) {
    const svc = compose.services[name]!
    const env = envOf(svc)
    const { read, required } = variablesRead(name)
    for (const key of Object.keys(env)) {
      t.ok(read.has(key), `${name}: ${key} is read by its config loader`)
      t.ok(documented.has(key), `${name}: ${key} is documented in the README`)
    }
    for (const key of [...required, 'NATS_URL', 'NATS_CREDS']) t.ok(key in env, `${name}: ${key} is set`)
    t.equal(env.NATS_URL, 'nats://nats:4222', `${name} reaches the nats service`)
    t.equal(env.NATS_CREDS, paths.serviceCreds[name], `${name} uses the creds the bootstrap writes for it`)
    if ('OPERATOR_JWT' in env) t.equal(env.OPERATOR_JWT, paths.operatorJwt)
    for (const [key, value] of Object.entries(env).filter(([, v]) => v.startsWith('/'))) {
      t.ok(mountsOf(svc).some((m) => value.startsWith(`${m.target}/`) || value === m.target), `${name}: ${key} lies on a volume`)
    }
  }
  const resolver = envOf(compose.services.resolver!)
  t.equal(resolver.SYSTEM_ACCOUNT_JWT, paths.sysJwt)
  const dataDir = mountsOf(compose.services.resolver!).find((m) => m.target === resolver.RESOLVER_DATA_DIR)
  t.ok(dataDir && !dataDir.readOnly && !dataDir.source.startsWith('/'), 'the LevelDB store is a writable named volume')
  t.equal(envOf(compose.services.signer!).SIGNER_SEED_FILE, paths.signingSeed, 'managed accounts are signed with the bootstrapped key')
  for (const name of ['bootstrap', 'bootstrap-ha']) {
    for (const key of Object.keys(envOf(compose.services[name]!))) t.ok(documented.has(key), `${name}: ${key} is documented in the README`)
  }
  const second = envOf(compose.services['resolver-2']!)
  const { read: readJs } = variablesRead('resolver', { RESOLVER_STORE: 'jetstream' })
  for (const key of Object.keys(second)) {
    t.ok(readJs.has(key), `resolver-2: ${key} is read by its config loader in jetstream mode`)
    t.ok(documented.has(key), `resolver-2: ${key} is documented in the README`)
  }
  for (const [key, value] of Object.entries(second).filter(([, v]) => v.startsWith('/'))) {
    t.ok(mountsOf(compose.services['resolver-2']!).some((m) => value.startsWith(`${m.target}/`) || value === m.target), `resolver-2: ${key} lies on a volume`)
  }
})

t.test('Dockerfile: multi-stage, production dependencies only, non-root', async (t) => {
  const lines = read('Dockerfile')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
  const stages = lines.map((l, i) => [l, i] as const).filter(([l]) => /^FROM /i.test(l))
  t.ok(stages.length >= 2, 'at least two stages')
  const final = lines.slice(stages.at(-1)![1])
  t.ok(lines.some((l) => /npm ci\b.*--omit=dev/.test(l)), 'npm ci --omit=dev')
  t.notOk(lines.some((l) => /npm (install|i)\b/.test(l)), 'no npm install')
  t.ok(final.some((l) => /^COPY --from=\S+ .*node_modules/.test(l)), 'the runtime takes node_modules from the build stage')
  const user = final.filter((l) => /^USER /i.test(l)).at(-1)
  t.ok(user && !/^USER (root|0)(:|$)/i.test(user), `runs as a non-root user (${user})`)
  t.notOk(final.some((l) => /^COPY .*\b(test|bench)\b/.test(l)), 'tests and benchmarks stay out of the image')
  const ignored = read('.dockerignore').split('\n')
  for (const p of ['node_modules', '.data', '.git']) t.ok(ignored.includes(p), `.dockerignore keeps ${p} out of the context`)
  const deps = JSON.parse(read('package.json')) as { dependencies: Record<string, string> }
  t.ok('tsx' in deps.dependencies, 'tsx, which runs the services, is a production dependency')
  // What the image runs imports only packages `npm ci --omit=dev` installs (the lock marks dev-only ones).
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean }> }
  const sources = ['shared', 'services/resolver', 'services/signer', 'services/notifier', 'ops', 'cli', 'cli/commands'].flatMap((dir) =>
    readdirSync(join(ROOT, dir))
      .filter((f) => f.endsWith('.ts') || f.endsWith('.mjs'))
      .map((f) => read(join(dir, f))),
  )
  const imported = new Set(sources.flatMap((src) => [...src.matchAll(/from '((?:@[^/']+\/)?[^/.'][^/']*)[^']*'/g)].map((m) => m[1]!)))
  for (const pkg of [...imported].filter((p) => !p.startsWith('node:'))) {
    const entry = lock.packages[`node_modules/${pkg}`]
    t.ok(entry && entry.dev !== true, `${pkg} is installed without dev dependencies`)
  }
})

const runBootstrap = (env: Record<string, string>) => runBootstrapIn([], env)

/** Runs a compose healthcheck command (`node` being this node) with the service's environment. */
async function runHealthcheck(test: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const [cmd, node, script, ...args] = test
  if (cmd !== 'CMD' || node !== 'node' || script !== HEALTHCHECK_JS) throw new TypeError(`not our healthcheck: ${test.join(' ')}`)
  // Without Docker there is no bundle: run the source it is built from (the real engine runs the bundle, test/compose-e2e).
  const proc = spawn(process.execPath, ['--import', 'tsx', 'ops/healthcheck.ts', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const [code] = (await once(proc, 'exit')) as [number | null]
  return { code, out }
}

t.test('the compose stack without Docker: bootstrap, nats-server, services and healthchecks as configured', async (t) => {
  const root = await tempDir(t, 'compose')
  const port = await freePort()
  const httpPort = await freePort()
  const mounts: Record<string, string> = {}
  for (const svc of Object.values(compose.services)) {
    for (const m of mountsOf(svc)) mounts[m.target] ??= join(root, m.source.replace(/[^a-z0-9-]/gi, '_'))
  }
  // A compose path, as this machine sees it: the volume mounted there is a directory under root.
  const local = (value: string) => {
    const target = Object.keys(mounts).find((m) => value === m || value.startsWith(`${m}/`))
    if (target !== undefined) return mounts[target]! + value.slice(target.length)
    return value.replace('nats://nats:4222', `nats://127.0.0.1:${port}`)
  }
  const localEnv = (svc: ComposeService) => Object.fromEntries(Object.entries(envOf(svc)).map(([k, v]) => [k, local(v)]))
  for (const dir of Object.values(mounts)) await mkdir(dir, { recursive: true })
  // What the container's process sees: its environment, and the store settings its command sources, if any.
  const serviceEnv = async (svc: ComposeService) => {
    const file = commandOf(svc).sourced
    if (file === undefined) return localEnv(svc)
    const sourced = sourceEnv(await readFile(local(file), 'utf8'), envOf(svc))
    return Object.fromEntries(Object.entries(sourced).map(([k, v]) => [k, local(v)]))
  }

  const bootstrapEnv: Record<string, string> = {
    ...localEnv(compose.services.bootstrap!),
    BOOTSTRAP_NATS_HOST: '127.0.0.1',
    BOOTSTRAP_NATS_PORT: String(port),
    BOOTSTRAP_NATS_HTTP_PORT: String(httpPort),
  }
  const first = await runBootstrap(bootstrapEnv)
  t.equal(first.code, 0, `first bootstrap: ${first.out.trim()}`)
  t.match(first.out, /^created /m)
  const identities = bootstrapEnv.BOOTSTRAP_DIR!
  const operatorJwt = await readFile(join(identities, 'operator.jwt'), 'utf8')
  const again = await runBootstrap(bootstrapEnv)
  t.equal(again.code, 0)
  t.match(again.out, /^reused /m, 'a second run reuses the identities')
  t.equal(await readFile(join(identities, 'operator.jwt'), 'utf8'), operatorJwt, 'the operator is unchanged')

  const conf = bootstrapEnv.BOOTSTRAP_SERVER_CONF!
  const nats = spawn(natsServerBinary(), ['-c', conf], { stdio: 'ignore' })
  t.teardown(() => stopProcess(nats))
  const sysCreds = await readFile(join(identities, 'sys.creds'))
  await waitFor(
    async () => {
      const nc = await connect({ servers: `127.0.0.1:${port}`, authenticator: credsAuthenticator(sysCreds), reconnect: false })
      await nc.close()
      return true
    },
    { ms: 10_000, what: 'nats-server from the rendered conf' },
  )

  const resolverEnv = await serviceEnv(compose.services.resolver!)
  t.equal(resolverEnv.RESOLVER_STORE, 'level', 'on one node the rendered store settings say level')
  const services = await Promise.all(MESH.map(async (name) => serviceReady(spawnService(t, name, await serviceEnv(compose.services[name]!)))))
  for (const name of MESH) {
    const r = await runHealthcheck(compose.services[name]!.healthcheck!.test, localEnv(compose.services[name]!))
    t.equal(r.code, 0, `${name} healthcheck passes: ${r.out.trim().slice(0, 160)}`)
    t.match(r.out, new RegExp(`^${name} healthy`))
  }
  const resolverHealth = await runHealthcheck(compose.services.resolver!.healthcheck!.test, localEnv(compose.services.resolver!))
  t.match(resolverHealth.out, /"store":"ready"/, 'the resolver reports its store')

  const signer = services.find((s) => s.name === 'signer')!
  t.equal(await signer.stop(), 0)
  const down = await runHealthcheck(compose.services.signer!.healthcheck!.test, localEnv(compose.services.signer!))
  t.equal(down.code, 1, `a stopped signer fails its healthcheck: ${down.out.trim()}`)
})

t.test('bootstrap-ha: a JetStream cluster conf and the jetstream store, which a later plain bootstrap keeps', async (t) => {
  const root = await tempDir(t, 'compose-ha')
  const local = (value: string) => value.replace(/^\/(mesh|etc\/nats-mesh|var\/lib\/mesh\/resolver)/, (_, dir: string) => join(root, dir.replace(/\//g, '_')))
  const envFor = (name: string) => Object.fromEntries(Object.entries(envOf(compose.services[name]!)).map(([k, v]) => [k, local(v)]))
  const plain = envFor('bootstrap')
  const ha = envFor('bootstrap-ha')
  t.equal((await runBootstrap(plain)).code, 0, 'the bootstrap runs first')
  t.equal(await readFile(plain.BOOTSTRAP_RESOLVER_ENV!, 'utf8'), 'RESOLVER_STORE=level\n', 'alone: level')
  const r = await runBootstrap(ha)
  t.equal(r.code, 0, r.out.trim())
  t.match(r.out, /JetStream cluster of 3 nodes/)
  const conf = await readFile(ha.BOOTSTRAP_SERVER_CONF!, 'utf8')
  t.match(conf, new RegExp(`jetstream: \\{ store_dir: "${ha.BOOTSTRAP_JETSTREAM_DIR}"`), 'JetStream on, in the volume each node mounts there')
  const routes = ha.BOOTSTRAP_CLUSTER_ROUTES!.split(',').map((u) => JSON.stringify(u)).join(', ')
  t.ok(conf.includes(`cluster: { name: "mesh", listen: "0.0.0.0:6222", routes: [${routes}] }`), 'one conf for every node: routes to all three')
  const paths = bootstrapPaths(ha.BOOTSTRAP_DIR!)
  const meshId = (await readFile(paths.meshJwt, 'utf8')).trim()
  t.match(conf, new RegExp(`resolver_preload: \\{ [^\\n]*${JSON.parse(Buffer.from(meshId.split('.')[1]!, 'base64url').toString()).sub}: `), 'the storage account MESH preloaded')
  const store = sourceEnv(await readFile(ha.BOOTSTRAP_RESOLVER_ENV!, 'utf8'), envOf(compose.services.resolver!))
  t.equal(store.RESOLVER_STORE, 'jetstream')
  t.equal(store.RESOLVER_JS_REPLICAS, '3')
  t.ok(existsSync(local(store.RESOLVER_JS_CREDS!)), `the storage user's creds exist (${store.RESOLVER_JS_CREDS})`)
  t.equal(store.RESOLVER_DATA_DIR, `${envOf(compose.services.resolver!).RESOLVER_DATA_DIR}/jetstream`, 'the view beside the level store, not in it')
  t.doesNotThrow(() => loadResolverConfig(Object.fromEntries(Object.entries(store).map(([k, v]) => [k, local(v)]))), 'the resolver accepts these settings')

  const again = await runBootstrap(plain)
  t.equal(again.code, 0)
  t.match(again.out, /kept .*start it with --profile ha/, 'a plain run keeps the cluster rendering and says so')
  t.equal(await readFile(ha.BOOTSTRAP_SERVER_CONF!, 'utf8'), conf, 'the conf unchanged')
  t.equal(sourceEnv(await readFile(ha.BOOTSTRAP_RESOLVER_ENV!, 'utf8'), {}).RESOLVER_STORE, 'jetstream', 'the store unchanged')

  // Own identities without the storage account nor the key to create it: nothing rendered, one line.
  await rm(paths.meshJwt)
  await rm(paths.signingSeed)
  await writeFile(plain.BOOTSTRAP_RESOLVER_ENV!, 'RESOLVER_STORE=level\n')
  const noStorage = await runBootstrap(ha)
  t.equal(noStorage.code, 1)
  t.match(noStorage.out, /^bootstrap failed: .*mesh\.jwt is missing/m, noStorage.out.trim())
  t.equal(await readFile(ha.BOOTSTRAP_SERVER_CONF!, 'utf8'), conf, 'the conf untouched')
  t.equal(await readFile(ha.BOOTSTRAP_RESOLVER_ENV!, 'utf8'), 'RESOLVER_STORE=level\n', 'the store settings untouched')

  const two = await runBootstrap({ ...ha, BOOTSTRAP_CLUSTER_ROUTES: 'nats://a:6222,nats://b:6222' })
  t.equal(two.code, 2, 'fewer than three nodes is a configuration error')
  t.match(two.out, /BOOTSTRAP_CLUSTER_ROUTES/)
})

t.test('the bootstrap with mounted identities', async (t) => {
  const dir = await tempDir(t, 'byo')
  await writeFile(join(dir, 'operator.jwt'), 'eyJ...\n')
  const r = await runBootstrap({ BOOTSTRAP_DIR: dir, BOOTSTRAP_SERVER_CONF: join(dir, 'conf', 'nats-server.conf') })
  t.equal(r.code, 1, 'refuses an operator without the creds it cannot create')
  t.match(r.out, /resolver\.creds/, `names what is missing: ${r.out.trim()}`)
  t.notOk(existsSync(join(dir, 'conf')), 'renders nothing')
})
