/**
 * The data-plane threads of a node (`nbthread N`, N > 1), main thread side.
 *
 * The main thread keeps the peers mesh, the admin listener, health checks, DNS discovery,
 * snapshots and the servers' admin state; it binds every listener and hands each socket out as
 * raw duplicates (proxy `handOut`). Each of the N worker threads (thread-main.ts) builds the data
 * plane from the same config and accepts on its own duplicates.
 *
 * Life of a thread: started with its descriptors (`ThreadInit`) -> `sm:ready` once it listens
 * (its listeners held by its own gate) -> `sm:open` when the whole node is up (all-or-nothing
 * start) -> `sm:reload`/`sm:reloaded` on SIGHUP -> `sm:drain`/`sm:drained` on stop, then
 * terminated. A thread that dies any other way (an uncaught error, an exit, a failed reload)
 * takes the process down: `onDeath` logs `thread N died: ...` and exits, no half-alive node.
 *
 * Logs: a thread's filled log buffers arrive as `sm:log` (transferred) and are written by the
 * main thread's sink (one writer; a connection's lines come from one thread, in order); each is
 * acknowledged with `sm:logged`, so the thread's byte bound counts what is on its way.
 *
 * Bounds: one entry per thread (at most MAX_NBTHREAD); waiters are per thread and per request
 * (start, reload, drain), each settled by the answer, the thread's death or its deadline.
 */
import { Worker } from 'node:worker_threads';
import type { TableHandle, StickmeshConfig, TicketKeys } from '@stickmesh/core';
import { MessageThreadPort, acceptBalanceBuffer, keysMessage, readAcceptBalance, type KeysMessage, type MainThreadView, type RuntimeBackend, type ThreadBinds, type ThreadMessage, type ViewMessage } from '@stickmesh/proxy';

/** What a data-plane thread starts with (its `workerData`). */
export interface ThreadInit {
  /** 1..N, as log lines show it (`thread`). */
  id: number;
  threads: number;
  node: string;
  config: StickmeshConfig;
  binds: ThreadBinds;
  /** The shared stick tables to attach (core `tableHandles`). */
  tables: Record<string, TableHandle>;
  /** The node's TLS session-ticket keys at start (then `sm:keys` on each change). */
  keys?: KeysMessage;
  /** The servers' view the thread starts from (proxy threads/view-node.ts `MainThreadView.initial`). */
  view?: ViewMessage;
  /** Every thread's open client connections and accept pauses (proxy threads/accept-balance.ts); slot `id - 1` is this thread's. */
  balance: SharedArrayBuffer;
}

/** Longest a thread may take to start (load modules, build the data plane, listen). */
export const THREAD_START_MS = 30_000;
/** Longest a thread may take to apply a reload. */
export const THREAD_RELOAD_MS = 60_000;

export interface ThreadPoolOptions {
  count: number;
  node: string;
  config: StickmeshConfig;
  /** Per thread (index 0 = thread 1): its descriptors. */
  binds: ThreadBinds[];
  /** The shared stick tables (core `tableHandles`). */
  tables: Record<string, TableHandle>;
  /** Writes a thread's log buffer through the main thread's sink. */
  writeLog: (buf: Buffer, len: number, lines: number, recycle?: (buf: Buffer) => void) => void;
  /** A table got local writes in a thread: wake the peers mesh. */
  onNotify: () => void;
  /** A thread died outside a stop: the process must go down (see the file comment). */
  onDeath: (id: number, why: string) => void;
  /** Entry script (tests); default: thread-main.js beside this file. */
  entry?: URL;
  /** The servers' view and whole-node metrics (proxy threads/view-node.ts); optional for tests. */
  view?: MainThreadView;
  /** The node's TLS session-ticket keys, mirrored in every thread (proxy threads/keys.ts). */
  ticketKeys?: TicketKeys;
}

interface Thread {
  id: number;
  worker: Worker;
  port: MessageThreadPort;
  /** Set once a stop or a start failure ends it on purpose: its exit is then no death. */
  ending: boolean;
  exited: Promise<void>;
}

export class ThreadPool {
  private readonly threads: Thread[] = [];
  private dead = false;
  private stopKeys: (() => void) | undefined;
  /** The threads' open client connections, accept pauses and accept states, three Int32 each (proxy threads/accept-balance.ts `acceptBalanceBuffer`). */
  readonly balance: SharedArrayBuffer;

  private constructor(private readonly opts: ThreadPoolOptions) {
    this.balance = acceptBalanceBuffer(opts.count);
  }

  /** Open client connections and accept pauses per thread (index 0 = thread 1), as the threads last wrote them. */
  connectionsPerThread(): Array<{ connections: number; pauses: number }> {
    return readAcceptBalance(this.balance);
  }

