/**
 * Reading the certificates of `ssl` binds, as HAProxy takes them: a PEM file holding the
 * certificate, its chain and the private key (or the key in `FILE.key` beside it), or a directory
 * whose files are all loaded, sorted by name, skipping HAProxy's reserved extensions (`.key`,
 * `.issuer`, `.ocsp`, `.sctl`), dot files and subdirectories. Each certificate answers for the
 * DNS names of its subjectAltName and for its subject CN, as HAProxy registers both.
 *
 * Every problem is a config problem at the bind's `file:line` naming the file: unreadable, no
 * certificate, no key, an encrypted key, a key that does not match the certificate, a directory
 * without certificates. The cipher and version settings are tried once per bind on a real
 * SecureContext, so `stickmesh check` reports an unknown cipher too.
 *
 * Bounds: at most MAX_CERT_FILES files per config and MAX_PEM_BYTES per file (more is a problem,
 * not a hang on a huge or endless file). Reads are synchronous: a reload reads a few kilobytes
 * per certificate.
 */
import { errnoText } from '../util/errno.js';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { DEFAULT_CIPHERS, createSecureContext } from 'node:tls';
import type { ConfigIssue } from '../errors.js';
import type { BindSslConfig, LoadedCert, StickmeshConfig, TlsVersion } from '../config/model.js';

/** Most certificate files one config loads. */
export const MAX_CERT_FILES = 10000;
/** Largest PEM file read. */
export const MAX_PEM_BYTES = 1024 * 1024;

const RESERVED_EXT = /\.(key|issuer|ocsp|sctl)$/;

/** Node's names of the TLS versions. */
export const NODE_TLS_VERSION: Record<TlsVersion, 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'> = {
  'TLSv1.0': 'TLSv1',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.2': 'TLSv1.2',
  'TLSv1.3': 'TLSv1.3',
};

class CertProblem extends Error {}

/**
 * Fills `certs` of every `ssl` bind of `config` from its `crt` paths; returns the problems found
 * (at the bind's line). A bind object shared by several addresses is loaded once, and so is a
 * file named by several binds.
 */
export function loadBindCertificates(config: StickmeshConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const cache = new Map<string, LoadedCert>();
  const done = new Set<BindSslConfig>();
  let files = 0;
  for (const fe of config.frontends) {
    for (const b of fe.binds) {
      const ssl = b.ssl;
      if (!ssl || done.has(ssl)) continue;
      done.add(ssl);
      const issue = (message: string): void => {
        issues.push({ loc: b.loc, directive: 'bind', message });
      };
      const certs: LoadedCert[] = [];
      try {
        for (const crt of ssl.crts) {
          for (const file of certFilesOf(crt)) {
            if (++files > MAX_CERT_FILES) throw new CertProblem(`more than ${MAX_CERT_FILES} certificate files in the config`);
            let c = cache.get(file);
            if (!c) {
              c = loadPemFile(file);
              cache.set(file, c);
            }
            certs.push(c);
          }
        }
      } catch (e) {
        if (!(e instanceof CertProblem)) throw e;
        issue(e.message);
        continue;
      }
      ssl.certs = certs;
      const trial = trySettings(ssl);
      if (trial !== undefined) issue(trial);
    }
  }
  return issues;
}

/** The files `crt PATH` loads: PATH itself, or a directory's eligible files by name. */
function certFilesOf(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new CertProblem(`cannot read certificate '${path}': ${errnoText(e)}`);
  }
  if (!st.isDirectory()) return [path];
  let names: string[];
  try {
    names = readdirSync(path);
  } catch (e) {
    throw new CertProblem(`cannot read certificate directory '${path}': ${errnoText(e)}`);
  }
  const dir = path.replace(/\/+$/, '');
  const out: string[] = [];
  for (const n of names.sort()) {
    if (n.startsWith('.') || RESERVED_EXT.test(n)) continue;
    const f = `${dir}/${n}`;
    try {
      if (!statSync(f).isFile()) continue;
    } catch {
      continue; // vanished while listing
    }
    out.push(f);
    if (out.length > MAX_CERT_FILES) break;
  }
  if (out.length === 0) throw new CertProblem(`no certificate in directory '${path}'`);
  return out;
}

function readBounded(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new CertProblem(`cannot read certificate '${file}': ${errnoText(e)}`);
  }
  try {
    const buf = Buffer.allocUnsafe(MAX_PEM_BYTES + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > MAX_PEM_BYTES) throw new CertProblem(`'${file}' is larger than ${MAX_PEM_BYTES / 1024} KiB: not a certificate`);
    }
    return buf.toString('latin1', 0, n);
  } catch (e) {
    if (e instanceof CertProblem) throw e;
    throw new CertProblem(`cannot read certificate '${file}': ${errnoText(e)}`);
  } finally {
    closeSync(fd);
  }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

