/**
 * One shared coarse timer for everything that needs a deadline (health checks, idle timeouts,
 * expiry sweeps) instead of a `setTimeout` per object. Resolution is `tickMs`; a task fires
 * between its due time and one tick later.
 *
 * A task has at most one entry: `schedule` replaces the task's earlier entry and `cancel` removes
 * it, both in O(1) by overwriting the entry with a shared placeholder (the task records where its
 * entry is). So the wheel never keeps a cancelled task reachable: a closed connection is
 * garbage as soon as its owner drops it, not when its last deadline would have passed.
 *
 * Bound: live entries = tasks currently scheduled; a slot also keeps one placeholder per entry
 * replaced since it last fired (two array cells each, no task). `schedule` never allocates when
 * given an existing task beyond those cells.
 */

export interface WheelTask {
  /** Called when due. May call `wheel.schedule(this, ...)` again. */
  run(now: number): void;
  /** @internal generation stamp; a task whose stamp changed since insertion is skipped. */
  _gen?: number;
  /** @internal absolute due time in ms. */
  _due?: number;
  /** @internal slot index and position of the task's entry, -1 or undefined when it has none. */
  _slot?: number;
  _pos?: number;
}

/** Takes the place of a replaced or cancelled entry; its generation never matches one. */
const VACANT: WheelTask = { run() {}, _gen: -2 };

export class TimerWheel {
  readonly tickMs: number;
  private readonly slots: WheelTask[][];
  private readonly gens: number[][];
  private cursor = 0;
  private lastTick: number;
  private timer: NodeJS.Timeout | undefined;
  private gen = 0;
  /** Coarse wall clock in ms, updated every tick; cheap to read on hot paths. */
  now: number;

  constructor(tickMs = 100, slotCount = 512) {
    this.tickMs = tickMs;
    this.slots = Array.from({ length: slotCount }, () => []);
    this.gens = Array.from({ length: slotCount }, () => []);
    this.now = Date.now();
    this.lastTick = this.now;
  }

  start(): void {
    if (this.timer) return;
    this.now = Date.now();
    this.lastTick = this.now;
    this.timer = setInterval(() => this.advance(Date.now()), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Run `task` after `delayMs` (rounded up to the tick). Replaces any earlier schedule of the same task. */
  schedule(task: WheelTask, delayMs: number): void {
    const due = this.now + Math.max(0, delayMs);
    const ticks = Math.max(1, Math.ceil(delayMs / this.tickMs));
    // Tasks further than one revolution away are parked in the last reachable slot and re-parked on firing.
    const span = Math.min(ticks, this.slots.length - 1);
    const idx = (this.cursor + span) % this.slots.length;
    const gen = ++this.gen;
    this.unlink(task);
    task._gen = gen;
    task._due = due;
    const slot = this.slots[idx]!;
    task._slot = idx;
    task._pos = slot.length;
    slot.push(task);
    this.gens[idx]!.push(gen);
  }

  cancel(task: WheelTask): void {
    this.unlink(task);
    task._gen = -1;
  }

  /** Removes the task's entry, if it still sits where the task says (slots are replaced on firing). */
  private unlink(task: WheelTask): void {
    const idx = task._slot;
    if (idx === undefined || idx < 0) return;
    const slot = this.slots[idx]!;
    const pos = task._pos!;
    if (slot[pos] === task) slot[pos] = VACANT;
    task._slot = -1;
  }

  /** Number of entries that will run (test and metrics aid; O(slots + entries)). */
  pending(): number {
    let n = 0;
    for (let i = 0; i < this.slots.length; i++) {
      const tasks = this.slots[i]!;
      const gens = this.gens[i]!;
      for (let k = 0; k < tasks.length; k++) if (tasks[k]!._gen === gens[k]) n++;
    }
    return n;
  }

  /** Number of entries that still reference a task, live or replaced (test aid; O(entries)). */
  retained(): number {
    let n = 0;
    for (const s of this.slots) for (const t of s) if (t !== VACANT) n++;
    return n;
  }

  /** Whether any slot still references `task` (test aid). */
  holds(task: WheelTask): boolean {
    return this.slots.some((s) => s.includes(task));
  }

  /** Advance the wheel to `now`, running every due task. Exposed for deterministic tests. */
  advance(now: number): void {
    this.now = now;
    let steps = Math.floor((now - this.lastTick) / this.tickMs);
    if (steps <= 0) return;
    if (steps > this.slots.length) steps = this.slots.length;
    this.lastTick += steps * this.tickMs;
    if (now - this.lastTick > this.tickMs * this.slots.length) this.lastTick = now;
    for (let s = 0; s < steps; s++) {
      this.cursor = (this.cursor + 1) % this.slots.length;
      const tasks = this.slots[this.cursor]!;
      const gens = this.gens[this.cursor]!;
      if (tasks.length === 0) continue;
      this.slots[this.cursor] = [];
      this.gens[this.cursor] = [];
      for (let i = 0; i < tasks.length; i++) {
        const t = tasks[i]!;
        if (t._gen !== gens[i]) continue;
        t._slot = -1;
        if ((t._due ?? 0) > now) {
          this.schedule(t, (t._due ?? now) - now);
          continue;
        }
        t._gen = 0;
        try {
          t.run(now);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    }
  }
}

/** The process-wide wheel. Tests may create their own. */
export const sharedWheel = new TimerWheel(100, 1024);
