// Shell completion. `flowpin completion bash|zsh` prints a small script that asks flowpin
// itself for the candidates (`flowpin __complete WORDS...`, the words before the cursor, the
// last one being completed), so bash and zsh complete from the same table (help.ts): commands,
// each command's options, the values of options with a fixed set (`-o json|text`,
// `--pin-mode`, `--state`, ...), `completion`'s shells and `help`'s commands. Where flowpin
// offers nothing (a file argument, an option's free value) the shell completes file names.

import { COMMANDS, commandNamed, optionsOf, type CommandHelp } from './help.js';

/** The flags of an option spec such as `-o, --output json|text` or `--eapi-port N, --gnmi-port N`. */
function flagsOf(spec: string): { flags: string[]; values: string[] | undefined; takesValue: boolean }[] {
  return spec.split(', ').map((part) => {
    const [flag = '', arg] = part.split(' ');
    const values =
      arg !== undefined && arg.includes('|') && !arg.includes('[')
        ? arg.split('|').filter((v) => /^[a-z-]+$/.test(v))
        : undefined;
    return { flags: [flag], values, takesValue: arg !== undefined };
  });
}

function optionTable(c: CommandHelp): Map<string, { values: string[] | undefined; takesValue: boolean }> {
  const out = new Map<string, { values: string[] | undefined; takesValue: boolean }>();
  for (const [spec] of optionsOf(c)) {
    const parts = flagsOf(spec);
    // `-o, --output json|text`: the short flag takes what the long one takes.
    const last = parts[parts.length - 1];
    for (const p of parts)
      for (const f of p.flags)
        if (f.startsWith('-'))
          out.set(f, {
            values: p.values ?? last?.values,
            takesValue: p.takesValue || (last?.takesValue ?? false),
          });
  }
  out.set('--help', { values: undefined, takesValue: false });
  return out;
}

/** Candidates for the last word, given the words before it (without `flowpin`). */
export function complete(words: string[]): string[] {
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  const starts = (xs: string[]): string[] => xs.filter((x) => x.startsWith(current));
  if (before.length === 0) return starts(COMMANDS.map((c) => c.name));
  const c = commandNamed(before[0]);
  if (c === undefined) return [];
  const opts = optionTable(c);
  const prev = opts.get(before[before.length - 1] ?? '');
  if (before.length > 1 && prev?.takesValue) return starts(prev.values ?? []);
  if (current.startsWith('-'))
    return starts([...opts.keys()].filter((f) => f.startsWith('--') || current.length <= 2));
  const positionals = before
    .slice(1)
    .filter((w, i, all) => !w.startsWith('-') && !(opts.get(all[i - 1] ?? '')?.takesValue ?? false));
  if (c.positional === 'shell' && positionals.length === 0) return starts(['bash', 'zsh']);
  if (c.positional === 'command' && positionals.length === 0) return starts(COMMANDS.map((x) => x.name));
  return [];
}

export const BASH = `# flowpin completion for bash: source <(flowpin completion bash)
_flowpin() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" IFS=$'\\n'
  COMPREPLY=( $(flowpin __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
  if [ "\${#COMPREPLY[@]}" -eq 0 ]; then
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}
complete -o filenames -F _flowpin flowpin
`;

export const ZSH = `#compdef flowpin
# flowpin completion for zsh: flowpin completion zsh > "\${fpath[1]}/_flowpin" (then compinit),
# or source <(flowpin completion zsh) after compinit.
_flowpin() {
  local -a candidates
  candidates=( \${(f)"$(flowpin __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)"} )
  if (( \${#candidates} )); then
    compadd -- "\${candidates[@]}"
  else
    _files
  fi
}
if [[ "\${funcstack[1]}" = _flowpin ]]; then
  _flowpin "$@"
else
  compdef _flowpin flowpin
fi
`;

export function completionCommand(args: string[]): number {
  const shell = args[0];
  if (args.length !== 1 || (shell !== 'bash' && shell !== 'zsh')) {
    process.stderr.write(
      `flowpin completion: say which shell: bash or zsh\nsee 'flowpin completion --help'\n`,
    );
    return 2;
  }
  process.stdout.write(shell === 'bash' ? BASH : ZSH);
  return 0;
}

/** The shells' helper: one candidate a line. */
export function completeCommand(words: string[]): number {
  const out = complete(words.length === 0 ? [''] : words);
  if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
