import { mkdir, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runImports } from './bulk-import.ts'
import { makeAccounts, makeBenchFixture } from './fixture.ts'
import { connectableAccounts, runFirstConnects, runFirstConnectsJs } from './first-connect.ts'
import { checkOneResponder, jsLookupSystems, runLookups, startLookupSystems } from './lookup.ts'
import { describeMachine } from './machine.ts'
import { runMillion } from './million.ts'
import { runPushEnforcement } from './push-enforce.ts'
import { runReconcile } from './reconcile.ts'
import { evaluateTargets, renderMarkdown, type Results } from './report.ts'
import { withScope } from './scope.ts'
import { startJsComparison, type Store } from './systems.ts'

const SCENARIOS = ['lookup', 'connect', 'enforce', 'import'] as const
type Scenario = (typeof SCENARIOS)[number]

const USAGE = `npm run bench [-- options]
  (default)          LOOKUP (10k hot), first connect, push to disconnect, bulk import, on both engines
  --million          only the 1M-account cases (cold LOOKUP, ready time, RSS, store size); also BENCH_MILLION=1
  --accounts N       accounts for --million (default 1000000) or --reconcile (default 10000)
  --reconcile        only one reconciliation pass over 10k accounts loaded on 3 cache servers (slow setup:
                     a user connects once per account per server); also BENCH_RECONCILE=1
  --only a,b         run only these of: ${SCENARIOS.join(', ')}
  --store S          level, jetstream or both (default both): which resolver engine the default cases run on.
                     level: one cache server + one resolver on LevelDB, against one full server;
                     jetstream: 3 JetStream nodes, the stream at R3, 2 resolver instances, against 3 clustered
                     full servers (LOOKUP, first connect, bulk import; push to disconnect is level only)
  --rounds N         alternated rounds per comparison (default: LOOKUP 5 on level, 3 on jetstream; import 3 on
                     level, 2 on jetstream, whose rounds take longer; 2 for --million)
  --quick            shorter windows and fewer rounds (LOOKUP 2, import 1), for trying the harness
Results: bench/results/<default|million|reconcile|partial>.{json,md} (partial: --only, --store or --quick);
the Markdown table is printed too.`

