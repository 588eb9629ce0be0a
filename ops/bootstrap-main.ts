import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { envReader, isConfigError } from '../shared/index.ts'
import { bootstrap, bootstrapPaths, readStorageAccount, readSystemAccount } from './bootstrap.ts'
import { renderServerConf } from './server-conf.ts'

// `npm run bootstrap [dir]`, and the one-shot `bootstrap` service of docker-compose.yml: writes operator, SYS
// and creds into dir (default ./.data) unless an operator.jwt is already there (a previous run, or nsc output
// the user mounted: then only the creds that are missing or that servers would refuse are written, or it
// exits 1 naming what is missing), then, when BOOTSTRAP_SERVER_CONF is set, renders the nats-server.conf.
function settings() {
  const r = envReader(process.env)
  const s = {
    dir: process.argv[2] ?? r.path('BOOTSTRAP_DIR', './.data'),
    serverConf: r.optionalString('BOOTSTRAP_SERVER_CONF'),
    host: r.string('BOOTSTRAP_NATS_HOST', '0.0.0.0'),
    port: r.integer('BOOTSTRAP_NATS_PORT', 4222, 1, 65535),
    httpPort: r.integer('BOOTSTRAP_NATS_HTTP_PORT', 8222, 1, 65535),
    jwtDir: r.path('BOOTSTRAP_JWT_DIR', '/data/jwt'),
  }
  r.assertValid()
  return s
}

async function main(): Promise<void> {
  const s = settings()
  const { paths, created, notes } = await bootstrap(s.dir)
  process.stdout.write(`${created ? 'created' : 'reused'} ${paths.dir}\n`)
  for (const note of notes) process.stdout.write(`${note}\n`)
  if (s.serverConf === undefined) return
  const sys = await readSystemAccount(paths)
  const storage = await readStorageAccount(paths)
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
    }),
  )
  process.stdout.write(`wrote ${s.serverConf}: operator mode, cache resolver, system account ${sys.id}\n`)
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
