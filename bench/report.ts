import type { ReconcileBench } from './reconcile.ts'
import type { ImportRun } from './bulk-import.ts'
import type { EnforceCase } from './push-enforce.ts'
import type { FirstConnectCase } from './first-connect.ts'
import type { LookupCase } from './lookup.ts'
import type { Machine } from './machine.ts'
import type { MillionResult } from './million.ts'
import { median, ratio } from './stats.ts'

export interface Results {
  machine: Machine
  options: Record<string, unknown>
  seconds?: number
  lookupHot?: LookupCase[]
  /** The jetstream mode (R3, two resolver instances) against three clustered full servers. */
  lookupHotJs?: LookupCase[]
  firstConnect?: FirstConnectCase[]
  firstConnectJs?: FirstConnectCase[]
  pushEnforce?: EnforceCase[]
  bulkImport?: ImportRun[]
  million?: MillionResult
  reconcile?: ReconcileBench
  targets?: TargetResult[]
}

export interface TargetResult {
  target: string
  /** What is compared: "ratio" (project / nats-server full) or an absolute value with its unit. */
  measured: number
  unit: 'x' | 'ms' | 'MB' | 's'
  goal: string
  met: boolean
  /** How far from the goal and why, when missed; what the figure means otherwise. */
  note: string
}

const f = (n: number | undefined, d = 2) => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(d))
const us = (cpu: Record<string, number>) =>
  Object.entries(cpu)
    .map(([k, v]) => `${k} ${Math.round(v)}`)
    .join(' + ')
const total = (cpu: Record<string, number>) => Object.values(cpu).reduce((a, b) => a + b, 0)
const mb = (bytes: number) => bytes / 2 ** 20

const STORE_LABEL = { level: '', jetstream: ', jetstream (R3, 2 resolvers) vs 3 clustered full servers' } as const

function lookupCase(cases: LookupCase[] | undefined, system: 'full' | 'mesh', concurrency: number): LookupCase | undefined {
  return cases?.find((c) => c.system === system && c.concurrency === concurrency)
}

/** The LOOKUP targets, on one engine's cases. */
function lookupTargets(r: Results, cases: LookupCase[], label: string): TargetResult[] {
  const out: TargetResult[] = []
  const seqFull = lookupCase(cases, 'full', 1)
  const seqMesh = lookupCase(cases, 'mesh', 1)
  const l64Full = lookupCase(cases, 'full', 64)
  const l64Mesh = lookupCase(cases, 'mesh', 64)
  if (l64Full && l64Mesh) {
    const x = ratio(l64Mesh.rps, l64Full.rps)
    out.push({
      target: `LOOKUP throughput, 64 in flight (10k accounts, hot)${label}`,
      measured: x,
      unit: 'x',
      goal: '≥ 1.2x',
      met: x >= 1.2,
      note:
        x >= 1.2
          ? ''
          : `${f((1.2 - x) / 1.2 * 100, 0)}% below the goal. CPU per lookup: mesh ${Math.round(total(l64Mesh.cpuUsPerRequest))} µs ` +
            `(${us(l64Mesh.cpuUsPerRequest)}) vs full ${Math.round(total(l64Full.cpuUsPerRequest))} µs (${us(l64Full.cpuUsPerRequest)}). ` +
            `A closed loop of 64 runs at 64 / round trip; the mesh's round trip crosses the server twice and wakes a second ` +
            `process (p50 ${f(l64Mesh.latency.p50, 3)} vs ${f(l64Full.latency.p50, 3)} ms), so even where it spends less CPU per lookup ` +
            `it does not pull ahead on ${r.machine.nproc} cores shared with the client; where the machine is busy, the CPU sum bounds both.`,
    })
  }
  if (seqFull && seqMesh) {
    const p50 = ratio(seqMesh.latency.p50, seqFull.latency.p50)
    const p99 = ratio(seqMesh.latency.p99, seqFull.latency.p99)
    const hops = `The mesh's answer takes two more loopback hops (server→resolver→server) and a wake-up of another process: ` +
      `about ${f((seqMesh.latency.p50 - seqFull.latency.p50) * 1000, 0)} µs over the full server's ${f(seqFull.latency.p50 * 1000, 0)} µs, a fixed cost no code in the resolver can remove.`
    out.push({
      target: `sequential LOOKUP p50 (1 in flight)${label}`,
      measured: p50,
      unit: 'x',
      goal: '≤ 1.1x',
      met: p50 <= 1.1,
      note: p50 <= 1.1 ? '' : `${f(seqMesh.latency.p50, 3)} vs ${f(seqFull.latency.p50, 3)} ms. ${hops}`,
    })
    out.push({
      target: `sequential LOOKUP p99 (1 in flight)${label}`,
      measured: p99,
      unit: 'x',
      goal: '≤ 1.5x',
      met: p99 <= 1.5,
      note: p99 <= 1.5 ? '' : `${f(seqMesh.latency.p99, 3)} vs ${f(seqFull.latency.p99, 3)} ms. ${hops} At the tail, a third process to be scheduled on 2 busy cores.`,
    })
  }
  return out
}

