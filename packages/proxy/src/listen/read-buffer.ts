/**
 * The buffer a connection's reads go into in Node's `onread` mode (net.connect's option, or
 * readInto for accepted sockets): one buffer reused read after read, so a read allocates nothing.
 *
 * Reuse rule: after a read, the owner says whether it still references those bytes (a write the
 * kernel did not take at once, bytes kept for later); if so the next read gets a fresh buffer and
 * the held one is left to whoever points into it. Size rule: the buffer starts at `min` bytes and
 * a read that fills it makes the next one twice as large, up to `max` (bulk transfers get large
 * reads, idle connections keep a small buffer). At most one buffer of at most `max` bytes is
 * owned at a time. When the socket has closed, `release` gives an unheld 4 KiB buffer back to
 * the pool it came from (buffer-pool.ts).
 */
import { giveBuffer, takeBuffer } from './buffer-pool.js';

export class ReadBuffer {
  private buf: Buffer | null = null;
  private held = false;
  private grow = false;

  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {}

  /** For `onread.buffer`: the buffer the next read goes into. */
  readonly next = (): Buffer => {
    let b = this.buf;
    if (b === null || this.held || this.grow) {
      const size = b === null ? this.min : this.grow ? Math.min(b.length * 2, this.max) : b.length;
      b = this.buf = takeBuffer(size);
      this.held = false;
      this.grow = false;
    }
    return b;
  };

  /** Records a read of `n` bytes into `buf`; `held`: the owner still references them. */
  afterRead(n: number, buf: Uint8Array, held: boolean): void {
    if (held) this.held = true;
    if (n === buf.length && n < this.max) this.grow = true;
  }

  /** The owner references the bytes of the last read (decided after afterRead). */
  hold(): void {
    this.held = true;
  }

  /**
   * The socket is closed: no read will come. The buffer goes back to the pool unless the owner
   * said it still references the last read's bytes.
   */
  release(): void {
    const b = this.buf;
    this.buf = null;
    if (b !== null && !this.held) giveBuffer(b);
  }
}
