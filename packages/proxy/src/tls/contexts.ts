/**
 * The SecureContexts of one `ssl` bind, built when the config is loaded (start, reload) and when
 * the ticket keys change, never per connection.
 *
 * Two kinds, because OpenSSL reads session tickets with the keys of the context a handshake
 * *starts* with (its session context), whatever context the SNI callback switches to later:
 *   - initial contexts: the default certificate with one ticket key each, one per key of the
 *     ring (TicketKeys.all()). A connection starts with the one whose key made the ticket it
 *     offers (its name read from the ClientHello, tls/client-hello.ts), else the current key's;
 *     so a ticket issued by any node with any key still in the ring resumes here, and a new
 *     ticket is issued with that same key (still accepted everywhere until it leaves the ring).
 *   - certificate contexts: one per certificate, what SNICallback switches to for a name the
 *     default certificate does not serve (exact name, then `*.` wildcard one label deep, as
 *     HAProxy). A bind with one certificate has no SNICallback at all.
 *
 * Bound: initial contexts = the ring's keys (its own bound); certificate contexts = the bind's
 * certificates (MAX_CERT_FILES per config).
 */
import tls, { type SecureContext, type SecureContextOptions } from 'node:tls';
import { constants } from 'node:crypto';
import { NODE_TLS_VERSION, nodeCiphers, type BindSslConfig, type LoadedCert, type TicketKeys } from '@stickmesh/core';

/**
 * Session id context of every ssl bind, the same on every node: OpenSSL refuses to resume a
 * session made under another context, and a ticket must resume through any node.
 */
const SESSION_ID_CONTEXT = 'stickmesh';

/** What SNICallback calls back with (Node's signature). */
type SniDone = (err: Error | null, ctx?: SecureContext) => void;

export class TlsBindRuntime {
  readonly ssl: BindSslConfig;
  /** ALPN protocols offered, in Node's wire form (built once); undefined = no ALPN. */
  readonly alpn: Buffer | undefined;
  /** The protocols of `alpn`, to test a client's list against. */
  private readonly alpnList: readonly string[];
  /** Switches the certificate by server name; undefined for a bind with one certificate. */
  readonly sniCallback: ((servername: string, cb: SniDone) => void) | undefined;
  private readonly base: SecureContextOptions;
  private readonly def: LoadedCert;
  /** Certificate contexts by exact name and by wildcard parent (`*.a.b` under `a.b`). */
  private readonly exact = new Map<string, SecureContext | null>();
  private readonly wild = new Map<string, SecureContext | null>();
  /** Initial contexts by ticket key (the ring's Buffer objects); at most the ring's size. */
  private byKey = new Map<Buffer, SecureContext>();
  private currentCtx: SecureContext;
  private readonly keys: TicketKeys;
  private readonly unsubscribe: () => void;

  /** `http`: an HTTP frontend, which never offers h2/h3 whatever the list says (HTTP/1.1 only). */
  constructor(ssl: BindSslConfig, http: boolean, keys: TicketKeys) {
    this.ssl = ssl;
    this.keys = keys;
    const first = ssl.certs[0];
    if (!first) throw new Error(`ssl bind without certificates (${ssl.crts.join(', ')})`);
    this.def = first;
    const ciphers = nodeCiphers(ssl);
    this.base = {
      minVersion: NODE_TLS_VERSION[ssl.minVersion],
      maxVersion: NODE_TLS_VERSION[ssl.maxVersion],
      ...(ciphers !== undefined ? { ciphers } : {}),
      ...(ssl.curves !== undefined ? { ecdhCurve: ssl.curves } : {}),
      honorCipherOrder: !ssl.preferClientCiphers,
      sessionIdContext: SESSION_ID_CONTEXT,
      ...(ssl.noTickets ? { secureOptions: constants.SSL_OP_NO_TICKET } : {}),
    };
    const list = ssl.alpn?.filter((p) => !http || (p !== 'h2' && p !== 'h3'));
    if (list !== undefined && list.length > 0) {
      const out: { ALPNProtocols?: Buffer } = {};
      // Node's own conversion to the wire form (exported, absent from the typings).
      (tls as unknown as { convertALPNProtocols(p: string[], out: { ALPNProtocols?: Buffer }): void }).convertALPNProtocols(list, out);
      this.alpn = out.ALPNProtocols;
    } else this.alpn = undefined;
    this.alpnList = list ?? [];
    // Names: the first certificate naming a name serves it (the default one first).
    let contexts = 0;
    for (const c of ssl.certs) {
      const ctx = c === first ? null : this.build(c, undefined);
      if (ctx !== null) contexts++;
      for (const n of c.names) {
        const m = n.startsWith('*.') ? this.wild : this.exact;
        const k = n.startsWith('*.') ? n.slice(2) : n;
        if (!m.has(k)) m.set(k, ctx);
      }
    }
    this.sniCallback = contexts > 0 ? this.onSni : undefined;
    this.currentCtx = this.rebuildInitial();
    this.unsubscribe = keys.onChange(() => {
      this.currentCtx = this.rebuildInitial();
    });
  }