const { values } = parseArgs({
  options: {
    million: { type: 'boolean', default: process.env.BENCH_MILLION === '1' },
    reconcile: { type: 'boolean', default: process.env.BENCH_RECONCILE === '1' },
    accounts: { type: 'string' },
    only: { type: 'string' },
    rounds: { type: 'string' },
    store: { type: 'string', default: 'both' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}

const log = (s: string) => process.stderr.write(`${s}\n`)
const only = values.only?.split(',').map((s) => s.trim()) as Scenario[] | undefined
for (const s of only ?? []) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; one of ${SCENARIOS.join(', ')}`)
const wanted = (s: Scenario) => !values.million && !values.reconcile && (only === undefined || only.includes(s))
const STORES = { level: ['level'], jetstream: ['jetstream'], both: ['level', 'jetstream'] } as const satisfies Record<string, readonly Store[]>
if (!Object.hasOwn(STORES, values.store)) throw new Error(`unknown --store ${values.store}; one of ${Object.keys(STORES).join(', ')}`)
const stores: readonly Store[] = STORES[values.store as keyof typeof STORES]
const rounds = values.rounds === undefined ? undefined : Number(values.rounds)
const window = values.quick ? { warmupMs: 200, durationMs: 700 } : { warmupMs: 500, durationMs: 2000 }
const options = {
  million: values.million,
  accounts: values.million ? Number(values.accounts ?? 1_000_000) : values.reconcile ? Number(values.accounts ?? 10_000) : 10_000,
  reconcile: values.reconcile,
  only: only ?? null,
  stores,
  lookupRounds: { level: rounds ?? (values.quick ? 2 : 5), jetstream: rounds ?? (values.quick ? 2 : 3) },
  importRounds: { level: rounds ?? (values.quick ? 1 : 3), jetstream: rounds ?? (values.quick ? 1 : 2) },
  concurrencies: [1, 16, 64],
  firstConnectSamples: values.quick ? 30 : 200,
  enforceTrials: values.quick ? 15 : 100,
  importInFlight: 32,
  ...window,
}

const lookupOptions = (store: Store) => ({ concurrencies: options.concurrencies, rounds: options.lookupRounds[store], warm: true, log, ...window })

const started = performance.now()
const results: Results = { machine: await describeMachine(), options }
log(`machine: ${results.machine.nproc} cores, ${results.machine.cpu}, node ${results.machine.node}, nats-server ${results.machine.natsServer}, load ${results.machine.loadStart.toFixed(2)}`)

await withScope(async (scope) => {
  const fx = await makeBenchFixture(scope)
  const accounts = wanted('lookup') || wanted('import') || wanted('connect') ? makeAccounts(fx, 10_000) : undefined
  const onLevel = stores.includes('level')
  if (onLevel && wanted('lookup')) {
    log('LOOKUP, 10k accounts (hot), level')
    await withScope(async (s) => {
      const systems = await startLookupSystems(s, fx, accounts!, log)
      results.lookupHot = await runLookups(systems, accounts!.ids, lookupOptions('level'))
    })
  }
  if (onLevel && wanted('connect')) {
    log('first connect of an account the server has not loaded, level')
    results.firstConnect = await withScope((s) => runFirstConnects(s, fx, accounts!, { samples: options.firstConnectSamples, log }))
  }
  if (onLevel && wanted('enforce')) {
    log('push to disconnect on 3 servers')
    results.pushEnforce = await withScope((s) => runPushEnforcement(s, fx, { trials: options.enforceTrials, log }))
  }
  if (stores.includes('jetstream') && (wanted('lookup') || wanted('connect'))) {
    log('jetstream: LOOKUP and first connect, against 3 clustered full servers')
    await withScope(async (s) => {
      const { accounts: connectable, all } = connectableAccounts(fx, accounts!, options.firstConnectSamples)
      const js = await startJsComparison(s, fx, wanted('connect') ? all : accounts!, log)
      if (wanted('lookup')) {
        const systems = jsLookupSystems(js)
        for (const sys of systems) await checkOneResponder(sys, accounts!.ids[0]!, accounts!.jwts[0]!)
        log('LOOKUP, 10k accounts (hot), jetstream')
        results.lookupHotJs = await runLookups(systems, accounts!.ids, lookupOptions('jetstream'))
      }
      if (wanted('connect')) {
        log('first connect of an account the server has not loaded, jetstream')
        results.firstConnectJs = await runFirstConnectsJs(js, connectable, log)
      }
    })
  }
  if (wanted('import')) {
    results.bulkImport = []
    for (const store of stores) {
      log(`bulk import of 10k accounts, ${options.importInFlight} in flight, ${store}`)
      results.bulkImport.push(...(await runImports(fx, accounts!, { rounds: options.importRounds[store], inFlight: options.importInFlight, store, log })))
    }
  }
  if (values.reconcile) {
    log(`reconciliation pass, ${options.accounts} accounts on 3 servers`)
    results.reconcile = await withScope((s) => runReconcile(s, fx, { count: options.accounts, rounds: rounds ?? 3, log }))
  }
  if (values.million) {
    log(`${options.accounts} accounts`)
    results.million = await withScope((s) =>
      runMillion(s, fx, { accounts: options.accounts, rounds: rounds ?? 2, log, ...window }),
    )
  }
})

results.machine.loadEnd = loadavg()[0]
results.seconds = (performance.now() - started) / 1000
results.targets = evaluateTargets(results)
// a --quick or narrowed run does not replace the default run's figures
const name = values.million ? 'million' : values.reconcile ? 'reconcile' : only === undefined && !values.quick && values.store === 'both' ? 'default' : 'partial'
const dir = join(import.meta.dirname, 'results')
await mkdir(dir, { recursive: true })
const md = renderMarkdown(results)
await writeFile(join(dir, `${name}.json`), JSON.stringify(results, null, 2) + '\n')
await writeFile(join(dir, `${name}.md`), md + '\n')
console.log(md)
log(`wrote bench/results/${name}.json and .md in ${Math.round(results.seconds)} s`)
