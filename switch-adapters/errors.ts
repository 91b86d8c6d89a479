// Failures toward switches, one class per failure mode, each chained to its cause. The
// reconciler retries what is `retryable` with backoff; the rest is reported as it is.

export abstract class SwitchError extends Error {
  abstract readonly retryable: boolean;
  constructor(
    readonly switchName: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${switchName}: ${message}`, options);
  }
}

/** No answer in time. */
export class SwitchTimeoutError extends SwitchError {
  override readonly name = 'SwitchTimeoutError';
  readonly retryable = true;
}

/** The connection failed or broke (refused, reset, TLS failure, bad HTTP status). */
export class SwitchTransportError extends SwitchError {
  override readonly name = 'SwitchTransportError';
  readonly retryable = true;
}

/** Credentials were refused. Retrying will not help until they change. */
export class SwitchAuthError extends SwitchError {
  override readonly name = 'SwitchAuthError';
  readonly retryable = false;
}

/** The switch refused a command; `command` is its text, `detail` what the switch said. */
export class SwitchCommandError extends SwitchError {
  override readonly name = 'SwitchCommandError';
  readonly retryable: boolean;
  constructor(
    switchName: string,
    readonly command: string,
    readonly detail: string,
    readonly code: number,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(switchName, `command '${command}' rejected: ${detail} (code ${code})`, options);
    this.retryable = options?.retryable ?? false;
  }
}

/** The switch answered something flowpin cannot read. */
export class SwitchProtocolError extends SwitchError {
  override readonly name = 'SwitchProtocolError';
  readonly retryable = false;
}

export const isSwitchError = (e: unknown): e is SwitchError => e instanceof SwitchError;

/**
 * The switch cannot do what flowpin is configured to do with it (no DirectFlow on its
 * platform, a group template that does not match how the VIP's group is built).
 */
export class SwitchUnsupportedError extends SwitchError {
  override readonly name = 'SwitchUnsupportedError';
  readonly retryable = false;
}

/**
 * The answer of a contract method the adapter's capabilities say it lacks (the controller never calls it).
 */
export function unsupported(switchName: string, what: string): Promise<never> {
  return Promise.reject(
    new SwitchUnsupportedError(
      switchName,
      `${what}: this switch cannot answer it (see the adapter's capabilities)`,
    ),
  );
}
