/**
 * The rule engine's view of one client connection (`RuleStream`): the `SampleSource` fetches
 * read, the sticky counters it tracks (connection-level sc0..2 from `tcp-request connection`,
 * stream-level ones from `tcp-request content` and `http-request`, see track.ts), and the header
 * edits rules make to the request and response being handled.
 *
 * One object per connection of a frontend that has rules, allocated when the connection is
 * accepted (never per request); a frontend without rules allocates none. The request and response
 * heads it reads are the shared parsers (http/exchange.ts): `http` and `res` are set only while
 * the rules of a request or response run.
 *
 * Bounds: at most MAX_ADDED_HEADERS headers added to one request and to one response; further
 * `add-header`/`set-header` actions on it are ignored.
 */
import type { HttpResponseSample, HttpSample, SampleSource, StickCounterSlot } from './types.js';
import { Tracker, countBytes } from './track.js';

/** Headers rules may add to one message; beyond, adds are ignored. */
export const MAX_ADDED_HEADERS = 64;
/** Header lines of one response the rules can delete (the response parser's own limit). */
export const MAX_RESPONSE_HEADERS = 100;

/** What the rules read of the shared request parser (http/head.ts RequestHead). */
export interface RequestHeadLike {
  readonly method: string;
  readonly target: string;
  readonly versionMinor: number;
  readonly count: number;
  /** Writable: a deleted header's name becomes ''. */
  readonly names: string[];
  readonly values: string[];
}

/** What the rules read of the shared response parser (http/head.ts ResponseHead). */
export interface ResponseHeadLike {
  readonly status: number;
  readonly count: number;
  name(i: number): string;
  value(i: number): string;
  nameAt(i: number, lower: string): boolean;
}

