/** Stable error codes: tests and callers branch on these, never on message text. */
export const ErrorCode = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  JWT_MALFORMED: 'JWT_MALFORMED',
  JWT_TOO_LARGE: 'JWT_TOO_LARGE',
  JWT_WRONG_TYPE: 'JWT_WRONG_TYPE',
  JWT_BAD_SIGNATURE: 'JWT_BAD_SIGNATURE',
  JWT_EXPIRED: 'JWT_EXPIRED',
  JWT_NOT_YET_VALID: 'JWT_NOT_YET_VALID',
  JWT_SUBJECT_MISMATCH: 'JWT_SUBJECT_MISMATCH',
  JWT_OUTDATED: 'JWT_OUTDATED',
  JWT_CONTENT_INVALID: 'JWT_CONTENT_INVALID',
  ISSUER_UNTRUSTED: 'ISSUER_UNTRUSTED',
  SELF_SIGNED_REFUSED: 'SELF_SIGNED_REFUSED',
  POLICY_VIOLATION: 'POLICY_VIOLATION',
  ACTIVATION_INVALID: 'ACTIVATION_INVALID',
  REQUEST_INVALID: 'REQUEST_INVALID',
  REQUEST_STALE: 'REQUEST_STALE',
  REQUEST_REPLAYED: 'REQUEST_REPLAYED',
  DELETE_DISABLED: 'DELETE_DISABLED',
  SYSTEM_ACCOUNT_PROTECTED: 'SYSTEM_ACCOUNT_PROTECTED',
  JETSTREAM_IN_USE: 'JETSTREAM_IN_USE',
  NOT_FOUND: 'NOT_FOUND',
  VALIDATION_UNAVAILABLE: 'VALIDATION_UNAVAILABLE',
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  INTERNAL: 'INTERNAL',
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** A failure we expect and explain to the caller; anything else is a bug and is reported as INTERNAL. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'AppError'
  }

  /** The wire form used between our services: no stack, no cause. */
  toJSON(): { code: ErrorCode; status: number; message: string } {
    return { code: this.code, status: this.status, message: this.message }
  }
}

export const errors = {
  config: (problems: string[]) =>
    new AppError(ErrorCode.CONFIG_INVALID, 500, `invalid configuration: ${problems.join('; ')}`),
  jwtMalformed: (why: string) => new AppError(ErrorCode.JWT_MALFORMED, 400, `malformed jwt: ${why}`),
  jwtTooLarge: (size: number, max: number) =>
    new AppError(ErrorCode.JWT_TOO_LARGE, 413, `jwt is ${size} bytes, more than the ${max} allowed`),
  jwtWrongType: (want: string, got: string) =>
    new AppError(ErrorCode.JWT_WRONG_TYPE, 400, `not ${want} claim: got ${got || 'no type'}`),
  jwtBadSignature: () => new AppError(ErrorCode.JWT_BAD_SIGNATURE, 400, 'claim failed signature verification'),
  jwtExpired: () => new AppError(ErrorCode.JWT_EXPIRED, 400, 'claim is expired'),
  jwtNotYetValid: () => new AppError(ErrorCode.JWT_NOT_YET_VALID, 400, 'claim is not yet valid'),
  subjectMismatch: (id: string, sub: string) =>
    new AppError(ErrorCode.JWT_SUBJECT_MISMATCH, 400, `subject does not match jwt content: ${id} vs ${sub}`),
  jwtOutdated: (id: string, storedIat: number, iat: number) =>
    new AppError(
      ErrorCode.JWT_OUTDATED,
      409,
      `jwt for ${id} is older than the stored one (iat ${iat} < stored iat ${storedIat})`,
    ),
  contentInvalid: (issues: string[]) =>
    new AppError(ErrorCode.JWT_CONTENT_INVALID, 400, `jwt validation failed - validation errors: [${issues.join(', ')}]`),
  issuerUntrusted: (iss: string) =>
    new AppError(ErrorCode.ISSUER_UNTRUSTED, 403, `issuer ${iss} is not trusted by the operator`),
  selfSignedRefused: () =>
    new AppError(
      ErrorCode.SELF_SIGNED_REFUSED,
      403,
      'self-signed account jwt refused: no operator signing key is configured for managed accounts',
    ),
  policyViolation: (why: string) => new AppError(ErrorCode.POLICY_VIOLATION, 403, `managed account policy: ${why}`),
  activationInvalid: (why: string) => new AppError(ErrorCode.ACTIVATION_INVALID, 400, `activation token refused: ${why}`),
  requestInvalid: (why: string) => new AppError(ErrorCode.REQUEST_INVALID, 400, why),
  requestStale: (why: string) => new AppError(ErrorCode.REQUEST_STALE, 400, why),
  requestReplayed: () => new AppError(ErrorCode.REQUEST_REPLAYED, 409, 'request was already used'),
  deleteDisabled: () =>
    new AppError(ErrorCode.DELETE_DISABLED, 403, 'delete must be enabled in resolver config (RESOLVER_ALLOW_DELETE is false)'),
  systemAccountProtected: () =>
    new AppError(ErrorCode.SYSTEM_ACCOUNT_PROTECTED, 403, 'not allowed to delete system account'),
  jetstreamInUse: (why: string) => new AppError(ErrorCode.JETSTREAM_IN_USE, 409, why),
  notFound: (what: string) => new AppError(ErrorCode.NOT_FOUND, 404, `${what} not found`),
  validationUnavailable: (cause?: unknown) =>
    new AppError(ErrorCode.VALIDATION_UNAVAILABLE, 503, 'validation unavailable: the signer did not answer', { cause }),
  storeUnavailable: (why: string, cause?: unknown) =>
    new AppError(ErrorCode.STORE_UNAVAILABLE, 503, `store unavailable: ${why}`, { cause }),
  internal: (cause?: unknown) => new AppError(ErrorCode.INTERNAL, 500, 'internal error', { cause }),
}

const codes = new Set<string>(Object.values(ErrorCode))

/** Rebuilds an AppError from its wire form; anything unrecognised becomes INTERNAL. */
export function appErrorFrom(wire: unknown): AppError {
  if (typeof wire === 'object' && wire !== null) {
    const { code, status, message } = wire as Record<string, unknown>
    if (typeof code === 'string' && codes.has(code) && typeof status === 'number' && typeof message === 'string') {
      return new AppError(code as ErrorCode, status, message)
    }
  }
  return errors.internal(wire)
}
