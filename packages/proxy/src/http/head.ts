/**
 * Strict HTTP/1.x message-head parsing for the data plane.
 *
 * Only what persistence and framing need is interpreted (method, target, version, Host,
 * Content-Length, Transfer-Encoding, Connection, Upgrade, Cookie/Set-Cookie); every other header is
 * carried as a name/value pair. A `RequestHead`/`ResponseHead` is owned by a connection and reset
 * per message, so its arrays are allocated once per connection, not per request.
 *
 * Anything a smuggling attack could use is refused: repeated Content-Length (even with equal
 * values) or one that is not plain digits, obsolete line folding, bare LF, control characters,
 * whitespace before the colon, invalid token characters, and heads over the size or count limit.
 *
 * Transfer-Encoding (RFC 9112 §6.1, §6.3), modelled on HAProxy's h1 parser and stricter where
 * HAProxy is lenient:
 * - A request must say exactly `chunked` (any case, optional SP around it, no HTAB) in one header
 *   line; anything else is refused (400): other codings before it (`identity, chunked`,
 *   `gzip, chunked`, which HAProxy accepts: the proxy decodes no coding and a server may read
 *   them differently), codings after it, `chunked` twice, empty list elements, parameters, a
 *   second Transfer-Encoding line. Transfer-Encoding in an HTTP/1.0 request is refused (RFC 9112
 *   §6.1: faulty framing; HAProxy forwards it and closes). Content-Length together with
 *   Transfer-Encoding in a request is refused (400): HAProxy removes Content-Length, forwards the
 *   request as chunked and closes the connection afterwards; refusing is what RFC 9112 §6.3
 *   recommends ("ought to be handled as an error") and what Node's parser does, and the
 *   differential test holds the proxy to never accepting what Node refuses.
 * - A response may carry codings before `chunked` (chunked framing) or codings without `chunked`
 *   last (body until the server closes, RFC 9112 §6.3 rule 4); `chunked` twice, an empty
 *   element or a non-token coding is an invalid response (502), as in HAProxy. With
 *   Transfer-Encoding, a response's Content-Length is ignored; `clAt` lets the engine remove it.
 */

/** Node's undocumented-in-types but stable fast path for latin1 decoding. */
type LatinBuffer = Buffer & { latin1Slice(start: number, end: number): string };

export const MAX_HEAD_BYTES = 16384;
export const MAX_HEADERS = 100;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');

/** Error codes returned (negated) by the parsers; mapped to 400/431/505 by the engine, 502 upstream. */
export const enum HeadError {
  Incomplete = 0,
  TooLarge = -1,
  BadRequestLine = -2,
  BadHeader = -3,
  BadVersion = -4,
  BadContentLength = -5,
  BadTransferEncoding = -6,
  TooManyHeaders = -7,
  MissingHost = -8,
  BadStatusLine = -9,
}

export function headErrorText(code: number): string {
  switch (code) {
    case HeadError.TooLarge: return 'header section too large';
    case HeadError.BadRequestLine: return 'malformed request line';
    case HeadError.BadHeader: return 'malformed header line';
    case HeadError.BadVersion: return 'unsupported HTTP version';
    case HeadError.BadContentLength: return 'invalid or conflicting Content-Length';
    case HeadError.BadTransferEncoding: return 'invalid Transfer-Encoding';
    case HeadError.TooManyHeaders: return 'too many headers';
    case HeadError.MissingHost: return 'missing or repeated Host header';
    case HeadError.BadStatusLine: return 'malformed status line';
    default: return 'malformed message';
  }
}