/** Judges every target the run has figures for. */
export function evaluateTargets(r: Results): TargetResult[] {
  const out: TargetResult[] = []
  for (const store of ['level', 'jetstream'] as const) {
    const imports = r.bulkImport?.filter((i) => (i.store ?? 'level') === store) ?? []
    if (imports.length === 0) continue
    const full = imports.filter((i) => i.system === 'full')
    const mesh = imports.filter((i) => i.system === 'mesh')
    const x = ratio(median(mesh.map((i) => i.perSecond)), median(full.map((i) => i.perSecond)))
    const cpuFull = median(full.map((i) => total(i.cpuUsPerPush)))
    const cpuMesh = median(mesh.map((i) => total(i.cpuUsPerPush)))
    // the breakdown of the round whose total is nearest the median
    const nearest = (runs: ImportRun[], to: number) => runs.reduce((a, b) => (Math.abs(total(b.cpuUsPerPush) - to) < Math.abs(total(a.cpuUsPerPush) - to) ? b : a))
    const m = nearest(mesh, cpuMesh)
    const f0 = nearest(full, cpuFull)
    const hops =
      store === 'level'
        ? `Each push crosses NATS between the client, the resolver, the signer and the notifier, and is verified by every server (nsc's push) and by the signer, where a ` +
          `full server does all of it in one process with one verification. In a bulk import the servers' replies to nsc's push stand for the notifier's broadcast, so ` +
          `the servers do not verify it a second time (README, "The push path").`
        : `Beside the level path, each push is a JetStream write replicated to 3 nodes, read back by every resolver instance into its local view, ` +
          `and delivered through the shared durable consumer (a fetch and an ack); the full cluster counts a push when all 3 servers replied.`
    out.push({
      target: `durable push throughput, 32 in flight (nsc push -A of 10k accounts)${STORE_LABEL[store]}`,
      measured: x,
      unit: 'x',
      goal: '≥ 1.0x',
      met: x >= 1.0,
      note:
        (x >= 1.0 ? `` : `${f((1 - x) * 100, 0)}% short. `) +
        `CPU per push: mesh ${Math.round(cpuMesh)} µs (${us(m.cpuUsPerPush)}) vs full ${Math.round(cpuFull)} µs (${us(f0.cpuUsPerPush)}); ` +
        `on ${r.machine.nproc} shared cores throughput follows total CPU. ${hops}`,
    })
  }
  for (const [store, cases] of [['level', r.lookupHot], ['jetstream', r.lookupHotJs]] as const) if (cases) out.push(...lookupTargets(r, cases, STORE_LABEL[store]))
  const fc = [...(r.firstConnect ?? []), ...(r.firstConnectJs ?? [])]
  const fcOf = (system: FirstConnectCase['system']) => fc.find((c) => c.system === system)
  const fcFloor = fcOf('preload')
  const added = (c: FirstConnectCase) => c.latency.p50 - (fcFloor?.latency.p50 ?? 0)
  const firstConnectPairs = [
    {
      mesh: fcOf('mesh'),
      full: fcOf('full-peer'),
      target: 'first connect of a not-yet-loaded account, vs a full-resolver peer (p50)',
      why: ' The account is read from LevelDB (not yet in the resolver\'s cache) and crosses one more process than a route to the full server.',
    },
    {
      mesh: fcOf('mesh-js'),
      full: fcOf('full-cluster'),
      target: 'first connect of a not-yet-loaded account, jetstream node vs a server of a full cluster (p50)',
      why: ' The full server reads the account from its own directory; the jetstream node asks a resolver instance, which reads its local view.',
    },
  ]
  for (const { mesh, full, target, why } of firstConnectPairs) {
    if (mesh === undefined || full === undefined) continue
    const x = ratio(mesh.latency.p50, full.latency.p50)
    const floor = mesh.system === 'mesh' && fcFloor ? ` (preloaded floor ${f(fcFloor.latency.p50)}); fetching adds ${f(added(mesh))} vs ${f(added(full))} ms` : ''
    out.push({
      target,
      measured: x,
      unit: 'x',
      goal: '≤ 1.2x',
      met: x <= 1.2,
      note: `p50 ${f(mesh.latency.p50)} vs ${f(full.latency.p50)} ms${floor}. p99 ${f(mesh.latency.p99)} vs ${f(full.latency.p99)} ms.` + (x <= 1.2 ? '' : why),
    })
  }
  const pe = r.pushEnforce
  const managed = pe?.find((c) => c.system === 'mesh-managed')
  const meshPush = pe?.find((c) => c.system === 'mesh')
  const fullPush = pe?.find((c) => c.system === 'full')
  if (managed) {
    out.push({
      target: 'push → disconnect on 3 servers, p99 (mesh path: managed account, delivered by the notifier)',
      measured: managed.disconnect.p99,
      unit: 'ms',
      goal: '≤ 50 ms',
      met: managed.disconnect.p99 <= 50 && managed.missed === 0,
      note:
        `signer re-signs, resolver syncs to disk, notifier delivers; p50 ${f(managed.disconnect.p50, 1)} ms. ` +
        `Operator-signed nsc push on the same mesh (servers apply it themselves): p99 ${f(meshPush?.disconnect.p99, 1)} ms; ` +
        `full servers: p99 ${f(fullPush?.disconnect.p99, 1)} ms.` +
        (managed.missed > 0 ? ` ${managed.missed} users were not disconnected within 5 s.` : ''),
    })
  }
  const m = r.million
  if (m !== undefined) {
    const cold = m.lookups.find((c) => c.system === 'mesh' && c.concurrency === 1)
    const coldFull = m.lookups.find((c) => c.system === 'full' && c.concurrency === 1)
    if (cold) {
      out.push({
        target: `cold LOOKUP p99 with ${m.accounts.toLocaleString('en')} accounts (1 in flight, random ids)`,
        measured: cold.latency.p99,
        unit: 'ms',
        goal: '≤ 2 ms',
        met: cold.latency.p99 <= 2,
        note: `full server: ${f(coldFull?.latency.p99, 3)} ms; resolver cache ${m.cacheSize.toLocaleString('en')} accounts, the rest read from LevelDB`,
      })
    }
    out.push({
      target: `resolver RSS with ${m.accounts.toLocaleString('en')} accounts stored (after the cold lookups)`,
      measured: m.mesh.rssAfterMb,
      unit: 'MB',
      goal: '≤ 300 MB',
      met: m.mesh.rssAfterMb <= 300,
      note:
        `${f(m.mesh.anonAfterMb, 0)} MB private, ${f(m.mesh.fileAfterMb, 0)} MB mapped files: LevelDB maps its table files ` +
        `read-only and random lookups touch pages of all of them; that is page cache the kernel takes back under pressure, ` +
        `not memory the resolver holds (its account cache is about 70 MB per 100k accounts). ` +
        `Full server: ${f(m.full.rssAfterMb, 0)} MB (${f(m.full.anonAfterMb, 0)} MB private).`,
    })
    out.push({
      target: `ready: start to first answered LOOKUP with ${m.accounts.toLocaleString('en')} accounts`,
      measured: m.mesh.readyMs / 1000,
      unit: 's',
      goal: '≤ 2 s',
      met: m.mesh.readyMs <= 2000,
      note: `includes node + tsx start and the resolver's peer discovery; full server: ${f(m.full.readyMs / 1000, 1)} s`,
    })
  }
  return out
}

