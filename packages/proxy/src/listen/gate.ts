/**
 * All-or-nothing start: listeners are bound one after another, and a node that fails on the last
 * one must not have served anything on the first ones. Each listener is attached to the gate as
 * soon as it listens; until `open`, what it accepts is held unread and unanswered (Node never even
 * creates a socket object for it); `open` hands every held connection, in arrival order, to the
 * listener's own handler and lets later ones through directly; `close` (start failed) closes them.
 *
 * The gate works on Node's accept callback (`server._handle.onconnection`), so it fits any
 * `net.Server`, `http.Server` or `https.Server` without knowing its listeners. It must be attached
 * in the server's 'listening' callback: Node calls that before the event loop next polls, so no
 * connection can be accepted unheld.
 */
import type net from 'node:net';

/** Connections held before `open`; beyond this, a new one is closed at once (a start takes well under a second). */
export const GATE_MAX_HELD = 1024;

/** A native handle of an accepted connection (only `close` is used here). */
interface ClientHandle {
  close(): void;
}

type OnConnection = (this: unknown, err: number, client?: ClientHandle) => void;

interface AcceptHandle {
  onconnection?: OnConnection;
}

interface Held {
  handle: AcceptHandle;
  original: OnConnection;
  client: ClientHandle;
}

export class AcceptGate {
  private state: 'holding' | 'open' | 'closed' = 'holding';
  /** Listening handles whose accept callback is wrapped, with Node's own callback to restore. */
  private readonly wrapped: Array<{ handle: AcceptHandle; original: OnConnection }> = [];
  /** Connections accepted before `open`, oldest first; at most GATE_MAX_HELD. */
  private held: Held[] = [];

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Connections waiting for `open`. */
  get waiting(): number {
    return this.held.length;
  }

  /**
   * Holds what `srv` accepts until `open`. Call from the 'listening' callback. Does nothing once the
   * gate is open (a listener opened later, by a reload, serves at once) or when `srv` has no handle.
   */
  attach(srv: net.Server): void {
    if (this.state === 'open') return;
    const handle = (srv as net.Server & { _handle?: AcceptHandle | null })._handle;
    const original = handle?.onconnection;
    if (!handle || typeof original !== 'function') return;
    const gate = this;
    handle.onconnection = function gatedConnection(this: unknown, err: number, client?: ClientHandle): void {
      if (gate.state === 'open') {
        original.call(handle, err, client);
        return;
      }
      // An accept error is the listener's to report; a connection is held or, past the bound or
      // after `close`, closed unanswered.
      if (err !== 0 || client === undefined) {
        original.call(handle, err, client);
        return;
      }
      if (gate.state === 'closed' || gate.held.length >= GATE_MAX_HELD) {
        client.close();
        return;
      }
      gate.held.push({ handle, original, client });
    };
    this.wrapped.push({ handle, original });
  }

  /** Restores every listener's own accept callback and hands it the connections held for it. */
  open(): void {
    if (this.state !== 'holding') return;
    this.state = 'open';
    this.restore();
    const held = this.held;
    this.held = [];
    for (const h of held) h.original.call(h.handle, 0, h.client);
  }

  /** Start failed: closes every held connection unanswered; later ones are closed too. */
  close(): void {
    if (this.state !== 'holding') return;
    this.state = 'closed';
    const held = this.held;
    this.held = [];
    for (const h of held) h.client.close();
  }

  private restore(): void {
    for (const w of this.wrapped) w.handle.onconnection = w.original;
    this.wrapped.length = 0;
  }
}