/** tchar per RFC 9110 §5.6.2, as a lookup table indexed by char code. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

function isToken(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] !== 1) return false;
  }
  return true;
}

/** Case-insensitive compare of an ASCII header name with a lower-case literal, without allocating. */
export function nameIs(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Like `nameIs` for `s[from, from + lower.length)`; the caller has checked the length. */
function nameIsAt(s: string, from: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = s.charCodeAt(from + i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** `nameIsAt` on bytes: `buf[from, from + lower.length)` against a lower-case literal. */
function nameIsAtBuf(buf: Buffer, from: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = buf[from + i]!;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Whether `buf[from, from + lit.length)` equals the literal byte for byte (case-sensitive). */
function bytesAre(buf: Buffer, from: number, lit: string): boolean {
  for (let i = 0; i < lit.length; i++) if (buf[from + i] !== lit.charCodeAt(i)) return false;
  return true;
}

/** Splits the comma-separated value `buf[from, to)` and reports which connection tokens it names. */
function scanConnectionTokens(buf: Buffer, from: number, to: number, h: MessageHead): void {
  let start = from;
  while (start <= to) {
    let end = start;
    while (end < to && buf[end] !== 0x2c) end++;
    let a = start;
    let b = end;
    while (a < b && (buf[a] === 0x20 || buf[a] === 0x09)) a++;
    while (b > a && (buf[b - 1] === 0x20 || buf[b - 1] === 0x09)) b--;
    const len = b - a;
    if (len === 5 && nameIsAtBuf(buf, a, 'close')) h.connClose = true;
    else if (len === 10 && nameIsAtBuf(buf, a, 'keep-alive')) h.connKeepAlive = true;
    else if (len === 7 && nameIsAtBuf(buf, a, 'upgrade')) h.connUpgrade = true;
    start = end + 1;
  }
}

/** What a Transfer-Encoding value says about framing (`scanTransferEncoding`). */
export const enum Te {
  /** An empty coding, a coding that is not a token, or `chunked` more than once. */
  Invalid = -1,
  /** Exactly one coding: `chunked`. */
  ChunkedOnly = 1,
  /** `chunked` last, after other codings (`gzip, chunked`). */
  ChunkedLast = 2,
  /** No `chunked`, or `chunked` not last: a response body then runs until close. */
  Other = 3,
}

/**
 * Classifies the Transfer-Encoding value `buf[from, to)` (already trimmed of SP/HTAB) without
 * allocating: codings are comma-separated tokens with optional SP/HTAB around them, compared
 * case-insensitively. A coding with parameters (`chunked;q=1`) is not a token and is Invalid, as
 * an empty list element is (HAProxy refuses both).
 */
function scanTransferEncoding(buf: Buffer, from: number, to: number): Te {
  let codings = 0;
  let chunked = 0;
  let lastChunked = false;
  let i = from;
  for (;;) {
    while (i < to && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
    const a = i;
    while (i < to && buf[i]! < 128 && TCHAR[buf[i]!] === 1) i++;
    const b = i;
    while (i < to && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
    if (b === a || (i < to && buf[i] !== 0x2c)) return Te.Invalid;
    codings++;
    lastChunked = b - a === 7 && nameIsAtBuf(buf, a, 'chunked');
    if (lastChunked && ++chunked > 1) return Te.Invalid;
    if (i === to) break;
    i++; // the comma; a value ending in one has an empty last element
  }
  if (!lastChunked) return Te.Other;
  return codings === 1 ? Te.ChunkedOnly : Te.ChunkedLast;
}

/**
 * A plain `transfer-encoding:` line restating header `head.teAt`: the codings in lower case,
 * separated by `, `. For a head whose line is not `teCanonical` (rare, so allocating is fine).
 */
export function transferEncodingLine(head: MessageHead): string {
  const codings = head.value(head.teAt).split(',');
  for (let i = 0; i < codings.length; i++) codings[i] = codings[i]!.trim().toLowerCase();
  return `transfer-encoding: ${codings.join(', ')}\r\n`;
}

/**
 * The head starting at `start` as latin1 text up to and including its final empty line (CRLFCRLF
 * ends it), or Incomplete / TooLarge when no CRLFCRLF lies within MAX_HEAD_BYTES.
 */
function headWire(buf: Buffer, start: number, end: number): string | HeadError {
  const limit = Math.min(end, start + MAX_HEAD_BYTES);
  const idx = buf.indexOf(CRLFCRLF, start);
  if (idx === -1 || idx + 4 > limit) return end - start >= MAX_HEAD_BYTES ? HeadError.TooLarge : HeadError.Incomplete;
  return (buf as LatinBuffer).latin1Slice(start, idx + 4);
}

/** Offsets kept per header line in `MessageHead.pos`. */
const enum At {
  NameStart = 0,
  NameEnd = 1,
  ValueStart = 2,
  ValueEnd = 3,
  LineEnd = 4,
  Stride = 5,
}

/**
 * Fields shared by request and response heads.
 *
 * Every header line is located by offsets into `text` (`pos`), so the engine can copy unchanged
 * lines byte for byte instead of rebuilding them. A lazy head (responses) creates the name and
 * value strings only when someone asks (`names`/`values`/`name(i)`/`value(i)`): forwarding a
 * response normally needs none of them.
 */
export class MessageHead {
  versionMinor = 1;
  /** `text`, once made (always for eager heads; on first use for lazy ones, see `text`). */
  private _text: string | null = '';
  /**
   * Lazy heads: the bytes `text` is made from, `src[srcBase, srcBase + textLength)`. Valid while
   * the message is being handled within the read callback that parsed it (the shared response
   * parser's rule, exchange.ts); dropped once `text` is made and at the next reset.
   */
  private src: Buffer | null = null;
  private srcBase = 0;
  /**
   * Request heads: the head as received with its final empty line ('' otherwise). `text` is its
   * prefix, so every offset into `text` is one into `wire` too; string reads use it and `text` is
   * made only when asked for.
   */
  private wireText = '';
  /** Length of `text` in bytes (= characters, latin1). */
  textLength = 0;
  /** Offset in `text` just past the start line's CRLF. */
  startLineEnd = 0;
  /** Per header, `At.Stride` offsets into `text`; `count` headers are valid. */
  readonly pos: number[] = [];
  private readonly _names: string[] = [];
  private readonly _values: string[] = [];
  /** Whether `_names`/`_values` describe this message (always for eager heads). */
  private materialized = true;
  count = 0;
  /** -1 when absent. */
  contentLength = -1;
  chunked = false;
  /** Index of the Transfer-Encoding header, -1 when absent. */
  teAt = -1;
  /**
   * The Transfer-Encoding line is `name: chunked` byte for byte (one optional SP before the value,
   * nothing after it), so it can be copied; otherwise the engine writes a normalised line, so a
   * recipient that reads `CHUNKED\t` differently from us never sees it.
   */
  teCanonical = false;
  /** Index of the Content-Length header, -1 when absent (kept when Transfer-Encoding wins, for cutting). */
  clAt = -1;
  connClose = false;
  connKeepAlive = false;
  connUpgrade = false;
  /** Value of the Upgrade header, '' if absent. */
  upgrade = '';
  /** Byte length of the head including the final CRLFCRLF. */
  headBytes = 0;

  constructor(private readonly lazy = false) {}

  /**
   * The head as latin1 text: start line and header lines with their CRLFs, final empty line
   * excluded. A lazy head makes it on first use from the bytes it was parsed from (so it must be
   * asked for within the read callback that parsed it); forwarding a response normally never
   * asks, and offsets (`pos`, `lineStart`, `textLength`) need no text.
   */
  get text(): string {
    let t = this._text;
    if (t === null) {
      t = this.src !== null ? (this.src as LatinBuffer).latin1Slice(this.srcBase, this.srcBase + this.textLength) : this.wireText.slice(0, this.textLength);
      this._text = t;
      this.src = null;
    }
    return t;
  }

  /**
   * The head as received, final CRLF included (request heads; '' for responses): sent upstream as
   * it is when nothing in it changes, without building a string.
   */
  get wire(): string {
    return this.wireText;
  }

  /** A string holding the head's text at offset 0 (`wire`, or `text`), for reads by offset. */
  private str(): string {
    return this._text ?? (this.wireText !== '' ? this.wireText : this.text);
  }

  /** Request heads: the head as received, `wire` (final CRLFCRLF included); `text` is its prefix. */
  protected setWire(w: string): void {
    this._text = null;
    this.src = null;
    this.wireText = w;
    this.textLength = w.length - 2;
  }

  /** Lazy heads: the text is `buf[base, base + length)`, made when asked for. */
  protected setTextBytes(buf: Buffer, base: number, length: number): void {
    this._text = null;
    this.src = buf;
    this.srcBase = base;
    this.textLength = length;
  }

  /** The message has a Transfer-Encoding header (`teAt` is its index). */
  get hasTransferEncoding(): boolean {
    return this.teAt !== -1;
  }

  /** Raw header names in arrival order; `count` entries are valid. Writable (the engine edits requests). */
  get names(): string[] {
    if (!this.materialized) this.materialize();
    return this._names;
  }

  /** Header values (surrounding whitespace trimmed), parallel to `names`. */
  get values(): string[] {
    if (!this.materialized) this.materialize();
    return this._values;
  }

  private materialize(): void {
    const s = this.str();
    const pos = this.pos;
    for (let i = 0; i < this.count; i++) {
      const b = i * At.Stride;
      this._names[i] = s.slice(pos[b + At.NameStart]!, pos[b + At.NameEnd]!);
      this._values[i] = s.slice(pos[b + At.ValueStart]!, pos[b + At.ValueEnd]!);
    }
    this.materialized = true;
  }

  /** Length of header `i`'s name. */
  nameLength(i: number): number {
    const b = i * At.Stride;
    return this.pos[b + At.NameEnd]! - this.pos[b + At.NameStart]!;
  }

  /** Case-insensitive test of header `i`'s name against a lower-case literal, without allocating. */
  nameAt(i: number, lower: string): boolean {
    if (this.nameLength(i) !== lower.length) return false;
    const from = this.pos[i * At.Stride + At.NameStart]!;
    const src = this.src;
    return src !== null ? nameIsAtBuf(src, this.srcBase + from, lower) : nameIsAt(this.str(), from, lower);
  }

  /**
   * Whether header `i` is a hop-by-hop header the proxy never forwards (Connection, Keep-Alive,
   * Proxy-Connection). Upgrade is the caller's decision: it passes through with an upgrade.
   */
  isHopByHop(i: number): boolean {
    switch (this.nameLength(i)) {
      case 10:
        return this.nameAt(i, 'connection') || this.nameAt(i, 'keep-alive');
      case 16:
        return this.nameAt(i, 'proxy-connection');
      default:
        return false;
    }
  }

  /** Header `i`'s value (a slice for lazy heads). */
  value(i: number): string {
    if (this.materialized) return this._values[i]!;
    const b = i * At.Stride;
    return this.str().slice(this.pos[b + At.ValueStart]!, this.pos[b + At.ValueEnd]!);
  }

  /** Header `i`'s name as received. */
  name(i: number): string {
    if (this.materialized) return this._names[i]!;
    const b = i * At.Stride;
    return this.str().slice(this.pos[b + At.NameStart]!, this.pos[b + At.NameEnd]!);
  }

  /** Offset in `text` where header `i`'s line starts. */
  lineStart(i: number): number {
    return this.pos[i * At.Stride + At.NameStart]!;
  }

  /** Offset in `text` just past header `i`'s CRLF. */
  lineEnd(i: number): number {
    return this.pos[i * At.Stride + At.LineEnd]!;
  }

  protected resetCommon(): void {
    this.versionMinor = 1;
    this._text = '';
    this.src = null;
    this.wireText = '';
    this.textLength = 0;
    this.startLineEnd = 0;
    this.materialized = !this.lazy;
    this.count = 0;
    this.contentLength = -1;
    this.chunked = false;
    this.teAt = -1;
    this.teCanonical = false;
    this.clAt = -1;
    this.connClose = false;
    this.connKeepAlive = false;
    this.connUpgrade = false;
    this.upgrade = '';
    this.headBytes = 0;
  }

  /** Index of the first header with this lower-case name, or -1. */
  indexOf(lower: string, from = 0): number {
    for (let i = from; i < this.count; i++) if (this.nameAt(i, lower)) return i;
    return -1;
  }

  get(lower: string): string | undefined {
    const i = this.indexOf(lower);
    return i === -1 ? undefined : this.value(i);
  }

  /**
   * Parses header lines in `s` between `pos` and `end` (exclusive, `end` at the final CRLF). `s`
   * is `buf[base, base + s.length)` as latin1: the scan reads the bytes (a byte load costs a third
   * of a charCodeAt here), offsets are kept relative to `s`.
   */
  protected parseFields(buf: Buffer, base: number, s: string | null, pos: number, end: number, isRequest: boolean): number {
    let clSeen = false;
    this.startLineEnd = pos;
    const eager = s !== null;
    const at = this.pos;
    while (pos < end) {
      // One pass per line: the name must be a token ending at ':', the value is trimmed of SP and
      // HTAB and holds no control character; the line ends at CRLF (a lone CR or LF is refused).
      let i = base + pos;
      let c = buf[i]!;
      if (c === 0x20 || c === 0x09) return HeadError.BadHeader; // obs-fold
      while (c < 128 && TCHAR[c] === 1) c = buf[++i]!;
      if (c !== 0x3a || i === base + pos) return HeadError.BadHeader;
      const colon = i - base;
      c = buf[++i]!;
      while (c === 0x20 || c === 0x09) c = buf[++i]!;
      const vs = i - base;
      let ve = vs;
      // `s` ends with the last line's CRLF, so a CR is always found.
      const stop = base + end;
      while (c !== 0x0d) {
        if ((c < 0x20 && c !== 0x09) || c === 0x7f || i >= stop) return HeadError.BadHeader;
        i++;
        if (c !== 0x20 && c !== 0x09) ve = i - base;
        c = buf[i]!;
      }
      if (buf[i + 1] !== 0x0a) return HeadError.BadHeader;
      const eol = i - base;
      if (this.count >= MAX_HEADERS) return HeadError.TooManyHeaders;
      const b = this.count * At.Stride;
      at[b + At.NameStart] = pos;
      at[b + At.NameEnd] = colon;
      at[b + At.ValueStart] = vs;
      at[b + At.ValueEnd] = ve;
      at[b + At.LineEnd] = eol + 2;
      if (eager) {
        this._names[this.count] = s.slice(pos, colon);
        this._values[this.count] = s.slice(vs, ve);
      }
      this.count++;
      switch (colon - pos) {
        case 14:
          if (nameIsAtBuf(buf, base + pos, 'content-length')) {
            if (clSeen) return HeadError.BadContentLength;
            clSeen = true;
            this.clAt = this.count - 1;
            if (ve === vs || ve - vs > 15) return HeadError.BadContentLength;
            let n = 0;
            for (let i = base + vs; i < base + ve; i++) {
              const c = buf[i]!;
              if (c < 0x30 || c > 0x39) return HeadError.BadContentLength;
              n = n * 10 + (c - 0x30);
            }
            this.contentLength = n;
          }
          break;
        case 17:
          if (nameIsAtBuf(buf, base + pos, 'transfer-encoding')) {
            if (this.teAt !== -1) return HeadError.BadTransferEncoding;
            this.teAt = this.count - 1;
            let te = ve === vs ? Te.Invalid : scanTransferEncoding(buf, base + vs, base + ve);
            // A tab around a request's coding is refused: parsers disagree on it (Node refuses a
            // trailing one), and a disagreement about chunked is a smuggling vector.
            if (isRequest) for (let k = base + colon + 1; k < base + eol; k++) if (buf[k] === 0x09) te = Te.Invalid;
            // A request accepts exactly `chunked`; a response also `x, chunked` (chunked) and codings
            // without chunked last (body until close, RFC 9112 §6.3 rule 4).
            if (te === Te.Invalid || (isRequest && te !== Te.ChunkedOnly)) return HeadError.BadTransferEncoding;
            this.chunked = te !== Te.Other;
            this.teCanonical =
              te === Te.ChunkedOnly && ve === eol && (vs === colon + 1 || (vs === colon + 2 && buf[base + colon + 1] === 0x20)) && bytesAre(buf, base + vs, 'chunked');
          }
          break;
        case 10:
          if (nameIsAtBuf(buf, base + pos, 'connection')) scanConnectionTokens(buf, base + vs, base + ve, this);
          break;
        case 7:
          if (nameIsAtBuf(buf, base + pos, 'upgrade')) this.upgrade = (buf as LatinBuffer).latin1Slice(base + vs, base + ve);
          break;
        default:
          break;
      }
      pos = eol + 2;
    }
    if (this.hasTransferEncoding && clSeen) {
      if (isRequest) return HeadError.BadContentLength;
      // A response with both: Transfer-Encoding wins and Content-Length is ignored (RFC 9112 §6.3).
      this.contentLength = -1;
    }
    if (this.hasTransferEncoding && this.versionMinor === 0 && isRequest) return HeadError.BadTransferEncoding;
    return 0;
  }
}

/** A request head: names and values are created eagerly (routing, cookies and stick rules read them). */
export class RequestHead extends MessageHead {
  method = '';
  target = '';
  /** Number of Host headers seen. */
  hostCount = 0;
  expectContinue = false;

  reset(): void {
    this.resetCommon();
    this.method = '';
    this.target = '';
    this.hostCount = 0;
    this.expectContinue = false;
  }

  /** Keep the client connection open after this exchange? (HTTP/1.1 default yes, 1.0 needs keep-alive.) */
  wantsKeepAlive(): boolean {
    if (this.connClose) return false;
    return this.versionMinor === 1 || this.connKeepAlive;
  }

  /**
   * Parses one request head from `buf[start, end)`. Returns the number of bytes consumed (> 0),
   * `HeadError.Incomplete` (0) when more bytes are needed, or a negative `HeadError`.
   */
  parse(buf: Buffer, origStart: number, end: number): number {
    this.reset();
    let start = origStart;
    // Leading empty lines before a request are tolerated (RFC 9112 §2.2).
    while (start + 1 < end && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
    // `s` is the head with its final empty line; offsets into it are offsets into `text`.
    const s = headWire(buf, start, end);
    if (typeof s === 'number') return s;
    const idx = start + s.length - 4;
    // A bare LF anywhere in the head is refused (no LF-only line endings): here in the request
    // line (its first LF must end it), in header lines by parseFields.
    const eol = s.indexOf('\r\n');
    if (s.indexOf('\n') !== eol + 1) return HeadError.BadHeader;
    const sp1 = s.indexOf(' ');
    if (sp1 <= 0 || sp1 > eol) return HeadError.BadRequestLine;
    const sp2 = s.indexOf(' ', sp1 + 1);
    if (sp2 === -1 || sp2 > eol || sp2 === sp1 + 1) return HeadError.BadRequestLine;
    if (!isToken(s, 0, sp1)) return HeadError.BadRequestLine;
    for (let i = sp1 + 1; i < sp2; i++) {
      const c = s.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f) return HeadError.BadRequestLine;
    }
    if (eol - sp2 - 1 !== 8 || !s.startsWith('HTTP/1.', sp2 + 1)) {
      return s.startsWith('HTTP/', sp2 + 1) ? HeadError.BadVersion : HeadError.BadRequestLine;
    }
    const minor = s.charCodeAt(eol - 1);
    if (minor === 0x31) this.versionMinor = 1;
    else if (minor === 0x30) this.versionMinor = 0;
    else return HeadError.BadVersion;
    this.method = s.slice(0, sp1);
    this.target = s.slice(sp1 + 1, sp2);
    this.setWire(s);
    const r = this.parseFields(buf, start, s, eol + 2, s.length - 4, true);
    if (r < 0) return r;
    for (let i = 0; i < this.count; i++) {
      const n = this.names[i]!;
      if (n.length === 4 && nameIs(n, 'host')) this.hostCount++;
      else if (n.length === 6 && nameIs(n, 'expect') && this.values[i]!.toLowerCase() === '100-continue') this.expectContinue = true;
    }
    if (this.hostCount > 1 || (this.versionMinor === 1 && this.hostCount === 0)) return HeadError.MissingHost;
    this.headBytes = idx + 4 - start;
    return idx + 4 - origStart;
  }
}

/**
 * A response head: lazy, forwarded by copying its lines. It is parsed from the bytes without a
 * string: `text`, names, values and `reason` are made only when asked for (rules, a Set-Cookie to
 * rewrite, an HTTP/1.0 status line to restate), within the read callback that parsed the head.
 */
export class ResponseHead extends MessageHead {
  status = 0;
  /** Offset in `text` of the end of the reason phrase (its CRLF); the phrase starts at 13. */
  private reasonEnd = 0;

  constructor() {
    super(true);
  }

  /** The reason phrase ('' when absent). */
  get reason(): string {
    return this.reasonEnd > 13 ? this.text.slice(13, this.reasonEnd) : '';
  }

  reset(): void {
    this.resetCommon();
    this.status = 0;
    this.reasonEnd = 0;
  }

  /** Same contract as `RequestHead.parse`. Upstream heads are parsed a little less strictly (reason phrase). */
  parse(buf: Buffer, start: number, end: number): number {
    this.reset();
    const limit = Math.min(end, start + MAX_HEAD_BYTES);
    const idx = buf.indexOf(CRLFCRLF, start);
    if (idx === -1 || idx + 4 > limit) return end - start >= MAX_HEAD_BYTES ? HeadError.TooLarge : HeadError.Incomplete;
    // The head's text would be buf[start, idx + 2): the status line and header lines with their CRLFs.
    const textLen = idx + 2 - start;
    const eol = buf.indexOf(CRLF, start) - start;
    if (eol < 12 || !bytesAre(buf, start, 'HTTP/1.') || buf[start + 8] !== 0x20) return HeadError.BadStatusLine;
    const minor = buf[start + 7];
    if (minor === 0x31) this.versionMinor = 1;
    else if (minor === 0x30) this.versionMinor = 0;
    else return HeadError.BadStatusLine;
    let status = 0;
    for (let i = start + 9; i < start + 12; i++) {
      const c = buf[i]!;
      if (c < 0x30 || c > 0x39) return HeadError.BadStatusLine;
      status = status * 10 + (c - 0x30);
    }
    if (status < 100) return HeadError.BadStatusLine;
    if (eol > 12 && buf[start + 12] !== 0x20) return HeadError.BadStatusLine;
    // The reason phrase holds no control character other than HTAB (field-value rules).
    for (let i = start + 13; i < start + eol; i++) {
      const c = buf[i]!;
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) return HeadError.BadStatusLine;
    }
    this.status = status;
    this.reasonEnd = eol;
    this.setTextBytes(buf, start, textLen);
    const r = this.parseFields(buf, start, null, eol + 2, textLen - 2, false);
    if (r < 0) return r;
    this.headBytes = idx + 4 - start;
    return this.headBytes;
  }
}
