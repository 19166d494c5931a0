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
 * time). The least loaded thread never pauses, so some thread always accepts; reads of the other
 * threads' counts may be a moment stale, so each thread also re-checks every `CHECK_MS` (a
 * pause that a stale read caused lasts at most that long, its connections wait in the backlog).
 *
 * Shared state: two Int32 per thread, made by the main thread (`acceptBalanceBuffer`), written
 * only by their own thread with Atomics and read by all: at `2i` thread i's open client
 * connections, at `2i + 1` how many times it paused (the main thread's `/metrics` shows both).
 */

/** Smallest imbalance (connections) that pauses a thread's accepts. */
export const MIN_SLACK = 2;
/** How often a thread re-checks the others' counts without an event of its own (ms). */
export const CHECK_MS = 50;

/** The shared counts of a node with `threads` data-plane threads. */
export function acceptBalanceBuffer(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT * Math.max(1, threads));
}

/** Every thread's open client connections and accept pauses, as last written (index 0 = thread 1). */
export function readAcceptBalance(buffer: SharedArrayBuffer): Array<{ connections: number; pauses: number }> {
  const a = new Int32Array(buffer);
  const out: Array<{ connections: number; pauses: number }> = [];
  for (let i = 0; i + 1 < a.length; i += 2) out.push({ connections: Atomics.load(a, i), pauses: Atomics.load(a, i + 1) });
  return out;
}

/** The slack for `total` connections over `threads` threads (see the file comment). */
export function balanceSlack(total: number, threads: number): number {
  return Math.max(MIN_SLACK, Math.ceil(total / (8 * threads)));
}

export class AcceptBalance {
  private readonly counts: Int32Array;
  private readonly me: number;
  private readonly threads: number;
  private paused = false;
  private timer: NodeJS.Timeout | undefined;

  /**
   * `index`: this thread's slot (0-based); `apply(true)` pauses every listener of the thread,
   * `apply(false)` resumes them (the caller keeps other pause reasons, e.g. `maxconn`, apart).
   */
  constructor(
    buffer: SharedArrayBuffer,
    index: number,
    private readonly apply: (pause: boolean) => void,
  ) {
    this.counts = new Int32Array(buffer);
    this.threads = this.counts.length >> 1;
    if (!(Number.isInteger(index) && index >= 0 && index < this.threads)) throw new RangeError(`thread slot ${index} out of 0..${this.threads - 1}`);
    this.me = index << 1;
  }

  /** Times this thread paused its accepts. */
  get pauses(): number {
    return Atomics.load(this.counts, this.me + 1);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** This thread now holds `count` client connections. */
  set(count: number): void {
    Atomics.store(this.counts, this.me, count);
    this.check(count);
  }

  /** Re-checks from the shared counts; starts the periodic re-check (unref'd) on first use. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(this.onCheckTimer, CHECK_MS);
    this.timer.unref();
  }

  /** Stops the re-check and resumes accepting (a draining thread must not keep a pause). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.paused) {
      this.paused = false;
      this.apply(false);
    }
  }

  private readonly onCheckTimer = (): void => {
    this.check(Atomics.load(this.counts, this.me));
    // A listener a reload opened meanwhile starts accepting; `apply` is idempotent.
    if (this.paused) this.apply(true);
  };

  /** Applies the rule of the file comment to `mine` against the others' current counts. */
  private check(mine: number): void {
    const n = this.threads;
    if (n < 2) return;
    let min = Infinity;
    let total = mine;
    for (let i = 0; i < 2 * n; i += 2) {
      if (i === this.me) continue;
      const c = Atomics.load(this.counts, i);
      total += c;
      if (c < min) min = c;
    }
    const slack = balanceSlack(total, n);
    if (!this.paused) {
      if (mine > min + slack) {
        this.paused = true;
        Atomics.add(this.counts, this.me + 1, 1);
        this.apply(true);
      }
    } else if (mine <= min + (slack >> 1)) {
      this.paused = false;
      this.apply(false);
    }
  }
}
