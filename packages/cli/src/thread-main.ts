/**
 * A data-plane thread of a node (`nbthread N`, N > 1): the worker side of threads.ts.
 *
 * Builds the proxy from the config the main thread loaded (`ThreadInit`, structured-cloned, so
 * every thread runs the same config even if the file changes meanwhile), with no health checks
 * and no discovery of its own (proxy role 'worker'), listens on the descriptors the main thread
 * handed it (this thread owns and closes them), and serves once the main thread says the node
 * is up. Its log lines go to the main thread's writer (log.ts, mode 'post'); a local stick-table
 * write wakes the main thread's peers mesh with one `sm:notify` per event-loop turn, not per write.
 *
 * Test hook: `STICKMESH_THREAD_FAULT=ID:MS` makes thread ID throw an uncaught error MS ms after
 * it starts serving (test/threads.test.ts checks that the node then goes down with one
 * `thread ID died` line). Unset in production; it changes nothing else.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { attachTables, type StickTable, type StickmeshConfig, type TableHandle } from '@stickmesh/core';
import { AcceptGate, KEYS_KIND, MessageThreadPort, StickmeshProxy, ThreadTicketKeys, WorkerThreadView, createLogger, threadShare, type KeysMessage, type ThreadBinds } from '@stickmesh/proxy';
import type { ThreadInit } from './threads.js';

const init = workerData as ThreadInit;
if (!parentPort) throw new Error('thread-main.js runs as a worker thread of stickmesh start');
const port = new MessageThreadPort(parentPort);

const log = createLogger({
  level: init.config.global.logLevel,
  node: init.node,
  thread: init.id,
  post: (buf, len, lines) => port.post({ t: 'sm:log', buf, len, lines }, [buf]),
});
port.on('sm:logged', (m) => log.acked(typeof m.n === 'number' ? m.n : 1));
port.on('sm:logbuf', (m) => {
  if (m.buf instanceof ArrayBuffer) log.recycled(m.buf);
});

let notifyScheduled = false;
function notifyMain(): void {
  notifyScheduled = false;
  port.post({ t: 'sm:notify' });
}
/** A table's `onLocalWrite`: at most one `sm:notify` per event-loop turn, however many writes. */
function onLocalWrite(): void {
  if (notifyScheduled) return;
  notifyScheduled = true;
  setImmediate(notifyMain);
}

/**
 * This thread's views of the stick tables the main thread built in shared memory (core
 * `attachTables`): every thread sees every entry, and a write here enters the table's one
 * update log, which the main thread's mesh sends once `sm:notify` wakes it.
 */
function tablesFor(config: StickmeshConfig, handles: Readonly<Record<string, TableHandle>>): Map<string, StickTable> {
  const tables = attachTables(config, init.node, handles);
  for (const t of tables.values()) {
    t.onLocalWrite = onLocalWrite;
    // The counters are shared too (one CounterTable per table, attached): a write here that makes
    // the shared dirty queue non-empty wakes the main thread, whose mesh drains it and whose wheel
    // sweeps it (only the thread that built a table may drain or sweep it).
    if (t.counters !== undefined) t.counters.onDirty = onLocalWrite;
  }
  return tables;
}

const tables = tablesFor(init.config, init.tables);
// The servers' health, admin state, weights and addresses come from the main thread (sm:view),
// and its /metrics asks this thread for its figures (sm:metrics?).
let proxy: StickmeshProxy | undefined;
const view = new WorkerThreadView(port, init.view, () => proxy?.connectionCount() ?? 0);
// The node's TLS session-ticket keys, mirrored from the main thread's ring (sm:keys).
const ticketKeys = new ThreadTicketKeys(init.keys);
port.on(KEYS_KIND, (m) => ticketKeys.update(m as KeysMessage));
proxy = await StickmeshProxy.create(threadShare(init.config, init.threads), { logger: log.logger, tables, node: init.node, role: 'worker', ticketKeys, acceptBalance: { buffer: init.balance, index: init.id - 1, nudge: (to) => port.post({ t: 'sm:balance', to }) } });
// Another thread's connections made this one's pause obsolete (proxy threads/accept-balance.ts).
port.on('sm:balance', () => proxy?.balance?.recheck());
view.setBackends(proxy.backends);
const running = proxy;
const gate = new AcceptGate();
await running.listenOn(init.binds, gate);

port.on('sm:open', () => {
  gate.open();
  const fault = process.env.STICKMESH_THREAD_FAULT;
  if (fault !== undefined) {
    const [id, ms] = fault.split(':');
    if (Number(id) === init.id) {
      setTimeout(() => {
        throw new Error('fault injected by STICKMESH_THREAD_FAULT');
      }, Number(ms ?? 0));
    }
  }
});

let reloading = Promise.resolve();
port.on('sm:reload', (m) => {
  reloading = reloading.then(async () => {
    try {
      const config = m.config as StickmeshConfig;
      const next = tablesFor(config, m.tables as Record<string, TableHandle>);
      await running.reload(threadShare(config, init.threads), next, m.binds as ThreadBinds);
      view.setBackends(running.backends);
      port.post({ t: 'sm:reloaded', ok: true });
    } catch (err) {
      port.post({ t: 'sm:reloaded', ok: false, error: (err as Error).message });
    }
  });
});

port.on('sm:drain', (m) => {
  gate.close();
  void reloading
    .then(() => running.drain(typeof m.ms === 'number' ? m.ms : 0))
    .then(() => log.flush())
    .then(() => port.post({ t: 'sm:drained' }));
});

port.post({ t: 'sm:ready' });
