/**
 * Process logger: pino writing JSON lines to stdout through an asynchronous destination, so a
 * request log line never blocks the event loop. A level that is off costs one `isLevelEnabled`
 * check at the call site (the data plane checks before building the log object). Lines are
 * batched up to 4 KiB and flushed at least every `FLUSH_INTERVAL_MS`, so a quiet node's events
 * (a peer refused, a reload) still show within a second.
 */
import pino, { type Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerOptions {
  level: LogLevel;
  node?: string;
  /** File descriptor to write to (default 1, stdout). */
  fd?: number;
}

export const FLUSH_INTERVAL_MS = 500;

export function createLogger(opts: LoggerOptions): { logger: Logger; flush: () => void } {
  const dest = pino.destination({ dest: opts.fd ?? 1, sync: false, minLength: 4096 });
  const timer = setInterval(function flushLogs() {
    try {
      dest.flush();
    } catch {
      /* destination not ready yet */
    }
  }, FLUSH_INTERVAL_MS);
  timer.unref();
  const logger = pino(
    {
      level: opts.level,
      base: opts.node ? { node: opts.node } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
  return {
    logger,
    flush: () => {
      try {
        dest.flushSync();
      } catch {
        /* destination not ready yet: nothing buffered */
      }
    },
  };
}
