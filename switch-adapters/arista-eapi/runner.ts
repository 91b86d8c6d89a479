// Command running on top of the transport: privileged mode first where needed (`enable`, with
// the enable secret as the command's input, as pyeapi sends it), all-or-error requests, and
// requests of independent commands where one failing command does not stop the others.
// eAPI stops a request at the first failing command and returns the results before it
// (ANTA asynceapi: "data ... up to, and including, the failed command").

import { SwitchCommandError } from '../errors.js';
import { commandText, type CommandResult, type EapiCommand, type EapiTransport } from './transport.js';

export class EapiRunner {
  constructor(
    readonly transport: EapiTransport,
    private readonly switchName: string,
    private readonly enableSecret: string | undefined,
  ) {}

  /** `enable`, with the secret where one is configured. */
  get enable(): EapiCommand {
    return this.enableSecret === undefined ? 'enable' : { cmd: 'enable', input: this.enableSecret };
  }

  /** Replaces a leading plain 'enable' by the configured form. */
  private withEnable(cmds: readonly EapiCommand[]): EapiCommand[] {
    return cmds.map((c, i) => (i === 0 && c === 'enable' ? this.enable : c));
  }

  /**
   * Runs commands that must all succeed; returns the results from index `from` on. `beforeSend`: see
   * EapiTransport.runCmds (a write's fence check at the moment it leaves).
   */
  async run(
    cmds: readonly EapiCommand[],
    format: 'json' | 'text',
    from = 0,
    beforeSend?: () => void,
  ): Promise<CommandResult[]> {
    const sent = this.withEnable(cmds);
    const r = await this.transport.runCmds(sent, format, beforeSend);
    if (!r.ok)
      throw new SwitchCommandError(
        this.switchName,
        commandText(sent[r.failedIndex]),
        r.errors.join('; '),
        r.code,
      );
    return r.results.slice(from);
  }

  /**
   * Runs independent commands after `enable`; a failing one yields its error and the rest
   * still run (in a further request). Results are per command of `cmds`.
   */
  async runEach(
    cmds: readonly string[],
    format: 'json' | 'text',
    privileged = true,
  ): Promise<(CommandResult | SwitchCommandError)[]> {
    const out: (CommandResult | SwitchCommandError)[] = [];
    const head: EapiCommand[] = privileged ? [this.enable] : [];
    let rest = cmds;
    while (rest.length > 0) {
      const r = await this.transport.runCmds([...head, ...rest], format);
      if (r.ok) {
        out.push(...r.results.slice(head.length));
        break;
      }
      const at = r.failedIndex - head.length;
      if (at < 0) throw new SwitchCommandError(this.switchName, 'enable', r.errors.join('; '), r.code);
      out.push(
        ...r.results.slice(head.length),
        new SwitchCommandError(this.switchName, rest[at] ?? '?', r.errors.join('; '), r.code),
      );
      rest = rest.slice(at + 1);
    }
    return out;
  }
}
