import { giveBuffer, takeBuffer } from './buffer-pool.js';

/**
 * The buffer a connection's reads go into in Node's `onread` mode (net.connect's option, or
 * readInto for accepted sockets).
 *
 * Shared reads: while its owner expects a message head (`shared = true`), a connection reads
 * into one buffer common to all such connections, `SHARED_READ_BYTES` long. The bytes are
 * valid only until the read callback returns: the owner parses them there, and whatever it
 * keeps or hands to a write that may be queued (a partial head, pipelined bytes, body bytes)
 * it copies first (`isSharedRead`). So that buffer is never held and never replaced, and one
 * buffer serves every keep-alive connection and stays in the CPU cache; with a buffer per
 * connection, each read at a few hundred connections wrote cold memory. The choice is made
 * after each read for the next one (Node asks for the next buffer then), so the copying rule,
 * not the choice, is what keeps bytes safe.
 *
 * Own reads (`shared = false`: body bytes, tunnels): one buffer owned by the connection and
 * reused read after read. Reuse rule: after a read, the owner says whether it still references
 * those bytes (a write the kernel did not take at once, bytes kept for later); if so the next
 * read gets a fresh buffer and the held one is left to whoever points into it. Size rule: the
 * buffer starts at `min` bytes and a read that fills it makes the next one twice as large, up
 * to `max`. At most one own buffer of at most `max` bytes is owned at a time, made on first use.
 * When the socket has closed, `release` gives an unheld 4 KiB buffer back to the pool it came
 * from (buffer-pool.ts).
 */
/** Size of the shared head-read buffer (a head is at most 16 KiB: MAX_HEAD_BYTES). */
export const SHARED_READ_BYTES = 16384;
const sharedRead = Buffer.allocUnsafeSlow(SHARED_READ_BYTES);

/**
 * Whether `buf` is the shared read buffer (its bytes must be copied to outlive the callback).
 * Identity, not a view test: read callbacks get the very buffer `next` handed out.
 */
export function isSharedRead(buf: Uint8Array): boolean {
  return buf === sharedRead;
}

export class ReadBuffer {
  /**
   * Set by the owner after each read: the next read may go into the shared buffer. Off by
   * default, and for owners that never copy (mode tcp).
   */
  shared = false;
  /** The last buffer handed out (the current read's) was the shared one. */
  private inShared = false;

  private buf: Buffer | null = null;
  private held = false;
  private grow = false;

  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {}

  /** For `onread.buffer`: the buffer the next read goes into. */
  readonly next = (): Buffer => {
    if (this.shared) {
      this.inShared = true;
      return sharedRead;
    }
    this.inShared = false;
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
    if (buf === sharedRead) return; // never held: the owner copied what it kept
    if (held) this.held = true;
    if (n === buf.length && n < this.max) this.grow = true;
  }

  /**
   * The owner references the bytes of the last read (decided after afterRead). A no-op when that
   * read went into the shared buffer: those bytes were copied if kept.
   */
  hold(): void {
    if (!this.inShared) this.held = true;
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
