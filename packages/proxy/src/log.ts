/**
 * Process logger: pino formatting JSON lines into a `LogSink`, which copies each line into a
 * reusable buffer and writes what a few event-loop turns gathered with one asynchronous write, so
 * a request's log line costs a string build and a memory copy, never a system call or a block.
 * A level that is off costs one `isLevelEnabled` check at the call site (the data plane checks
 * before building anything).
 *
 * The access log (http/access-log.ts) builds its fields as JSON text itself and hands them to
 * `writeRawInfo`, which frames them exactly as pino's own `logger.info(obj, msg)` would (same
 * level, time, bindings, field order, message and end), skipping pino's per-key object walk.
 *
 * Bound: the sink holds at most `LOG_MAX_BYTES` of lines stdout has not taken yet. A line that
 * would go beyond is dropped and counted (`dropped()`, the `stickmesh_log_dropped_lines` metric):
 * the newest lines are the ones lost, as HAProxy loses the messages its log ring or a full
 * non-blocking log fd cannot take, and requests are never slowed or blocked by a slow reader. Once
 * stdout takes lines again, one `warn` line says how many were dropped during that stall.
 *
 * Timestamps are ISO 8601, formatted once per millisecond and reused by every line of that
 * millisecond.
 */
import fs from 'node:fs';
import net from 'node:net';
import pino, { type Logger } from 'pino';
import { loopNow } from '@stickmesh/core';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerOptions {
  level: LogLevel;
  node?: string;
  /** File descriptor to write to (default 1, stdout). */
  fd?: number;
  /** Most bytes held for a slow fd (default `LOG_MAX_BYTES`); lines beyond are dropped. */
  maxBytes?: number;
  /** A data-plane thread's number (`nbthread`): every line carries it as `thread`. */
  thread?: number;
  /** A data-plane thread: filled buffers go to the main thread's writer instead of an fd (see `LogSinkOptions.post`). */
  post?: PostChunk;
}

/**
 * Hands a filled buffer of whole lines to another thread (the main thread's writer): `buf` is
 * the buffer's own memory, to be transferred, not copied; `len` bytes of it hold `lines` lines.
 * The receiver calls the sink's `acked` once it took them.
 */
export type PostChunk = (buf: ArrayBuffer, len: number, lines: number) => void;

/** Bytes of one buffer lines are copied into; a write takes one or more whole buffers. */
export const LOG_CHUNK_BYTES = 64 * 1024;
/** Most bytes waiting for stdout; lines beyond are dropped and counted. */
export const LOG_MAX_BYTES = 8 * 1024 * 1024;
/** Bytes gathered before an event-loop turn's end starts a write; less waits for the timer. */
export const LOG_WRITE_MIN_BYTES = 48 * 1024;
/** Longest a line waits for its write when few lines come (a quiet node's events still show). */
export const FLUSH_INTERVAL_MS = 100;
/** How long a stopping node waits for its last log lines to be written. */
export const LOG_FLUSH_WAIT_MS = 2000;
/** A write pending this long means stdout has stalled: the exit hook no longer writes synchronously. */
const STALLED_MS = 1000;
/** Retry delay after EAGAIN (a non-blocking pipe that is full). */
const RETRY_MS = 10;
/** Idle buffers kept for reuse; more are left to the GC. */
const SPARE_CHUNKS = 4;

/**
 * How the sink writes its fd: 'sync' for a regular file or /dev/null (a blocking write there
 * costs a memory copy), 'stream' for a pipe or socket (a non-blocking libuv stream: written at
 * once, polled when full), 'async' otherwise, e.g. a terminal (the thread pool, so a terminal
 * paused with Ctrl-S never blocks the event loop).
 */
type WriteMode = 'sync' | 'stream' | 'async' | 'post';

