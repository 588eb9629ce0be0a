import { connect } from '@nats-io/transport-node'
import { credsAuthenticator } from '@nats-io/nats-core'
import { envReader, healthOnHost, isMeshService, MESH_SERVICES, readNatsConfig, subjects, type HealthReport } from '../shared/index.ts'

// `node --import tsx ops/healthcheck.ts <resolver|signer|notifier>`: a container healthcheck. Connects with
// the service's own NATS_URL and NATS_CREDS, asks the health endpoint of the instance on this host (its
// `health-on-host` subject, named after the hostname, which is the container's) and exits 0 only when it
// answers `ok`. One line on stdout either way. With several replicas, another container's instance never
// answers for this one.
const TIMEOUT_MS = 3000

async function check(service: string | undefined): Promise<number> {
  if (!isMeshService(service)) {
    process.stdout.write(`usage: healthcheck.ts <${MESH_SERVICES.join('|')}>\n`)
    return 2
  }
  const r = envReader(process.env)
  const config = readNatsConfig(r)
  r.assertValid()
  const nc = await connect({
    servers: config.servers,
    authenticator: config.creds === undefined ? undefined : credsAuthenticator(new TextEncoder().encode(config.creds)),
    name: `healthcheck-${service}`,
    reconnect: false,
    timeout: TIMEOUT_MS,
  })
  try {
    const reply = await nc.request(healthOnHost(subjects.health(service)), '', { timeout: TIMEOUT_MS })
    const health = reply.json<HealthReport>()
    process.stdout.write(`${service} ${health.ok ? 'healthy' : 'unhealthy'}: ${reply.string()}\n`)
    return health.ok === true ? 0 : 1
  } finally {
    await nc.close()
  }
}

check(process.argv[2]).then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stdout.write(`${process.argv[2] ?? 'service'} unhealthy: ${(err as Error).message}\n`)
    process.exitCode = 1
  },
)
