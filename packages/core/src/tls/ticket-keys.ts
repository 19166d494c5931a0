/**
 * The node's TLS session-ticket keys: a bounded ring that rotates on a schedule and converges with
 * the rings of the other nodes through the peers mesh, so every node issues tickets with the same
 * key and accepts the tickets of the previous rotations.
 *
 * Keys are ordered by generation: a rotation creates the key of gen `current.gen + 1`. The ring keeps
 * one key per generation and the `size` highest generations; `current()` is the key of the highest.
 * Two keys of one generation (two nodes rotated at once, or two halves of a partition) are settled
 * by a fixed rule, the same on every node: the one created first wins (smaller `createdAt`), then the
 * larger node name, then the larger key bytes. The ring is therefore a function of the set of keys a
 * node has seen, whatever the order it saw them in: nodes that have heard of the same keys hold the
 * same ring, and a key that lost somewhere loses everywhere.
 *
 * Why the first-created key wins a generation (and not the newest): a key that already issues
 * tickets must not be displaced by a late duplicate. A node that starts creates a key of gen 0 so
 * it can issue tickets at once; that key loses to the cluster's (older, or of higher generations)
 * as soon as a peer's ring arrives, so restarting a node never rotates the cluster's keys.
 *
 * Schedule: the node that created the current key rotates `rotateMs` after creating it; every other
 * node waits `graceMs` more, and rotates only if no newer key reached it meanwhile (the creator is
 * gone). So one node rotates at a time while it lives, and when several rotate at once the rule above
 * picks one key. The check runs on the shared TimerWheel.
 *
 * Bounds: `size` keys (2..8, default 3; the oldest generation is dropped at the bound). A key older
 * than `maxAgeMs` (size x (rotateMs + graceMs) + maxSkewMs) is dropped, and a peer's key that old,
 * or created more than `maxSkewMs` in the future by this node's clock, is refused. A ticket made
 * with a key no longer in the ring does not resume: the client gets a full handshake, not an error.
 */
import { randomBytes } from 'node:crypto';
import { StickmeshError } from '../errors.js';
import { sharedWheel, type TimerWheel, type WheelTask } from '../util/timer-wheel.js';
import type { SharedTicketKeys, TicketKeyEntry } from './types.js';

/** Bytes of a key (Node's `ticketKeys` layout) and of its name, which leads it. */
export const TICKET_KEY_BYTES = 48;
export const TICKET_KEY_NAME_BYTES = 16;
/** Most keys a ring may be configured to hold (and a peer may send in one message). */
export const MAX_TICKET_KEYS = 8;
/** Longest node name accepted with a key. */
export const MAX_TICKET_KEY_NODE = 255;
/**
 * Default rotation: hourly, with the two previous keys kept, so a ticket stays acceptable for 2 to 3
 * hours. HAProxy and Node issue tickets valid for 300 s by default (`tune.ssl.lifetime`,
 * `sessionTimeout`), far inside that; NGINX's docs leave rotation to the user, and the rotation
 * tools written for it use one hour to one day. Shorter is better for forward secrecy: whoever
 * obtains a ticket key can decrypt the sessions of every ticket it issued.
 */
export const DEFAULT_ROTATE_MS = 3_600_000;
export const DEFAULT_RING_SIZE = 3;
const MAX_LISTENERS = 64;

export interface TicketKeyRingOptions {
  /** This node's name (recorded in the keys it creates; decides ties). */
  node: string;
  /** Keys kept, current included: 2..MAX_TICKET_KEYS, default 3. */
  size?: number;
  /** Rotation interval, default DEFAULT_ROTATE_MS; at least 10 ms. */
  rotateMs?: number;
  /** How much longer than the current key's creator a node waits before rotating; default min(30 s, rotateMs / 4). */
  graceMs?: number;
  /** A peer's key created further than this in the future (by this clock) is refused; default 60 s. */
  maxSkewMs?: number;
  /** Timer for the rotation check; default the shared wheel. */
  wheel?: TimerWheel;
  /** Wall clock (ms), injectable for tests. */
  now?: () => number;
  /** Source of key bytes, injectable for tests. */
  random?: (n: number) => Buffer;
  /** Where a listener's exception is reported (listeners must not throw). */
  onListenerError?: (err: unknown) => void;
}

export interface TicketKeyRingStats {
  /** Keys this node created (its first one and its rotations). */
  created: number;
  /** Keys from peers that entered the ring. */
  learned: number;
  /** Keys from peers refused: malformed, too old, from the future, or a name already used. */
  refused: number;
  /** Keys that left the ring (oldest generation at the bound, lost a generation, or too old). */
  dropped: number;
}

