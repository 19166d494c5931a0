/**
 * Writes to a TCP socket's handle that skip Node's Writable machinery (write request object,
 * state updates, a nextTick per write) when nothing is queued: the common case of a proxy whose
 * peers read as fast as it writes. The bytes go straight to libuv's `uv_try_write`, as Node's own
 * write does.
 *
 * Ordering: a raw write is made only when neither Node nor libuv holds queued bytes for the
 * socket (`writableLength === 0`, not corked, no raw write pending). When the kernel takes only
 * part of it, libuv queues the rest; any later write, raw or through `socket.write`, finds
 * libuv's queue non-empty, so `uv_try_write` refuses it and it is queued behind. `end()` shuts
 * down only after libuv's queue drained; `destroy()` drops queued bytes as it does for Node's.
 *
 * Bound: one raw write pending per socket at most (while one is pending, writes go through
 * `socket.write`, whose buffer is bounded by its callers' backpressure).
 *
 * When this Node has no `stream_wrap` binding (or a socket has no TCP handle, or is a
 * `tls.TLSSocket`) every write goes through `socket.write`: same bytes, same order, Node's cost.
 */
import net from 'node:net';

interface WriteReq {
  /** The handle, kept reachable from the request while libuv holds it (as Node's requests do). */
  handle: unknown;
  oncomplete: (this: WriteReq, status: number) => void;
  buffer: Buffer | string | null;
  writer: RawWriter | null;
}

interface StreamHandle {
  writeBuffer(req: WriteReq, data: Buffer): number;
  writeLatin1String(req: WriteReq, data: string): number;
}

/** The fields of Node's WritableState read here (stable since Node 14; checked at load). */
interface WritableFields {
  length: number;
  corked: number;
  readonly ending: boolean;
  readonly destroyed: boolean;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

function loadBinding(): StreamWrapBinding | null {
  try {
    const b = (process as unknown as { binding(name: string): StreamWrapBinding }).binding('stream_wrap');
    if (typeof b.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array) || typeof b.kLastWriteWasAsync !== 'number') return null;
    // The Writable fields RawWriter reads must be there with their meaning.
    const probe = new net.Socket();
    const w = (probe as unknown as { _writableState?: Partial<WritableFields> })._writableState;
    probe.destroy();
    if (!w || typeof w.length !== 'number' || typeof w.corked !== 'number' || w.ending !== false || w.destroyed !== true) return null;
    return b;
  } catch {
    return null;
  }
}

const binding = loadBinding();

/** Whether raw writes are available in this Node (otherwise RawWriter always uses socket.write). */
export const rawWritesSupported = binding !== null;

/** libuv finished a write that the kernel did not take at once (`this` is the request). */
function onRawComplete(this: WriteReq, status: number): void {
  const w = this.writer;
  this.writer = null;
  this.buffer = null;
  if (w !== null) w.completed(status);
}

/**
 * The raw-write state of one socket. `write` returns true when every byte reached the kernel,
 * false when some wait in a queue (the caller must then keep the memory of a Buffer it passed
 * unchanged and stop producing until `onDrained` runs). `busy` says whether bytes are queued.
 * `onDrained` may also run when Node's own queue is not empty yet; it must be idempotent.
 */
export class RawWriter {
  private readonly socket: net.Socket;
  private readonly onDrained: () => void;
  /** A request object used for writes that complete at once; replaced when one is kept by libuv. */
  private req: WriteReq | null = null;
  private pending = false;

  /** The socket's Writable state (`length`: bytes Node holds; `corked`; `ending`; `destroyed`). */
  private readonly state: WritableFields;
  /** Raw writes are made: not for a `tls.TLSSocket`, whose bytes must be encrypted by its stream. */
  private readonly raw: boolean;
  /** The socket is a `tls.TLSSocket`. */
  private readonly tls: boolean;
  /** TLS: the last write was queued in Node's Writable (its buffer is referenced until written). */
  private queued = false;

  constructor(socket: net.Socket, onDrained: () => void) {
    this.socket = socket;
    this.onDrained = onDrained;
    this.state = (socket as unknown as { _writableState: WritableFields })._writableState;
    this.tls = (socket as { encrypted?: boolean }).encrypted === true;
    this.raw = binding !== null && !this.tls;
  }

  /**
   * Whether a buffer given to `write` may still be referenced (its memory must not be reused yet).
   * The same as `busy`, except on a TLS socket: there a write that Node hands to the handle at
   * once (nothing queued, not corked) is encrypted into OpenSSL's own buffer before `write`
   * returns, so its buffer is free although the write completes later (Node completes every TLS
   * write from an immediate, which keeps `busy` true until then). A write queued behind another
   * keeps its buffer until Node's queue is empty.
   */
  get holds(): boolean {
    return this.tls ? this.queued && this.state.length > 0 : this.busy;
  }

  /** Bytes given to this socket that the kernel has not taken yet (raw or through Node). */
  get busy(): boolean {
    return this.pending || this.state.length > 0;
  }

  /** Writes `data` (a string is sent as latin1). See the class comment for the return value. */
  write(data: Buffer | string): boolean {
    const s = this.socket;
    const h = (s as unknown as { _handle: StreamHandle | null })._handle;
    // The Writable's own fields rather than the socket's getters (writableLength, writableCorked,
    // writableEnded, destroyed): this runs twice per request.
    const w = this.state;
    if (!this.raw || binding === null || h === null || this.pending || w.length !== 0 || w.corked !== 0 || s.connecting || w.ending || w.destroyed) {
      if (this.tls) this.queued = h === null || w.length !== 0 || w.corked !== 0 || s.connecting || w.ending || w.destroyed;
      return typeof data === 'string' ? s.write(data, 'latin1') : s.write(data);
    }
    let req = this.req;
    if (req === null) {
      req = new binding.WriteWrap();
      req.handle = h;
      req.oncomplete = onRawComplete;
      req.buffer = null;
      req.writer = null;
      this.req = req;
    }
    const err = typeof data === 'string' ? h.writeLatin1String(req, data) : h.writeBuffer(req, data);
    if (err !== 0) {
      // As Node's write does: the socket fails with the errno ('error', then 'close').
      const e = Object.assign(new Error(`write failed (errno ${err})`), { errno: err, code: 'ERR_SOCKET_WRITE', syscall: 'write' });
      s.destroy(e);
      return true;
    }
    if (binding.streamBaseState[binding.kLastWriteWasAsync] === 0) return true;
    // libuv keeps this request (and, for a Buffer, its memory) until the rest is written.
    req.buffer = data;
    req.writer = this;
    this.req = null;
    this.pending = true;
    return false;
  }

  /** Called by the request libuv kept, once its bytes were written or dropped (socket closing). */
  completed(status: number): void {
    this.pending = false;
    if (this.socket.destroyed) return;
    if (status < 0) {
      this.socket.destroy(Object.assign(new Error(`write failed (errno ${status})`), { errno: status, code: 'ERR_SOCKET_WRITE', syscall: 'write' }));
      return;
    }
    // Always: a writer told `false` waits for this. Writes queued behind through socket.write
    // may still be pending; a drain handler that resumes a producer too early only sees the next
    // socket.write return false again.
    this.onDrained();
  }
}
