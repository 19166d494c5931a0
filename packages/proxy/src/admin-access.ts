/**
 * Who may talk to the admin listener, decided from request headers alone (pure functions, so the
 * fuzz tests drive them directly as well as through the server).
 *
 * Host: a browser sends the name it resolved, so a DNS-rebinding page (evil.example resolving to
 * 127.0.0.1) arrives with `Host: evil.example:9100`. Only names that cannot be rebound are
 * accepted: the bind address itself, `localhost`, `127.0.0.1` and `[::1]` on a loopback bind, any
 * IP literal on a wildcard bind, each with the listening port; plus the `host:port` of the
 * configured allowed origins (a port forward, a reverse proxy). A request without a Host header
 * (HTTP/1.0) is no browser's and passes.
 *
 * Origin: a browser marks its cross-origin calls with `Origin` (every CORS request, every write)
 * or, for no-cors loads such as `<img>` or `<script src>`, with `Sec-Fetch-Site: cross-site` or
 * `same-site`. Such a request is trusted only from this listener's own origin, an allowed origin,
 * or a peer's admin listener (the dashboard of a cluster shows its sibling nodes).
 */
import net from 'node:net';
import { plainIp } from './runtime/address.js';

/** Origins trusted besides the listener's own: peers' admin listeners and `admin-allow-origin`. */
export interface AdminOrigins {
  /** Admin listeners of this node's peers (`http://PEER_HOST:PORT`); the dashboard polls them. */
  peers: readonly string[];
  /** `admin-allow-origin`: pages allowed to call the API; the dashboard accepts them in `?nodes=`. */
  allowed: readonly string[];
}

export const NO_ORIGINS: AdminOrigins = { peers: [], allowed: [] };

/** True for 127.0.0.0/8, ::1 and ::ffff:127.x: addresses only this host can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  const v4 = plainIp(host);
  return net.isIPv4(v4) && v4.startsWith('127.');
}

/**
 * `name` and `port` of a Host header value (name lower case, IPv6 without brackets; port undefined
 * when the header has none), or undefined when malformed.
 */
export function splitHost(value: string): { name: string; port: number | undefined } | undefined {
  if (value.length === 0 || value.length > 300) return undefined;
  let name: string;
  let rest: string;
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end < 0) return undefined;
    name = value.slice(1, end);
    if (!net.isIPv6(name)) return undefined;
    rest = value.slice(end + 1);
  } else {
    const colon = value.indexOf(':');
    name = colon < 0 ? value : value.slice(0, colon);
    rest = colon < 0 ? '' : value.slice(colon);
  }
  if (name === '' || !/^[A-Za-z0-9._:-]+$/.test(name)) return undefined;
  let port: number | undefined;
  if (rest !== '') {
    if (!/^:\d{1,5}$/.test(rest)) return undefined;
    port = Number(rest.slice(1));
    if (port > 65535) return undefined;
  }
  return { name: name.toLowerCase(), port };
}

/** The Host check of one listener: built once per listener (and per change of the allowed origins). */
export class HostCheck {
  private readonly names = new Set<string>();
  private readonly extra = new Set<string>();
  private readonly anyIp: boolean;

  /**
   * @param bind the listen address as configured
   * @param port the port actually listened on
   * @param allowed normalized allowed origins: their `host:port` is accepted too
   */
  constructor(bind: string, readonly port: number, allowed: readonly string[]) {
    const b = plainIp(bind.replace(/^\[|\]$/g, '')).toLowerCase();
    this.anyIp = b === '' || b === '0.0.0.0' || b === '::';
    this.names.add('localhost');
    if (!this.anyIp) this.names.add(b);
    if (isLoopback(b)) {
      this.names.add('127.0.0.1');
      this.names.add('::1');
    }
    for (const o of allowed) {
      let u: URL;
      try {
        u = new URL(o);
      } catch {
        continue; // allowed origins are normalized by the config parser; anything else adds nothing
      }
      const h = splitHost(u.host);
      if (!h) continue;
      // A browser omits the scheme's default port from Host.
      if (h.port === undefined) this.extra.add(h.name);
      this.extra.add(`${h.name}:${h.port ?? (u.protocol === 'https:' ? 443 : 80)}`);
    }
  }

  /** True when `value` (the Host header, possibly absent) names this listener. */
  accepts(value: string | undefined): boolean {
    if (value === undefined) return true;
    const h = splitHost(value);
    if (!h) return false;
    if (this.extra.has(h.port === undefined ? h.name : `${h.name}:${h.port}`)) return true;
    if ((h.port ?? 80) !== this.port) return false;
    if (this.names.has(h.name)) return true;
    return this.anyIp && net.isIP(plainIp(h.name)) !== 0;
  }
}

/** What the Origin rules say of one request. */
export interface OriginVerdict {
  /** The request comes from a browser context other than a direct navigation by the user. */
  browser: boolean;
  /** A browser request from an origin that is not trusted: refuse it (unless it carries the token). */
  foreign: boolean;
  /** The Origin to echo in `Access-Control-Allow-Origin`, when trusted. */
  allowOrigin: string | undefined;
}

/**
 * Classifies a request by its `Origin` and `Sec-Fetch-Site` headers. `self` is the listener's own
 * origin as the browser sees it (`http://` + the validated Host header); `trusted` holds the peer
 * and allowed origins.
 */
export function classifyOrigin(origin: string | undefined, fetchSite: string | undefined, self: string | undefined, trusted: ReadonlySet<string>): OriginVerdict {
  if (origin !== undefined) {
    const o = origin.toLowerCase();
    const ok = o === self || trusted.has(o);
    return { browser: true, foreign: !ok, allowOrigin: ok ? origin : undefined };
  }
  const crossSite = fetchSite === 'cross-site' || fetchSite === 'same-site';
  return { browser: crossSite, foreign: crossSite, allowOrigin: undefined };
}
