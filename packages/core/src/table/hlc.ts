/**
 * Hybrid logical clock (Kulkarni et al.): stamps are (wall ms, counter, node). Stamps produced by
 * one clock strictly increase, even if the physical clock steps backwards, and after `observe(v)`
 * every later stamp is greater than `v`, so a write made after learning a remote write wins over it.
 */
import type { Version } from './types.js';

/** Largest counter value; beyond it the wall part is bumped by 1 ms instead. */
export const HLC_MAX_COUNTER = 65535;

export class HybridClock {
  readonly node: string;
  private readonly physical: () => number;
  /** The clock's state: wall at [at], counter at [at + 1]. */
  private readonly cells: Float64Array;
  private readonly at: number;

  /**
   * `cells`/`at`: where the state lives (default: a private pair). A shared stick table passes its
   * header in a SharedArrayBuffer, so every thread's clock object is the same clock; the table
   * then only steps or observes it under its lock, so stamps from any thread strictly increase.
   */
  constructor(node: string, now: () => number = Date.now, cells?: Float64Array, at = 0) {
    this.node = node;
    this.physical = now;
    this.cells = cells ?? new Float64Array(2);
    this.at = cells ? at : 0;
  }

  /** Wall part of the last stamp issued or observed. */
  get wall(): number {
    return this.cells[this.at]!;
  }

  /** Counter part of the last stamp issued or observed. */
  get counter(): number {
    return this.cells[this.at + 1]!;
  }

  private get _wall(): number {
    return this.cells[this.at]!;
  }

  private set _wall(v: number) {
    this.cells[this.at] = v;
  }

  private get _counter(): number {
    return this.cells[this.at + 1]!;
  }

  private set _counter(v: number) {
    this.cells[this.at + 1] = v;
  }

  /** Stamps a local event. */
  tick(): Version {
    this.step();
    return { wall: this._wall, counter: this._counter, node: this.node };
  }

  /**
   * Allocation-free `tick()`: advances the clock; the new stamp is then `wall`/`counter`/`node`.
   * For hot paths that copy the stamp into columns.
   */
  step(): void {
    const pt = Math.floor(this.physical());
    if (pt > this._wall) {
      this._wall = pt;
      this._counter = 0;
    } else {
      this.bumpCounter(this._counter + 1);
    }
  }

  /** Merges a remote stamp: afterwards the clock is >= `v`, so the next `tick()` is > `v`. */
  observe(v: Version): void {
    this.observeRaw(v.wall, v.counter);
  }

  /** `observe` without a Version object. Ignores non-finite input. */
  observeRaw(wall: number, counter: number): void {
    if (!Number.isFinite(wall) || !Number.isFinite(counter)) return;
    const pt = Math.floor(this.physical());
    const l = this._wall;
    const m = Math.max(l, wall, pt);
    if (m === l && m === wall) this.bumpCounter(Math.max(this._counter, counter) + 1);
    else if (m === l) this.bumpCounter(this._counter + 1);
    else if (m === wall) {
      this._wall = m;
      this.bumpCounter(counter + 1);
    } else {
      this._wall = m;
      this._counter = 0;
    }
  }

  /** Sets the counter; past the cap the wall part moves 1 ms forward and the counter restarts. */
  private bumpCounter(c: number): void {
    if (c > HLC_MAX_COUNTER) {
      this._wall += 1;
      this._counter = 0;
    } else {
      this._counter = c;
    }
  }
}
