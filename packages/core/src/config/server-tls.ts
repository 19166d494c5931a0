/**
 * Server-side TLS in haproxy.cfg: the `ssl`-related words of `server`, `default-server` and
 * `server-template` lines, the `global` defaults they start from (`ssl-server-verify`,
 * `ssl-default-server-options|ciphers|ciphersuites`, `ca-base`), and the check made once the file
 * is read: every TLS server ends with a `verify` mode, `verify required` has a CA to verify with
 * (HAProxy refuses to start otherwise), and every file it names can be read and holds what it
 * should. The same file reader builds the runtime's contexts (proxy/runtime/server-tls.ts), so
 * what `stickmesh check` accepts is what `start` loads.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { StickmeshError, type ConfigIssue } from '../errors.js';
import { errnoText } from '../util/errno.js';
import type { GlobalConfig, ServerSettings, ServerTlsConfig, ServerTlsDefaults, SourceLoc, StickmeshConfig, TlsVersion } from './model.js';

/** A TLS file (CA, client certificate) that cannot be read or does not hold what it should. */
export class TlsFileError extends StickmeshError {
  constructor(message: string) {
    super('SM_TLS_FILE', message);
  }
}

/** Largest CA file read (a CA bundle of the whole web is ~250 KiB). */
export const MAX_CA_PEM_BYTES = 4 * 1024 * 1024;
/** Most files one `ca-file DIR` loads. */
export const MAX_CA_DIR_FILES = 1024;

/** The name `ca-file` takes for the system's trusted roots (Node's bundled list). */
export const SYSTEM_CA = '@system-ca';