function writeModeOf(fd: number): WriteMode {
  try {
    const st = fs.fstatSync(fd);
    if (st.isFile()) return 'sync';
    if (st.isFIFO() || st.isSocket()) return 'stream';
    if (st.isCharacterDevice() && st.rdev === fs.statSync('/dev/null').rdev) return 'sync';
  } catch {
    /* not an fd we can inspect: the generic path */
  }
  return 'async';
}

interface Chunk {
  buf: Buffer;
  /** Bytes of lines in `buf`. */
  len: number;
  lines: number;
  /** A data-plane thread's buffer (`writeChunk`): handed back to its thread once written or dropped, not kept here. */
  recycle?: (buf: Buffer) => void;
}

export interface LogSinkOptions {
  maxBytes?: number;
  chunkBytes?: number;
  /** Called once stdout takes lines again after a stall that dropped `n` lines. */
  onDropped?: (n: number) => void;
  /**
   * A data-plane thread's sink (`nbthread`): filled buffers go to `post` (the main thread writes
   * them with its own sink, so the node has one writer and each connection's lines stay in
   * order) and the fd is not used. Buffers posted and not yet `acked` count against the bound.
   */
  post?: PostChunk;
}

/**
 * Lines (each `write` is one whole line) to `fd`, in order, written asynchronously in batches.
 * Holds at most `maxBytes` (rounded down to whole chunks) not yet written; see the file comment
 * for the rule at the bound.
 */
export class LogSink {
  private readonly chunkBytes: number;
  private readonly maxChunks: number;
  private cur: Chunk;
  /** Filled chunks waiting for the write in flight to finish, oldest first. */
  private readonly queue: Chunk[] = [];
  private readonly spare: Buffer[] = [];
  private inFlight: Chunk[] | null = null;
  private inFlightSince = 0;
  /** Bytes of the first in-flight chunk already written (a partial write). */
  private skip = 0;
  private turnScheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private droppedLines = 0;
  private stallDrops = 0;
  /** Set when the fd failed for good (EPIPE, EBADF...): every line from then on is dropped. */
  private failed: string | null = null;
  private waiters: Array<() => void> = [];
  private readonly onDropped: ((n: number) => void) | undefined;
  private mode: WriteMode;
  /** The fd as a libuv stream when it is a pipe or socket (mode 'stream'). */
  private readonly sock: net.Socket | null = null;
  private readonly post: PostChunk | undefined;
  /** Mode 'post': buffers handed to the main thread and not yet acknowledged. */
  private posted = 0;

  constructor(
    private readonly fd: number,
    opts: LogSinkOptions = {},
  ) {
    this.chunkBytes = opts.chunkBytes ?? LOG_CHUNK_BYTES;
    this.maxChunks = Math.max(2, Math.floor((opts.maxBytes ?? LOG_MAX_BYTES) / this.chunkBytes));
    this.onDropped = opts.onDropped;
    this.cur = { buf: Buffer.allocUnsafeSlow(this.chunkBytes), len: 0, lines: 0 };
    this.post = opts.post;
    this.mode = this.post ? 'post' : writeModeOf(fd);
    if (this.mode === 'stream') {
      try {
        // fd 1 shares process.stdout's stream when it is one (a pipe or socket), so a console.log
        // elsewhere goes through the same libuv handle, in order, instead of a second handle on
        // the same fd competing for its poll events.
        const own = !(fd === 1 && process.stdout instanceof net.Socket);
        const sock = own ? new net.Socket({ fd, readable: false, writable: true }) : (process.stdout as net.Socket);
        sock.on('error', (err: NodeJS.ErrnoException) => this.fail(err.code ?? String(err)));
        if (own) sock.unref();
        this.sock = sock;
      } catch {
        this.mode = 'async';
      }
    }
  }

  /** Lines dropped since start: stdout too slow (bound reached) or failed for good. */
  get dropped(): number {
    return this.droppedLines;
  }

  /** Bytes held and not yet written (in flight, queued and gathering). */
  get heldBytes(): number {
    let n = this.cur.len;
    for (const c of this.queue) n += c.len;
    for (const c of this.inFlight ?? []) n += c.len;
    return n - this.skip + this.posted * this.chunkBytes;
  }

