// What an adapter folder gives flowpin so that its kind of switch plugs in: the value of a
// switch's `adapter` key, the schema of its own configuration section, the checks a schema
// cannot say, and the factory of its adapter. The registry (registry.ts) lists the kinds; the
// configuration reader, the adapter factory and the start-up check take everything from
// there, and nothing else names a kind. See docs/architecture.md, "Adding a switch kind".

import type { TSchema } from 'typebox';
import type { AdapterCapabilities, SwitchAdapter } from './contract.js';

/** A configuration key as a path from the top of the file: ['switches', 0, 'eapi', 'url']. */
export type KeyPath = readonly (string | number)[];

/** What a kind's `read` may use to check its settings; every error names its key. */
export interface SettingsReader {
  /** Refuses the configuration, naming the key at fault. */
  fail(path: KeyPath, problem: string): never;
  /** A secret given as text, `env:NAME` or `file:/path`. */
  secret(path: KeyPath, value: string): string;
  /** A file the configuration refers to: it must be readable now, not at first use. */
  readableFile(path: KeyPath, file: string): string;
}

/** What every adapter is told of its switch, whatever its kind. */
export interface SwitchSetup {
  name: string;
  vips: readonly { address: string; nexthops: readonly string[] }[];
  /** `pinTableSize` where configured; otherwise the kind's own default (the eAPI adapter: the platform's). */
  pinTableSize: number | undefined;
  /** The pins' idle timeout (`pinIdleTimeoutS`), for adapters that set it per table. */
  pinIdleTimeoutS: number;
}

/** One kind of switch. `C`: its settings as `read` returns them (frozen with the configuration). */
export interface AdapterKind<C = unknown> {
  /** The value of a switch's `adapter` key. */
  readonly kind: string;
  /**
   * The switch's key holding this kind's settings (e.g. `eapi`) and its schema; absent: the kind has none.
   */
  readonly section?: { readonly key: string; readonly schema: TSchema };
  /**
   * The settings from the section's document (already checked against the schema, defaults
   * filled in; undefined for a kind without a section), with what a schema cannot say checked:
   * URLs, files, secrets, words that reach a command line. `path` is the section's key.
   */
  read(doc: unknown, at: SettingsReader, path: KeyPath): C;
  /** The address the switch's mirror frames come from when `mirrorSources` is not given. */
  mirrorSource?(settings: C): string | undefined;
  /**
   * Settings that weaken the connection to the switch or expose its credentials: [key within the section,
   * why].
   */
  securityWarnings?(settings: C): [string, string][];
  /**
   * The key (within the section) that gives a capability this kind has only when configured,
   * named by the start-up check when the switch's VIPs need it (e.g. changesGroups: groupTemplate).
   */
  readonly enabledBy?: Partial<Readonly<Record<keyof AdapterCapabilities, string>>>;
  create(setup: SwitchSetup, settings: C): SwitchAdapter;
}
