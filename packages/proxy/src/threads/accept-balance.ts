/**
 * Spreading a node's client connections over its data-plane threads (`nbthread`).
 *
 * Every thread accepts on its own duplicates of each listening socket, and the kernel wakes every
 * thread polling it; the first to run takes what is queued. A burst of connections (a load test
 * opening 50 keep-alive connections, clients reconnecting after a failover) then mostly lands on
 * whichever thread was already running: measured on 2 threads, one thread took all 50 in most
 * runs, and the node served with one core. HAProxy moves each accepted connection to the least
 * loaded thread (`tune.listener.multi-queue`); a Node thread cannot pass a socket to another
 * thread, so this does what NGINX's `accept_disabled` does instead: a thread holding clearly more
 * connections than the least loaded one stops accepting (its listeners pause, listen/pause.ts),
 * and the others take the queue.
 *
 * Rule: thread i pauses when `count[i] > min(count of the other threads) + slack` and resumes
 * when `count[i] <= min + slack / 2`, with `slack = max(MIN_SLACK, ceil(total / (8 * threads)))`
 * (an eighth of a thread's fair share, so large counts are not rebalanced one connection at a
 * time). A paused thread hears of no event of its own while the others fill up, so the thread
 * whose count makes a paused thread's resume condition true wakes it (`nudge`, a message through
 * the main thread, at most one per pause: state PAUSED -> NUDGED); and a thread never pauses
 * while every thread below it is paused (it nudges them and keeps accepting), so the node always
 * has a thread accepting and a burst never waits on a timer. A paused thread also re-checks
 * every `CHECK_MS`, a backstop for a nudge lost to a race; a thread that accepts has no timer
 * (its own connections drive its checks), so an idle or balanced node is not woken for this.
 *
 * Measured with the first version, which had only the timer: two threads paused each other in
 * turn during wrk's burst of 200 connections, and p99 latency rose from 18 ms to 270-440 ms.
 *
 * Shared state: three Int32 per thread, made by the main thread (`acceptBalanceBuffer`), read by
 * all: at `3i` thread i's open client connections, at `3i + 1` how many times it paused (the main
 * thread's `/metrics` shows both), at `3i + 2` its state (ACCEPTING, PAUSED, NUDGED). Counts and
 * pauses are written only by their own thread; the state by its own thread, and PAUSED -> NUDGED
 * by the thread that nudges (compare-and-swap, so one nudge per pause).
 */

/** Smallest imbalance (connections) that pauses a thread's accepts. */
export const MIN_SLACK = 2;
/** How often a thread re-checks the others' counts without an event of its own (ms). */
export const CHECK_MS = 50;

/** Int32 slots per thread in the shared buffer: connections, pauses, state. */
const SLOTS = 3;
const ACCEPTING = 0;
const PAUSED = 1;
const NUDGED = 2;

/** The shared counts of a node with `threads` data-plane threads. */
export function acceptBalanceBuffer(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT * Math.max(1, threads));
}

/** Every thread's open client connections and accept pauses, as last written (index 0 = thread 1). */
export function readAcceptBalance(buffer: SharedArrayBuffer): Array<{ connections: number; pauses: number }> {
  const a = new Int32Array(buffer);
  const out: Array<{ connections: number; pauses: number }> = [];
  for (let i = 0; i + SLOTS <= a.length; i += SLOTS) out.push({ connections: Atomics.load(a, i), pauses: Atomics.load(a, i + 1) });
  return out;
}

/** The slack for `total` connections over `threads` threads (see the file comment). */
export function balanceSlack(total: number, threads: number): number {
  return Math.max(MIN_SLACK, Math.ceil(total / (8 * threads)));
}

export class AcceptBalance {
  private readonly shared: Int32Array;
  /** This thread's first slot (3 x its index). */
  private readonly me: number;
  private readonly threads: number;
  private paused = false;
  private started = false;
  /** The re-check while paused (unref'd); none while accepting. */
  private timer: NodeJS.Timeout | undefined;

