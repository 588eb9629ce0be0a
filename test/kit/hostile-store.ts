import { readFile } from 'node:fs/promises'
import type { Test } from 'tap'
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream'
import { STREAM } from '../../services/resolver/store/jetstream-stream.ts'
import { subjects } from '../../shared/index.ts'
import { connectWith } from './clients.ts'
import { push } from './sys-requests.ts'
import type { Fixture } from './fixtures.ts'
import { jetstreamEnv } from './jetstream.ts'
import { startCluster, startNatsServer, type NatsServerHandle } from './nats-server.ts'

/**
 * The store engine the hostile-input suite (test/hostile.test.ts) runs its resolver on: `level` by default,
 * `jetstream` when MESH_HOSTILE_STORE=jetstream (test/hostile-jetstream.test.ts sets it), where it also checks
 * the stream itself: what hostile requests may have written there.
 */
export interface HostileStore {
  engine: 'level' | 'jetstream'
  /** The suite's one nats-server: JetStream on, outside any cluster, when the resolver needs it. */
  startServers(t: Test, fx: Fixture, opts: { maxPayload: number }): Promise<NatsServerHandle[]>
  /** For startResolver. */
  resolverEnv(fx: Fixture): Record<string, string>
  /** Remembers where the store stands, once the known accounts are stored. */
  baseline(t: Test, fx: Fixture, servers: NatsServerHandle[]): Promise<void>
  /**
   * Checks that nothing hostile changed the store: since the baseline, the stream holds only versions of
   * accounts the suite knows random pushes created (`created`), and delivery-only markers (a refused push has
   * the stored version sent again); never a version or deletion of another account, a remembered delete
   * request or an activation token.
   */
  unchanged(t: Test, created: Set<string>): Promise<void>
}

export function hostileStore(): HostileStore {
  if (process.env.MESH_HOSTILE_STORE !== 'jetstream') {
    return { engine: 'level', startServers: (t, fx, opts) => startCluster(t, fx, 1, opts), resolverEnv: () => ({}), baseline: async () => {}, unchanged: async () => {} }
  }
  let jsm: JetStreamManager | undefined
  let from = 0
  return {
    engine: 'jetstream',
    // startCluster gives even one server a cluster block, which JetStream refuses without routes
    startServers: async (t, fx, opts) => [await startNatsServer(t, fx, { ...opts, jetstream: true })],
    resolverEnv: (fx) => jetstreamEnv(fx, 1),
    async baseline(t, fx, servers) {
      // The storage account is preloaded on the servers, and a reconciliation pass (at start, or once a signer
      // answers) adopts what servers hold and the store lacks: store it now, before the stream's position is taken.
      const sys = await connectWith(t, servers, fx.sysUser.creds)
      const { ours } = await push(sys, subjects.claimsUpdate, fx.mesh.jwt, servers.length)
      t.equal(ours.data?.code, 200, 'the storage account is stored before the baseline')
      jsm = await jetstreamManager(await connectWith(t, servers, await readFile(fx.meshCredsPath, 'utf8')))
      from = (await jsm.streams.info(STREAM)).state.last_seq
    },
    async unchanged(t, created) {
      const last = (await jsm!.streams.info(STREAM)).state.last_seq
      const written = { markers: 0, created: 0 }
      const markersOf = new Map<string, number>()
      const wrong: string[] = []
      for (let seq = from + 1; seq <= last; seq++) {
        // a restore marker replaces the earlier ones of its account (rollup): their sequences are gone
        const m = await jsm!.streams.getMessage(STREAM, { seq }).catch(() => null)
        if (m === null) continue
        const [, kind, id, leaf] = m.subject.split('.')
        if (kind === 'chg' && leaf === 'r') {
          written.markers++
          markersOf.set(id ?? '', (markersOf.get(id ?? '') ?? 0) + 1)
        }
        else if (kind === 'chg' && leaf === 'v' && created.has(id ?? '') && m.header?.get('Mesh-Kind') === 'created') written.created++
        else wrong.push(`${seq} ${m.subject} ${m.header?.get('Mesh-Kind') ?? ''}`)
      }
      t.same(wrong, [], `the stream holds nothing else since the baseline (${from} -> ${last}: ${written.created} managed accounts created, ${written.markers} re-delivery markers)`)
      t.same([...markersOf].filter(([, n]) => n > 1), [], 'at most one re-delivery marker per account: refused pushes cannot grow the stream without bound')
      if (created.size === 0 && written.markers === 0) t.equal(last, from, 'the stream did not grow')
    },
  }
}
