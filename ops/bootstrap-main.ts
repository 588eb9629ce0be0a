import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { envReader, isConfigError } from '../shared/index.ts'
import { bootstrap, readStorageAccount, readSystemAccount, type BootstrapPaths } from './bootstrap.ts'
import { renderServerConf } from './server-conf.ts'

// `npm run bootstrap [dir]`, and the one-shot `bootstrap` and `bootstrap-ha` services of docker-compose.yml:
// writes operator, SYS and creds into dir (default ./.data) unless an operator.jwt is already there (a
// previous run, or nsc output the user mounted: then only the creds that are missing or that servers would
// refuse are written, or it exits 1 naming what is missing), then, when BOOTSTRAP_SERVER_CONF is set, renders
// the nats-server.conf and, when BOOTSTRAP_RESOLVER_ENV is set, the resolver's store settings beside it.
// BOOTSTRAP_CLUSTER_ROUTES makes both a JetStream cluster's (the `ha` profile): every node runs the one conf.
function settings() {
  const r = envReader(process.env)
  const routes = r.optionalString('BOOTSTRAP_CLUSTER_ROUTES')
  const s = {
    dir: process.argv[2] ?? r.path('BOOTSTRAP_DIR', './.data'),
    serverConf: r.optionalString('BOOTSTRAP_SERVER_CONF'),
    resolverEnv: r.optionalString('BOOTSTRAP_RESOLVER_ENV'),
    host: r.string('BOOTSTRAP_NATS_HOST', '0.0.0.0'),
    port: r.integer('BOOTSTRAP_NATS_PORT', 4222, 1, 65535),
    httpPort: r.integer('BOOTSTRAP_NATS_HTTP_PORT', 8222, 1, 65535),
    jwtDir: r.path('BOOTSTRAP_JWT_DIR', '/data/jwt'),
    routes: routes?.split(',').map((u) => u.trim()).filter((u) => u !== ''),
    clusterPort: r.integer('BOOTSTRAP_CLUSTER_PORT', 6222, 1, 65535),
    jetstreamDir: r.path('BOOTSTRAP_JETSTREAM_DIR', '/data/jetstream'),
  }
  if (s.routes !== undefined && s.routes.length < 3) {
    r.problem('BOOTSTRAP_CLUSTER_ROUTES', 'needs the route URL of every node, at least three (a replicated store needs a quorum)')
  }
  r.assertValid()
  return s
}
type Settings = ReturnType<typeof settings>

/** The first line of a resolver env file rendered for a cluster: how a later single-node run recognises one. */
const CLUSTER_MARK = '# rendered for a JetStream cluster'

/**
 * The resolver's store settings, sourced by the compose resolver before it starts (docker-compose.yml), so the
 * store mode always follows the conf rendered with it: `level` on one node; on a cluster, `jetstream` with the
 * storage user and its local view in a directory of its own beside the level store (which stays untouched).
 */
function resolverEnv(s: Settings, paths: BootstrapPaths): string {
  if (s.routes === undefined) return 'RESOLVER_STORE=level\n'
  return [
    CLUSTER_MARK,
    'RESOLVER_STORE=jetstream',
    `RESOLVER_JS_CREDS=${paths.storeCreds}`,
    `RESOLVER_JS_REPLICAS=3`,
    'RESOLVER_DATA_DIR="$RESOLVER_DATA_DIR/jetstream"',
    '',
  ].join('\n')
}

async function render(s: Settings, paths: BootstrapPaths): Promise<void> {
  if (s.serverConf === undefined) return
  // A single-node run never undoes a cluster's rendering: a node or resolver restarted on it would leave the
  // JetStream cluster, or answer from a level store beside the jetstream instances.
  if (s.routes === undefined && s.resolverEnv !== undefined && existsSync(s.resolverEnv)) {
    if ((await readFile(s.resolverEnv, 'utf8')).startsWith(CLUSTER_MARK)) {
      process.stdout.write(`kept ${s.serverConf} and ${s.resolverEnv}: this deployment runs a JetStream cluster and the jetstream store (the ha profile); start it with --profile ha\n`)
      return
    }
  }
  const sys = await readSystemAccount(paths)
  const storage = await readStorageAccount(paths)
  if (s.routes !== undefined && storage === undefined) {
    throw new Error(`${paths.meshJwt} is missing (and no operator signing key to create it): the jetstream store needs the storage account`)
  }
  await mkdir(dirname(s.serverConf), { recursive: true })
  await writeFile(
    s.serverConf,
    renderServerConf({
      serverName: 'nats',
      host: s.host,
      port: s.port,
      httpPort: s.httpPort,
      operatorJwtPath: paths.operatorJwt,
      systemAccount: sys.id,
      systemAccountJwt: sys.jwt,
      resolver: { type: 'cache', dir: s.jwtDir },
      ...(storage === undefined ? {} : { preload: { [storage.id]: storage.jwt } }),
      ...(s.routes === undefined
        ? {}
        : { cluster: { name: 'mesh', port: s.clusterPort, routes: s.routes }, jetstream: { dir: s.jetstreamDir } }),
    }),
  )
  const mode = s.routes === undefined ? 'cache resolver' : `cache resolver, JetStream cluster of ${s.routes.length} nodes`
  process.stdout.write(`wrote ${s.serverConf}: operator mode, ${mode}, system account ${sys.id}\n`)
  if (s.resolverEnv === undefined) return
  await writeFile(s.resolverEnv, resolverEnv(s, paths))
  process.stdout.write(`wrote ${s.resolverEnv}: resolver store ${s.routes === undefined ? 'level' : 'jetstream'}\n`)
}

async function main(): Promise<void> {
  const s = settings()
  const { paths, created, notes } = await bootstrap(s.dir)
  process.stdout.write(`${created ? 'created' : 'reused'} ${paths.dir}\n`)
  for (const note of notes) process.stdout.write(`${note}\n`)
  await render(s, paths)
}

/** A directory we may not write (a bind mount created by root) names the owner it needs, not just EACCES. */
function describe(err: NodeJS.ErrnoException): string {
  if ((err.code !== 'EACCES' && err.code !== 'EPERM') || err.path === undefined) return err.message
  const uid = process.getuid?.() ?? 'this user'
  const gid = process.getgid?.() ?? uid
  return `permission denied (${err.syscall ?? 'access'} ${err.path}): the identities directory must be writable by uid ${uid}, e.g. chown -R ${uid}:${gid} <that directory on the host>`
}

main().catch((err: unknown) => {
  process.stdout.write(`bootstrap failed: ${describe(err as NodeJS.ErrnoException)}\n`)
  process.exitCode = isConfigError(err) ? 2 : 1
})