const VERSIONS: Record<string, TlsVersion> = { 'TLSv1.0': 'TLSv1.0', 'TLSv1.1': 'TLSv1.1', 'TLSv1.2': 'TLSv1.2', 'TLSv1.3': 'TLSv1.3' };
const VERSION_ORDER: readonly TlsVersion[] = ['TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
/** `no-tlsv10` ... / `force-tlsv10` ... flag suffixes and the version they name. */
const FLAG_VERSIONS: Record<string, TlsVersion> = { tlsv10: 'TLSv1.0', tlsv11: 'TLSv1.1', tlsv12: 'TLSv1.2', tlsv13: 'TLSv1.3' };

type Limits = Pick<ServerTlsConfig, 'minVersion' | 'maxVersion' | 'noTickets' | 'noReuse'>;

function parseVersion(v: string | undefined, what: string, err: (m: string) => void): TlsVersion | undefined {
  if (v === 'SSLv3') {
    err(`'${what} SSLv3': SSLv3 is not available (TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)`);
    return undefined;
  }
  const t = v === undefined ? undefined : VERSIONS[v];
  if (t === undefined) err(`'${what}' expects TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3, got '${v ?? ''}'`);
  return t;
}

/**
 * The version and session words shared by server lines and `ssl-default-server-options`:
 * `ssl-min-ver V`, `ssl-max-ver V`, `no-tlsv1X` (raises the floor past V when V is the floor,
 * or lowers the ceiling when V is the ceiling), `force-tlsv1X`, `no-sslv3` (always true here),
 * `[no-]tls-tickets`, `[no-]ssl-reuse`. Returns the updated limits, `undefined` when the word is
 * not one of these, or `null` after reporting an error.
 */
function limitWord(t: Limits, o: string, next: () => string | undefined, err: (m: string) => void): Limits | undefined | null {
  switch (o) {
    case 'ssl-min-ver':
    case 'ssl-max-ver': {
      const v = parseVersion(next(), o, err);
      if (v === undefined) return null;
      return o === 'ssl-min-ver' ? { ...t, minVersion: v } : { ...t, maxVersion: v };
    }
    case 'no-sslv3':
      return t;
    case 'force-sslv3':
      err(`'force-sslv3': SSLv3 is not available`);
      return null;
    case 'no-tls-tickets': return { ...t, noTickets: true };
    case 'tls-tickets': return { ...t, noTickets: false };
    case 'no-ssl-reuse': return { ...t, noReuse: true };
    case 'ssl-reuse': return { ...t, noReuse: false };
  }
  const m = /^(no|force)-(tlsv1[0-3])$/.exec(o);
  if (m === null) return undefined;
  const v = FLAG_VERSIONS[m[2]!]!;
  if (m[1] === 'force') return { ...t, minVersion: v, maxVersion: v };
  // HAProxy's no-tlsv1X removes one version; a range can only lose an end.
  const i = VERSION_ORDER.indexOf(v);
  const lo = VERSION_ORDER.indexOf(t.minVersion ?? 'TLSv1.2');
  const hi = VERSION_ORDER.indexOf(t.maxVersion ?? 'TLSv1.3');
  if (i < lo || i > hi) return t;
  if (i === lo && lo < hi) return { ...t, minVersion: VERSION_ORDER[i + 1] };
  if (i === hi && lo < hi) return { ...t, maxVersion: VERSION_ORDER[i - 1] };
  err(`'${o}' would leave no TLS version (allowed: ${t.minVersion ?? 'TLSv1.2'}..${t.maxVersion ?? 'TLSv1.3'}); use ssl-min-ver/ssl-max-ver`);
  return null;
}

/** `str(NAME)` -> NAME; other sample expressions are refused (the name is fixed per server). */
function sniValue(expr: string | undefined, err: (m: string) => void): string | undefined {
  if (expr === undefined) {
    err(`'sni' needs an expression (str(NAME))`);
    return undefined;
  }
  const m = /^str\(([^()]*)\)$/.exec(expr);
  if (m === null || m[1] === '') {
    err(`'sni ${expr}': stickmesh takes a fixed server name, 'sni str(NAME)'; other sample expressions are not supported`);
    return undefined;
  }
  return m[1];
}

function protocolList(v: string | undefined, what: string, err: (m: string) => void): string[] | undefined {
  if (v === undefined) return undefined;
  const list = v.split(',');
  for (const p of list) {
    if (p === '' || p.length > 255) {
      err(`'${what} ${v}': every protocol name takes 1 to 255 bytes`);
      return undefined;
    }
  }
  return list;
}

/**
 * Parses the TLS word `a[i]` of a server line into `s` (copy on write: `s.tls` may be shared with
 * the `default-server` it came from). Returns the index of the last word used, -1 after an
 * error was reported, or `undefined` when `a[i]` is not a TLS word.
 */
export function serverTlsWord(s: ServerSettings, a: readonly string[], i: number, err: (m: string) => void): number | undefined {
  const o = a[i]!;
  let j = i;
  const next = (): string | undefined => {
    const v = a[++j];
    if (v === undefined) err(`'${o}' needs a value`);
    return v;
  };
  const set = (patch: Partial<ServerTlsConfig>): number => {
    s.tls = { ...s.tls, ...patch };
    return j;
  };
  switch (o) {
    case 'ssl': s.ssl = true; return j;
    case 'no-ssl': s.ssl = false; return j;
    case 'check-ssl': s.checkSsl = true; return j;
    case 'no-check-ssl': s.checkSsl = false; return j;
    case 'verify': {
      const v = next();
      if (v === undefined) return -1;
      if (v !== 'none' && v !== 'required') {
        err(`'verify' on a server takes 'none' or 'required', got '${v}'`);
        return -1;
      }
      return set({ verify: v });
    }
    case 'ca-file':
    case 'crt':
    case 'ciphers':
    case 'ciphersuites':
    case 'verifyhost':
    case 'check-sni': {
      const v = next();
      if (v === undefined) return -1;
      if (v === '') {
        err(`'${o}' needs a value`);
        return -1;
      }
      const key = ({ 'ca-file': 'caFile', crt: 'crt', ciphers: 'ciphers', ciphersuites: 'ciphersuites', verifyhost: 'verifyHost', 'check-sni': 'checkSni' } as const)[o];
      return set({ [key]: v });
    }
    case 'no-verifyhost':
      return set({ verifyHost: undefined });
    case 'sni': {
      const v = sniValue(a[++j], err);
      return v === undefined ? -1 : set({ sni: v });
    }
    case 'alpn':
    case 'check-alpn': {
      const v = protocolList(next(), o, err);
      if (v === undefined) return -1;
      return set(o === 'alpn' ? { alpn: v } : { checkAlpn: v });
    }
  }
  const lim = limitWord(s.tls ?? {}, o, next, err);
  if (lim === undefined) return undefined;
  if (lim === null) return -1;
  return set(lim);
}

/** The server words this module reads, for the list in the "not supported" message. */
export const SERVER_TLS_WORDS = 'ssl, verify, ca-file, sni, crt, alpn, check-ssl, check-sni, verifyhost, ciphers, ciphersuites, ssl-min-ver, ssl-max-ver';

/**
 * `global` lines for server-side TLS. Returns true when `kw` was one of them (reported errors
 * included), false to let the caller handle it.
 */
export function globalServerTlsLine(g: GlobalConfig, kw: string, a: readonly string[], err: (m: string) => void): boolean {
  const d: ServerTlsDefaults = { ...g.sslServer };
  switch (kw) {
    case 'ssl-server-verify': {
      const v = a[0];
      if (v !== 'none' && v !== 'required' || a.length > 1) err(`expects 'none' or 'required'`);
      else g.sslServer = { ...d, verify: v };
      return true;
    }
    case 'ssl-default-server-ciphers':
    case 'ssl-default-server-ciphersuites': {
      if (a.length !== 1 || a[0] === '') err(`expects one cipher list`);
      else g.sslServer = kw === 'ssl-default-server-ciphers' ? { ...d, ciphers: a[0] } : { ...d, ciphersuites: a[0] };
      return true;
    }
    case 'ssl-default-server-options': {
      let t: Limits = d;
      for (let i = 0; i < a.length; i++) {
        const o = a[i]!;
        const r = limitWord(t, o, () => {
          const v = a[++i];
          if (v === undefined) err(`'${o}' needs a value`);
          return v;
        }, err);
        if (r === null) return true;
        if (r === undefined) {
          err(`option '${o}' is not supported (ssl-min-ver, ssl-max-ver, no-tlsv1x, force-tlsv1x, no-tls-tickets, no-ssl-reuse)`);
          return true;
        }
        t = r;
      }
      g.sslServer = { ...d, ...t };
      return true;
    }
    case 'ca-base':
      if (a.length !== 1 || a[0] === '') err(`expects one directory`);
      else g.caBase = a[0];
      return true;
  }
  return false;
}

// ------------------------------------------------------------------ files

/** Reads a PEM file, bounded; throws TlsFileError naming it. */
function readPem(file: string, what: string): string {
  let text: string;
  try {
    const st = statSync(file);
    if (st.size > MAX_CA_PEM_BYTES) throw new TlsFileError(`${what} '${file}' is larger than ${MAX_CA_PEM_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof TlsFileError) throw e;
    const c = (e as NodeJS.ErrnoException).code;
    throw new TlsFileError(`cannot read the ${what} '${file}': ${errnoText(e)}${c ? ` (${c})` : ''}`);
  }
  return text;
}

/**
 * The CA certificates of `ca-file` (a PEM file, or a directory whose `.pem`, `.crt`, `.cer` files
 * not starting with a dot are read, as HAProxy does); `undefined` for `@system-ca` (Node's
 * bundled roots). Throws TlsFileError when a file cannot be read or holds no certificate
 * OpenSSL accepts.
 */
export function loadCaFile(file: string): string[] | undefined {
  if (file === SYSTEM_CA) return undefined;
  let files = [file];
  let isDir = false;
  try {
    isDir = statSync(file).isDirectory();
  } catch {
    // readPem reports it
  }
  if (isDir) {
    let names: string[];
    try {
      names = readdirSync(file).filter((n) => !n.startsWith('.') && /\.(pem|crt|cer)$/i.test(n)).sort();
    } catch (e) {
      throw new TlsFileError(`cannot read the ca-file directory '${file}': ${(e as Error).message}`);
    }
    if (names.length > MAX_CA_DIR_FILES) throw new TlsFileError(`ca-file directory '${file}' holds more than ${MAX_CA_DIR_FILES} certificate files`);
    if (names.length === 0) throw new TlsFileError(`ca-file directory '${file}' holds no .pem, .crt or .cer file`);
    files = names.map((n) => path.join(file, n));
  }
  const out: string[] = [];
  for (const f of files) {
    const pem = readPem(f, 'ca-file');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new TlsFileError(`ca-file '${f}' holds no PEM certificate`);
    try {
      tls.createSecureContext({ ca: pem });
    } catch (e) {
      throw new TlsFileError(`ca-file '${f}': ${(e as Error).message}`);
    }
    out.push(pem);
  }
  return out;
}

/** A `crt` file: certificate chain and private key in one PEM (HAProxy's layout). Throws TlsFileError. */
export function loadCertKeyFile(file: string): { cert: string; key: string } {
  const pem = readPem(file, 'crt file');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new TlsFileError(`crt file '${file}' holds no PEM certificate`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new TlsFileError(`crt file '${file}' holds no private key (certificate and key go in one PEM file)`);
  try {
    tls.createSecureContext({ cert: pem, key: pem });
  } catch (e) {
    throw new TlsFileError(`crt file '${file}': ${(e as Error).message}`);
  }
  return { cert: pem, key: pem };
}

// ------------------------------------------------------------------ end of parsing

/** A server (or server-template) setting as the completion step sees it. */
interface TlsServerView {
  what: string;
  s: ServerSettings;
  loc: SourceLoc;
  mode: 'http' | 'tcp';
}

/**
 * Completes every TLS server of `cfg` from the `global` defaults and checks it (see the module
 * comment). Problems go to `push` at the server's line. A file named by several servers is read
 * once.
 */
export function finishServerTls(cfg: StickmeshConfig, push: (i: ConfigIssue) => void): void {
  const views: TlsServerView[] = [];
  for (const b of cfg.backends) {
    for (const s of b.servers) views.push({ what: `server '${b.name}/${s.name}'`, s, loc: s.loc, mode: b.mode });
    for (const t of b.serverTemplates) views.push({ what: `server-template '${b.name}/${t.prefix}'`, s: t.template, loc: t.loc, mode: b.mode });
  }
  if (views.length === 0) return;
  const g = cfg.global;
  const d = g.sslServer ?? {};
  const checked = new Map<string, string | undefined>();
  const check = (key: string, load: () => void): string | undefined => {
    if (!checked.has(key)) {
      try {
        load();
        checked.set(key, undefined);
      } catch (e) {
        if (!(e instanceof TlsFileError)) throw e;
        checked.set(key, e.message);
      }
    }
    return checked.get(key);
  };
  for (const v of views) {
    const s = v.s;
    if (s.ssl !== true && s.checkSsl !== true) continue;
    const t: ServerTlsConfig = {
      verify: d.verify,
      ciphers: d.ciphers,
      ciphersuites: d.ciphersuites,
      minVersion: d.minVersion,
      maxVersion: d.maxVersion,
      noTickets: d.noTickets,
      noReuse: d.noReuse,
      ...definedOnly(s.tls ?? {}),
    };
    t.verify ??= 'required';
    const issue = (message: string, directive = 'server'): void => push({ loc: v.loc, directive, message: `${v.what}: ${message}` });
    if (t.caFile !== undefined && t.caFile !== SYSTEM_CA && g.caBase !== undefined && !path.isAbsolute(t.caFile)) t.caFile = path.join(g.caBase, t.caFile);
    if (t.verify === 'required' && t.caFile === undefined) {
      issue(`verify is 'required' (the default) but no 'ca-file' names the CA to verify the server's certificate with; ` +
        `add 'ca-file FILE' (or 'ca-file @system-ca'), or, on a network where the server cannot be impersonated, 'verify none' on the line or 'ssl-server-verify none' in global`);
    }
    if (t.minVersion !== undefined && t.maxVersion !== undefined && VERSION_ORDER.indexOf(t.minVersion) > VERSION_ORDER.indexOf(t.maxVersion)) {
      issue(`ssl-min-ver ${t.minVersion} is above ssl-max-ver ${t.maxVersion}`);
    }
    if (v.mode === 'http') {
      for (const p of t.alpn ?? []) {
        if (p !== 'http/1.1' && p !== 'http/1.0') issue(`'alpn ${t.alpn!.join(',')}': stickmesh speaks HTTP/1.1 to servers; offer http/1.1 (or http/1.0) only`);
      }
    }
    if (t.caFile !== undefined) {
      const e = check(`ca:${t.caFile}`, () => loadCaFile(t.caFile!));
      if (e !== undefined) issue(e, 'ca-file');
    }
    if (t.crt !== undefined) {
      const e = check(`crt:${t.crt}`, () => loadCertKeyFile(t.crt!));
      if (e !== undefined) issue(e, 'crt');
    }
    if (t.ciphers !== undefined || t.ciphersuites !== undefined) {
      const e = check(`ciphers:${t.ciphers ?? ''}:${t.ciphersuites ?? ''}`, () => {
        try {
          tls.createSecureContext({ ciphers: joinCiphers(t) });
        } catch (err) {
          throw new TlsFileError(`cipher list not accepted by OpenSSL: ${(err as Error).message}`);
        }
      });
      if (e !== undefined) issue(e, 'ciphers');
    }
    s.tls = t;
  }
}

/** `ciphers` and `ciphersuites` as the one list Node's `ciphers` option takes (TLS 1.3 suites first). */
export function joinCiphers(t: Pick<ServerTlsConfig, 'ciphers' | 'ciphersuites'>): string | undefined {
  if (t.ciphers === undefined && t.ciphersuites === undefined) return undefined;
  return [t.ciphersuites ?? tls.DEFAULT_CIPHERS.split(':').filter((c) => c.startsWith('TLS_')).join(':'), t.ciphers ?? tls.DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_')).join(':')]
    .filter((x) => x !== '')
    .join(':');
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