/** Key order within one generation: true when `a` wins over `b` (created first, larger node, larger bytes). */
function wins(a: TicketKeyEntry, b: TicketKeyEntry): boolean {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  if (a.node !== b.node) return a.node > b.node;
  return Buffer.compare(a.key, b.key) > 0;
}

function sameName(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length < TICKET_KEY_NAME_BYTES || b.length < TICKET_KEY_NAME_BYTES) return false;
  for (let i = 0; i < TICKET_KEY_NAME_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class TicketKeyRing implements SharedTicketKeys {
  readonly node: string;
  readonly size: number;
  readonly rotateMs: number;
  readonly graceMs: number;
  readonly maxSkewMs: number;
  readonly maxAgeMs: number;
  readonly stats: TicketKeyRingStats = { created: 0, learned: 0, refused: 0, dropped: 0 };
  /** Newest generation first; at most `size`, one per generation. */
  private keys: TicketKeyEntry[] = [];
  private buffers: readonly Buffer[] = [];
  private readonly changeListeners = new Set<() => void>();
  private readonly ownListeners = new Set<() => void>();
  private readonly wheel: TimerWheel;
  private readonly ownsWheel: boolean;
  private readonly clock: () => number;
  private readonly random: (n: number) => Buffer;
  private readonly onListenerError: (err: unknown) => void;
  private readonly task: WheelTask = { run: () => this.check() };
  private running = false;

  constructor(opts: TicketKeyRingOptions) {
    this.node = opts.node;
    this.size = opts.size ?? DEFAULT_RING_SIZE;
    this.rotateMs = opts.rotateMs ?? DEFAULT_ROTATE_MS;
    this.graceMs = opts.graceMs ?? Math.min(30_000, Math.floor(this.rotateMs / 4));
    this.maxSkewMs = opts.maxSkewMs ?? 60_000;
    const bad: string[] = [];
    if (!Number.isInteger(this.size) || this.size < 2 || this.size > MAX_TICKET_KEYS) bad.push(`size must be an integer in 2..${MAX_TICKET_KEYS}`);
    if (!Number.isFinite(this.rotateMs) || this.rotateMs < 10) bad.push('rotateMs must be >= 10');
    if (!(this.graceMs >= 0 && Number.isFinite(this.graceMs))) bad.push('graceMs must be >= 0');
    if (!(this.maxSkewMs >= 0 && Number.isFinite(this.maxSkewMs))) bad.push('maxSkewMs must be >= 0');
    if (this.node.length === 0 || this.node.length > MAX_TICKET_KEY_NODE) bad.push(`node name must have 1..${MAX_TICKET_KEY_NODE} characters`);
    if (bad.length > 0) throw new StickmeshError('SM_TLS_TICKET_KEYS', bad.join('; '));
    this.maxAgeMs = this.size * (this.rotateMs + this.graceMs) + this.maxSkewMs;
    this.wheel = opts.wheel ?? sharedWheel;
    this.ownsWheel = opts.wheel === undefined;
    this.clock = opts.now ?? Date.now;
    this.random = opts.random ?? randomBytes;
    this.onListenerError = opts.onListenerError ?? (() => {});
  }

  current(): Buffer | undefined {
    return this.keys[0]?.key;
  }

  byName(name: Uint8Array): Buffer | undefined {
    for (const k of this.keys) if (sameName(k.key, name)) return k.key;
    return undefined;
  }

  all(): readonly Buffer[] {
    return this.buffers;
  }

  entries(): readonly TicketKeyEntry[] {
    return this.keys;
  }

  onChange(listener: () => void): () => void {
    return this.listen(this.changeListeners, listener);
  }

  onOwnKey(listener: () => void): () => void {
    return this.listen(this.ownListeners, listener);
  }

  private listen(set: Set<() => void>, listener: () => void): () => void {
    if (set.size >= MAX_LISTENERS) throw new StickmeshError('SM_TLS_TICKET_KEYS', `more than ${MAX_LISTENERS} listeners on the ticket key ring`);
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Creates the first key if the ring has none, and schedules rotations. Starts the shared wheel
   * when no wheel was given (its timer does not hold the process); a given wheel is its owner's to
   * run. Idempotent.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.ownsWheel) this.wheel.start();
    this.check();
  }

  /** Stops rotating; the keys stay (a later start() goes on from them). */
  stop(): void {
    this.running = false;
    this.wheel.cancel(this.task);
  }

  /**
   * Creates the next generation's key now (the schedule calls it; also an operator's "rotate now").
   * Returns the new key's entry.
   */
  rotate(): TicketKeyEntry {
    const top = this.keys[0];
    let key = this.random(TICKET_KEY_BYTES);
    for (let i = 0; this.byName(key) && i < 3; i++) key = this.random(TICKET_KEY_BYTES);
    if (key.length !== TICKET_KEY_BYTES || this.byName(key)) throw new StickmeshError('SM_TLS_TICKET_KEYS', 'the key source gave a key of the wrong size or a name already in the ring');
    const e: TicketKeyEntry = { key: Buffer.from(key), gen: top ? top.gen + 1 : 0, createdAt: this.clock(), node: this.node };
    this.stats.created++;
    this.insert(e);
    this.changed(true);
    return e;
  }

  merge(keys: readonly TicketKeyEntry[], _from: string): { installed: number; refused: number } {
    const now = this.clock();
    let refused = 0;
    const incoming: TicketKeyEntry[] = [];
    for (const k of keys) {
      if (!this.acceptable(k, now)) {
        refused++;
        continue;
      }
      const same = this.byName(k.key);
      if (same) {
        // The key itself, resent: nothing to do. Another key under a used name: refused (byName must be unique).
        const mine = this.keys.find((x) => x.key === same)!;
        if (!(Buffer.compare(same, k.key) === 0 && mine.gen === k.gen && mine.createdAt === k.createdAt && mine.node === k.node)) refused++;
        continue;
      }
      if (incoming.some((x) => sameName(x.key, k.key))) {
        refused++;
        continue;
      }
      incoming.push({ key: Buffer.from(k.key), gen: k.gen, createdAt: k.createdAt, node: k.node });
    }
    for (const e of incoming) this.insert(e);
    let installed = 0;
    for (const e of incoming) if (this.keys.includes(e)) installed++;
    this.stats.refused += refused;
    this.stats.learned += installed;
    if (installed > 0) this.changed(false);
    return { installed, refused };
  }

  /** A peer's key is well formed, not too old and not from the future. */
  private acceptable(k: TicketKeyEntry, now: number): boolean {
    return (
      k.key instanceof Uint8Array && k.key.length === TICKET_KEY_BYTES &&
      Number.isSafeInteger(k.gen) && k.gen >= 0 &&
      Number.isSafeInteger(k.createdAt) && k.createdAt >= 0 &&
      k.createdAt <= now + this.maxSkewMs && now - k.createdAt <= this.maxAgeMs &&
      typeof k.node === 'string' && k.node.length > 0 && k.node.length <= MAX_TICKET_KEY_NODE
    );
  }

  /** Puts `e` in its generation's place (if it wins it), then drops generations beyond `size`. */
  private insert(e: TicketKeyEntry): void {
    const ks = this.keys;
    let i = 0;
    while (i < ks.length && ks[i]!.gen > e.gen) i++;
    if (i < ks.length && ks[i]!.gen === e.gen) {
      if (!wins(e, ks[i]!)) return;
      ks[i] = e;
      this.stats.dropped++;
    } else {
      if (i >= this.size) return;
      ks.splice(i, 0, e);
    }
    while (ks.length > this.size) {
      ks.pop();
      this.stats.dropped++;
    }
  }

  private changed(own: boolean): void {
    this.buffers = this.keys.map((k) => k.key);
    if (this.running) this.schedule();
    this.fire(this.changeListeners);
    if (own) this.fire(this.ownListeners);
  }

  private fire(set: Set<() => void>): void {
    for (const l of set) {
      try {
        l();
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  /** When this node should rotate: `rotateMs` after the current key, plus `graceMs` unless it created it. */
  dueAt(): number {
    const top = this.keys[0];
    if (!top) return this.clock();
    return top.createdAt + this.rotateMs + (top.node === this.node ? 0 : this.graceMs);
  }

  /** Drops keys past maxAgeMs; rotates when due; schedules the next check. */
  private check(): void {
    if (!this.running) return;
    const now = this.clock();
    const kept = this.keys.filter((k) => now - k.createdAt <= this.maxAgeMs);
    const aged = kept.length < this.keys.length;
    this.stats.dropped += this.keys.length - kept.length;
    if (aged) this.keys = kept;
    if (this.keys.length === 0 || now >= this.dueAt()) {
      this.rotate();
      return;
    }
    if (aged) this.changed(false);
    else this.schedule();
  }

  private schedule(): void {
    const now = this.clock();
    let at = this.dueAt();
    for (const k of this.keys) at = Math.min(at, k.createdAt + this.maxAgeMs + 1);
    this.wheel.schedule(this.task, Math.max(0, at - now));
  }
}
