import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInbox, type Msg, type NatsConnection } from '@nats-io/nats-core'

/**
 * `nats stream backup` / `nats stream restore` as natscli does them through jsm.go, for tests (natscli is not
 * installed here). The layout on disk is theirs: `backup.json` ({config, state} as the snapshot request
 * answered) beside `stream.tar.s2`, the chunks as the server sent them.
 */

export interface StreamBackup {
  /** {config, state} of the stream when the snapshot started. */
  meta: { config: { name: string } & Record<string, unknown>; state: { messages: number; last_seq: number } & Record<string, unknown> }
  data: Buffer
  chunks: number
}

const API_MS = 10_000
// the server rebuilds the stream from the tar before it answers the final message
const RESTORE_FINISH_MS = 120_000
const RESTORE_CHUNK = 64 * 1024

interface ApiReply {
  error?: { code: number; err_code?: number; description: string }
}

function apiError(what: string, r: ApiReply): Error {
  return Object.assign(new Error(`${what}: ${r.error!.description} (${r.error!.code}/${r.error!.err_code ?? '-'})`), { api: r.error })
}

/** A status the server put in a chunk's headers: anything but 204 (end of data) is a failure. */
function statusOf(m: Msg): number | undefined {
  const code = m.headers?.code
  return code === undefined || code === 0 ? undefined : code
}

/**
 * Snapshots `stream` (consumers included, as `nats stream backup` does by default): subscribes on a fresh
 * inbox first (the server waits only briefly for interest), asks `$JS.API.STREAM.SNAPSHOT.<stream>` to deliver
 * there, acknowledges every chunk that carries a reply subject (the server's flow control), and stops at the
 * empty message that ends the snapshot.
 */
export async function snapshotStream(nc: NatsConnection, stream: string, opts: { consumers?: boolean; chunkSize?: number; ms?: number } = {}): Promise<StreamBackup> {
  const inbox = createInbox()
  const sub = nc.subscribe(inbox)
  const parts: Uint8Array[] = []
  const done = (async () => {
    for await (const m of sub) {
      const status = statusOf(m)
      if (status !== undefined && status !== 204) throw new Error(`snapshot of ${stream} failed: ${status} ${m.headers?.description ?? ''}`)
      if (m.data.length === 0) return
      parts.push(m.data)
      if (m.reply) m.respond()
    }
    throw new Error(`snapshot of ${stream}: the deliver subscription ended before the last chunk`)
  })()
  const timer = setTimeout(() => sub.unsubscribe(), opts.ms ?? 60_000)
  try {
    const req = { deliver_subject: inbox, no_consumers: opts.consumers === false, chunk_size: opts.chunkSize ?? 128 * 1024, jsck: false }
    const reply = (await nc.request(`$JS.API.STREAM.SNAPSHOT.${stream}`, JSON.stringify(req), { timeout: API_MS })).json<ApiReply & StreamBackup['meta']>()
    if (reply.error !== undefined) {
      sub.unsubscribe()
      await done.catch(() => undefined)
      throw apiError(`snapshot of ${stream}`, reply)
    }
    await done
    return { meta: { config: reply.config, state: reply.state }, data: Buffer.concat(parts), chunks: parts.length }
  } finally {
    clearTimeout(timer)
    sub.unsubscribe()
  }
}

/**
 * Restores a snapshot: `$JS.API.STREAM.RESTORE.<stream>` with {config, state} answers with a subject to send the
 * data to; each chunk is a request answered once the server has it, and an empty request ends the upload and is
 * answered, once the stream is rebuilt, with a stream create response (config and state, or an error).
 * The stream must not exist.
 */
export async function restoreStream(nc: NatsConnection, backup: StreamBackup): Promise<{ config: Record<string, unknown>; state: { messages: number; last_seq: number; first_seq: number } }> {
  const stream = backup.meta.config.name
  const start = (await nc.request(`$JS.API.STREAM.RESTORE.${stream}`, JSON.stringify(backup.meta), { timeout: API_MS })).json<ApiReply & { deliver_subject: string }>()
  if (start.error !== undefined) throw apiError(`restore of ${stream}`, start)
  for (let at = 0; at < backup.data.length; at += RESTORE_CHUNK) {
    const r = await nc.request(start.deliver_subject, backup.data.subarray(at, at + RESTORE_CHUNK), { timeout: API_MS })
    if (statusOf(r) !== undefined || (r.data.length > 0 && r.json<ApiReply>().error !== undefined)) {
      throw new Error(`restore of ${stream} refused a chunk: ${r.headers?.code ?? ''} ${r.string()}`)
    }
  }
  const end = (await nc.request(start.deliver_subject, new Uint8Array(0), { timeout: RESTORE_FINISH_MS })).json<
    ApiReply & { type?: string; config: Record<string, unknown>; state: { messages: number; last_seq: number; first_seq: number } }
  >()
  if (end.error !== undefined) throw apiError(`restore of ${stream}`, end)
  return { config: end.config, state: end.state }
}

/** `nats stream backup <stream> <dir>`: the snapshot written as natscli writes it. */
export async function backupToDir(nc: NatsConnection, stream: string, dir: string): Promise<StreamBackup> {
  const backup = await snapshotStream(nc, stream)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await writeFile(join(dir, 'backup.json'), JSON.stringify(backup.meta, null, 2))
  await writeFile(join(dir, 'stream.tar.s2'), backup.data)
  return backup
}

/** `nats stream restore <dir>`: read back what backupToDir wrote and restore it. */
export async function restoreFromDir(nc: NatsConnection, dir: string): ReturnType<typeof restoreStream> {
  const meta = JSON.parse(await readFile(join(dir, 'backup.json'), 'utf8')) as StreamBackup['meta']
  const data = await readFile(join(dir, 'stream.tar.s2'))
  return restoreStream(nc, { meta, data, chunks: 0 })
}
