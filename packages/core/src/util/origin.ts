/**
 * Web origins as the admin listener compares them (`admin-allow-origin`, peers' admin listeners).
 */

/** Origins `admin-allow-origin` may list in one config. */
export const MAX_ALLOWED_ORIGINS = 64;

/**
 * The serialized origin (`scheme://host[:port]`, lower case, default port dropped) of an http or
 * https URL that is nothing but an origin, or an error message. A path other than `/`, a query, a
 * fragment, credentials, `*` and `null` are refused: an allowlist entry names exactly one origin.
 */
export function parseOrigin(text: string): string | { error: string } {
  if (text === '*' || text === 'null') return { error: `'${text}' is not allowed: name each origin (scheme://host:port)` };
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return { error: `'${text}' is not an origin (scheme://host[:port])` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { error: `'${text}': the scheme must be http or https` };
  if (u.username !== '' || u.password !== '' || (u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '' || text.endsWith('?') || text.endsWith('#')) {
    return { error: `'${text}' is not an origin: no path, query, fragment or credentials (scheme://host[:port])` };
  }
  return u.origin;
}

/** `host` as it stands in a URL or `host:port`: an IPv6 literal in brackets, anything else as is. */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
