/**
 * Keeps a set of servers (the N slots of a `server-template`, or one `server ... resolvers`) in
 * step with DNS: re-resolves every `timeout resolve` on the shared timer wheel (one task per
 * template, never a timer per server), assigns addresses to slots with `assignSlots`, and applies
 * the `hold` rules when the nameservers fail:
 * - after an error of kind K (nx, timeout, refused, other) the last valid answer is kept until
 *   `hold K` has passed since it was received; after that the answer counts as empty;
 * - an address missing from a valid (or expired) answer keeps its slot for `hold obsolete`.
 */
import type { ResolversConfig, TimerWheel, WheelTask } from '@stickmesh/core';
import { assignSlots, type Slot, type SlotTarget } from './slots.js';
import type { DnsAnswer, DnsResolverSection } from './resolver.js';

export interface DiscoveryOptions {
  /** `backend/prefix`, for logs. */
  name: string;
  fqdn: string;
  port: number;
  weight: number;
  resolver: DnsResolverSection;
  wheel: TimerWheel;
  /** Initial slots (from init-addr); their length is the slot count. */
  slots: Slot[];
  /** Called once per answer that changed slots, with the changed indexes. */
  onChange: (changed: number[], slots: readonly Slot[]) => void;
  /** Called when a resolution fails (status and detail), for logs. */
  onError?: (answer: DnsAnswer) => void;
  /**
   * Called, for logs, when a valid answer left records out (`answer.ignored`) and its notes
   * differ from the last ones reported: a bad record that stays in DNS is reported once, not
   * every `timeout resolve`.
   */
  onIgnored?: (answer: DnsAnswer) => void;
  now?: () => number;
}

export class ServerDiscovery implements WheelTask {
  readonly opts: DiscoveryOptions;
  readonly slots: Slot[];
  private readonly hold: ResolversConfig['hold'];
  private lastValid: number;
  private running = false;
  /** Notes of the last answer reported to `onIgnored` ('' when the last valid answer ignored nothing). */
  private lastIgnored = '';
  private stopped = false;
  /** Resolutions completed, for stats and tests. */
  resolutions = 0;
  _gen?: number;
  _due?: number;
  _slot?: number;
  _pos?: number;

  constructor(opts: DiscoveryOptions) {
    this.opts = opts;
    this.slots = opts.slots;
    this.hold = opts.resolver.cfg.hold;
    this.lastValid = (opts.now ?? Date.now)();
  }

  /** Starts resolving now, then every `timeout resolve`. */
  start(): void {
    this.stopped = false;
    this.run();
  }

  stop(): void {
    this.stopped = true;
    this.opts.wheel.cancel(this);
  }

  run(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.resolveOnce().finally(() => {
      this.running = false;
      if (!this.stopped) this.opts.wheel.schedule(this, this.opts.resolver.cfg.timeoutResolve);
    });
  }

  /** One resolution and its effect on the slots; never throws. */
  async resolveOnce(): Promise<void> {
    let answer: DnsAnswer;
    try {
      answer = await this.opts.resolver.resolve(this.opts.fqdn, this.opts.port, this.opts.weight);
    } catch (err) {
      answer = { status: 'other', targets: [], detail: (err as Error).message };
    }
    if (this.stopped) return;
    this.resolutions++;
    this.apply(answer);
  }

  /** Applies one answer (exposed for tests). */
  apply(answer: DnsAnswer): void {
    const now = (this.opts.now ?? Date.now)();
    let targets: SlotTarget[];
    if (answer.status === 'ok') {
      this.lastValid = now;
      targets = answer.targets;
      const notes = answer.ignored ? answer.ignored.notes.join('\n') : '';
      if (notes !== this.lastIgnored) {
        this.lastIgnored = notes;
        if (answer.ignored) this.opts.onIgnored?.(answer);
      }
    } else {
      this.opts.onError?.(answer);
      if (now - this.lastValid < this.hold[answer.status]) return;
      targets = [];
    }
    const changed = assignSlots(this.slots, targets, now, this.hold.obsolete);
    if (changed.length > 0) this.opts.onChange(changed, this.slots);
  }
}
