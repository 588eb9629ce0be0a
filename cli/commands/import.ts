import { claimsOf } from '../accounts.ts'
import { CliError } from '../cli-error.ts'
import { emit, type Command } from '../context.ts'
import { apply, judge, type ImportResult, type Outcome } from '../import-plan.ts'
import { fromDirectory, fromPack, type Found, type SourceContents } from '../import-sources.ts'
import { progressBar } from '../progress.ts'
import { mapLimit } from '../requests.ts'
import { renderTable } from '../table.ts'

const IN_FLIGHT = 32
// Above this many results the readable summary lists only what needs a look (--json always has every one).
const FULL_TABLE_ROWS = 50
const ORDER: Outcome[] = ['store', 'stored', 'current', 'newer', 'skipped', 'refused', 'failed']
const LABEL: Record<Outcome, string> = {
  store: 'would store',
  stored: 'stored',
  current: 'already current',
  newer: 'newer in the mesh',
  skipped: 'skipped',
  refused: 'refused',
  failed: 'failed',
}
const FINE = new Set<Outcome>(['store', 'stored', 'current', 'newer', 'skipped'])

function summary(results: ImportResult[], dryRun: boolean): string {
  const bad = results.filter((r) => !FINE.has(r.outcome))
  const shown = results.length > FULL_TABLE_ROWS ? bad : results
  const table = shown.length === 0 ? '' : renderTable(
    ['source', 'account', 'name', 'outcome', 'message'],
    shown.map((r) => [r.source, r.account, r.name, LABEL[r.outcome], r.reason ? `${r.reason}: ${r.message}` : r.message]),
  )
  const counts = ORDER.map((o) => [o, results.filter((r) => r.outcome === o).length] as const)
    .filter(([, n]) => n > 0)
    .map(([o, n]) => `${n} ${LABEL[o]}`)
  const hidden = results.length - shown.length
  return `${table}${dryRun ? 'dry run, nothing changed: ' : ''}${counts.join(', ') || 'nothing found'}` +
    `${hidden > 0 ? ` (${hidden} not shown; --json lists all)` : ''}\n`
}

/**
 * Accounts before activations: an activation is checked against its exporter's JWT, which the same import
 * may be bringing in.
 */
async function run(
  ctx: Parameters<Command['run']>[0],
  contents: SourceContents,
  dryRun: boolean,
): Promise<ImportResult[]> {
  const nc = await ctx.nats()
  const timeoutMs = ctx.global.timeoutMs
  const exporters = new Map<string, string>()
  for (const f of contents.found) {
    const sub = claimsOf(f.jwt)?.sub
    if (f.kind === 'account' && typeof sub === 'string') exporters.set(sub, f.jwt)
  }
  const progress = progressBar(ctx.io, contents.found.length, dryRun ? 'checked' : 'imported')
  const one = async (f: Found) => {
    const judged = await judge(nc, f, exporters, timeoutMs)
    const r = dryRun ? judged : await apply(nc, f, judged, timeoutMs)
    progress.tick()
    return r
  }
  const accounts = await mapLimit(contents.found.filter((f) => f.kind === 'account'), IN_FLIGHT, one)
  const activations = await mapLimit(contents.found.filter((f) => f.kind === 'activation'), IN_FLIGHT, one)
  progress.done()
  const passed = contents.passed.map((p): ImportResult => ({ kind: 'file', account: undefined, name: undefined, ...p }))
  return [...accounts, ...activations, ...passed]
}

/** `import <dir> | --pack`: fills the mesh from what a running fleet holds, as validated pushes. */
export const importCommand: Command = {
  name: 'import',
  args: '[dir]',
  summary: "fill the mesh from a fleet: a full resolver's dir, an nsc or nats-account-server store, or --pack from a full-resolver server",
  options: {
    pack: { type: 'boolean', help: 'read a full-resolver server\'s store through $SYS.REQ.CLAIMS.PACK (as nsc pull does)' },
    'dry-run': { type: 'boolean', help: 'report what would be stored, refused and already current; change nothing' },
  },
  async run(ctx) {
    const dir = ctx.positionals[0]
    const pack = ctx.options.pack === true
    if ((dir === undefined) === !pack) throw new CliError('usage: mesh import <dir> or mesh import --pack')
    const dryRun = ctx.options['dry-run'] === true
    const contents = pack ? await fromPack(await ctx.nats(), ctx.global.timeoutMs) : await fromDirectory(dir!)
    const results = await run(ctx, contents, dryRun)
    emit(ctx, { dryRun, results }, () => summary(results, dryRun))
    return results.every((r) => FINE.has(r.outcome)) ? 0 : 1
  },
}
