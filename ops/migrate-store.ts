import { createLogger, startup } from '../shared/index.ts'
import { loadResolverConfig } from '../services/resolver/config.ts'
import { openStorage } from '../services/resolver/store/jetstream-stream.ts'
import { LevelStore } from '../services/resolver/store/level.ts'
import { migrateLevelToStream } from '../services/resolver/store/migrate.ts'

// `npm run migrate-store [level-dir]`: copies a level store (default RESOLVER_DATA_DIR) into the jetstream
// engine's stream, configured as the resolver is (RESOLVER_JS_CREDS, RESOLVER_JS_URL, RESOLVER_JS_REPLICAS).
// Stop the level resolver first: LevelDB admits one process. Give the jetstream instances other data dirs.
startup('migrate-store', async () => {
  const config = loadResolverConfig({ ...process.env, RESOLVER_STORE: 'jetstream' })
  const log = createLogger(config.logLevel, 'migrate-store')
  const level = await LevelStore.open(process.argv[2] ?? config.dataDir, { cacheSize: 0 })
  try {
    const storage = await openStorage(config.js!, log)
    try {
      const r = await migrateLevelToStream(level, storage, log)
      process.stdout.write(
        `copied ${r.accounts} accounts (${r.versions} versions), ${r.replays} remembered delete requests, ${r.activations} activation tokens` +
          (r.skipped.length > 0 ? `; ${r.skipped.length} accounts the stream already had were left as they are` : '') +
          '\n',
      )
    } finally {
      await storage.nc.close()
    }
  } finally {
    await level.close()
  }
})
