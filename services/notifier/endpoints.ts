import { subjects, type MeshService } from '../../shared/index.ts'

export function addNotifierEndpoints(service: MeshService): void {
  service.endpoint({
    name: 'health',
    subject: subjects.notifierHealth,
    description: 'Reports that the notifier is connected and serving',
    async handle() {
      return JSON.stringify({ ok: true })
    },
  })
}
