/**
 * TLS session-ticket keys across a node's threads (`nbthread` > 1): the main thread keeps the
 * node's key ring (rotation, and keys shared with the cluster by the peers mesh); each data-plane
 * thread's `ssl` binds use a mirror of it, so a ticket issued by any thread, or by another node,
 * resumes on every thread.
 *
 * `keysMessage` (main) is what each thread gets at start and, as `sm:keys`, after every change of
 * the ring; `ThreadTicketKeys` (worker) holds the last one. Bound: the ring's own (a handful of
 * 48-byte keys); a message replaces the whole set.
 */
import type { TicketKeys } from '@stickmesh/core';
import type { ThreadMessage } from './port.js';

export const KEYS_KIND = 'sm:keys';

export interface KeysMessage extends ThreadMessage {
  readonly t: typeof KEYS_KIND;
  /** Every accepted key, newest first, as the ring's `all()`. */
  readonly keys: Uint8Array[];
  /** Index in `keys` of the key new tickets are issued with; -1: none (tickets off). */
  readonly current: number;
}

/** The ring's keys as a message (copies: the ring's buffers stay the ring's). */
export function keysMessage(ring: TicketKeys): KeysMessage {
  const all = ring.all();
  const cur = ring.current();
  const keys = all.map((k) => new Uint8Array(k));
  let current = cur === undefined ? -1 : all.findIndex((k) => k.equals(cur));
  if (cur !== undefined && current < 0) {
    keys.unshift(new Uint8Array(cur));
    current = 0;
  }
  return { t: KEYS_KIND, keys, current };
}

/** A data-plane thread's copy of the main thread's key ring. */
export class ThreadTicketKeys implements TicketKeys {
  private keys: Buffer[] = [];
  private cur: Buffer | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(initial?: KeysMessage) {
    if (initial) this.set(initial, false);
  }

  /** Takes the main thread's keys (`sm:keys`) and tells the TLS contexts. */
  update(msg: KeysMessage): void {
    this.set(msg, true);
  }

  private set(msg: KeysMessage, notify: boolean): void {
    this.keys = msg.keys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength));
    this.cur = msg.current >= 0 ? this.keys[msg.current] : undefined;
    if (notify) for (const l of this.listeners) l();
  }

  current(): Buffer | undefined {
    return this.cur;
  }

  byName(name: Uint8Array): Buffer | undefined {
    if (name.length !== 16) return undefined;
    for (const k of this.keys) if (k.subarray(0, 16).equals(name)) return k;
    return undefined;
  }

  all(): readonly Buffer[] {
    return this.keys;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
