/**
 * Stopping and restarting accepts on a listening socket, leaving new connections in the kernel's
 * backlog (HAProxy's listener pause at `maxconn`).
 *
 * Node has no pause for a listening socket: `server.maxConnections` accepts the connection and
 * closes it, and libuv polls a listening descriptor from `uv_listen` until it is closed. libuv's
 * `uv_read_stop` stops the same poll, but only on a handle flagged readable, and
 * `uv_read_start` refuses (ENOTCONN) a handle that is not. A handle Node opened itself with
 * `listen({ host, port })` has no such flag, so it cannot be paused. A handle received over IPC
 * (listen/dup.ts) was opened from a descriptor and has it: on those, `readStart` followed by
 * `readStop` removes the descriptor from the poll set, and `readStart` puts it back, with the
 * accept callback `uv_listen` installed (read callbacks are never used on a listening socket).
 * A stopped descriptor is not polled, so the connection is never taken from the queue: the
 * client's handshake completed in the kernel, it waits, nothing reads or resets it.
 */
import type net from 'node:net';
import { constants } from 'node:os';

/** The part of Node's TCP handle (`server._handle`) used here. */
interface ListenHandle {
  readStart(): number;
  readStop(): number;
}

/** libuv's UV_EALREADY (minus the platform's errno): `readStart` on a handle already started. */
const UV_EALREADY = -constants.errno.EALREADY;

function handleOf(srv: net.Server): ListenHandle | undefined {
  const h = (srv as net.Server & { _handle?: Partial<ListenHandle> | null })._handle;
  return h && typeof h.readStart === 'function' && typeof h.readStop === 'function' ? (h as ListenHandle) : undefined;
}

function started(rc: number): boolean {
  return rc === 0 || rc === UV_EALREADY;
}

/**
 * Stops `srv` accepting. Returns false when its handle cannot be paused (opened by Node itself,
 * or closed): the caller then keeps receiving its connections.
 */
export function pauseAccept(srv: net.Server): boolean {
  const h = handleOf(srv);
  if (!h || !started(h.readStart())) return false;
  return h.readStop() === 0;
}

/** Lets `srv` accept again after `pauseAccept`; false when it cannot (closed meanwhile). */
export function resumeAccept(srv: net.Server): boolean {
  const h = handleOf(srv);
  return h !== undefined && started(h.readStart());
}
