import { emit, type Command } from '../context.ts'
import { driftSection, PASS_TIMEOUT_MS, reconcile } from '../reconcile.ts'

/**
 * `repair`: one reconciliation pass now. Exit 1 while something is left that the pass could not settle
 * (waiting for a signer, or a version no stored state can replace).
 */
export const repairCommand: Command = {
  name: 'repair',
  summary: 'bring every nats-server back to what the resolver stores (adopt newer valid versions, re-send the rest)',
  options: {
    'dry-run': { type: 'boolean', help: 'only report what differs, change nothing' },
  },
  async run(ctx) {
    const nc = await ctx.nats()
    const dryRun = ctx.options['dry-run'] === true
    const r = await reconcile(nc, dryRun, Math.max(ctx.global.timeoutMs, PASS_TIMEOUT_MS))
    emit(ctx, r, () => {
      const done = dryRun
        ? `${r.drift} of ${r.accountsChecked} accounts differ on some server (dry run: nothing changed)`
        : `${r.accountsChecked} accounts checked, ${r.drift} differed: ${r.adopted} adopted, ${r.reverted} reverted, ` +
          `${r.redeleted} deleted again, ${r.pending} waiting for a signer, ${r.unrepairable} unrepairable, ${r.failed} failed`
      return `${driftSection(r, 'servers')}\n${done} (${r.durationMs} ms)\n`
    })
    const left = dryRun ? r.drift : r.pending + r.unrepairable + r.failed
    return left > 0 ? 1 : 0
  },
}
