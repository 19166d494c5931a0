/**
 * Self-signed ECDSA P-256 certificates for TLS tests, made with the `openssl` command in a temp
 * directory: `pem` holds the certificate then the key (HAProxy's one-file form).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCert {
  /** certificate + key, as a `crt` file */
  pem: string;
  cert: string;
  key: string;
  /** the certificate alone (PEM text), for a client's `ca` */
  certText: string;
}

export function tempDir(prefix = 'sm-tls-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A certificate for `cn` with subjectAltName DNS `san` (none: no SAN extension), in `dir` as NAME.pem. */
export function makeCert(dir: string, name: string, cn: string, san: string[] = [], fileName = `${name}.pem`): TestCert {
  const cert = path.join(dir, `.${name}.crt`); // dot files: a crt directory skips them
  const key = path.join(dir, `.${name}.key`);
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/CN=${cn}`];
  if (san.length > 0) args.push('-addext', `subjectAltName=${san.map((s) => `DNS:${s}`).join(',')}`);
  execFileSync('openssl', args, { stdio: 'ignore' });
  const certText = readFileSync(cert, 'utf8');
  const pem = path.join(dir, fileName);
  writeFileSync(pem, certText + readFileSync(key, 'utf8'));
  return { pem, cert, key, certText };
}