  /** Starts every thread and resolves once each listens; rejects (every thread ended) when one fails. */
  static async start(opts: ThreadPoolOptions): Promise<ThreadPool> {
    const pool = new ThreadPool(opts);
    const keys = opts.ticketKeys;
    if (keys) pool.stopKeys = keys.onChange(() => pool.broadcast(keysMessage(keys)));
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < opts.count; i++) ready.push(pool.spawn(i + 1));
    try {
      await Promise.all(ready);
    } catch (err) {
      await pool.terminate();
      throw err;
    }
    return pool;
  }

  get size(): number {
    return this.threads.length;
  }

  /** The threads' ports (for modules that talk to every thread: the server view, metrics). */
  ports(): MessageThreadPort[] {
    return this.threads.map((t) => t.port);
  }

  private spawn(id: number): Promise<void> {
    const view = this.opts.view;
    const init: ThreadInit = { id, threads: this.opts.count, node: this.opts.node, config: this.opts.config, binds: this.opts.binds[id - 1] ?? {}, tables: this.opts.tables, balance: this.balance, ...(this.opts.ticketKeys ? { keys: keysMessage(this.opts.ticketKeys) } : {}), ...(view ? { view: view.initial() } : {}) };
    const worker = new Worker(this.opts.entry ?? new URL('./thread-main.js', import.meta.url), { workerData: init, stdout: false, stderr: false });
    const port = new MessageThreadPort(worker);
    let started = false;
    const t: Thread = { id, worker, port, ending: false, exited: new Promise((r) => worker.once('exit', () => r())) };
    this.threads.push(t);
    port.on('sm:log', (m) => {
      const buf = m.buf as ArrayBuffer;
      this.opts.writeLog(Buffer.from(buf, 0, m.len as number), m.len as number, m.lines as number, (b) => {
        // Back to its thread for reuse once written or dropped (a thread that ended meanwhile has no use for it).
        if (!t.ending && !this.dead) port.post({ t: 'sm:logbuf', buf: b.buffer }, [b.buffer as ArrayBuffer]);
      });
      port.post({ t: 'sm:logged', n: 1 });
    });
    port.on('sm:notify', () => this.opts.onNotify());
    // A thread's accept balance wakes a paused thread (index `to`) through here.
    port.on('sm:balance', (m) => {
      if (typeof m.to === 'number') this.threads.find((x) => x.id === (m.to as number) + 1)?.port.post({ t: 'sm:balance' });
    });
    view?.join(port);
    worker.once('exit', () => view?.leave(port));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`thread ${id} did not start within ${THREAD_START_MS} ms`)), THREAD_START_MS);
      timer.unref();
      port.on('sm:ready', () => {
        started = true;
        clearTimeout(timer);
        resolve();
      });
      const died = (why: string): void => {
        if (!started) {
          clearTimeout(timer);
          reject(new Error(`thread ${id}: ${why}`));
          return;
        }
        if (t.ending || this.dead) return;
        this.dead = true;
        this.opts.onDeath(id, why);
      };
      worker.on('error', (err) => died((err as Error).stack?.split('\n').slice(0, 2).join(' ') ?? String(err)));
      worker.on('exit', (code) => died(`exited with code ${code}`));
    });
  }

  private broadcast(msg: ThreadMessage): void {
    for (const t of this.threads) if (!t.ending) t.port.post(msg);
  }

  /** Lets every thread serve (their start-up gates open). */
  open(): void {
    for (const t of this.threads) t.port.post({ t: 'sm:open' });
  }

  /**
   * Has every thread apply `config`, listening on `binds` for the binds the main thread opened.
   * A thread that fails it is a thread that died (the main thread already runs the new config).
   */
  async reload(config: StickmeshConfig, binds: ThreadBinds[], backends: ReadonlyMap<string, RuntimeBackend>, tables: Record<string, TableHandle>): Promise<void> {
    // Main's new backends first: their view reaches each thread, which applies it by server name
    // until its own reload, then gets the full view again.
    this.opts.view?.reloaded(backends);
    await Promise.all(
      this.threads.map(
        (t) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => fail(`reload not applied within ${THREAD_RELOAD_MS} ms`), THREAD_RELOAD_MS);
            timer.unref();
            const fail = (why: string): void => {
              clearTimeout(timer);
              resolve();
              if (!this.dead && !t.ending) {
                this.dead = true;
                this.opts.onDeath(t.id, why);
              }
            };
            t.port.on('sm:reloaded', (m) => {
              if (m.ok === true) {
                clearTimeout(timer);
                this.opts.view?.resend(t.port);
                resolve();
              } else fail(`reload failed: ${String(m.error)}`);
            });
            t.port.post({ t: 'sm:reload', config, binds: binds[t.id - 1] ?? {}, tables });
          }),
      ),
    );
  }

  /**
   * Stop: every thread stops accepting, lets its exchanges finish (at most `ms`), hands over its
   * last log lines and ends. Resolves once every thread is gone.
   */
  async drain(ms: number): Promise<void> {
    await Promise.all(
      this.threads.map(async (t) => {
        t.ending = true;
        const drained = new Promise<void>((resolve) => t.port.on('sm:drained', () => resolve()));
        t.port.post({ t: 'sm:drain', ms });
        // A thread that exits without answering has nothing left to hand over either.
        await Promise.race([drained, t.exited]);
        await t.worker.terminate();
      }),
    );
    this.opts.view?.stop();
    this.stopKeys?.();
  }

  /** Ends every thread at once (a start that failed: they never served). */
  async terminate(): Promise<void> {
    await Promise.all(
      this.threads.map(async (t) => {
        t.ending = true;
        await t.worker.terminate();
      }),
    );
    this.opts.view?.stop();
    this.stopKeys?.();
  }
}
