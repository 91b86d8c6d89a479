// Which Arista platforms have DirectFlow and how many flows their table holds, as data.
// Sources (docs/eapi.md): DirectFlowAssist persist_pan/README.txt ("7050X (Trident2)
// ~1500 L3/4 flow entries", "7050 (Trident+) ~750"); ANTA sa_142.py (DirectFlow as a live
// redirection path on EOS 4.32-4.36 for 720XP, 755/758, 7010X, 7050X3, 7050X4, 7060X5,
// 7060X6, 7250X, 7260X, 7260X3, 7300X, 7300X3, 7320X, 7368X4, and no Sand platform: 7280,
// 7500, 7800 appear only in its PBR and traffic-policy lists). Where the table size is not
// public it must be configured (pinTableSize).

export interface Platform {
  family: string;
  /** true: DirectFlow exists; false: it does not; 'unknown': no public evidence either way. */
  directflow: boolean | 'unknown';
  /** DirectFlow (L3/L4) entries, where public. */
  tableSize?: number;
}

const PLATFORMS: { pattern: RegExp; platform: Platform }[] = [
  {
    pattern: /^DCS-7050[STQ]X-/i,
    platform: { family: '7050X (Trident2)', directflow: true, tableSize: 1500 },
  },
  { pattern: /^DCS-7050[STQ]-/i, platform: { family: '7050 (Trident+)', directflow: true, tableSize: 750 } },
  { pattern: /^DCS-7050[A-Z]*X3-/i, platform: { family: '7050X3', directflow: true } },
  { pattern: /^DCS-7050[A-Z]*X4-/i, platform: { family: '7050X4', directflow: true } },
  { pattern: /^DCS-7060[A-Z]*X[56]-/i, platform: { family: '7060X5/X6', directflow: true } },
  { pattern: /^DCS-72[56]0[A-Z]*X3?-/i, platform: { family: '7250X/7260X', directflow: true } },
  { pattern: /^DCS-73(00|20|68)X/i, platform: { family: '7300X/7320X/7368X4', directflow: true } },
  { pattern: /^DCS-7010/i, platform: { family: '7010X', directflow: true } },
  { pattern: /^(CCS|DCS)-72?0XP|^CCS-720/i, platform: { family: '720XP', directflow: true } },
  { pattern: /^CCS-75[58]/i, platform: { family: '755/758', directflow: true } },
  { pattern: /^DCS-7280/i, platform: { family: '7280 (Sand)', directflow: false } },
  { pattern: /^DCS-75\d\d/i, platform: { family: '7500 (Sand)', directflow: false } },
  { pattern: /^DCS-78\d\d/i, platform: { family: '7800 (Sand)', directflow: false } },
];

/** The platform of a `show version` modelName; unknown models have unknown DirectFlow support. */
export function platformOf(modelName: string): Platform {
  return (
    PLATFORMS.find((p) => p.pattern.test(modelName))?.platform ?? {
      family: `unknown (${modelName})`,
      directflow: 'unknown',
    }
  );
}
