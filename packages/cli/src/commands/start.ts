/**
 * `stickmesh start --config FILE [--node NAME]`: runs one node until SIGTERM/SIGINT, which drain
 * in-flight requests (bounded by --drain-timeout), snapshot the tables and exit 0. SIGHUP reloads
 * the config file without dropping connections or tables; a bad new config is logged and the
 * running one kept.
 */
import os from 'node:os';
import v8 from 'node:v8';
import { ConfigError, StickmeshError, loadConfig, loadConfigAsync, type ConfigWarning, type LoadedConfig } from '@stickmesh/core';
import type { Logger } from 'pino';
import { createLogger, metrics } from '@stickmesh/proxy';
import { StickmeshNode } from '../node.js';
import { parseCommand } from './args.js';

export const START_HELP = `Usage: stickmesh start --config FILE [--node NAME]

Run a stickmesh node: the proxy listeners of the config, the peers mesh, and the admin listener.

Options:
  -c, --config FILE        configuration file (haproxy.cfg syntax, or native YAML/JSON); also -f
  -L, --node NAME          this node's name (its peer name); default: localpeer, STICKMESH_NODE, hostname
      --drain-timeout MS   on SIGTERM, how long in-flight requests may take before being cut (default 10000)
  -h, --help               show this help

Signals: SIGTERM/SIGINT drain, snapshot tables (with data-dir) and exit 0; SIGHUP reloads the config.
`;

