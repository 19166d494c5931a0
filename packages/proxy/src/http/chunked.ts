/**
 * Incremental scanner for chunked transfer coding. It does not copy or decode: it tells the
 * forwarder how many of the given bytes belong to the body (so they can be relayed verbatim) and
 * when the final chunk and trailers end. One instance per connection, `reset()` per message.
 *
 * Limits: a chunk size has at most 15 hex digits (leading zeros included) and a value of at most
 * 2^53 - 1, so it is exact as a double (HAProxy allows 2^56; no real chunk comes near either);
 * chunk extensions at most 4 KiB per chunk, the trailer section at most 16 KiB; bare LF is
 * refused. Exceeding a limit is an error (the engine answers 400 to a client, 502 for a server).
 */

const enum S {
  Size,
  SizeWs,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  EndLf,
  Done,
}

export const MAX_CHUNK_EXT = 4096;
export const MAX_TRAILERS = 16384;

export class ChunkedScanner {
  private state = S.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private extBytes = 0;
  private trailerBytes = 0;
  /** Set once the terminating CRLF after the last chunk (and trailers) has been scanned. */
  done = false;
  /** Reason of the last error, for logs. */
  error = '';

  reset(): void {
    this.state = S.Size;
    this.size = 0;
    this.digits = 0;
    this.remaining = 0;
    this.extBytes = 0;
    this.trailerBytes = 0;
    this.done = false;
    this.error = '';
  }

  private fail(reason: string): number {
    this.error = reason;
    return -1;
  }

  /**
   * Scans `buf[start, end)`. Returns how many bytes from `start` belong to the chunked body (all of
   * them unless the body ends inside the range), or -1 on a framing error.
   */
  scan(buf: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case S.Data: {
          const n = Math.min(this.remaining, end - i);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = S.DataCr;
          continue;
        }
        case S.Size: {
          const c = buf[i]!;
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.digits > 15) return this.fail('chunk size too long');
            if (this.size > (Number.MAX_SAFE_INTEGER - v) / 16) return this.fail('chunk size too large');
            this.size = this.size * 16 + v;
          } else if (this.digits === 0) {
            return this.fail('missing chunk size');
          } else if (c === 0x0d) {
            this.state = S.SizeLf;
          } else if (c === 0x3b) {
            this.state = S.Ext;
          } else if (c === 0x20 || c === 0x09) {
            this.state = S.SizeWs;
          } else {
            return this.fail('invalid chunk size');
          }
          break;
        }
        case S.SizeWs: {
          const c = buf[i]!;
          if (c === 0x3b) this.state = S.Ext;
          else if (c === 0x0d) this.state = S.SizeLf;
          else if (c !== 0x20 && c !== 0x09) return this.fail('invalid chunk size');
          if (++this.extBytes > MAX_CHUNK_EXT) return this.fail('chunk extension too long');
          break;
        }
        case S.Ext: {
          const c = buf[i]!;
          if (c === 0x0d) this.state = S.SizeLf;
          else if (c === 0x0a || (c < 0x20 && c !== 0x09) || c === 0x7f) return this.fail('invalid chunk extension');
          if (++this.extBytes > MAX_CHUNK_EXT) return this.fail('chunk extension too long');
          break;
        }
        case S.SizeLf: {
          if (buf[i] !== 0x0a) return this.fail('expected LF after chunk size');
          this.extBytes = 0;
          this.digits = 0;
          if (this.size === 0) {
            this.state = S.TrailerStart;
          } else {
            this.remaining = this.size;
            this.size = 0;
            this.state = S.Data;
          }
          break;
        }
        case S.DataCr:
          if (buf[i] !== 0x0d) return this.fail('expected CRLF after chunk data');
          this.state = S.DataLf;
          break;
        case S.DataLf:
          if (buf[i] !== 0x0a) return this.fail('expected CRLF after chunk data');
          this.state = S.Size;
          break;
        case S.TrailerStart: {
          const c = buf[i]!;
          if (c === 0x0d) this.state = S.EndLf;
          else if (c === 0x0a || c === 0x20 || c === 0x09) return this.fail('invalid trailer');
          else this.state = S.TrailerLine;
          if (++this.trailerBytes > MAX_TRAILERS) return this.fail('trailers too large');
          break;
        }
        case S.TrailerLine: {
          const c = buf[i]!;
          if (c === 0x0d) this.state = S.TrailerLf;
          else if (c === 0x0a || (c < 0x20 && c !== 0x09)) return this.fail('invalid trailer');
          if (++this.trailerBytes > MAX_TRAILERS) return this.fail('trailers too large');
          break;
        }
        case S.TrailerLf:
          if (buf[i] !== 0x0a) return this.fail('expected LF in trailer');
          this.state = S.TrailerStart;
          break;
        case S.EndLf:
          if (buf[i] !== 0x0a) return this.fail('expected LF at end of chunked body');
          this.state = S.Done;
          this.done = true;
          return i + 1 - start;
        case S.Done:
          return i - start;
      }
      i++;
    }
    return i - start;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
