/**
 * Value syntaxes shared by both config front doors, with HAProxy's rules: times default to
 * milliseconds and take `us|ms|s|m|h|d`; sizes take `k|m|g` as powers of 1024; addresses are
 * `host:port`, `:port`, `*:port`, `[v6]:port` or `v6:port` (the last colon splits).
 * Each parser returns the value or a string describing what is wrong (never throws), so callers can
 * attach `file:line` and the directive.
 */

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, '': 1 };

/** Parses a duration into milliseconds. */
export function parseTime(text: string): number | string {
  const m = /^(\d+)(us|ms|s|m|h|d)?$/.exec(text);
  if (!m) return `'${text}' is not a time (a number with optional unit us, ms, s, m, h, d)`;
  const v = Number(m[1]) * TIME_UNITS[m[2] ?? '']!;
  if (!Number.isSafeInteger(Math.ceil(v)) || v > 2_147_483_647) return `'${text}' is too large (max 2147483647 ms, about 24.8 days)`;
  return Math.ceil(v);
}

/** Parses a count with an optional k/m/g suffix (powers of 1024), e.g. `size 1m` = 1048576. */
export function parseSize(text: string): number | string {
  const m = /^(\d+)([kKmMgG])?$/.exec(text);
  if (!m) return `'${text}' is not a size (a number with optional suffix k, m, g)`;
  const mult = m[2] ? 1024 ** ('kmg'.indexOf(m[2].toLowerCase()) + 1) : 1;
  const v = Number(m[1]) * mult;
  if (!Number.isSafeInteger(v)) return `'${text}' is too large`;
  return v;
}

/** Parses a non-negative integer within [min, max]. */
export function parseInteger(text: string, min: number, max: number): number | string {
  if (!/^\d+$/.test(text)) return `'${text}' is not an integer`;
  const v = Number(text);
  if (v < min || v > max) return `'${text}' is out of range [${min}..${max}]`;
  return v;
}

export interface HostPort {
  host: string;
  /** undefined when the text carried no port. */
  port: number | undefined;
}

/**
 * Splits `host:port`. `host` is '' for `:port` and `*:port`. IPv6 may be bracketed or bare (then the
 * last colon separates the port, as HAProxy does: `::1:8080`). An `ipv4@`/`ipv6@` prefix is dropped.
 */
export function parseHostPort(text: string): HostPort | string {
  const t = text.replace(/^(ipv4|ipv6)@/, '');
  if (t === '') return `empty address`;
  let host: string;
  let portText: string | undefined;
  if (t.startsWith('[')) {
    const end = t.indexOf(']');
    if (end < 0) return `'${text}': missing ']'`;
    host = t.slice(1, end);
    const rest = t.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return `'${text}': unexpected '${rest}' after ']'`;
    portText = rest === '' ? undefined : rest.slice(1);
  } else {
    const colons = t.split(':').length - 1;
    if (colons === 0) {
      host = t;
      portText = undefined;
    } else {
      const i = t.lastIndexOf(':');
      host = t.slice(0, i);
      portText = t.slice(i + 1);
      // A bare IPv6 address without port, e.g. "::1" or "fe80::1": the tail is hex, not a port.
      if (colons > 1 && portText !== '' && !/^\d+$/.test(portText)) {
        host = t;
        portText = undefined;
      }
    }
  }
  if (host === '*') host = '';
  if (/\s/.test(host)) return `'${text}' is not an address`;
  if (portText === undefined) return { host, port: undefined };
  if (portText === '') return `'${text}': missing port after ':'`;
  if (!/^\d+$/.test(portText)) return `'${text}': port '${portText}' is not a number`;
  const port = Number(portText);
  if (port > 65535) return `'${text}': port ${port} is out of range [0..65535]`;
  return { host, port };
}
