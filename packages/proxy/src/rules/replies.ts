/**
 * Responses the rules answer with themselves (`deny`, `tarpit`, `return`, `redirect`), shaped as
 * HAProxy 2.6 sends them (checked against a real haproxy): the connection is kept alive after
 * them (HTTP/1.1, or HTTP/1.0 with keep-alive), `deny`/`tarpit` send a small HTML page with
 * `cache-control: no-cache`, `return` sends its content type and body, `redirect` an empty body
 * with `location` and, for 302, 303 and 307, `cache-control: no-cache`.
 *
 * Fixed replies are built at config load: one buffer per variant (keep-alive HTTP/1.1, close,
 * keep-alive HTTP/1.0; with or without body for HEAD), made the first time a variant is needed.
 */
import { STATUS_CODES } from 'node:http';

export function reasonOf(status: number): string {
  return STATUS_CODES[status] ?? 'Unknown';
}

/** Connection header variant of a reply: index bits. */
export const enum ReplyMode {
  KeepAlive11 = 0,
  Close = 1,
  KeepAlive10 = 2,
  /** Added to the above: the request was HEAD (no body). */
  Head = 4,
}

function connectionLine(mode: number): string {
  switch (mode & 3) {
    case ReplyMode.Close:
      return 'connection: close\r\n';
    case ReplyMode.KeepAlive10:
      return 'connection: keep-alive\r\n';
    default:
      return '';
  }
}

/** What a rule answers with: the bytes for a ReplyMode, and whether the connection closes after them. */
export interface Reply {
  readonly status: number;
  /** The connection is closed after this reply (an errorfile's bytes say nothing of keep-alive). */
  readonly closes: boolean;
  bytes(mode: number): Buffer;
}

/** A fixed reply with its variants, built on first use. */
export class FixedReply implements Reply {
  readonly closes = false;
  private readonly variants: (Buffer | undefined)[] = [];
  private readonly head: string;
  private readonly body: Buffer;

  constructor(
    readonly status: number,
    contentType: string | undefined,
    body: string | undefined,
    noCache: boolean,
  ) {
    this.body = Buffer.from(body ?? '', 'utf8');
    this.head =
      `HTTP/1.1 ${status} ${reasonOf(status)}\r\ncontent-length: ${this.body.length}\r\n` +
      (noCache ? 'cache-control: no-cache\r\n' : '') +
      (contentType !== undefined && this.body.length > 0 ? `content-type: ${contentType}\r\n` : '');
  }

  /** The bytes to send for `mode` (a ReplyMode with optional Head). */
  bytes(mode: number): Buffer {
    let b = this.variants[mode];
    if (b === undefined) {
      const head = Buffer.from(`${this.head}${connectionLine(mode)}\r\n`, 'latin1');
      b = (mode & ReplyMode.Head) !== 0 ? head : Buffer.concat([head, this.body]);
      this.variants[mode] = b;
    }
    return b;
  }
}

/**
 * An `errorfile` page as the reply of `deny` or `tarpit`: the file's bytes whatever the request
 * (HAProxy sends errorfiles as written), then the connection closes.
 */
export class ErrorFileReply implements Reply {
  readonly closes = true;
  constructor(
    readonly status: number,
    private readonly page: Buffer,
  ) {}

  bytes(_mode: number): Buffer {
    return this.page;
  }
}

/** HAProxy-like error page of `deny` and `tarpit` (our wording). */
export function denyReply(status: number): FixedReply {
  const reason = reasonOf(status);
  const text = status === 429 ? 'Too many requests in a short time.' : status >= 500 ? 'An internal error occurred.' : 'The request was refused by a rule.';
  return new FixedReply(status, 'text/html', `<html><body><h1>${status} ${reason}</h1>\n${text}\n</body></html>\n`, true);
}

/** A redirect: empty body, `location`; built per request (the location usually depends on it). */
export function redirectBytes(code: number, location: string, mode: number): Buffer {
  const noCache = code === 302 || code === 303 || code === 307;
  return Buffer.from(
    `HTTP/1.1 ${code} ${reasonOf(code)}\r\ncontent-length: 0\r\nlocation: ${location}\r\n${noCache ? 'cache-control: no-cache\r\n' : ''}${connectionLine(mode)}\r\n`,
    'latin1',
  );
}
