// What in a configuration weakens the connections to the switches or exposes their
// credentials, as warnings `flowpin run` logs at start (it still runs: these are choices a lab
// may make on purpose); each switch kind names its own settings' (switch-adapters/*/kind.ts).
// TLS is verified by default (eAPI: Node's https agent with rejectUnauthorized; gNMI: grpc-js
// SSL credentials from the CA file); only an explicit `insecureSkipVerify: true` (eAPI) or
// `insecure: true` (gNMI), or an http:// eAPI URL, turns it off. A secret read from a file (`file:/path`)
// that group or others may read is named, as is
// a configuration file readable by others that holds a secret inline. No secret is printed.

import { statSync } from 'node:fs';
import type { FlowpinConfig } from '../controller/config.js';
import { Reader } from '../lib/validate.js';
import { adapterKind } from '../switch-adapters/registry.js';

/** Keys whose values are secrets (the configuration's `secret()` fields). */
const SECRET_KEYS = new Set(['password', 'enableSecret', 'token']);

/** Warnings for a loaded configuration and the file it came from (one line each, secrets never included). */
export function securityWarnings(config: FlowpinConfig, file: string | undefined): string[] {
  const out: string[] = [];
  for (const s of config.switches) {
    const kind = adapterKind(s.adapter);
    for (const [key, why] of kind.securityWarnings?.(s.settings) ?? [])
      out.push(`switches.${s.name}.${kind.section?.key ?? 'adapter'}.${key}: ${why}`);
  }
  if (file === undefined) return out;
  let doc: unknown;
  try {
    doc = Reader.parseFile(file);
  } catch {
    return out; // loadConfig read it a moment ago; a file gone since has nothing left to warn about
  }
  let inline = false;
  const walk = (v: unknown, at: string): void => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`));
    else if (v !== null && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) walk(x, at === '' ? k : `${at}.${k}`);
    else if (typeof v === 'string' && SECRET_KEYS.has(at.slice(at.lastIndexOf('.') + 1))) {
      if (v.startsWith('file:')) {
        const mode = modeOf(v.slice(5));
        if (mode !== undefined && (mode & 0o077) !== 0)
          out.push(
            `${at}: the secret file ${v.slice(5)} is readable by ${whom(mode)} (mode ${(mode & 0o777).toString(8)}): chmod 600 it`,
          );
      } else if (!v.startsWith('env:')) inline = true;
    }
  };
  walk(doc, '');
  const mode = modeOf(file);
  if (inline && mode !== undefined && (mode & 0o077) !== 0)
    out.push(
      `${file}: holds a secret inline and is readable by ${whom(mode)} (mode ${(mode & 0o777).toString(8)}): chmod 600 it, or use env:NAME / file:/path`,
    );
  return out;
}

function modeOf(file: string): number | undefined {
  try {
    return statSync(file).mode;
  } catch {
    return undefined; // the configuration refused an unreadable secret file already
  }
}

const whom = (mode: number): string =>
  [(mode & 0o070) !== 0 ? 'its group' : '', (mode & 0o007) !== 0 ? 'others' : '']
    .filter((x) => x !== '')
    .join(' and ');
