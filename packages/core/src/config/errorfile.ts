/**
 * `errorfile CODE FILE`: a raw HTTP response (status line, headers, empty line, body) that the
 * proxy sends instead of its built-in page for CODE. Read and checked once at config load, as
 * HAProxy does: the file must exist, fit in HAProxy's buffer (tune.bufsize, 16384 bytes) and be a
 * well-formed response; an empty file (`/dev/null`) is allowed and means "close without answering".
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { errnoText } from '../util/errno.js';

/** The codes HAProxy generates itself and lets `errorfile` replace (HAProxy 2.6 configuration manual). */
export const ERRORFILE_CODES: readonly number[] = [200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504];

/** Largest errorfile: HAProxy's default buffer size (`tune.bufsize`); a larger file is refused. */
export const MAX_ERRORFILE_BYTES = 16384;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Header values: visible characters, spaces, tabs and obs-text; no other control character.
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Reads FILE (at most MAX_ERRORFILE_BYTES + 1 bytes, so a device or a huge file costs no more)
 * and checks it; returns the response as latin1 text with CRLF line ends (the bytes as written
 * when the file already used CRLF), or an error message.
 */
export function readErrorFile(file: string): { response: string; status?: number } | { error: string } {
  let buf: Buffer;
  try {
    const fd = openSync(file, 'r');
    try {
      buf = Buffer.alloc(MAX_ERRORFILE_BYTES + 1);
      let n = 0;
      for (;;) {
        const r = readSync(fd, buf, n, buf.length - n, null);
        if (r === 0) break;
        n += r;
        if (n === buf.length) return { error: `'${file}' is larger than ${MAX_ERRORFILE_BYTES} bytes (HAProxy's tune.bufsize)` };
      }
      buf = buf.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return { error: `cannot read '${file}': ${errnoText(err)}` };
  }
  const r = parseErrorResponse(buf);
  return 'error' in r ? { error: `'${file}': ${r.error}` } : r;
}

/** Checks a raw HTTP/1.x response and returns it with CRLF line ends in its head, and its status (none for an empty file). */
export function parseErrorResponse(buf: Buffer): { response: string; status?: number } | { error: string } {
  if (buf.length === 0) return { response: '' };
  const text = buf.toString('latin1');
  const lines: string[] = [];
  let at = 0;
  let bodyAt = -1;
  while (at < text.length) {
    const nl = text.indexOf('\n', at);
    if (nl === -1) break;
    const line = text.slice(at, nl > at && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl);
    at = nl + 1;
    if (line === '') {
      bodyAt = at;
      break;
    }
    lines.push(line);
  }
  if (bodyAt === -1) return { error: 'not an HTTP response: no empty line ends the headers' };
  const status = lines[0] ?? '';
  if (!/^HTTP\/1\.[01] [1-5]\d\d( [\t\x20-\x7e\x80-\xff]*)?$/.test(status)) return { error: `not an HTTP response: the first line must be 'HTTP/1.x CODE REASON', got '${status.slice(0, 64)}'` };
  let contentLength: number | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name) || !VALUE.test(value)) return { error: `line ${i + 1} is not a header ('NAME: value'): '${line.slice(0, 64)}'` };
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') return { error: `'Transfer-Encoding' is not supported: give the body's size with Content-Length, or end the body with the file` };
    if (lower === 'content-length') {
      if (contentLength !== undefined || !/^\d{1,9}$/.test(value)) return { error: `invalid or repeated Content-Length '${value}'` };
      contentLength = Number(value);
    }
  }
  const body = text.slice(bodyAt);
  if (contentLength !== undefined && contentLength !== body.length) return { error: `Content-Length ${contentLength} does not match the body's ${body.length} bytes` };
  return { response: `${lines.join('\r\n')}\r\n\r\n${body}`, status: Number(status.slice(9, 12)) };
}