  /**
   * `index`: this thread's slot (0-based); `apply(true)` pauses every listener of the thread,
   * `apply(false)` resumes them (the caller keeps other pause reasons, e.g. `maxconn`, apart);
   * `nudge(i)` makes thread i call `recheck` soon (a message; see the file comment).
   */
  constructor(
    buffer: SharedArrayBuffer,
    index: number,
    private readonly apply: (pause: boolean) => void,
    private readonly nudge: (thread: number) => void = () => {},
  ) {
    this.shared = new Int32Array(buffer);
    this.threads = Math.floor(this.shared.length / SLOTS);
    if (!(Number.isInteger(index) && index >= 0 && index < this.threads)) throw new RangeError(`thread slot ${index} out of 0..${this.threads - 1}`);
    this.me = index * SLOTS;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Times this thread paused its accepts. */
  get pauses(): number {
    return Atomics.load(this.shared, this.me + 1);
  }

  /** This thread now holds `count` client connections. */
  set(count: number): void {
    Atomics.store(this.shared, this.me, count);
    this.check(count);
  }

  /** Re-checks from the shared counts (a nudge from another thread, the timer). */
  recheck(): void {
    if (this.paused) Atomics.store(this.shared, this.me + 2, PAUSED);
    this.check(Atomics.load(this.shared, this.me));
  }

  /** Lets the thread pause from now on (the listeners exist). */
  start(): void {
    this.started = true;
  }

  /** Resumes accepting for good (a draining thread must not keep a pause). */
  stop(): void {
    this.started = false;
    if (this.paused) this.setPaused(false);
  }

  private readonly onCheckTimer = (): void => {
    this.recheck();
    // A listener a reload opened meanwhile starts accepting; `apply` is idempotent.
    if (this.paused) this.apply(true);
  };

  private setPaused(on: boolean): void {
    this.paused = on;
    Atomics.store(this.shared, this.me + 2, on ? PAUSED : ACCEPTING);
    if (on) {
      Atomics.add(this.shared, this.me + 1, 1);
      this.timer = setInterval(this.onCheckTimer, CHECK_MS);
      this.timer.unref();
    } else if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.apply(on);
  }

  /** Applies the rule of the file comment to `mine` against the others' current counts. */
  private check(mine: number): void {
    const n = this.threads;
    if (n < 2) return;
    const a = this.shared;
    let total = mine;
    for (let i = 0; i < n * SLOTS; i += SLOTS) if (i !== this.me) total += Atomics.load(a, i);
    const slack = balanceSlack(total, n);
    let min = Infinity;
    let belowAccepting = false;
    for (let i = 0; i < n * SLOTS; i += SLOTS) {
      if (i === this.me) continue;
      const c = Atomics.load(a, i);
      if (c < min) min = c;
      const state = Atomics.load(a, i + 2);
      if (state === ACCEPTING) {
        if (c < mine - slack) belowAccepting = true;
        continue;
      }
      // A paused thread that should accept again: wake it, once per pause.
      if (state === PAUSED && c <= this.minBesides(i, mine) + (slack >> 1) && Atomics.compareExchange(a, i + 2, PAUSED, NUDGED) === PAUSED) this.nudge(i / SLOTS);
    }
    if (!this.paused) {
      // Pause only while a thread below us accepts: the node always has a thread accepting.
      if (mine > min + slack && belowAccepting && this.started) this.setPaused(true);
    } else if (mine <= min + (slack >> 1)) {
      this.setPaused(false);
    }
  }

  /** The least count among the threads other than slot `skip`, with this thread at `mine`. */
  private minBesides(skip: number, mine: number): number {
    let min = Infinity;
    for (let i = 0; i < this.threads * SLOTS; i += SLOTS) {
      if (i === skip) continue;
      const c = i === this.me ? mine : Atomics.load(this.shared, i);
      if (c < min) min = c;
    }
    return min;
  }
}