  private build(c: LoadedCert, ticketKey: Buffer | undefined): SecureContext {
    return tls.createSecureContext({ ...this.base, cert: c.cert, key: c.key, ...(ticketKey !== undefined && !this.ssl.noTickets ? { ticketKeys: ticketKey } : {}) });
  }

  /** One initial context per ring key (kept when the key stays); answers the current key's. */
  private rebuildInitial(): SecureContext {
    const next = new Map<Buffer, SecureContext>();
    for (const k of this.keys.all()) next.set(k, this.byKey.get(k) ?? this.findByValue(k) ?? this.build(this.def, k));
    this.byKey = next;
    const cur = this.keys.current();
    if (cur === undefined) return this.noKey ?? (this.noKey = this.build(this.def, undefined));
    let ctx = next.get(cur) ?? this.findByValue(cur);
    if (ctx === undefined) {
      ctx = this.build(this.def, cur);
      next.set(cur, ctx);
    }
    return ctx;
  }

  /** The context without ticket key, used while the ring has none (Node then makes a random one). */
  private noKey: SecureContext | undefined;

  private findByValue(k: Buffer): SecureContext | undefined {
    for (const [key, ctx] of this.byKey) if (key.equals(k)) return ctx;
    return undefined;
  }

  /**
   * The context a handshake starts with: the one holding the key named `ticketName` (the ticket
   * the client offers), else the current key's.
   */
  initialContext(ticketName: Buffer | undefined): SecureContext {
    if (ticketName === undefined || this.ssl.noTickets) return this.currentCtx;
    const k = this.keys.byName(ticketName);
    if (k === undefined) return this.currentCtx;
    return this.byKey.get(k) ?? this.findByValue(k) ?? this.currentCtx;
  }

  /** Whether the client's ALPN list (from its hello) has a protocol the bind offers. */
  offersAny(client: readonly string[] | undefined): boolean {
    if (client === undefined) return false;
    for (const p of client) if (this.alpnList.includes(p)) return true;
    return false;
  }

  /** Whether some certificate of the bind serves `name` (lower case): exact, then wildcard. */
  serves(name: string): boolean {
    if (this.exact.has(name)) return true;
    const dot = name.indexOf('.');
    return dot > 0 && this.wild.has(name.slice(dot + 1));
  }

  /** SNICallback: the certificate context for the name; the default certificate (initial context) otherwise. */
  private readonly onSni = (servername: string, cb: SniDone): void => {
    const name = servername.toLowerCase();
    let ctx = this.exact.get(name);
    if (ctx === undefined) {
      const dot = name.indexOf('.');
      if (dot > 0) ctx = this.wild.get(name.slice(dot + 1));
    }
    // null or undefined: stay on the initial context (the default certificate).
    cb(null, ctx ?? undefined);
  };

  /** Stops following the ticket keys (the bind's frontend was replaced and has no connection left). */
  close(): void {
    this.unsubscribe();
  }
}
