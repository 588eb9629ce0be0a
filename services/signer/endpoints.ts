import { subjects, type MeshService } from '../../shared/index.ts'
import type { SignerConfig } from './config.ts'

export function addSignerEndpoints(service: MeshService, config: SignerConfig): void {
  service.endpoint({
    name: 'health',
    subject: subjects.signerHealth,
    description: 'Reports the trusted operator and whether managed accounts can be signed',
    async handle() {
      return JSON.stringify({
        ok: true,
        operator: config.trust.operatorKey,
        managed: config.signingKey !== undefined,
      })
    },
  })
}