/** Case-insensitive test of `name` against a lower-case literal. */
export function nameEquals(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

class RequestView implements HttpSample {
  constructor(private readonly s: RuleStream) {}
  get method(): string {
    return this.s.req!.method;
  }
  get target(): string {
    return this.s.req!.target;
  }
  get versionMinor(): number {
    return this.s.req!.versionMinor;
  }
  get headerCount(): number {
    return this.s.req!.count + this.s.reqAddCount;
  }
  headerNameIs(i: number, lower: string): boolean {
    return nameEquals(this.headerName(i), lower);
  }
  headerName(i: number): string {
    const req = this.s.req!;
    return i < req.count ? req.names[i]! : this.s.reqAddNames[i - req.count]!;
  }
  headerValue(i: number): string {
    const req = this.s.req!;
    return i < req.count ? req.values[i]! : this.s.reqAddValues[i - req.count]!;
  }
}

class ResponseView implements HttpResponseSample {
  constructor(private readonly s: RuleStream) {}
  get status(): number {
    return this.s.resHead!.status;
  }
  get headerCount(): number {
    return this.s.resHead!.count + this.s.resAddCount;
  }
  headerNameIs(i: number, lower: string): boolean {
    const r = this.s.resHead!;
    if (i < r.count) return this.s.resDel[i] === 0 && r.nameAt(i, lower);
    return nameEquals(this.s.resAddNames[i - r.count]!, lower);
  }
  headerValue(i: number): string {
    const r = this.s.resHead!;
    return i < r.count ? r.value(i) : this.s.resAddValues[i - r.count]!;
  }
}

export class RuleStream implements SampleSource {
  readonly clientIp: string;
  readonly clientPort: number;
  /** Set when the connection's TLS handshake completed (an `ssl` bind), with the hello's server name. */
  ssl = false;
  sni: string | undefined = undefined;
  readonly frontendName: string;
  backendName = '';
  /** Effective sticky counters for fetches: the stream's of each index, else the connection's. */
  readonly sc: (StickCounterSlot | undefined)[] = [undefined, undefined, undefined];
  /** Connection-level trackers (`tcp-request connection track-scN`). */
  readonly sess: readonly Tracker[] = [new Tracker(), new Tracker(), new Tracker()];
  /** Stream-level trackers (`tcp-request content` / `http-request track-scN`), per HTTP exchange. */
  readonly strm: readonly Tracker[] = [new Tracker(), new Tracker(), new Tracker()];
  http: HttpSample | undefined = undefined;
  res: HttpResponseSample | undefined = undefined;
  /** The shared request parser while a request's rules run (and until its head is rendered). */
  req: RequestHeadLike | null = null;
  resHead: ResponseHeadLike | null = null;

  /** Headers `set-header`/`add-header` appended to the request, in order. */
  readonly reqAddNames: string[] = [];
  readonly reqAddValues: string[] = [];
  reqAddCount = 0;
  /** A rule edited the request's headers: the head for the server is rebuilt. */
  reqEdited = false;
  /** Per response header line: 1 when a rule deleted it. */
  readonly resDel = new Uint8Array(MAX_RESPONSE_HEADERS);
  resDelAny = false;
  readonly resAddNames: string[] = [];
  readonly resAddValues: string[] = [];
  resAddCount = 0;

  private readonly reqView = new RequestView(this);
  private readonly resView = new ResponseView(this);
  private localAddr: string | undefined;

  constructor(
    clientIp: string,
    clientPort: number,
    frontendName: string,
    private readonly local: () => { ip: string; port: number },
  ) {
    this.clientIp = clientIp;
    this.clientPort = clientPort;
    this.frontendName = frontendName;
  }

  get localIp(): string {
    if (this.localAddr === undefined) {
      const l = this.local();
      this.localAddr = l.ip;
      this.localPortN = l.port;
    }
    return this.localAddr;
  }

  private localPortN = -1;
  get localPort(): number {
    if (this.localPortN === -1) void this.localIp;
    return this.localPortN;
  }

  // ------------------------------------------------------------------ tracking

  /** Recomputes the effective counter of index `i` (stream-level wins). */
  refreshSc(i: number): void {
    const s = this.strm[i]!;
    const c = this.sess[i]!;
    this.sc[i] = s.tt !== null ? s : c.tt !== null ? c : undefined;
  }

  /** Counts a new HTTP request on the connection-level trackers. */
  countRequestOnSession(): void {
    for (let i = 0; i < 3; i++) {
      const t = this.sess[i]!;
      if (t.tt !== null) t.countRequest();
    }
  }

  /** The connection passed its `tcp-request connection` rules: counts a session on its trackers. */
  countSession(): void {
    for (let i = 0; i < 3; i++) {
      const t = this.sess[i]!;
      if (t.tt !== null) t.countSession();
    }
  }

  /**
   * An exchange (HTTP) ended: its outcome is counted on the effective trackers, then the
   * stream-level trackers are released. Safe to call when nothing is tracked.
   */
  endStream(status: number, tarpit: boolean, bytesIn: number, bytesOut: number): void {
    for (let i = 0; i < 3; i++) {
      const t = this.sc[i] as Tracker | undefined;
      if (t !== undefined) t.countExchange(status, tarpit, bytesIn, bytesOut);
      const s = this.strm[i]!;
      if (s.tt !== null) {
        s.stop();
        this.refreshSc(i);
      }
    }
  }

  /**
   * The connection closed (TCP mode: its bytes are counted first on every tracker). Releases every
   * tracker; safe to call more than once.
   */
  endSession(bytesIn = 0, bytesOut = 0): void {
    for (let i = 0; i < 3; i++) {
      const s = this.strm[i]!;
      const c = this.sess[i]!;
      if (bytesIn + bytesOut > 0) {
        if (s.tt !== null) countBytes(s, bytesIn, bytesOut);
        else if (c.tt !== null) countBytes(c, bytesIn, bytesOut);
      }
      s.stop();
      c.stop();
      this.sc[i] = undefined;
    }
  }

  // ------------------------------------------------------------------ HTTP request and response

  /** A request's rules start over `req` (the shared parser): request edits reset. */
  beginRequest(req: RequestHeadLike): void {
    this.req = req;
    this.http = this.reqView;
    this.reqAddCount = 0;
    this.reqEdited = false;
  }

  /** The request's rules are done (its head was rendered): fetches see no request. */
  endRequest(): void {
    this.http = undefined;
    this.req = null;
  }

  /** Removes every request header named `lower` (received or added). */
  reqDelete(lower: string): void {
    const req = this.req!;
    for (let i = 0; i < req.count; i++) {
      const n = req.names[i]!;
      if (n.length !== 0 && nameEquals(n, lower)) {
        req.names[i] = '';
        this.reqEdited = true;
      }
    }
    let k = 0;
    for (let i = 0; i < this.reqAddCount; i++) {
      if (nameEquals(this.reqAddNames[i]!, lower)) continue;
      this.reqAddNames[k] = this.reqAddNames[i]!;
      this.reqAddValues[k] = this.reqAddValues[i]!;
      k++;
    }
    if (k !== this.reqAddCount) this.reqEdited = true;
    this.reqAddCount = k;
  }

  reqAdd(name: string, value: string): void {
    if (this.reqAddCount >= MAX_ADDED_HEADERS) return;
    this.reqAddNames[this.reqAddCount] = name;
    this.reqAddValues[this.reqAddCount] = value;
    this.reqAddCount++;
    this.reqEdited = true;
  }

  /** A response's rules start over `res` (the shared parser): response edits reset. */
  beginResponse(res: ResponseHeadLike): void {
    this.resHead = res;
    this.res = this.resView;
    if (this.resDelAny) this.resDel.fill(0);
    this.resDelAny = false;
    this.resAddCount = 0;
  }

  endResponse(): void {
    this.res = undefined;
    this.resHead = null;
  }

  resDelete(lower: string): void {
    const r = this.resHead!;
    const n = Math.min(r.count, MAX_RESPONSE_HEADERS);
    for (let i = 0; i < n; i++) {
      if (this.resDel[i] === 0 && r.nameAt(i, lower)) {
        this.resDel[i] = 1;
        this.resDelAny = true;
      }
    }
    let k = 0;
    for (let i = 0; i < this.resAddCount; i++) {
      if (nameEquals(this.resAddNames[i]!, lower)) continue;
      this.resAddNames[k] = this.resAddNames[i]!;
      this.resAddValues[k] = this.resAddValues[i]!;
      k++;
    }
    this.resAddCount = k;
  }

  resAdd(name: string, value: string): void {
    if (this.resAddCount >= MAX_ADDED_HEADERS) return;
    this.resAddNames[this.resAddCount] = name;
    this.resAddValues[this.resAddCount] = value;
    this.resAddCount++;
  }

  /** The response header lines rules appended, as `name: value\r\n` text ('' when none). */
  resAddedLines(): string {
    let s = '';
    for (let i = 0; i < this.resAddCount; i++) s += `${this.resAddNames[i]!}: ${this.resAddValues[i]!}\r\n`;
    return s;
  }
}
