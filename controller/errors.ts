// The controller's coded errors: one registry, each with the HTTP status the API answers
// with. Switch failures (switch-adapters/errors.ts) are wrapped in SwitchUnavailable.

export type ErrorCode =
  | 'bad-request'
  | 'unauthorized'
  | 'not-found'
  | 'conflict'
  | 'not-owner'
  | 'switch-unavailable'
  | 'state-unwritable'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  'bad-request': 400,
  unauthorized: 401,
  'not-found': 404,
  conflict: 409,
  /**
   * Under high availability, another instance owns the switch: the change goes there (RFC 9110
   * section 15.5.20, Misdirected Request; the detail and Location name the owner's API).
   */
  'not-owner': 421,
  'switch-unavailable': 503,
  /**
   * The state (change log, journal) cannot be written: nothing is changed that a restart would not know of.
   */
  'state-unwritable': 507,
  internal: 500,
};

export class FlowpinError extends Error {
  override readonly name = 'FlowpinError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly detail?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = STATUS[code];
  }
}

export const notFound = (what: string, detail?: Record<string, unknown>): FlowpinError =>
  new FlowpinError('not-found', what, detail);
export const conflict = (what: string, detail?: Record<string, unknown>): FlowpinError =>
  new FlowpinError('conflict', what, detail);
export const badRequest = (what: string, field?: string): FlowpinError =>
  new FlowpinError('bad-request', what, field === undefined ? undefined : { field });
