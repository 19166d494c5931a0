/**
 * One listening socket of a frontend `bind`, accepted on through `maxAccept` descriptors
 * (listen/dup.ts), which can stop accepting together (listen/pause.ts) when the frontend is full.
 *
 * The socket is bound once by Node (errors surface there), then opened `maxAccept` times over IPC
 * and Node's own descriptor is closed: only received descriptors can be paused. When the helper
 * cannot duplicate, Node's descriptor stays and the listener cannot pause; the frontend then holds
 * what it accepts past `maxconn` instead (proxy.ts).
 */
import net from 'node:net';
import { duplicateHandles, duplicateListener, MAX_ACCEPT_HANDLES, type RawDuplicate } from './dup.js';
import { pauseAccept, resumeAccept } from './pause.js';
import type { AcceptGate } from './gate.js';

export type ConnectionHandler = (socket: net.Socket, from: Listener) => void;

/**
 * Why a listener stops accepting; it accepts again once no reason is left. `PAUSE_FULL`: its
 * frontend or the process reached `maxconn` (admission.ts). `PAUSE_BALANCE`: with `nbthread`, this
 * thread holds more than its share of the node's connections (threads/accept-balance.ts).
 */
export const PAUSE_FULL = 1;
export const PAUSE_BALANCE = 2;

/**
 * Client sockets arrive paused (`pauseOnConnect`): the frontend's connection objects switch them
 * to reads into their own buffers, and a connection held at `maxconn` stays unread.
 */
const SERVER_OPTIONS: net.ServerOpts = { allowHalfOpen: true, noDelay: true, pauseOnConnect: true };

/** Descriptors for `tune.maxaccept`: 1..MAX_ACCEPT_HANDLES. */
function handlesFor(maxAccept: number): number {
  return Math.min(Math.max(1, maxAccept), MAX_ACCEPT_HANDLES);
}

function onDescriptorError(): void {
  /* accept errors (EMFILE) are transient; libuv keeps polling and the next accept may succeed */
}

export class Listener {
  /** Address actually bound (port 0 resolved). */
  readonly host: string;
  readonly port: number;
  private servers: net.Server[] = [];
  /** Pause reasons in effect (PAUSE_* bits); 0 while accepting. */
  private pauses = 0;
  /** Whether every descriptor stopped when the first reason paused the listener (what a later reason's `pause` reports). */
  private stopped = true;
  private handler: ConnectionHandler;
  /**
   * Main thread with `nbthread`: the duplicates handed to the data-plane threads. Never closed
   * here (each thread owns its descriptors, see dup.ts RawDuplicate); held so they stay valid.
   */
  private handedOut: RawDuplicate[] = [];
  /** Worker thread with `nbthread`: this listener's descriptors came from the main thread and cannot be multiplied here. */
  private fromMain = false;

  private constructor(host: string, port: number, handler: ConnectionHandler) {
    this.host = host;
    this.port = port;
    this.handler = handler;
  }

  /**
   * Binds `host:port` with Node's own descriptor only (fast: no helper process involved, so a
   * node binding all its addresses learns of a failure at once). `spread` then opens the rest.
   */
  static async bind(host: string | undefined, port: number, handler: ConnectionHandler, gate?: AcceptGate): Promise<Listener> {
    const primary = net.createServer(SERVER_OPTIONS);
    await new Promise<void>((resolve, reject) => {
      primary.once('error', reject);
      primary.listen({ host, port }, function onPrimaryListening() {
        gate?.attach(primary);
        primary.off('error', reject);
        resolve();
      });
    });
    primary.on('error', onDescriptorError);
    const a = primary.address() as net.AddressInfo;
    const l = new Listener(a.address, a.port, handler);
    primary.on('connection', l.onConnection);
    l.servers.push(primary);
    return l;
  }