export function renderMarkdown(r: Results): string {
  const L: string[] = []
  const m = r.machine
  L.push(
    `Run ${m.date.slice(0, 16).replace('T', ' ')} UTC on ${m.nproc} cores (${m.cpu}), ${m.memoryGb} GB, ${m.os}, node ${m.node}, ` +
      `nats-server ${m.natsServer}; load average ${f(m.loadStart)} at start, ${f(m.loadEnd)} at end` +
      (r.seconds !== undefined ? `; ${Math.round(r.seconds)} s` : '') +
      '. Ratios are project / nats-server `full` resolver measured in the same run, runs alternated.',
    '',
  )
  if (r.targets?.length) {
    L.push('| target | measured | goal | met | notes |', '| --- | --- | --- | --- | --- |')
    for (const t of r.targets) {
      const v = t.unit === 'x' ? `${f(t.measured)}x` : `${f(t.measured, t.unit === 'MB' ? 0 : 2)} ${t.unit}`
      L.push(`| ${t.target} | ${v} | ${t.goal} | ${t.met ? 'yes' : '**no**'} | ${t.note} |`)
    }
    L.push('')
  }
  const lookupTable = (title: string, cases: LookupCase[]) => {
    L.push(`**${title}**`, '')
    L.push('| in flight | full req/s | mesh req/s | ratio | full p50 / p99 ms | mesh p50 / p99 ms | p50 ratio | p99 ratio | CPU µs/lookup full | CPU µs/lookup mesh |')
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const c of [...new Set(cases.map((x) => x.concurrency))]) {
      const a = cases.find((x) => x.system === 'full' && x.concurrency === c)!
      const b = cases.find((x) => x.system === 'mesh' && x.concurrency === c)!
      L.push(
        `| ${c} | ${Math.round(a.rps)} | ${Math.round(b.rps)} | ${f(ratio(b.rps, a.rps))}x | ${f(a.latency.p50, 3)} / ${f(a.latency.p99, 3)} | ` +
          `${f(b.latency.p50, 3)} / ${f(b.latency.p99, 3)} | ${f(ratio(b.latency.p50, a.latency.p50))}x | ${f(ratio(b.latency.p99, a.latency.p99))}x | ` +
          `${Math.round(total(a.cpuUsPerRequest))} (${us(a.cpuUsPerRequest)}) | ${Math.round(total(b.cpuUsPerRequest))} (${us(b.cpuUsPerRequest)}) |`,
      )
    }
    const errors = cases.reduce((n, c) => n + c.errors + c.timeouts, 0)
    L.push('', `Throughput is the median of the rounds; latencies pool every round. Empty or missing replies: ${errors}.`, '')
  }
  if (r.lookupHot) lookupTable('LOOKUP, 10k stored accounts, random ids (hot)', r.lookupHot)
  if (r.lookupHotJs) {
    lookupTable('LOOKUP, 10k stored accounts, random ids (hot), jetstream: a node of the R3 mesh vs a server of 3 clustered full servers', r.lookupHotJs)
    L.push(
      'Every server of a full cluster answers each LOOKUP; the client takes the first reply, and the CPU column counts all three servers. ' +
        'On the mesh, the client is on node 1 and the two resolver instances (each connected to a node the client library picked) share ' +
        'the LOOKUPs through their queue group; the CPU column counts the 3 nodes and both instances.',
      '',
    )
  }
  if (r.reconcile) {
    const c = r.reconcile
    L.push(`**One reconciliation pass, ${c.accounts} accounts loaded on each of ${c.servers} cache servers**`, '')
    L.push('| pass | accounts checked | p50 ms | max ms | runs |', '| --- | --- | --- | --- | --- |')
    L.push(`| nothing to repair | ${c.checked} | ${f(c.clean.p50, 0)} | ${f(c.clean.max, 0)} | ${c.clean.n} |`)
    L.push(`| ${c.drifted.accounts} accounts older on every server, ${c.drifted.reverted} reverted | ${c.checked} | ${c.drifted.ms} | ${c.drifted.ms} | 1 |`)
    L.push('', `Loading the accounts (one user connect per account per server) took ${f(c.loadSeconds, 1)} s; it is setup, not part of a pass.`, '')
  }
  const firstConnects = [...(r.firstConnect ?? []), ...(r.firstConnectJs ?? [])]
  if (firstConnects.length > 0) {
    L.push('**First connect of a user whose account the server has not loaded**', '')
    L.push('| how the server learns the account | p50 ms | p90 ms | p99 ms | samples | failed |', '| --- | --- | --- | --- | --- | --- |')
    const label: Record<FirstConnectCase['system'], string> = {
      mesh: 'mesh (level): cache server + resolver',
      'full-peer': 'full-resolver peer: cache server routed to a full server',
      preload: 'preloaded in the config (floor)',
      'mesh-js': 'mesh (jetstream): a node of the 3-node cluster + its resolver instance',
      'full-cluster': 'a server of 3 clustered full servers, holding the account itself',
    }
    for (const c of firstConnects) {
      L.push(`| ${label[c.system]} | ${f(c.latency.p50)} | ${f(c.latency.p90)} | ${f(c.latency.p99)} | ${c.latency.n} | ${c.failures} |`)
    }
    L.push('', 'Clients sign the server nonce with OpenSSL (not nacl), so the client adds the same small cost to every system.', '')
  }
  if (r.pushEnforce) {
    L.push('**Push to enforcement: nsc-style push revoking a user connected to each of 3 clustered servers**', '')
    L.push('| system | disconnect p50 ms | p99 ms | last of 3 p99 ms | resolver reply p50 / p99 ms | notifier broadcast p50 / p99 ms | missed |')
    L.push('| --- | --- | --- | --- | --- | --- | --- |')
    const label = {
      full: '3 full servers (they apply the push)',
      mesh: 'mesh, operator-signed (servers apply it too)',
      'mesh-managed': 'mesh, managed account (only the mesh can apply it)',
    }
    for (const c of r.pushEnforce) {
      L.push(
        `| ${label[c.system]} | ${f(c.disconnect.p50, 1)} | ${f(c.disconnect.p99, 1)} | ${f(c.allDisconnected.p99, 1)} | ` +
          `${c.ack ? `${f(c.ack.p50, 1)} / ${f(c.ack.p99, 1)}` : '–'} | ${c.broadcast ? `${f(c.broadcast.p50, 1)} / ${f(c.broadcast.p99, 1)}` : '–'} | ${c.missed} |`,
      )
    }
    L.push('', `${r.pushEnforce[0]?.trials} trials per system, 3 users each.`, '')
  }
  for (const store of ['level', 'jetstream'] as const) {
    const runs = r.bulkImport?.filter((i) => (i.store ?? 'level') === store) ?? []
    if (runs.length === 0) continue
    L.push(
      store === 'level'
        ? '**Bulk import: nsc push -A of 10k accounts, 32 in flight**'
        : '**Bulk import, jetstream: nsc push -A of 10k accounts, 32 in flight, into the R3 mesh vs 3 clustered full servers**',
      '',
    )
    L.push('| system | round | pushes/s | p50 / p99 ms | all delivered s | store on disk MB (apparent) | RSS MB (peak) | CPU µs/push |')
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const i of runs) {
      L.push(
        `| ${i.system} | ${i.round + 1} | ${Math.round(i.perSecond)} | ${f(i.latency.p50, 1)} / ${f(i.latency.p99, 1)} | ${f(i.deliveredSeconds, 1)} | ` +
          `${f(mb(i.storeDiskBytes), 1)} (${f(mb(i.storeApparentBytes), 1)}) | ${f(i.rssMb, 0)} (${f(i.peakRssMb, 0)}) | ${Math.round(total(i.cpuUsPerPush))} (${us(i.cpuUsPerPush)}) |`,
      )
    }
    const errors = runs.reduce((n, i) => n + i.errors + i.timeouts, 0)
    L.push(
      '',
      store === 'level'
        ? `Full: a full-mode server alone, which writes one file per account (no fsync). Mesh: a cache-mode server with the three services; ` +
            `a push counts when the resolver's reply arrives, sent only once the JWT, its history entry and its outbox entry are synced. ` +
            `RSS is the full server's or the resolver's. Refused or unanswered pushes: ${errors}.`
        : `Full: three clustered full-mode servers; a push counts when all three replied (each wrote its file, no fsync). Mesh: three ` +
            `JetStream nodes (cache mode), the resolver's stream at R3, two resolver instances, one signer and one notifier; the client is on ` +
            `node 1 and the resolver instances share the pushes (queue group); a push counts when the resolver replies, sent once JetStream acknowledged ` +
            `the write (stored on a quorum). Disk: the three replicas (full: three directories; mesh: the three nodes' JetStream ` +
            `directories, without the resolvers' local views). RSS is the first full server's or the first resolver's. Refused or unanswered pushes: ${errors}.`,
      '',
    )
  }
  if (r.million) {
    const x = r.million
    L.push(`**${x.accounts.toLocaleString('en')} accounts**`, '')
    L.push(`Stores built directly (full: \`<id>.jwt\` files; mesh: LevelDB through \`services/resolver/store/level.ts\`, ${f(x.seedSeconds, 0)} s) rather than pushed.`, '')
    L.push('| | full server | resolver |', '| --- | --- | --- |')
    L.push(`| ready: spawn to first answered LOOKUP | ${f(x.full.readyMs / 1000)} s | ${f(x.mesh.readyMs / 1000)} s |`)
    L.push(`| RSS after start | ${f(x.full.rssReadyMb, 0)} MB | ${f(x.mesh.rssReadyMb, 0)} MB |`)
    L.push(`| RSS after the cold lookups | ${f(x.full.rssAfterMb, 0)} MB | ${f(x.mesh.rssAfterMb, 0)} MB |`)
    L.push(`| of which private / mapped files | ${f(x.full.anonAfterMb, 0)} / ${f(x.full.fileAfterMb, 0)} MB | ${f(x.mesh.anonAfterMb, 0)} / ${f(x.mesh.fileAfterMb, 0)} MB |`)
    L.push(`| store on disk (apparent) | ${f(mb(x.full.storeDiskBytes), 0)} MB (${f(mb(x.full.storeApparentBytes), 0)}) | ${f(mb(x.mesh.storeDiskBytes), 0)} MB (${f(mb(x.mesh.storeApparentBytes), 0)}) |`)
    L.push('')
    lookupTable(`LOOKUP of random ids out of ${x.accounts.toLocaleString('en')} (cold)`, x.lookups)
  }
  return L.join('\n')
}
