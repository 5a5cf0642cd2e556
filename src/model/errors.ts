/**
 * Errors with a stable code. A `UserError` is something the operator can fix
 * (the message says how); anything else reaching the CLI is a bug.
 */
export type UserErrorCode =
  | 'TABLE_NOT_FOUND'
  | 'BAD_TABLE_NAME'
  | 'NO_USABLE_KEY'
  | 'UNSUPPORTED_TABLE'
  | 'UNSUPPORTED_OBJECT'
  | 'UNSUPPORTED_SERVER'
  | 'BAD_OPTION'
  | 'PLAN_INVALID'
  | 'PLAN_TAMPERED'
  | 'PLAN_HASH_MISMATCH'
  | 'CONNECTION_FAILED'
  | 'STAGE_FAILED'
  | 'RUN_STATE'
  | 'BAD_ARGUMENT'
  | 'PRIVILEGES_MISSING'
  | 'DATA_DOES_NOT_FIT';

export class UserError extends Error {
  readonly code: UserErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(
    code: UserErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UserError';
    this.code = code;
    this.details = details;
  }
}
