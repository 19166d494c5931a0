/**
 * Memory one node shares between its threads (`nbthread`): typed arrays allocated in
 * `SharedArrayBuffer`s, handed to another thread as an `ArenaHandle` (structured-cloneable) and
 * viewed there without copying; and the two locks that make writes to them safe.
 *
 * The rule every shared structure follows: one `SpinLock` per structure serialises its writers
 * (any thread may write), and a `SeqLock` beside it lets readers go without the lock: a reader
 * notes the sequence, reads, and retries if a write began or ended meanwhile. Writers hold the
 * lock for a bounded, short time (one table operation, never I/O), so a waiter spins briefly and
 * then sleeps on the cell with `Atomics.wait` (allowed on Node's main thread too).
 *
 * A structure built unshared (`new Arena(false)`) gets plain `ArrayBuffer`s and pays nothing for
 * the locks it never takes: callers test `arena.shared` once and skip locking otherwise.
 */

export type ArenaKind = 'i32' | 'u32' | 'u16' | 'u8' | 'f64';

/** The buffers of an arena by name, as another thread receives them (postMessage / workerData). */
export interface ArenaHandle {
  readonly buffers: Readonly<Record<string, SharedArrayBuffer>>;
}

const BYTES: Record<ArenaKind, number> = { i32: 4, u32: 4, u16: 2, u8: 1, f64: 8 };

export class SharedMemoryError extends Error {
  readonly code = 'SM_SHARED_LAYOUT';
}

/**
 * Allocates named typed arrays. Built with a handle, it views that handle's buffers instead
 * (the same names in the same order and sizes, or it throws SM_SHARED_LAYOUT: both threads must
 * build the structure from the same config).
 */
export class Arena {
  readonly shared: boolean;
  private readonly from: ArenaHandle | undefined;
  private readonly own: Record<string, SharedArrayBuffer> = {};

  constructor(shared: boolean, from?: ArenaHandle) {
    this.shared = shared || from !== undefined;
    this.from = from;
  }

  /** True when this arena views another thread's buffers (it then must not initialise them). */
  get attached(): boolean {
    return this.from !== undefined;
  }

  i32(name: string, n: number): Int32Array {
    return new Int32Array(this.buffer(name, n, 'i32'));
  }

  u32(name: string, n: number): Uint32Array {
    return new Uint32Array(this.buffer(name, n, 'u32'));
  }

  u16(name: string, n: number): Uint16Array {
    return new Uint16Array(this.buffer(name, n, 'u16'));
  }

  u8(name: string, n: number): Uint8Array {
    return new Uint8Array(this.buffer(name, n, 'u8'));
  }

  f64(name: string, n: number): Float64Array {
    return new Float64Array(this.buffer(name, n, 'f64'));
  }

  /** The shared buffers allocated so far (only for a shared arena). */
  handle(): ArenaHandle {
    if (!this.shared) throw new SharedMemoryError('an unshared arena has no handle');
    return { buffers: this.from ? this.from.buffers : { ...this.own } };
  }

  private buffer(name: string, n: number, kind: ArenaKind): ArrayBufferLike {
    const bytes = Math.max(0, Math.ceil(n)) * BYTES[kind];
    if (this.from) {
      const b = this.from.buffers[name];
      if (!b || b.byteLength !== bytes) {
        throw new SharedMemoryError(`shared buffer '${name}': expected ${bytes} bytes, got ${b ? b.byteLength : 'none'}`);
      }
      return b;
    }
    if (!this.shared) return new ArrayBuffer(bytes);
    if (name in this.own) throw new SharedMemoryError(`shared buffer '${name}' allocated twice`);
    const b = new SharedArrayBuffer(bytes);
    this.own[name] = b;
    return b;
  }
}

/** Spins this many times before sleeping on the cell. */
const SPINS = 200;
/** A sleeping waiter re-checks at least this often (ms), so a lost wake-up costs at most this. */
const WAIT_MS = 1;

/**
 * A mutual-exclusion lock in one Int32 cell (0 free, 1 held, 2 held with waiters). Not re-entrant:
 * a thread that locks twice deadlocks, so every holder unlocks in a `finally` and calls nothing
 * that locks the same structure. A thread that dies holding it takes the process down anyway
 * (no half-alive node), so there is no owner recovery.
 */
export class SpinLock {
  private readonly cell: Int32Array;
  private readonly at: number;

  constructor(cell: Int32Array, at = 0) {
    this.cell = cell;
    this.at = at;
  }

  tryLock(): boolean {
    return Atomics.compareExchange(this.cell, this.at, 0, 1) === 0;
  }

  lock(): void {
    const c = this.cell;
    const i = this.at;
    if (Atomics.compareExchange(c, i, 0, 1) === 0) return;
    for (let n = 0; n < SPINS; n++) {
      if (Atomics.load(c, i) === 0 && Atomics.compareExchange(c, i, 0, 1) === 0) return;
    }
    // Mark contended (2) and sleep until the holder releases.
    while (Atomics.exchange(c, i, 2) !== 0) Atomics.wait(c, i, 2, WAIT_MS);
  }

  unlock(): void {
    if (Atomics.exchange(this.cell, this.at, 0) === 2) Atomics.notify(this.cell, this.at, 1);
  }
}

/**
 * A sequence counter for lock-free readers: writers (holding the structure's SpinLock) call
 * `begin` before and `end` after changing anything; a reader calls `read` (waits out a write in
 * progress), reads, and retries while `changed(seq)`. Even = stable, odd = write in progress.
 */
export class SeqLock {
  private readonly cell: Int32Array;
  private readonly at: number;

  constructor(cell: Int32Array, at = 0) {
    this.cell = cell;
    this.at = at;
  }

  begin(): void {
    Atomics.add(this.cell, this.at, 1);
  }

  end(): void {
    Atomics.add(this.cell, this.at, 1);
  }

  /** The current even sequence, after any write in progress ended. */
  read(): number {
    let s = Atomics.load(this.cell, this.at);
    while ((s & 1) !== 0) s = Atomics.load(this.cell, this.at);
    return s;
  }

  /** True if a write began since `read()` returned `seq`: what was read may be torn, read again. */
  changed(seq: number): boolean {
    return Atomics.load(this.cell, this.at) !== seq;
  }
}
