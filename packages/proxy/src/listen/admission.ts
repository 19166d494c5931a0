/**
 * Admission of client connections under `maxconn`, as HAProxy does it: the connection that fills
 * a frontend (its own `maxconn`) or the process (global `maxconn`) pauses the listeners, so new
 * clients wait in the kernel's backlog, their handshake done, nothing read or reset; the first
 * connection to close resumes them. What still arrives while full (a listener that cannot pause,
 * see listener.ts) is held unread, oldest first, and admitted as slots free; at most HELD_MAX per
 * frontend, beyond which a new connection is closed at once.
 */
import type net from 'node:net';
import type { Listener } from './listener.js';

/** What a frontend's `conns` hold: connection objects, and TLS handshakes in progress. */
export interface FrontendConn {
  /** A reload replaced the frontend: finish the current exchange, then close. */
  drain(): void;
  /** Close now. */
  destroy(): void;
}

/** Sockets a frontend holds while full; beyond, new ones are closed at once. */
export const HELD_MAX = 1024;

/**
 * The process-wide count of client connections (global `maxconn`), shared by the frontends of
 * one proxy and by the ones a reload creates, so connections finishing on a retired frontend
 * still count.
 */
export class ProcessLimit {
  count = 0;
  /** The admissions of the frontends currently serving: paused when the process fills, told when it no longer is. */
  serving: ReadonlyArray<{ pause(): void; freeSlot(): void }> = [];

  /** Told the new count after each change (threads/accept-balance.ts with `nbthread`). */
  onCount: ((count: number) => void) | undefined;

  constructor(public max: number) {}

  get full(): boolean {
    return this.count >= this.max;
  }

  added(): void {
    this.count++;
    if (this.count === this.max) for (const a of this.serving) a.pause();
    this.onCount?.(this.count);
  }

  removed(): void {
    const wasFull = this.full;
    this.count--;
    if (wasFull && !this.full) for (const a of this.serving) a.freeSlot();
    this.onCount?.(this.count);
  }
}

/** A frontend's open connections; adding and removing one keeps the counts (and slots) right. */
class ConnSet<C> extends Set<C> {
  constructor(private readonly admission: Admission<C>) {
    super();
  }

  override add(c: C): this {
    if (this.has(c)) return this;
    super.add(c);
    this.admission.limit.added();
    return this;
  }

  override delete(c: C): boolean {
    if (!super.delete(c)) return false;
    this.admission.limit.removed();
    this.admission.freeSlot();
    return true;
  }
}

export class Admission<C> {
  /** Open connections (each adds itself when created and removes itself when closed). */
  readonly conns: Set<C>;
  /** The frontend's listeners, paused and resumed together. */
  readonly listeners: Listener[] = [];
  /** Set when the frontend stops serving: no more pausing or resuming. */
  draining = false;
  /** Sockets accepted while full, oldest first, with the listener that took them; at most HELD_MAX. */
  private held: Array<{ socket: net.Socket; from: Listener }> = [];
  private paused = false;

  /**
   * `maxconn`: the frontend's limit; `admit` starts serving a socket (the connection object it
   * makes adds itself to `conns`).
   */
  constructor(
    private readonly maxconn: number,
    readonly limit: ProcessLimit,
    private readonly admit: (socket: net.Socket, from: Listener) => void,
  ) {
    this.conns = new ConnSet<C>(this);
  }

  private get full(): boolean {
    return this.conns.size >= this.maxconn || this.limit.full;
  }

  /** Accept handler of the frontend's listeners. */
  readonly onConnection = (socket: net.Socket, from: Listener): void => {
    if (this.full || this.held.length > 0) {
      if (this.held.length >= HELD_MAX) socket.destroy();
      else this.held.push({ socket, from });
      this.pause();
      return;
    }
    this.admit(socket, from);
    if (this.full) this.pause();
  };

  pause(): void {
    if (this.paused || this.draining) return;
    this.paused = true;
    for (const l of this.listeners) l.pause();
  }

  /** A slot may have freed: admits held sockets, oldest first, then resumes the listeners if room is left. */
  freeSlot(): void {
    while (this.held.length > 0 && !this.full) {
      const h = this.held.shift()!;
      if (!h.socket.destroyed) this.admit(h.socket, h.from);
    }
    if (this.paused && !this.full && !this.draining) {
      this.paused = false;
      for (const l of this.listeners) l.resume();
    }
  }

  /** Sockets held while full, handed over when a reload moves the listeners or the frontend stops. */
  takeHeld(): Array<{ socket: net.Socket; from: Listener }> {
    const h = this.held;
    this.held = [];
    return h;
  }

  /** Connections waiting for a slot (held, not counting those in the kernel's backlog). */
  get waiting(): number {
    return this.held.length;
  }
}