  /**
   * A data-plane thread's listener (`nbthread`) on descriptors the main thread duplicated for it:
   * one server per descriptor, each owning its descriptor (closing the listener closes them).
   * `host`/`port` are the bound address as the main thread reported it. Rejects when no
   * descriptor can be listened on.
   */
  static async fromFds(host: string, port: number, fds: readonly number[], handler: ConnectionHandler, gate?: AcceptGate): Promise<Listener> {
    const l = new Listener(host, port, handler);
    l.fromMain = true;
    const make = l.makeDescriptor(gate);
    let lastErr: Error | undefined;
    for (const fd of fds) {
      const s = make();
      try {
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.listen({ fd }, () => {
            s.off('error', reject);
            resolve();
          });
        });
        l.servers.push(s);
      } catch (err) {
        lastErr = err as Error;
      }
    }
    if (l.servers.length === 0) throw lastErr ?? new Error('no descriptor to listen on');
    return l;
  }

  /**
   * Main thread with `nbthread` (`threads` data-plane threads): duplicates the socket
   * `threads x maxAccept` times, closes this thread's own descriptor (so it accepts nothing from
   * then on) and answers the descriptors, `maxAccept` (or fewer, when the helper gave fewer) per
   * thread. Rejects when the helper gave fewer than one per thread: a thread without a descriptor
   * would not serve this address.
   */
  async handOut(threads: number, maxAccept: number): Promise<number[][]> {
    const primary = this.servers[0];
    if (!primary || this.servers.length !== 1) throw new Error('listener already handed out');
    const dups = await duplicateHandles(primary, threads * handlesFor(maxAccept));
    if (dups.length < threads) {
      for (const d of dups) (d.handle as { close(): void }).close();
      throw new Error(`could not duplicate the listening socket for ${threads} threads (got ${dups.length} descriptors)`);
    }
    const per: number[][] = Array.from({ length: threads }, () => []);
    dups.forEach((d, i) => per[i % threads]!.push(d.fd));
    this.handedOut = dups;
    primary.close();
    this.servers = [];
    return per;
  }

  /**
   * Replaces Node's descriptor by `maxAccept` received ones (which can pause). When the helper
   * gives none, Node's descriptor stays.
   */
  async spread(maxAccept: number, gate?: AcceptGate): Promise<void> {
    const primary = this.servers[0];
    if (!primary || this.servers.length !== 1) return;
    const dups = await duplicateListener(primary, handlesFor(maxAccept), this.makeDescriptor(gate));
    if (dups.length > 0) {
      // The received descriptors keep the socket open; Node's own one cannot pause.
      primary.close();
      this.servers = dups;
    }
  }

  /** Makes the server for one more descriptor: same handler, gated and paused as the listener. */
  private makeDescriptor(gate: AcceptGate | undefined): () => net.Server {
    return () => {
      const s = net.createServer(SERVER_OPTIONS);
      s.on('connection', this.onConnection);
      s.on('error', onDescriptorError);
      s.once('listening', () => {
        gate?.attach(s);
        if (this.pauses !== 0) pauseAccept(s);
      });
      return s;
    };
  }

  private readonly onConnection = (socket: net.Socket): void => {
    this.handler(socket, this);
  };

  /** Sends this listener's new connections to `handler` (a reload moves a listener to a new frontend). */
  setHandler(handler: ConnectionHandler): void {
    this.handler = handler;
  }

  /** Descriptors accepting on the socket. */
  get descriptors(): number {
    return this.servers.length;
  }

  /**
   * Stops accepting for `reason` (a PAUSE_* bit): connections wait in the kernel's backlog.
   * Returns false when a descriptor could not stop (see the file comment); its connections keep
   * arriving.
   */
  pause(reason = PAUSE_FULL): boolean {
    const was = this.pauses;
    this.pauses |= reason;
    if (was !== 0) return this.stopped;
    let all = true;
    for (const s of this.servers) if (!pauseAccept(s)) all = false;
    return (this.stopped = all);
  }

  /** Drops `reason`; accepts again once no other reason holds the listener. */
  resume(reason = PAUSE_FULL): void {
    if ((this.pauses & reason) === 0) return;
    this.pauses &= ~reason;
    if (this.pauses === 0) for (const s of this.servers) resumeAccept(s);
  }

  /** Whether any reason holds the listener paused. */
  get isPaused(): boolean {
    return this.pauses !== 0;
  }

  /**
   * Gives the socket `maxAccept` descriptors (1..MAX_ACCEPT_HANDLES): opens more, or closes the
   * surplus. When opening more fails the listener keeps those it has (fewer accepts per turn).
   */
  async resize(maxAccept: number): Promise<void> {
    // With nbthread the descriptors come from the main thread at bind time; a reload keeps them.
    if (this.fromMain || this.handedOut.length > 0) return;
    const want = handlesFor(maxAccept);
    if (this.servers.length > want) {
      for (const s of this.servers.splice(want)) s.close();
      return;
    }
    const source = this.servers[0];
    if (this.servers.length === want || !source) return;
    this.servers.push(...(await duplicateListener(source, want - this.servers.length, this.makeDescriptor(undefined))));
  }

  /**
   * Main thread: closes the duplicates `handOut` made when they never reached a thread (the
   * reload that opened them failed), then the listener.
   */
  reclaim(): void {
    for (const d of this.handedOut) (d.handle as { close(): void }).close();
    this.handedOut = [];
    this.close();
  }

  close(): void {
    // Handed-out duplicates stay open: the threads close their descriptors with their own listeners.
    for (const s of this.servers) s.close();
  }
}
