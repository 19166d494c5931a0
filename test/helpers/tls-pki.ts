/**
 * Test certificates made with the `openssl` command into a temp directory: a CA and a server
 * certificate it signs (ECDSA P-256), so TLS tests run real handshakes with real verification.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCa {
  /** The CA certificate (PEM file path). */
  caFile: string;
  caKey: string;
  dir: string;
}

export interface TestCert {
  /** Certificate and key PEM file paths, and one file holding both (HAProxy's `crt` layout). */
  cert: string;
  key: string;
  combined: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A fresh temp directory for certificates; `rm()` removes it. */
export function pkiDir(prefix = 'sm-pki-'): { dir: string; rm: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, rm: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A self-signed CA named `name` in `dir`. */
export function makeCa(dir: string, name: string): TestCa {
  const caKey = path.join(dir, `${name}.key`);
  const caFile = path.join(dir, `${name}.pem`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { caFile, caKey, dir };
}

/** A certificate for `names` (DNS names, or IP addresses) signed by `ca`, in `ca.dir`. */
export function makeCert(ca: TestCa, file: string, names: string[]): TestCert {
  const key = path.join(ca.dir, `${file}.key`);
  const csr = path.join(ca.dir, `${file}.csr`);
  const cert = path.join(ca.dir, `${file}.crt`);
  const ext = path.join(ca.dir, `${file}.ext`);
  const san = names.map((n) => (/^[0-9.]+$/.test(n) || n.includes(':') ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0] ?? file}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.caFile, '-CAkey', ca.caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  const combined = path.join(ca.dir, `${file}.pem`);
  writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, combined };
}
