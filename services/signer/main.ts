import { connectSystem, createLogger, MeshService, runUntilStopped, startup } from '../../shared/index.ts'
import { loadSignerConfig } from './config.ts'
import { addSignerEndpoints } from './endpoints.ts'
import { addResignEndpoints } from './resign.ts'

startup('signer', async () => {
  const config = loadSignerConfig(process.env)
  const log = createLogger(config.logLevel, 'signer')
  const nc = await connectSystem(config.nats, log, 'signer')
  const service = await MeshService.start(nc, log, {
    name: 'signer',
    description: 'Validates account JWTs against the trusted operator and signs managed accounts',
    metadata: { managed: config.signingKey === undefined ? 'false' : 'true' },
  })
  addSignerEndpoints(service, config, nc)
  addResignEndpoints(service, config)
  await runUntilStopped({ log, service, nc })
})
