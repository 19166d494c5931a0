/**
 * `stickmesh start --config FILE [--node NAME]`: runs one node until SIGTERM/SIGINT, which drain
 * in-flight requests (bounded by --drain-timeout) and exit 0.
 */
import os from 'node:os';
import { ConfigError, StickmeshError, formatIssue, loadConfig, unsupportedYet } from '@stickmesh/core';
import { AdminServer, StickmeshProxy, createLogger } from '@stickmesh/proxy';
import { parseOptions } from './args.js';

export const START_HELP = `Usage: stickmesh start --config FILE [--node NAME]

Run a stickmesh node: the proxy listeners of the config, and the admin listener.

Options:
  -c, --config FILE        configuration file (haproxy.cfg syntax, or native YAML/JSON); also -f
  -L, --node NAME          this node's name (its peer name); default: localpeer, STICKMESH_NODE, hostname
      --drain-timeout MS   on SIGTERM, how long in-flight requests may take before being cut (default 10000)
  -h, --help               show this help

Signals: SIGTERM/SIGINT drain and exit 0.
`;

export async function runStart(argv: string[]): Promise<number> {
  const { values, ok } = parseOptions(
    argv,
    {
      config: { type: 'string', short: 'c' },
      file: { type: 'string', short: 'f' },
      node: { type: 'string', short: 'L' },
      'drain-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    START_HELP,
  );
  if (!ok) return 2;
  if (values.help) {
    process.stdout.write(START_HELP);
    return 0;
  }
  const file = (values.config ?? values.file) as string | undefined;
  if (!file) {
    process.stderr.write(`stickmesh start: --config FILE is required\n\n${START_HELP}`);
    return 2;
  }
  const drainTimeout = Number(values['drain-timeout'] ?? 10000);
  let loaded;
  try {
    loaded = loadConfig(file);
    const notYet = unsupportedYet(loaded.config);
    if (notYet.length > 0) throw new ConfigError(notYet);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const i of err.issues) process.stderr.write(`${formatIssue(i)}\n`);
      return 1;
    }
    if (err instanceof StickmeshError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const { config, warnings } = loaded;
  const node = (values.node as string | undefined) ?? config.global.localPeer ?? process.env.STICKMESH_NODE ?? os.hostname();
  const { logger, flush } = createLogger({ level: config.global.logLevel, node });
  for (const w of warnings) logger.warn({ file: w.loc.file, line: w.loc.line, directive: w.directive }, w.message);

  let proxy: StickmeshProxy;
  try {
    proxy = await StickmeshProxy.create(config, { logger });
    await proxy.listen();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    flush();
    return 1;
  }
  let admin: AdminServer | undefined;
  if (config.global.admin.port > 0) {
    admin = new AdminServer({
      host: config.global.admin.host,
      port: config.global.admin.port,
      readiness: () => ({ ready: true, reason: 'serving' }),
    });
    try {
      await admin.listen();
    } catch (err) {
      process.stderr.write(`admin listener ${config.global.admin.host}:${config.global.admin.port}: ${(err as Error).message}\n`);
      proxy.close();
      flush();
      return 1;
    }
  }
  for (const a of proxy.addresses()) logger.info({ frontend: a.frontend, address: `${a.host}:${a.port}` }, 'listening');
  logger.info({ config: file }, 'stickmesh started');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal: sig }, 'draining');
      admin?.close();
      proxy.drain(drainTimeout).then(() => {
        logger.info('stopped');
        flush();
        resolve(0);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
