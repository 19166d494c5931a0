/**
 * `stickmesh` command dispatcher. Every command answers `--help`; unknown commands and options
 * exit 2 with the usage text on stderr.
 */
import { runCheck, CHECK_HELP } from './commands/check.js';
import { runStart, START_HELP } from './commands/start.js';
import { readFileSync } from 'node:fs';
import { didYouMean } from '@stickmesh/core';
import { runDemo, runDemoBackends, DEMO_HELP, DEMO_BACKENDS_HELP } from './commands/demo.js';
import { runTable, runServer, runPeers, runExplain, TABLE_HELP, SERVER_HELP, PEERS_HELP, EXPLAIN_HELP } from './commands/ops.js';

export const MAIN_HELP = `Usage: stickmesh <command> [options]

Commands:
  start          run a node (proxy, peers, admin API) from a config file
  check          validate a config file, like 'haproxy -c -f FILE'
  demo           run a local demo cluster: three nodes in front of three demo backends (npm start)
  demo-backends  run the demo backends alone (web1-web3 on 127.0.0.1:9001-9003), e.g. for
                 'stickmesh start -c examples/demo.cfg'

Operating a running cluster, over the nodes' admin API:
  table    show or clear stick-table entries (clears replicate to peers)
  server   show servers, set one ready|drain|maint (session-aware drain)
  peers    show peers: state, lag, pending updates, refusals
  explain  explain how a key (client address, cookie value) is routed
They ask the nodes of --config FILE (or $STICKMESH_CONFIG) in turn until one answers, or the one
node of --admin URL (or $STICKMESH_ADMIN); without either, a running demo's nodes, else
http://127.0.0.1:9100.

Options:
  -V, --version  print the version
  -h, --help     show this help

Run 'stickmesh <command> --help' for the options of a command.
`;

const COMMANDS = ['start', 'check', 'demo', 'demo-backends', 'table', 'server', 'peers', 'explain', 'help'];

/** The version of the stickmesh package (packages/cli/package.json). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(MAIN_HELP);
      return cmd === undefined ? 2 : 0;
    case '-V':
    case '--version':
    case 'version':
      process.stdout.write(`stickmesh ${version()}\n`);
      return 0;
    case 'start':
      return runStart(rest);
    case 'check':
      return runCheck(rest);
    case 'demo':
      return runDemo(rest);
    case 'demo-backends':
      return runDemoBackends(rest);
    case 'table':
      return runTable(rest);
    case 'server':
      return runServer(rest);
    case 'peers':
      return runPeers(rest);
    case 'explain':
      return runExplain(rest);
    default: {
      const near = cmd.startsWith('-') ? didYouMean(cmd, ['--help', '--version']) : didYouMean(cmd, COMMANDS);
      const what = cmd.startsWith('-') ? 'option' : 'command';
      process.stderr.write(`stickmesh: unknown ${what} '${cmd}'${near ? `; did you mean '${near}'?` : ''}\n\n${MAIN_HELP}`);
      return 2;
    }
  }
}

export { CHECK_HELP, START_HELP, DEMO_HELP, DEMO_BACKENDS_HELP, TABLE_HELP, SERVER_HELP, PEERS_HELP, EXPLAIN_HELP };
