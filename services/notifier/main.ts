import { connectSystem, createLogger, MeshService, runUntilStopped, startup } from '../../shared/index.ts'
import { loadNotifierConfig } from './config.ts'
import { addNotifierEndpoints } from './endpoints.ts'

startup('notifier', async () => {
  const config = loadNotifierConfig(process.env)
  const log = createLogger(config.logLevel, 'notifier')
  const nc = await connectSystem(config.nats, log, 'notifier')
  const service = await MeshService.start(nc, log, {
    name: 'notifier',
    description: 'Pushes accepted account changes to every nats-server and reports who applied them',
  })
  addNotifierEndpoints(service)
  await runUntilStopped({ log, service, nc })
})