  /** Chunks allocated and not yet written (or, mode 'post', not yet taken by the main thread): the bound counts these. */
  private chunksHeld(): number {
    return 1 + this.queue.length + (this.inFlight?.length ?? 0) + this.posted;
  }

  /**
   * Main thread: writes a data-plane thread's filled buffer (`len` bytes of `lines` whole lines)
   * after what is gathered, in arrival order. Past the bound its lines are dropped and counted,
   * as any line would be. `recycle` gets the buffer back once written or dropped (the thread
   * reuses it: a stalled stdout then makes no garbage of 64 KiB buffers, which measured 38 MB of
   * RSS growth with 2 threads before the GC came round to them).
   */
  writeChunk(buf: Buffer, len: number, lines: number, recycle?: (buf: Buffer) => void): void {
    if (this.failed !== null || this.chunksHeld() >= this.maxChunks) {
      this.droppedLines += lines;
      this.stallDrops += lines;
      recycle?.(buf);
      return;
    }
    if (this.cur.len > 0) this.sealCurrent();
    this.queue.push(recycle ? { buf, len, lines, recycle } : { buf, len, lines });
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      setImmediate(this.endOfTurn);
    }
  }

  /**
   * Mode 'post': the main thread took `n` posted buffers. Once all are taken, what gathered
   * meanwhile goes, as after a completed write.
   */
  acked(n: number): void {
    this.posted = Math.max(0, this.posted - n);
    if (this.posted > 0) return;
    if (this.stallDrops > 0 && this.chunksHeld() <= this.maxChunks / 2) {
      const d = this.stallDrops;
      this.stallDrops = 0;
      this.onDropped?.(d);
    }
    if (this.queue.length > 0 || this.cur.len >= LOG_WRITE_MIN_BYTES || (this.cur.len > 0 && this.waiters.length > 0)) this.postAll(false);
    else if (this.cur.len > 0 && this.timer === null) {
      this.timer = setTimeout(this.onTimer, FLUSH_INTERVAL_MS);
      this.timer.unref();
    } else this.settle();
  }

  /**
   * Mode 'post': hands every gathered buffer to the main thread, each transferred. One batch is
   * on its way at a time (as one write is in flight on an fd), so the bound holds while the main
   * thread is slow: lines gather meanwhile, and past the bound are dropped. `force` (process
   * exit) posts regardless.
   */
  private postAll(force: boolean): void {
    if (this.posted > 0 && !force) return;
    if (this.cur.len > 0) this.sealCurrent();
    for (const c of this.queue.splice(0)) {
      // A buffer sharing its memory (a small pooled one) is copied: only whole memory transfers.
      const own = c.buf.byteOffset === 0 && c.buf.buffer.byteLength === c.buf.length && c.buf.buffer instanceof ArrayBuffer;
      const ab = own ? (c.buf.buffer as ArrayBuffer) : (new Uint8Array(c.buf.subarray(0, c.len)).buffer as ArrayBuffer);
      this.posted++;
      this.post!(ab, c.len, c.lines);
    }
    this.settle();
  }

  /** An empty chunk to gather lines into: a spare one when there is one. */
  private freshChunk(): Chunk {
    return { buf: this.spare.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes), len: 0, lines: 0 };
  }

  /** Queues the current chunk for writing and gathers into a fresh one, which it returns. */
  private sealCurrent(): Chunk {
    this.queue.push(this.cur);
    return (this.cur = this.freshChunk());
  }

  write(s: string): boolean {
    if (this.failed !== null) return this.drop();
    let cur = this.cur;
    // A UTF-16 unit is at most 3 UTF-8 bytes: with this much room the copy cannot be cut short.
    if (cur.buf.length - cur.len < s.length * 3) {
      if (s.length * 3 > this.chunkBytes) return this.writeLarge(s);
      if (this.chunksHeld() >= this.maxChunks) return this.drop();
      cur = this.sealCurrent();
    }
    cur.len += cur.buf.write(s, cur.len);
    cur.lines++;
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      setImmediate(this.endOfTurn);
    }
    return true;
  }

  /**
   * Room for one line of at most `max` bytes (`max` <= a third of a chunk), for a caller that
   * encodes the line itself: returns the buffer to write at `pos`, then the caller calls `commit`
   * with the offset after its last byte. Null when the line is dropped (bound reached, or the fd
   * failed): nothing to write, the drop is counted.
   */
  begin(max: number): Buffer | null {
    if (this.failed !== null) {
      this.drop();
      return null;
    }
    if (this.cur.buf.length - this.cur.len < max) {
      if (this.chunksHeld() >= this.maxChunks) {
        this.drop();
        return null;
      }
      this.sealCurrent();
    }
    return this.cur.buf;
  }

  /** Where the line `begin` made room for starts. */
  get pos(): number {
    return this.cur.len;
  }

  /** Ends the line `begin` made room for at `end` (exclusive). */
  commit(end: number): void {
    this.cur.len = end;
    this.cur.lines++;
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      setImmediate(this.endOfTurn);
    }
  }

  /** A line longer than a chunk third: a buffer of its own, counted against the bound. */
  private writeLarge(s: string): boolean {
    const buf = Buffer.from(s);
    if (this.heldBytes + buf.length > this.maxChunks * this.chunkBytes) return this.drop();
    if (this.cur.len > 0) this.queue.push(this.cur);
    this.queue.push({ buf, len: buf.length, lines: 1 });
    this.cur = this.freshChunk();
    this.pump();
    return true;
  }

  private drop(): boolean {
    this.droppedLines++;
    this.stallDrops++;
    return true;
  }

  private readonly endOfTurn = (): void => {
    this.turnScheduled = false;
    if (this.inFlight) return; // its completion writes what gathered meanwhile
    if (this.queue.length > 0 || this.cur.len >= LOG_WRITE_MIN_BYTES) this.pump();
    else if (this.cur.len > 0 && this.timer === null) {
      this.timer = setTimeout(this.onTimer, FLUSH_INTERVAL_MS);
      this.timer.unref();
    }
  };

  private readonly onTimer = (): void => {
    this.timer = null;
    this.pump();
  };

  /** Starts writing everything gathered, unless a write is in flight (its completion does). */
  private pump(): void {
    if (this.mode === 'post') {
      this.postAll(false);
      return;
    }
    if (this.inFlight || this.retryTimer) return;
    if (this.cur.len > 0) this.sealCurrent();
    if (this.queue.length === 0) {
      this.settle();
      return;
    }
    this.inFlight = this.queue.splice(0);
    this.inFlightSince = Date.now();
    this.writeInFlight();
  }

  private writeInFlight(): void {
    const chunks = this.inFlight!;
    const bufs = chunks.map((c, i) => c.buf.subarray(i === 0 ? this.skip : 0, c.len));
    if (this.mode === 'sync') {
      let n = 0;
      let err: NodeJS.ErrnoException | null = null;
      try {
        n = fs.writevSync(this.fd, bufs);
      } catch (e) {
        err = e as NodeJS.ErrnoException;
      }
      this.onWritten(err, n);
    } else if (this.sock) {
      // libuv writes right away and polls for the rest: no thread pool round trip per batch.
      let total = 0;
      for (const b of bufs) total += b.length;
      const sock = this.sock;
      sock.cork();
      for (let i = 0; i < bufs.length; i++) sock.write(bufs[i]!, i === bufs.length - 1 ? (err) => this.onStreamWritten(err, total) : undefined);
      sock.uncork();
    } else fs.writev(this.fd, bufs, this.onWritten);
  }

  private onStreamWritten(err: Error | null | undefined, n: number): void {
    if (err) return; // the socket's 'error' listener fails the sink
    if (this.inFlight) this.onWritten(null, n);
  }

  private readonly onWritten = (err: NodeJS.ErrnoException | null, n: number): void => {
    const chunks = this.inFlight!;
    if (err) {
      if (err.code === 'EAGAIN') {
        this.retryTimer = setTimeout(this.retry, RETRY_MS);
        this.retryTimer.unref();
        return;
      }
      this.fail(err.code ?? String(err));
      return;
    }
    // Release what was written whole; a partial write continues where it stopped.
    n += this.skip;
    while (chunks.length > 0 && n >= chunks[0]!.len) {
      n -= chunks[0]!.len;
      this.release(chunks.shift()!);
    }
    this.skip = n;
    if (chunks.length > 0) {
      this.writeInFlight();
      return;
    }
    this.inFlight = null;
    if (this.stallDrops > 0 && this.chunksHeld() <= this.maxChunks / 2) {
      const n2 = this.stallDrops;
      this.stallDrops = 0;
      this.onDropped?.(n2);
    }
    if (this.queue.length > 0 || this.cur.len >= LOG_WRITE_MIN_BYTES || (this.cur.len > 0 && this.waiters.length > 0)) this.pump();
    else if (this.cur.len > 0 && this.timer === null) {
      this.timer = setTimeout(this.onTimer, FLUSH_INTERVAL_MS);
      this.timer.unref();
    } else this.settle();
  };

  private readonly retry = (): void => {
    this.retryTimer = null;
    this.writeInFlight();
  };

  private release(c: Chunk): void {
    if (c.recycle) c.recycle(c.buf);
    else if (c.buf.length === this.chunkBytes && this.spare.length < SPARE_CHUNKS) this.spare.push(c.buf);
  }

  /** Mode 'post': a buffer this thread posted, handed back by the main thread: kept as a spare (at most SPARE_CHUNKS). */
  recycled(ab: ArrayBuffer): void {
    if (ab.byteLength === this.chunkBytes && this.spare.length < SPARE_CHUNKS) this.spare.push(Buffer.from(ab));
  }

  /** The fd failed for good: what is held is dropped, and so is every later line. */
  private fail(code: string): void {
    this.failed = code;
    let lost = this.cur.lines;
    for (const c of [...this.queue, ...(this.inFlight ?? [])]) {
      lost += c.lines;
      c.recycle?.(c.buf);
    }
    this.droppedLines += lost;
    this.queue.length = 0;
    this.inFlight = null;
    this.skip = 0;
    this.cur = { buf: this.cur.buf, len: 0, lines: 0 };
    this.settle();
  }

  /** Resolves the `flushed` waiters once nothing is held. */
  private settle(): void {
    if (this.inFlight || this.queue.length > 0 || this.cur.len > 0 || this.posted > 0) return;
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Resolves once every line written before the call is written to the fd, in order, or after
   * `ms` (a stdout that takes nothing must not hold a stopping node forever).
   */
  flushed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const deadline = setTimeout(done, ms);
      function done(): void {
        clearTimeout(deadline);
        resolve();
      }
      this.waiters.push(done);
      this.pump();
    });
  }

  /** Starts writing what is gathered now (pino's `logger.flush`). */
  flush(cb?: (err?: Error) => void): void {
    if (cb) this.waiters.push(() => cb());
    this.pump();
  }

  /**
   * Writes what is held with blocking writes; for process exit only (an uncaught error, the drain
   * safety net), when `flushed` cannot be awaited. Skipped when stdout has stalled (a write
   * pending for `STALLED_MS`): a blocking write could then hold the exit forever. A write in
   * flight at that moment may land after these bytes.
   */
  flushSync(): void {
    if (this.failed !== null) return;
    if (this.mode === 'post') {
      this.postAll(true);
      return;
    }
    if (this.inFlight && Date.now() - this.inFlightSince > STALLED_MS) return;
    const chunks = [...this.queue.splice(0), this.cur];
    this.cur = { buf: this.cur.buf, len: 0, lines: 0 };
    for (const c of chunks) {
      let off = 0;
      while (off < c.len) {
        try {
          off += fs.writeSync(this.fd, c.buf, off, c.len - off);
        } catch {
          return; // EAGAIN or a dead fd: nothing can be waited for at exit
        }
      }
    }
  }
}

