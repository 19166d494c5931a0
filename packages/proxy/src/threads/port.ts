/**
 * The channel between a node's main thread and one of its data-plane threads (`nbthread`).
 *
 * Every message is a plain object whose `t` names its kind (`sm:` prefix); each module that talks
 * across threads registers for its own kinds, so the worker entry and the main thread's thread
 * pool only route. Kinds in use (add yours here when you add one):
 *
 * | t | direction | owner |
 * | --- | --- | --- |
 * | `sm:view` | main -> worker | servers' health, admin state, weights, addresses (runtime view) |
 * | `sm:metrics?` / `sm:metrics` | main -> worker, reply | a worker's metrics for a whole-node scrape |
 * | `sm:log` / `sm:logged` | worker -> main, ack | a filled log buffer (transferred, not copied); the ack frees its room in the worker's byte bound |
 * | `sm:logbuf` | main -> worker | that buffer back (transferred) once written or dropped, for the worker to reuse |
 * | `sm:notify` | worker -> main | a table got local writes: wake the peers mesh |
 * | `sm:balance` | worker -> main -> worker | `to` (a thread index) may stop its accept pause (threads/accept-balance.ts) |
 * | `sm:reload` / `sm:reloaded` | main -> worker, reply | a new config |
 * | `sm:drain` / `sm:drained` | main -> worker, reply | stop accepting, drain, exit |
 * | `sm:ready` | worker -> main | the worker listens on its descriptors (its gate holds what it accepts) |
 * | `sm:open` | main -> worker | the whole node is up: the worker's gate opens |
 * | `sm:keys` | main -> worker | the node's TLS session-ticket keys, after each change (threads/keys.ts) |
 *
 * Bound: messages are few and small except `sm:log` (one buffer of at most the log sink's size per
 * message, and the sink's own byte bound counts what is in flight), so ports carry no queue of
 * their own beyond Node's.
 */
import type { MessagePort, Transferable, Worker } from 'node:worker_threads';

export interface ThreadMessage {
  readonly t: string;
  readonly [field: string]: unknown;
}

export interface ThreadPort {
  post(msg: ThreadMessage, transfer?: readonly Transferable[]): void;
  /** Calls `fn` with every message of kind `t` (one handler per kind; a second replaces the first). */
  on(t: string, fn: (msg: ThreadMessage) => void): void;
}

/** A ThreadPort over a `Worker` (main side) or `parentPort` (worker side). */
export class MessageThreadPort implements ThreadPort {
  private readonly target: Worker | MessagePort;
  private readonly handlers = new Map<string, (msg: ThreadMessage) => void>();

  constructor(target: Worker | MessagePort) {
    this.target = target;
    const handlers = this.handlers;
    target.on('message', function onThreadMessage(msg: unknown) {
      if (typeof msg !== 'object' || msg === null) return;
      const t = (msg as { t?: unknown }).t;
      if (typeof t !== 'string') return;
      handlers.get(t)?.(msg as ThreadMessage);
    });
  }

  post(msg: ThreadMessage, transfer?: readonly Transferable[]): void {
    this.target.postMessage(msg, transfer as Transferable[] | undefined);
  }

  on(t: string, fn: (msg: ThreadMessage) => void): void {
    this.handlers.set(t, fn);
  }
}
