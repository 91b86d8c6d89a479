// Certificates for the TLS tests, made with openssl in a directory the test owns: a CA
// (`ca.key`, `ca.pem`) and leaf certificates it signs (`NAME.key`, `NAME.pem`), valid one day,
// each with the X.509 extensions the test asks for (subjectAltName, extendedKeyUsage).

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const ssl = (...args: string[]): void => {
  execFileSync('openssl', args, { stdio: 'pipe' });
};

/** A self-signed CA in `dir`: ca.key and ca.pem. */
export function makeCa(dir: string, cn = 'flowpin test CA'): void {
  const f = (n: string): string => path.join(dir, n);
  const out = ['-keyout', f('ca.key'), '-out', f('ca.pem')];
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', ...out, '-days', '1', '-subj', `/CN=${cn}`);
}

/**
 * A key and certificate signed by the CA of `dir`: NAME.key and NAME.pem, with `extensions`
 * (openssl extension-file lines, e.g. `subjectAltName=IP:127.0.0.1`).
 */
export function issueCert(dir: string, name: string, extensions: string[]): void {
  const f = (n: string): string => path.join(dir, n);
  const out = ['-keyout', f(`${name}.key`), '-out', f(`${name}.csr`)];
  ssl('req', '-newkey', 'rsa:2048', '-nodes', ...out, '-subj', `/CN=${name}`);
  writeFileSync(f(`${name}.cnf`), extensions.join('\n') + '\n');
  ssl(
    'x509',
    '-req',
    '-in',
    f(`${name}.csr`),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f(`${name}.pem`),
    '-days',
    '1',
    '-extfile',
    f(`${name}.cnf`),
  );
}