interface PemParts {
  certs: string[];
  key: string | undefined;
  encrypted: boolean;
}

function pemParts(text: string): PemParts {
  const out: PemParts = { certs: [], key: undefined, encrypted: false };
  for (const m of text.matchAll(PEM_BLOCK)) {
    const label = m[1]!;
    if (label === 'CERTIFICATE' || label === 'TRUSTED CERTIFICATE') out.certs.push(m[0]);
    else if (label === 'ENCRYPTED PRIVATE KEY') out.encrypted = true;
    else if (/^(?:RSA |EC |DSA )?PRIVATE KEY$/.test(label) && out.key === undefined) {
      if (/Proc-Type:\s*4,ENCRYPTED/.test(m[0])) out.encrypted = true;
      else out.key = m[0];
    }
  }
  return out;
}

/** Reads and checks one PEM file (see the module comment); throws a CertProblem naming it. */
export function loadPemFile(file: string): LoadedCert {
  const parts = pemParts(readBounded(file));
  if (parts.certs.length === 0) throw new CertProblem(`no certificate in '${file}' (a PEM file with the certificate, its chain and the private key)`);
  let key = parts.key;
  let keyFile = file;
  if (key === undefined && !parts.encrypted) {
    // HAProxy's extra file: the key beside the certificate, as FILE.key.
    let side: PemParts | undefined;
    try {
      statSync(`${file}.key`);
      side = pemParts(readBounded(`${file}.key`));
    } catch (e) {
      if (e instanceof CertProblem) throw e;
    }
    if (side?.encrypted) parts.encrypted = true;
    key = side?.key;
    keyFile = `${file}.key`;
  }
  if (parts.encrypted) throw new CertProblem(`the private key of '${file}' is encrypted; stickmesh needs it unencrypted (as HAProxy without a passphrase)`);
  if (key === undefined) throw new CertProblem(`no private key in '${file}' (nor in '${file}.key')`);
  let x509: X509Certificate;
  let k: KeyObject;
  try {
    x509 = new X509Certificate(parts.certs[0]!);
  } catch (e) {
    throw new CertProblem(`'${file}': the certificate cannot be read: ${(e as Error).message}`);
  }
  try {
    k = createPrivateKey(key);
  } catch (e) {
    throw new CertProblem(`'${keyFile}': the private key cannot be read: ${(e as Error).message}`);
  }
  if (!x509.checkPrivateKey(k)) throw new CertProblem(`'${keyFile}': the private key does not match the certificate of '${file}'`);
  return { file, cert: parts.certs.join('\n'), key, names: certNames(x509) };
}

/** subjectAltName DNS names, then subject CNs, lower case, without duplicates. */
export function certNames(x509: X509Certificate): string[] {
  const names: string[] = [];
  const add = (n: string): void => {
    const v = n.trim().toLowerCase();
    if (v !== '' && !names.includes(v)) names.push(v);
  };
  const san = x509.subjectAltName;
  if (san) {
    for (const part of san.split(/,\s*/)) {
      if (part.startsWith('DNS:')) add(part.slice(4));
    }
  }
  for (const line of x509.subject.split('\n')) {
    if (line.startsWith('CN=')) add(line.slice(3));
  }
  return names;
}

/**
 * Node's `ciphers` option for a bind: it takes TLS 1.3 suites (`TLS_...`) and TLS 1.2 ciphers in
 * one list. Undefined when neither is set (Node's defaults); with only one of them, the other
 * keeps Node's default part.
 */
export function nodeCiphers(ssl: Pick<BindSslConfig, 'ciphers' | 'ciphersuites'>): string | undefined {
  if (ssl.ciphers === undefined && ssl.ciphersuites === undefined) return undefined;
  const defaults = DEFAULT_CIPHERS.split(':');
  const suites = ssl.ciphersuites ?? defaults.filter((c) => c.startsWith('TLS_')).join(':');
  const list = ssl.ciphers ?? defaults.filter((c) => !c.startsWith('TLS_')).join(':');
  return `${suites}:${list}`;
}

/** Builds one SecureContext with the bind's settings; a message when OpenSSL refuses them. */
function trySettings(ssl: BindSslConfig): string | undefined {
  const first = ssl.certs[0];
  if (!first) return undefined;
  try {
    createSecureContext({
      cert: first.cert,
      key: first.key,
      minVersion: NODE_TLS_VERSION[ssl.minVersion],
      maxVersion: NODE_TLS_VERSION[ssl.maxVersion],
      ...(nodeCiphers(ssl) !== undefined ? { ciphers: nodeCiphers(ssl) } : {}),
      ...(ssl.curves !== undefined ? { ecdhCurve: ssl.curves } : {}),
    });
    return undefined;
  } catch (e) {
    return `TLS settings refused by OpenSSL (ciphers, ciphersuites, curves or versions): ${(e as Error).message}`;
  }
}
