/**
 * More than one accept per event-loop turn for a listener.
 *
 * libuv (since 1.45, Node 20) accepts a single connection each time a listening socket is polled
 * readable. Under load one loop turn serves hundreds of ready sockets and takes milliseconds, so
 * a burst of new connections (a load test starting, every client reconnecting after a failover)
 * waits one turn per connection: 200 connections took ~0.4 s to be accepted. HAProxy accepts
 * several per wakeup (`tune.maxaccept`). Node 20 has no SO_REUSEPORT, so the listening socket is
 * duplicated instead: a handle sent over IPC arrives as a new descriptor of the same socket, and
 * each descriptor is a separate libuv handle that accepts one connection per turn. `n` descriptors
 * accept up to `n` connections per turn, from one kernel queue (no imbalance, nothing to steer).
 *
 * The raw handle travels, not a `net.Server`: the child then never listens on the socket, so it
 * can never accept a connection meant for the proxy; it closes its copy once sent.
 *
 * One helper child per process echoes the handles (`CHILD_SOURCE`); it is started on first use,
 * does not keep the process alive, exits with its parent, and is let go `HELPER_IDLE_MS` after its
 * last answer: a Node process costs about 40 MB of RSS, a fresh one for a reload about 50 ms. When
 * the child cannot be started or does not answer within `DUP_TIMEOUT_MS`, the listener stays
 * single (correct, only slower to accept).
 */
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';

export const DUP_TIMEOUT_MS = 3000;
/** The helper child is disconnected (and exits) this long after its last answer with nothing pending. */
export const HELPER_IDLE_MS = 1000;
/** Upper bound for `tune.maxaccept` (descriptors per listener). */
export const MAX_ACCEPT_HANDLES = 64;

/**
 * The helper's whole program: send every listening handle straight back (a handle passed over IPC
 * arrives as a new descriptor of the same socket); exit when the parent goes away. Inline, so it
 * runs the same from the build and from sources.
 */
const CHILD_SOURCE = `
process.on('message', (msg, handle) => {
  if (msg && msg.t === 'stickmesh:dup' && handle) process.send(msg, handle, () => { try { handle.close(); } catch {} });
});
process.on('disconnect', () => process.exit(0));
`;

let child: ChildProcess | null = null;
/**
 * Callers waiting for an echoed handle, by request id. Bound: at most `MAX_ACCEPT_HANDLES`
 * per listener being opened (times the number of threads, at most 64, with `nbthread`); an entry leaves on its answer, its timeout or the child's exit, and a
 * late echo after a timeout is closed.
 */
let pending = new Map<number, (handle: object | null) => void>();
let nextId = 1;
let idleTimer: NodeJS.Timeout | undefined;

/** The helper's pid while one runs (tests). */
export function dupHelperPid(): number | undefined {
  return child?.connected ? child.pid : undefined;
}

/** Lets the helper go once nothing waits on it for HELPER_IDLE_MS (it exits on disconnect). */
function releaseWhenIdle(): void {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(function onDupIdle() {
    idleTimer = undefined;
    if (pending.size > 0 || !child) return;
    const c = child;
    child = null;
    if (c.connected) c.disconnect();
  }, HELPER_IDLE_MS);
  idleTimer.unref();
}

function helper(): ChildProcess | null {
  if (child && child.connected) return child;
  try {
    const c = spawn(process.execPath, ['-e', CHILD_SOURCE], {
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      serialization: 'json',
    });
    c.on('message', function onDupMessage(msg: { t?: string; id?: number } | null, handle: unknown) {
      if (msg?.t !== 'stickmesh:dup') return;
      const next = pending.get(msg.id ?? 0);
      pending.delete(msg.id ?? 0);
      if (next) next(isHandle(handle) ? handle : null);
      else if (isHandle(handle)) handle.close();
    });
    c.on('exit', function onDupExit() {
      if (child === c) child = null;
      const waiting = pending;
      pending = new Map();
      for (const w of waiting.values()) w(null);
    });
    c.on('error', function onDupError() {
      /* 'exit' follows, or the send callback reports it */
    });
    c.unref();
    (c as ChildProcess & { channel?: { unref(): void } }).channel?.unref();
    child = c;
    return c;
  } catch {
    return null;
  }
}