let lastMs = -1;
let lastTime = '';

/**
 * pino `timestamp` option: `,"time":"<ISO 8601>"`, read from the loop clock (the lines of one
 * event-loop turn share a time, as the request timings they carry do) and formatted once per ms.
 */
function cachedIsoTime(): string {
  const now = loopNow();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/**
 * pino `formatters.log` of a node's logger: `node` is the logger's own field (its base, one per
 * line); a call site's `node` field would write the key a second time, so it is dropped.
 */
function withoutNodeField(o: Record<string, unknown>): Record<string, unknown> {
  if (o.node === undefined) return o;
  const { node: _node, ...rest } = o;
  return rest;
}

/** pino's internals `writeRawInfo` frames a line with (pino.symbols; stable across pino 7-10). */
interface PinoInternals {
  [k: symbol]: unknown;
}
const S = pino.symbols as unknown as Record<string, symbol>;
const rawOk = new WeakMap<Logger, boolean>();

/**
 * Whether pino would write `logger.info(obj, msg)` as level, time, bindings, then obj's keys in
 * order, then the message: true unless the logger has a mixin, a nested key, a message prefix
 * or another message key, redaction, a stream hook, a serializer for one of `keys`, a log
 * formatter other than ours (which changes nothing for objects without `node`), or a stream that
 * asks for metadata (pino.multistream).
 */
function framesLikeInfo(logger: Logger, keys: readonly string[]): boolean {
  const l = logger as unknown as PinoInternals;
  const serializers = (l[S.serializersSym!] ?? {}) as Record<string, unknown>;
  const formatters = (l[S.formattersSym!] ?? {}) as { log?: unknown };
  const stringifiers = (l[S.stringifiersSym!] ?? {}) as Record<string | symbol, unknown>;
  const hooks = (l[S.hooksSym!] ?? {}) as { streamWrite?: unknown };
  const stream = l[S.streamSym!] as (PinoInternals & { write?: unknown }) | undefined;
  return (
    typeof l[S.timeSym!] === 'function' &&
    typeof (l[S.lsCacheSym!] as Record<number, string> | undefined)?.[30] === 'string' &&
    typeof l[S.chindingsSym!] === 'string' &&
    typeof l[S.endSym!] === 'string' &&
    typeof stream?.write === 'function' &&
    stream[S.needsMetadataGsym!] !== true &&
    !l[S.mixinSym!] &&
    !l[S.nestedKeySym!] &&
    !l[S.msgPrefixSym!] &&
    l[S.messageKeySym!] === 'msg' &&
    !hooks.streamWrite &&
    (formatters.log === undefined || formatters.log === withoutNodeField) &&
    Reflect.ownKeys(stringifiers).length === 0 &&
    keys.every((k) => serializers[k] === undefined)
  );
}

/**
 * Writes an `info` line whose fields are `fields` (JSON text, each field as `,"key":value`, no
 * `node` key) and whose message is `msgJson` (`,"msg":"..."`), byte for byte as pino would
 * write `logger.info(obj, msg)` for the object those fields encode. Returns false, writing
 * nothing, when this logger's options make pino's output differ (see framesLikeInfo): the caller
 * then logs through `logger.info`. The caller checks the level first. `keys` are the field
 * names (checked once per logger against its serializers).
 */
export function writeRawInfo(logger: Logger, fields: string, msgJson: string, keys: readonly string[]): boolean {
  let ok = rawOk.get(logger);
  if (ok === undefined) {
    ok = framesLikeInfo(logger, keys);
    rawOk.set(logger, ok);
  }
  if (!ok) return false;
  const l = logger as unknown as PinoInternals;
  const stream = l[S.streamSym!] as { write(s: string): unknown };
  stream.write(
    (l[S.lsCacheSym!] as Record<number, string>)[30]! + (l[S.timeSym!] as () => string)() + (l[S.chindingsSym!] as string) + fields + msgJson + (l[S.endSym!] as string),
  );
  return true;
}

/**
 * The sink and line prefix for a logger whose lines may be encoded straight into the sink's
 * buffer (`writeRawInfo` conditions, and the logger writes to a LogSink); null otherwise.
 */
export interface RawInfoTarget {
  sink: LogSink;
  /** Writes `{"level":...,"time":...<bindings>` as pino would for an info line; returns the end. */
  prefix(buf: Buffer, off: number): number;
  /** Most bytes `prefix` writes. */
  prefixMax(): number;
}

const rawTargets = new WeakMap<Logger, RawInfoTarget | null>();

/** See RawInfoTarget; `keys` as for writeRawInfo. Cached per logger. */
export function rawInfoTarget(logger: Logger, keys: readonly string[]): RawInfoTarget | null {
  let t = rawTargets.get(logger);
  if (t !== undefined) return t;
  const l = logger as unknown as PinoInternals;
  const sink = l[S.streamSym!];
  t = null;
  if (sink instanceof LogSink && l[S.endSym!] === "}\n" && framesLikeInfo(logger, keys)) {
    let lastTime = '';
    let lastBindings = '';
    let bytes = Buffer.alloc(0);
    const refresh = (): void => {
      const time = (l[S.timeSym!] as () => string)();
      const bindings = l[S.chindingsSym!] as string;
      if (time !== lastTime || bindings !== lastBindings) {
        lastTime = time;
        lastBindings = bindings;
        bytes = Buffer.from((l[S.lsCacheSym!] as Record<number, string>)[30]! + time + bindings);
      }
    };
    t = {
      sink,
      prefixMax() {
        refresh();
        return bytes.length;
      },
      prefix(buf, off) {
        return off + bytes.copy(buf, off);
      },
    };
  }
  rawTargets.set(logger, t);
  return t;
}

export interface NodeLogger {
  logger: Logger;
  /** Resolves once every line logged so far is written (or, in a data-plane thread, taken by the main thread), or after LOG_FLUSH_WAIT_MS. */
  flush: () => Promise<void>;
  dropped: () => number;
  /** Main thread: writes a data-plane thread's buffer (`sm:log`) through this logger's sink. */
  writeChunk: (buf: Buffer, len: number, lines: number, recycle?: (buf: Buffer) => void) => void;
  /** Data-plane thread: the main thread handed back a buffer this thread posted (`sm:logbuf`). */
  recycled: (ab: ArrayBuffer) => void;
  /** Data-plane thread: the main thread took `n` posted buffers. */
  acked: (n: number) => void;
}

export function createLogger(opts: LoggerOptions): NodeLogger {
  let logger: Logger | undefined;
  const sink = new LogSink(opts.fd ?? 1, {
    ...(opts.post ? { post: opts.post } : {}),
    maxBytes: opts.maxBytes,
    onDropped: (n) => logger?.warn({ dropped: n, bound_bytes: opts.maxBytes ?? LOG_MAX_BYTES }, 'log lines dropped: stdout took lines slower than they came'),
  });
  logger = pino(
    {
      level: opts.level,
      base: { ...(opts.node ? { node: opts.node } : {}), ...(opts.thread !== undefined ? { thread: opts.thread } : {}) },
      timestamp: cachedIsoTime,
      formatters: { level: (label) => ({ level: label }), ...(opts.node ? { log: withoutNodeField } : {}) },
    },
    sink,
  );
  process.once('exit', function flushLogsAtExit() {
    sink.flushSync();
  });
  return {
    logger,
    flush: () => sink.flushed(LOG_FLUSH_WAIT_MS),
    dropped: () => sink.dropped,
    writeChunk: (buf, len, lines, recycle) => sink.writeChunk(buf, len, lines, recycle),
    recycled: (ab) => sink.recycled(ab),
    acked: (n) => sink.acked(n),
  };
}
