export { AppError, ErrorCode, errors, appErrorFrom } from './errors.ts'
export { envReader, deepFreeze, isConfigError, LOG_LEVELS } from './env.ts'
export type { Env, EnvReader, LogLevel } from './env.ts'
export { createLogger } from './log.ts'
export type { Logger } from './log.ts'
export { connectSystem, readNatsConfig } from './nats.ts'
export type { NatsConfig, NatsConnection } from './nats.ts'
export {
  decodeJwt,
  verifyJwtAhead,
  peekClaims,
  tryPeek,
  tokenFrom,
  checkValidity,
  isExpired,
  nowSeconds,
  goJti,
  signJwt,
  MAX_JWT_BYTES,
  JwtAlgorithm,
} from './jwt.ts'
export type { Claims, DecodedJwt, PeekedClaims } from './jwt.ts'
export { isAccountKey, isOperatorKey, isServerId, isPublicKey, KeyRole } from './nkey.ts'
export { isTrustedIssuer, trustAnchorFrom, readTrustAnchor } from './operator.ts'
export type { TrustAnchor } from './operator.ts'
export { gather, gatherJson, jsonOf } from './gather.ts'
export type { GatherOptions } from './gather.ts'
export { subjects, isMeshService, MESH_SERVICES, PACK_QUEUE, accountAfter, accountOfRequestSubject, idInSubject } from './subjects.ts'
export type { MeshServiceName, MicroVerb } from './subjects.ts'
export { isNoResponders, serviceErrorOf, ServiceErrorHeader } from './service-error.ts'
export { MeshService, NO_REPLY } from './service.ts'
export type { EndpointSpec, Reply, ErrorReply } from './service.ts'
export { runUntilStopped } from './run.ts'
export { addHealthEndpoint, healthOnHost, hostToken, natsHealth } from './health.ts'
export type { HealthCheck, HealthReport, NatsHealth } from './health.ts'
export { readLogLevel, startup } from './startup.ts'
export { VERSION } from './version.ts'
export { validateAccount, validateActivation, validateDelete, SignerHeader, MAX_VALIDATE_BATCH } from './signer-api.ts'
export type { AccountVerdict, ActivationRequest, ActivationVerdict, BatchVerdict, DeleteVerdict, ValidateEnvelope, ValidateItem } from './signer-api.ts'
export { ChangeHeader, changeHeaders, changeFrom, changeOf, isReceipt, publishChange, publishDelivery, requestDelivery, MAX_NOTIFY_BATCH } from './change-api.ts'
export type {
  BatchDelivery,
  Change,
  ChangeKind,
  ClosedConnection,
  DeliveryReport,
  Enforcement,
  ReconcileReport,
  ReconcileServerReport,
  ServerEnforcement,
  ServerOutcome,
} from './change-api.ts'
export { admissionOf, isEnforcing, isUserRevoked, jwtDigest } from './enforcement.ts'
export type { AccountAdmission } from './enforcement.ts'
export { activationHashId, cleanActivationSubject, isActivationHashId } from './activation-id.ts'
export { RESOLVER, isResolverReply, resolverReplyOf, packLine } from './resolver-api.ts'
export type {
  AccountState,
  ActivationPutReply,
  ClaimError,
  ClaimReply,
  ClaimServer,
  ClaimStatus,
  HistoryPage,
  HistoryRequest,
  HistoryVersion,
  ResolverHealth,
} from './resolver-api.ts'
export { batchBody, itemRefusal } from './batch-body.ts'