/** A native stream handle as IPC delivers it. */
interface NativeHandle {
  close(): void;
  /** Its descriptor (libuv's; -1 once closed). */
  readonly fd?: number;
}

function isHandle(h: unknown): h is NativeHandle {
  return typeof h === 'object' && h !== null && typeof (h as NativeHandle).close === 'function';
}

function dupOnce(handle: object): Promise<NativeHandle | null> {
  const c = helper();
  if (!c) return Promise.resolve(null);
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
  return new Promise<NativeHandle | null>((resolve) => {
    let done = false;
    const finish = (h: object | null): void => {
      if (done) {
        if (isHandle(h)) h.close();
        return;
      }
      done = true;
      clearTimeout(timer);
      if (pending.size === 0) releaseWhenIdle();
      resolve(isHandle(h) ? h : null);
    };
    const id = nextId++;
    const timer = setTimeout(() => {
      pending.delete(id);
      finish(null);
    }, DUP_TIMEOUT_MS);
    timer.unref();
    pending.set(id, finish);
    c.send({ t: 'stickmesh:dup', id }, handle as net.Server, (err) => {
      if (err) {
        pending.delete(id);
        finish(null);
      }
    });
  });
}

/**
 * Opens up to `count` more servers on `srv`'s listening socket, each made by `make` (so they get
 * the same options and listeners as `srv`); fewer, possibly none, if the helper fails. The caller
 * closes them with `srv`.
 */
export async function duplicateListener(srv: net.Server, count: number, make: () => net.Server): Promise<net.Server[]> {
  // Node keeps the libuv handle in `_handle`; without it (a future Node), stay single.
  const handle = (srv as net.Server & { _handle?: object | null })._handle;
  if (!handle) return [];
  const out: net.Server[] = [];
  // All requests go out at once: one IPC round trip, not one per descriptor.
  const handles = await Promise.all(Array.from({ length: Math.min(count, MAX_ACCEPT_HANDLES) }, () => dupOnce(handle)));
  for (const h of handles) {
    if (!h) continue;
    const d = make();
    await new Promise<void>((resolve, reject) => {
      d.once('error', reject);
      d.listen(h, () => {
        d.off('error', reject);
        resolve();
      });
    }).catch(() => h.close());
    if (d.listening) out.push(d);
  }
  return out;
}

/** A duplicate of a listening socket as a raw descriptor, for another thread (`nbthread`). */
export interface RawDuplicate {
  /** The descriptor: the thread given it opens it with `server.listen({ fd })` and owns it. */
  readonly fd: number;
  /**
   * The handle that received it. Never close it: the descriptor belongs to the thread it was
   * given to, and closing both would close a number that may already name another file. Keep it
   * referenced for as long as the descriptor is in use.
   */
  readonly handle: object;
}

/**
 * Up to `count` duplicates of `srv`'s listening socket as raw descriptors (fewer, possibly none,
 * if the helper fails); nothing in this thread listens on them. See `RawDuplicate` for who closes.
 */
export async function duplicateHandles(srv: net.Server, count: number): Promise<RawDuplicate[]> {
  const handle = (srv as net.Server & { _handle?: object | null })._handle;
  if (!handle) return [];
  const handles = await Promise.all(Array.from({ length: Math.max(0, count) }, () => dupOnce(handle)));
  const out: RawDuplicate[] = [];
  for (const h of handles) {
    if (!h) continue;
    if (typeof h.fd === 'number' && h.fd >= 0) out.push({ fd: h.fd, handle: h });
    else h.close();
  }
  return out;
}
