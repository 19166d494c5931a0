/**
 * The client side of TLS towards servers (`server ... ssl`): what a connection needs, built once
 * per distinct server TLS setting when a config is loaded (the SecureContext with its CA, client
 * certificate, ciphers and versions; the identity check; ALPN in wire form), so a connection only
 * adds its address. HAProxy's verification rule: with `verify required` the chain must lead to a
 * CA of `ca-file`, and the certificate must carry the name sent as SNI (else the `verifyhost`
 * name); with neither name, only the chain is checked. Discovery moving a server's address does
 * not change the name sent or checked.
 */
import crypto from 'node:crypto';
import tls from 'node:tls';
import { StickmeshError, TlsFileError, joinCiphers, loadCaFile, loadCertKeyFile, type ServerConfig, type ServerTlsConfig, type TlsVersion } from '@stickmesh/core';

/** What TLS connections to one server (or one TLS setting shared by several) use. */
export class ServerTls {
  readonly context: tls.SecureContext;
  readonly rejectUnauthorized: boolean;
  /** SNI for traffic and for health checks; undefined sends none. */
  readonly servername: string | undefined;
  readonly checkServername: string | undefined;
  readonly checkServerIdentity: (host: string, cert: tls.PeerCertificate) => Error | undefined;
  readonly checkIdentity: (host: string, cert: tls.PeerCertificate) => Error | undefined;
  /** ALPN offers in wire form (length-prefixed names), built once; undefined offers none. */
  readonly alpn: Buffer | undefined;
  readonly checkAlpn: Buffer | undefined;
  /** Session resumption with the server (HAProxy's default; `no-ssl-reuse` turns it off). */
  readonly reuse: boolean;

  constructor(t: ServerTlsConfig, mode: 'http' | 'tcp') {
    const ca = t.caFile !== undefined ? loadCaFile(t.caFile) : undefined;
    const ck = t.crt !== undefined ? loadCertKeyFile(t.crt) : undefined;
    this.context = tls.createSecureContext({
      ...(ca !== undefined ? { ca } : {}),
      ...(ck !== undefined ? { cert: ck.cert, key: ck.key } : {}),
      ciphers: joinCiphers(t),
      minVersion: nodeVersion(t.minVersion ?? 'TLSv1.2'),
      maxVersion: nodeVersion(t.maxVersion ?? 'TLSv1.3'),
      ...(t.noTickets === true ? { secureOptions: crypto.constants.SSL_OP_NO_TICKET } : {}),
    });
    this.rejectUnauthorized = t.verify !== 'none';
    this.servername = t.sni;
    this.checkServername = t.checkSni;
    this.checkServerIdentity = identityCheck(t.sni ?? t.verifyHost);
    this.checkIdentity = identityCheck(t.checkSni ?? t.verifyHost);
    // An HTTP backend offers http/1.1 unless told otherwise: the proxy speaks nothing else to servers.
    this.alpn = wireAlpn(t.alpn ?? (mode === 'http' ? ['http/1.1'] : undefined));
    this.checkAlpn = wireAlpn(t.checkAlpn ?? t.alpn);
    this.reuse = t.noReuse !== true;
  }
}

/** HAProxy's version names as Node's (`TLSv1.0` is Node's `TLSv1`). */
function nodeVersion(v: TlsVersion): tls.SecureVersion {
  return v === 'TLSv1.0' ? 'TLSv1' : v;
}

const noIdentityCheck = (): undefined => undefined;

function identityCheck(name: string | undefined): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  if (name === undefined) return noIdentityCheck;
  return (_host, cert) => tls.checkServerIdentity(name, cert);
}

function wireAlpn(list: string[] | undefined): Buffer | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const parts: Buffer[] = [];
  for (const p of list) {
    const b = Buffer.from(p, 'latin1');
    parts.push(Buffer.from([b.length]), b);
  }
  return Buffer.concat(parts);
}

/**
 * The ServerTls of `sc`, shared through `cache` by servers whose TLS settings are equal (a
 * server-template's slots, a default-server's servers): one SecureContext, not one per server.
 * Undefined when the server uses no TLS, neither for traffic nor for checks. Throws a
 * StickmeshError naming the server's line when a file cannot be loaded (the config check read
 * it, but it may have changed since).
 */
export function serverTlsFor(sc: ServerConfig, mode: 'http' | 'tcp', cache: Map<string, ServerTls>): ServerTls | undefined {
  if (sc.tls === undefined || (sc.ssl !== true && sc.checkSsl !== true)) return undefined;
  const key = `${mode}\u0000${JSON.stringify(sc.tls)}`;
  let t = cache.get(key);
  if (t === undefined) {
    try {
      t = new ServerTls(sc.tls, mode);
    } catch (e) {
      const why = e instanceof TlsFileError ? e.message : `TLS settings refused: ${(e as Error).message}`;
      throw new StickmeshError('SM_SERVER_TLS', `${sc.loc.file}:${sc.loc.line}: 'server ${sc.name}': ${why}`);
    }
    cache.set(key, t);
  }
  return t;
}

/** Whether health checks of `sc` go over TLS: `check-ssl`, or `ssl` without a check `port` (HAProxy's rule). */
export function checksOverTls(sc: ServerConfig): boolean {
  return sc.checkSsl ?? (sc.ssl === true && sc.checkPort === undefined);
}
