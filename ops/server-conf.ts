/** What a nats-server in operator mode needs to resolve accounts from the mesh. */
export interface ServerConfOptions {
  serverName: string
  host?: string
  /** -1 picks a free port (then read it from the ports file). */
  port: number
  httpPort?: number
  portsFileDir?: string
  operatorJwtPath: string
  systemAccount: string
  /** Preloaded so system users connect before any lookup (protocol.md §9.9). */
  systemAccountJwt: string
  /** More accounts to preload beside the system account, by id. */
  preload?: Record<string, string>
  resolver: { type: 'cache'; dir: string; ttl?: string } | { type: 'full'; dir: string; interval?: string }
  cluster?: { name: string; port: number; routes: string[] }
  /** nats-server's default is 1 MB, exactly our JWT size limit. */
  maxPayload?: number
  /** Enables JetStream, storing under this directory (accounts still need JetStream limits in their JWT). */
  jetstreamDir?: string
}

const q = (s: string) => JSON.stringify(s)

/** Renders a nats-server.conf for operator mode with a `cache` (or `full`) resolver. */
export function renderServerConf(o: ServerConfOptions): string {
  const lines = [
    `server_name: ${q(o.serverName)}`,
    `listen: ${q(`${o.host ?? '127.0.0.1'}:${o.port}`)}`,
    ...(o.httpPort !== undefined ? [`http: ${q(`${o.host ?? '127.0.0.1'}:${o.httpPort}`)}`] : []),
    ...(o.portsFileDir !== undefined ? [`ports_file_dir: ${q(o.portsFileDir)}`] : []),
    `operator: ${q(o.operatorJwtPath)}`,
    `system_account: ${q(o.systemAccount)}`,
    o.resolver.type === 'cache'
      ? `resolver: { type: cache, dir: ${q(o.resolver.dir)}, ttl: ${q(o.resolver.ttl ?? '1h')}, timeout: "1.9s" }`
      : `resolver: { type: full, dir: ${q(o.resolver.dir)}, allow_delete: true, interval: ${q(o.resolver.interval ?? '2m')}, timeout: "1.9s" }`,
    `resolver_preload: { ${Object.entries({ ...o.preload, [o.systemAccount]: o.systemAccountJwt }).map(([id, jwt]) => `${id}: ${q(jwt)}`).join(', ')} }`,
  ]
  if (o.maxPayload !== undefined) lines.push(`max_payload: ${o.maxPayload}`)
  if (o.jetstreamDir !== undefined) lines.push(`jetstream: { store_dir: ${q(o.jetstreamDir)} }`)
  if (o.cluster !== undefined) {
    lines.push(
      `cluster: { name: ${q(o.cluster.name)}, listen: ${q(`${o.host ?? '127.0.0.1'}:${o.cluster.port}`)}, routes: [${o.cluster.routes.map(q).join(', ')}] }`,
    )
  }
  return lines.join('\n') + '\n'
}
