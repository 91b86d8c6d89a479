// eAPI error codes the simulator answers with, and the error a command raises.
//   1000 general failure of a command        1002 invalid command (bad syntax, wrong mode)
//   1003 command has no JSON form (unconverted; use format "text")
// JSON-RPC's own: -32700 parse error, -32600 invalid request, -32601 method not found,
// -32602 invalid params, -32603 internal error.

export const EAPI_GENERAL = 1000;
export const EAPI_INVALID_COMMAND = 1002;
export const EAPI_UNCONVERTED = 1003;

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly code: number,
    /** What the CLI would print, e.g. "Invalid input (at token 1: 'foo')". */
    readonly errors: string[],
    readonly kind: 'invalid command' | 'unconverted command' | 'could not run command',
  ) {
    super(errors.join('; '));
  }
}

export const invalidInput = (tokens: string[], at: number): CommandError =>
  new CommandError(
    EAPI_INVALID_COMMAND,
    [`Invalid input (at token ${at}: '${tokens[at] ?? ''}')`],
    'invalid command',
  );

export const incomplete = (): CommandError =>
  new CommandError(EAPI_INVALID_COMMAND, ['Incomplete command'], 'invalid command');
