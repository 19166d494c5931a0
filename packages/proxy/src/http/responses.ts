/**
 * Pre-built error responses (built once at load, written as-is). Every one closes the connection,
 * like HAProxy's own error pages. A section's `errorfile` pages replace them, status by status.
 */
import type { ErrorFileConfig } from '@stickmesh/core';

/** A section's `errorfile` responses by status, as bytes; built once per section at load. */
export type ErrorPages = ReadonlyMap<number, Buffer>;

export const NO_ERROR_PAGES: ErrorPages = new Map();

export function errorPagesOf(list: readonly ErrorFileConfig[] | undefined): ErrorPages {
  if (!list || list.length === 0) return NO_ERROR_PAGES;
  return new Map(list.map((e) => [e.status, Buffer.from(e.response, 'latin1')]));
}

const TEXTS: Record<number, [string, string]> = {
  400: ['Bad Request', 'Your browser sent an invalid request.'],
  408: ['Request Timeout', 'Your browser did not send a complete request in time.'],
  431: ['Request Header Fields Too Large', 'The request header section is too large.'],
  500: ['Internal Server Error', 'An internal error occurred.'],
  502: ['Bad Gateway', 'The server returned an invalid or incomplete response.'],
  503: ['Service Unavailable', 'No server is available to handle this request.'],
  504: ['Gateway Timeout', 'The server did not respond in time.'],
  505: ['HTTP Version Not Supported', 'Only HTTP/1.0 and HTTP/1.1 are supported.'],
};

const CACHE = new Map<number, Buffer>();

export function errorResponse(status: number): Buffer {
  let b = CACHE.get(status);
  if (b) return b;
  const [reason, text] = TEXTS[status] ?? ['Error', 'Error'];
  const body = `<html><body><h1>${status} ${reason}</h1>\n${text}\n</body></html>\n`;
  b = Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-cache\r\n` +
      `content-type: text/html\r\nconnection: close\r\n\r\n${body}`,
    'latin1',
  );
  CACHE.set(status, b);
  return b;
}
