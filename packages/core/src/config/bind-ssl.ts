/**
 * The TLS options of a `bind` line and of global `ssl-default-bind-*`, as HAProxy 2.6 reads them.
 * Pure parsing: the certificate files are read by the loader (core/tls/certs.ts), so a config
 * parsed from text alone (tests, the native door) has `certs` empty.
 *
 * Versions: HAProxy's default range is TLSv1.2..TLSv1.3 and so is ours. `no-tlsv1x` narrows that
 * range (`no-tlsv10`/`no-tlsv11` change nothing), `force-tlsv1x` sets it to one version; as
 * HAProxy, both are ignored with a warning when `ssl-min-ver`/`ssl-max-ver` is also given.
 * SSLv3 is refused (Node has none).
 */
import type { BindSslConfig, TlsVersion } from './model.js';

export const TLS_VERSIONS: readonly TlsVersion[] = ['TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Most `crt` arguments on one bind line. */
export const MAX_CRT_ARGS = 64;

const NO_FLAGS: Record<string, TlsVersion> = { 'no-tlsv10': 'TLSv1.0', 'no-tlsv11': 'TLSv1.1', 'no-tlsv12': 'TLSv1.2', 'no-tlsv13': 'TLSv1.3' };
const FORCE_FLAGS: Record<string, TlsVersion> = { 'force-tlsv10': 'TLSv1.0', 'force-tlsv11': 'TLSv1.1', 'force-tlsv12': 'TLSv1.2', 'force-tlsv13': 'TLSv1.3' };

/** Bind options of HAProxy that stickmesh does not implement, named in the error. */
const KNOWN_UNSUPPORTED = new Set([
  'accept-proxy', 'accept-netscaler-cip', 'allow-0rtt', 'backlog', 'ca-file', 'ca-ignore-err', 'ca-sign-file', 'ca-sign-pass',
  'crl-file', 'crt-ignore-err', 'crt-list', 'defer-accept', 'expose-fd', 'force-sslv3', 'generate-certificates', 'gid', 'group',
  'id', 'interface', 'level', 'severity-output', 'maxconn', 'mode', 'mss', 'name', 'namespace', 'nice', 'no-ca-names', 'npn',
  'process', 'proto', 'quic-cc-algo', 'quic-force-retry', 'shards', 'ssl_fc', 'tcp-ut', 'tfo', 'thread', 'tls-ticket-keys',
  'transparent', 'uid', 'user', 'v4v6', 'v6only', 'verify', 'sigalgs', 'client-sigalgs', 'no-sslv3', 'ocsp-update',
]);

/** Every bind option word stickmesh knows (supported or refused by name), for "did you mean". */
export const BIND_OPTION_WORDS: readonly string[] = [
  'ssl', 'crt', 'alpn', 'strict-sni', 'ssl-min-ver', 'ssl-max-ver', 'ciphers', 'ciphersuites', 'curves', 'ecdhe',
  ...Object.keys(NO_FLAGS), ...Object.keys(FORCE_FLAGS), 'no-tls-tickets', 'tls-tickets', 'prefer-client-ciphers', ...KNOWN_UNSUPPORTED,
];

/** What one bind line (or the global defaults) wrote, before the result is settled. */
export interface SslDraft {
  ssl: boolean;
  crts: string[];
  alpn?: string[];
  minVer?: TlsVersion;
  maxVer?: TlsVersion;
  /** Versions turned off by `no-tlsv1x`. */
  noVer: Set<TlsVersion>;
  forceVer?: TlsVersion;
  ciphers?: string;
  ciphersuites?: string;
  curves?: string;
  strictSni: boolean;
  noTickets: boolean;
  preferClientCiphers: boolean;
}

export function emptySslDraft(): SslDraft {
  return { ssl: false, crts: [], noVer: new Set(), strictSni: false, noTickets: false, preferClientCiphers: false };
}

/** Where a word is read: a bind line, or `ssl-default-bind-options` (no `ssl`, `crt`, ...). */
export type SslWhere = 'bind' | 'default-options';

/**
 * Reads the option at `a[i]` into `d`; returns the index after it, or an error message. `base`
 * is `crt-base` (applied to relative `crt` paths).
 */
export function readSslOption(d: SslDraft, a: readonly string[], i: number, where: SslWhere, base: string | undefined): number | { error: string } {
  const w = a[i]!;
  const value = (): string | { error: string } => {
    const v = a[i + 1];
    return v === undefined || v === '' ? { error: `'${w}' needs a value` } : v;
  };
  const bindOnly = where === 'bind';
  if (bindOnly && w === 'ssl') {
    d.ssl = true;
    return i + 1;
  }
  if (bindOnly && w === 'crt') {
    const v = value();
    if (typeof v !== 'string') return v;
    if (d.crts.length >= MAX_CRT_ARGS) return { error: `at most ${MAX_CRT_ARGS} 'crt' per bind line` };
    d.crts.push(base !== undefined && !v.startsWith('/') ? `${base.replace(/\/+$/, '')}/${v}` : v);
    return i + 2;
  }
  if (bindOnly && w === 'alpn') {
    const v = value();
    if (typeof v !== 'string') return v;
    const list = v.split(',');
    for (const p of list) if (p.length === 0 || p.length > 255) return { error: `'alpn ${v}': empty or too long protocol name` };
    d.alpn = list;
    return i + 2;
  }
  if (bindOnly && w === 'strict-sni') {
    d.strictSni = true;
    return i + 1;
  }
  if (w === 'ssl-min-ver' || w === 'ssl-max-ver') {
    const v = value();
    if (typeof v !== 'string') return v;
    const ver = versionOf(v);
    if (ver === undefined) {
      return { error: v === 'SSLv3' ? `'${w} SSLv3': SSLv3 is not supported (TLSv1.0 .. TLSv1.3)` : `'${w}' expects TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3, got '${v}'` };
    }
    if (w === 'ssl-min-ver') d.minVer = ver;
    else d.maxVer = ver;
    return i + 2;
  }
  if (w === 'ciphers' || w === 'ciphersuites' || w === 'curves' || w === 'ecdhe') {
    const v = value();
    if (typeof v !== 'string') return v;
    if (w === 'ciphers') d.ciphers = v;
    else if (w === 'ciphersuites') d.ciphersuites = v;
    else d.curves = v;
    return i + 2;
  }
  if (Object.hasOwn(NO_FLAGS, w)) {
    d.noVer.add(NO_FLAGS[w]!);
    return i + 1;
  }
  if (Object.hasOwn(FORCE_FLAGS, w)) {
    d.forceVer = FORCE_FLAGS[w]!;
    return i + 1;
  }
  if (w === 'no-sslv3') return i + 1; // never offered
  if (w === 'no-tls-tickets') {
    d.noTickets = true;
    return i + 1;
  }
  if (w === 'tls-tickets') {
    d.noTickets = false;
    return i + 1;
  }
  if (w === 'prefer-client-ciphers') {
    d.preferClientCiphers = true;
    return i + 1;
  }
  if (w === 'force-sslv3') return { error: `'force-sslv3': SSLv3 is not supported` };
  if (where === 'default-options') return { error: `'${w}' is not a TLS bind option stickmesh knows` };
  return { error: KNOWN_UNSUPPORTED.has(w) ? `bind option '${w}' is not supported by stickmesh` : `unknown bind option '${w}'` };
}

function versionOf(v: string): TlsVersion | undefined {
  return (TLS_VERSIONS as readonly string[]).includes(v) ? (v as TlsVersion) : undefined;
}

/**
 * Settles a bind's TLS config from its draft over the global defaults draft; `warn` gets
 * HAProxy's warnings, an error message is returned when the versions leave nothing to offer.
 */
export function finishSsl(d: SslDraft, defaults: SslDraft | undefined, warn: (m: string) => void): BindSslConfig | { error: string } {
  const pick = <K extends keyof SslDraft>(k: K): SslDraft[K] | undefined => d[k] ?? defaults?.[k];
  let minVer = d.minVer ?? defaults?.minVer;
  let maxVer = d.maxVer ?? defaults?.maxVer;
  const noVer = new Set([...(defaults?.noVer ?? []), ...d.noVer]);
  const forceVer = d.forceVer ?? defaults?.forceVer;
  if (minVer !== undefined || maxVer !== undefined) {
    if (noVer.size > 0 || forceVer !== undefined) warn(`no-tlsv1x/force-tlsv1x are ignored when 'ssl-min-ver' or 'ssl-max-ver' is set (as HAProxy); use only those`);
  } else if (forceVer !== undefined) {
    minVer = maxVer = forceVer;
  } else if (noVer.size > 0) {
    // The default range (TLSv1.2..TLSv1.3) narrowed by what is turned off.
    const on = TLS_VERSIONS.slice(2).filter((v) => !noVer.has(v));
    if (on.length === 0) return { error: `no-tlsv12 and no-tlsv13 leave no TLS version to offer` };
    minVer = on[0];
    maxVer = on[on.length - 1];
  }
  const min = minVer ?? 'TLSv1.2';
  const max = maxVer ?? 'TLSv1.3';
  if (TLS_VERSIONS.indexOf(min) > TLS_VERSIONS.indexOf(max)) return { error: `ssl-min-ver ${min} is above ssl-max-ver ${max}` };
  if (d.crts.length === 0) return { error: `'ssl' needs at least one 'crt' (a PEM file or a directory of them)` };
  return {
    crts: d.crts,
    certs: [],
    ...(d.alpn !== undefined ? { alpn: d.alpn } : {}),
    minVersion: min,
    maxVersion: max,
    ...(pick('ciphers') !== undefined ? { ciphers: pick('ciphers') as string } : {}),
    ...(pick('ciphersuites') !== undefined ? { ciphersuites: pick('ciphersuites') as string } : {}),
    ...(pick('curves') !== undefined ? { curves: pick('curves') as string } : {}),
    strictSni: d.strictSni,
    noTickets: d.noTickets || (defaults?.noTickets ?? false),
    preferClientCiphers: d.preferClientCiphers || (defaults?.preferClientCiphers ?? false),
  };
}
