import { connectSystem, createLogger, MeshService, runUntilStopped, startup } from '../../shared/index.ts'
import { loadNotifierConfig } from './config.ts'
import { addNotifierEndpoints } from './endpoints.ts'
import { ServerDirectory } from './server-directory.ts'

startup('notifier', async () => {
  const config = loadNotifierConfig(process.env)
  const log = createLogger(config.logLevel, 'notifier')
  const nc = await connectSystem(config.nats, log, 'notifier')
  const directory = new ServerDirectory(nc, log)
  await directory.refresh()
  const service = await MeshService.start(nc, log, {
    name: 'notifier',
    description: 'Pushes accepted account changes to every nats-server and reports who applied them',
  })
  addNotifierEndpoints(service, nc, directory, { enforceGraceMs: config.enforceGraceMs })
  await runUntilStopped({ log, service, nc })
})