function reportConfigError(err: unknown): boolean {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.lines().join('\n')}\n`);
    return true;
  }
  if (err instanceof StickmeshError) {
    process.stderr.write(`${err.message}\n`);
    return true;
  }
  return false;
}

export async function runStart(argv: string[]): Promise<number> {
  const p = parseCommand(argv, START_HELP, {
    config: { type: 'string', short: 'c' },
    file: { type: 'string', short: 'f' },
    node: { type: 'string', short: 'L' },
    'drain-timeout': { type: 'string' },
  });
  if (p.exit !== undefined) return p.exit;
  const { values } = p;
  const file = (values.config ?? values.file) as string | undefined;
  if (!file) {
    process.stderr.write(`stickmesh start: --config FILE is required\n\n${START_HELP}`);
    return 2;
  }
  const drainRaw = (values['drain-timeout'] as string | undefined) ?? '10000';
  const drainTimeout = Number(drainRaw);
  if (!/^\d{1,9}$/.test(drainRaw.trim())) {
    process.stderr.write(`stickmesh start: --drain-timeout: '${drainRaw.slice(0, 64)}' is not a number of milliseconds (0..999999999)\n`);
    return 2;
  }
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(file);
  } catch (err) {
    if (reportConfigError(err)) return 1;
    throw err;
  }
  const { config, warnings } = loaded;
  const nodeName = (values.node as string | undefined) ?? config.global.localPeer ?? process.env.STICKMESH_NODE ?? os.hostname();
  const { logger, flush, dropped, writeChunk } = createLogger({ level: config.global.logLevel, node: nodeName });
  logWarnings(logger, warnings, loaded.warningCount);

  // A stop signal while starting (listeners may already accept) is kept and honoured as soon as
  // the node is up, with the same drain, instead of killing the process mid-request.
  // The listeners stay registered from here to exit and only what they call changes: removing a
  // signal's last listener closes libuv's signal handle, and a signal caught but not yet
  // dispatched is lost with it. Swapping the early listeners for the running ones that way lost a
  // Ctrl-C that came just as start-up finished (about one demo stop in ten): the node kept running.
  let earlySignal: string | undefined;
  let onStopSignal = (sig: string): void => void (earlySignal ??= sig);
  const onTerm = (): void => onStopSignal('SIGTERM');
  const onInt = (): void => onStopSignal('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  let node: StickmeshNode;
  try {
    node = await StickmeshNode.start(loaded, { node: nodeName, logger, writeLog: writeChunk });
  } catch (err) {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    if (!reportConfigError(err)) process.stderr.write(`${(err as Error).message}\n`);
    await flush();
    return 1;
  }
  for (const a of node.proxy.addresses()) logger.info({ frontend: a.frontend, address: `${a.host}:${a.port}` }, 'listening');
  for (const p of node.peers) logger.info({ address: `${p.address.host}:${p.address.port}` }, 'peers listening');
  if (node.adminAddress) logger.info({ address: `${node.adminAddress.host}:${node.adminAddress.port}` }, 'admin listening');
  logger.info({ config: file, threads: node.threadCount }, 'stickmesh started');
  metrics.gauge(
    'stickmesh_v8_heap_space_bytes',
    "Bytes V8 holds per heap space (new_space: the young generation, 2 MiB unless the node logs every request or NODE_OPTIONS sizes it; see docs/BENCHMARKS.md#memory).",
    ['space'],
    (set) => {
      for (const s of v8.getHeapSpaceStatistics()) set({ space: s.space_name }, s.space_size);
    },
  );
  metrics.gauge('stickmesh_log_dropped_lines', 'Log lines dropped because stdout fell more than 8 MiB behind (or failed), since start (monotonic).', [], (set) => set({}, dropped()));

  return new Promise<number>((resolve) => {
    let stopping = false;
    let reloading = Promise.resolve();
    const stop = (sig: string, orphaned = false) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal: sig }, 'draining');
      // Safety net: if anything (e.g. a broken stdout pipe) keeps the loop alive after the drain,
      // exit anyway once the drain deadline and a grace period have passed.
      setTimeout(() => process.exit(0), drainTimeout + 5000).unref();
      void reloading.then(() =>
        node.stop(drainTimeout).then(() => {
          if (orphaned) {
            // Nobody reads our output any more: a final synchronous log flush could wait forever
            // on the dead pipe, so leave without exit-time flushing (tables are already snapshotted).
            process.kill(process.pid, 'SIGKILL');
            return;
          }
          logger.info('stopped');
          return flush().then(() => {
            // A supervisor's IPC channel (the demo) would keep the process alive until the safety
            // net fires: let go of it, the supervisor sees the exit right away.
            if (process.connected) process.disconnect();
            resolve(0);
          });
        }),
      );
    };
    const reload = () => {
      if (stopping) return;
      reloading = reloading.then(reloadOnce);
    };
    // Exactly one line per reload: 'reloaded' or 'reload failed' (warnings of a new config come
    // before it, at most MAX_REPORTED_ISSUES of them). The failure line is bounded whatever the
    // file holds: the first problems by line, `N more problems`, each cut to MAX_ISSUE_CHARS.
    const reloadOnce = async (): Promise<void> => {
      const t0 = performance.now();
      try {
        const next = await loadConfigAsync(file);
        await node.reload(next);
        logWarnings(logger, next.warnings, next.warningCount);
        logger.info({ config: file, ms: Math.round(performance.now() - t0) }, 'reloaded');
      } catch (err) {
        const issues = (err instanceof ConfigError ? err.lines() : [(err as Error).message]).map(cut);
        const total = err instanceof ConfigError ? err.total : 1;
        logger.error({ config: file, problems: total, issues, ms: Math.round(performance.now() - t0) }, 'reload failed; keeping the running config');
      }
    };
    onStopSignal = stop;
    process.on('SIGHUP', reload);
    // Started by a supervisor over IPC (the demo): its exit, however abrupt, stops this node.
    if (process.channel) process.on('disconnect', () => stop('parent exited', true));
    if (earlySignal) stop(earlySignal);
  });
}

/** Longest problem text a reload-failed log line carries per problem. */
const MAX_ISSUE_CHARS = 1000;

function cut(s: string): string {
  return s.length > MAX_ISSUE_CHARS ? `${s.slice(0, MAX_ISSUE_CHARS)}...` : s;
}

/** One line per kept warning, then one `N more warnings` line when some were left out. */
function logWarnings(logger: Logger, warnings: readonly ConfigWarning[], total: number): void {
  for (const w of warnings) logger.warn({ file: w.loc.file, line: w.loc.line, directive: w.directive }, w.message);
  if (total > warnings.length) logger.warn({ warnings: total }, `${total - warnings.length} more warnings`);
}
