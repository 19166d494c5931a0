/**
 * Process logger: pino writing JSON lines to stdout through an asynchronous destination, so a
 * request log line never blocks the event loop. A level that is off costs one `isLevelEnabled`
 * check at the call site (the data plane checks before building the log object).
 *
 * Lines are gathered into batches of about `LOG_BATCH_CHARS` before they reach sonic-boom (pino's
 * destination): sonic-boom measures the byte length of its pending text on every write, which per
 * request line cost about 5% of a busy proxy's CPU; per batch it costs nothing measurable. Batches
 * are written when they fill, at least every `FLUSH_INTERVAL_MS` (a quiet node's events, a peer
 * refused or a reload, still show within a second), and when the node stops (`flush`, which waits
 * until sonic-boom has written everything, in order). A process that exits without that (an
 * uncaught error, the drain safety net) still writes what it holds from its 'exit' hook.
 *
 * Bound: while stdout takes lines slower than they come, sonic-boom holds at most
 * `LOG_MAX_BYTES`; lines beyond are dropped and counted (`dropped()`), as HAProxy drops log lines
 * its syslog socket cannot take, instead of growing the heap or blocking requests.
 *
 * Timestamps are ISO 8601 (pino's `isoTime`), formatted once per millisecond and reused by every
 * line of that millisecond.
 */
import pino, { type Logger } from 'pino';
import { loopNow } from '@stickmesh/core';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerOptions {
  level: LogLevel;
  node?: string;
  /** File descriptor to write to (default 1, stdout). */
  fd?: number;
}

export const FLUSH_INTERVAL_MS = 500;
/** Characters of log text gathered before they are handed to sonic-boom. */
export const LOG_BATCH_CHARS = 4096;
/** Most bytes waiting for stdout; lines beyond are dropped and counted. */
export const LOG_MAX_BYTES = 16 * 1024 * 1024;

/** What the batcher needs from sonic-boom (pino.destination). */
interface Destination {
  write(s: string): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
  on(event: 'drop', listener: (data: string) => void): unknown;
}

/** Gathers lines into batches for `dest`; same order, nothing held longer than the next flush. */
export class LineBatcher {
  private pending = '';
  private droppedLines = 0;

  constructor(private readonly dest: Destination) {
    dest.on('drop', this.onDrop);
  }

  private readonly onDrop = (data: string): void => {
    let n = 0;
    for (let i = data.indexOf('\n'); i !== -1; i = data.indexOf('\n', i + 1)) n++;
    this.droppedLines += n;
  };

  /** Lines dropped because stdout fell more than `LOG_MAX_BYTES` behind, since start. */
  get dropped(): number {
    return this.droppedLines;
  }

  write(s: string): boolean {
    this.pending += s;
    if (this.pending.length >= LOG_BATCH_CHARS) this.handOver();
    return true;
  }

  private handOver(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = '';
    this.dest.write(batch);
  }

  /** Starts writing everything gathered so far (asynchronously); `cb` as sonic-boom's flush. */
  flush(cb?: (err?: Error) => void): void {
    this.handOver();
    try {
      this.dest.flush(cb);
    } catch {
      /* destination not ready yet: the next flush writes it */
    }
  }

  /**
   * Resolves once everything gathered so far is written, in order, or after `ms` (stdout that
   * takes nothing must not hold a stopping node forever).
   */
  flushed(ms: number): Promise<void> {
    this.handOver();
    return new Promise((resolve) => {
      const deadline = setTimeout(resolve, ms);
      const done = (): void => {
        clearTimeout(deadline);
        resolve();
      };
      try {
        this.dest.flush(done);
      } catch {
        done(); // destination not ready or destroyed: nothing more can be written
      }
    });
  }

  /**
   * Writes everything gathered so far before returning; for process exit only. A batch sonic-boom
   * is writing asynchronously at that moment lands after these bytes (its flushSync cannot wait
   * for it), so a stopping node uses `flushed` instead.
   */
  flushSync(): void {
    this.handOver();
    try {
      this.dest.flushSync();
    } catch {
      /* destination not ready yet: nothing reached the fd */
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

/** How long a stopping node waits for its last log lines to be written. */
export const LOG_FLUSH_WAIT_MS = 2000;

export function createLogger(opts: LoggerOptions): { logger: Logger; flush: () => Promise<void>; dropped: () => number } {
  const dest = pino.destination({ dest: opts.fd ?? 1, sync: false, minLength: LOG_BATCH_CHARS, maxLength: LOG_MAX_BYTES });
  const lines = new LineBatcher(dest as unknown as Destination);
  const timer = setInterval(function flushLogs() {
    lines.flush();
  }, FLUSH_INTERVAL_MS);
  timer.unref();
  const logger = pino(
    {
      level: opts.level,
      base: opts.node ? { node: opts.node } : {},
      timestamp: cachedIsoTime,
      formatters: { level: (label) => ({ level: label }), ...(opts.node ? { log: withoutNodeField } : {}) },
    },
    lines,
  );
  process.once('exit', function flushLogsAtExit() {
    lines.flushSync();
  });
  return { logger, flush: () => lines.flushed(LOG_FLUSH_WAIT_MS), dropped: () => lines.dropped };
}
