/**
 * `stickmesh` command dispatcher. Every command answers `--help`; unknown commands and options
 * exit 2 with the usage text on stderr.
 */
import { runCheck, CHECK_HELP } from './commands/check.js';
import { runStart, START_HELP } from './commands/start.js';
import { runDemo, DEMO_HELP } from './commands/demo.js';
import { runTable, runServer, runPeers, runExplain, TABLE_HELP, SERVER_HELP, PEERS_HELP, EXPLAIN_HELP } from './commands/ops.js';

export const MAIN_HELP = `Usage: stickmesh <command> [options]

Commands:
  start    run a node (proxy, peers, admin API) from a config file
  check    validate a config file, like 'haproxy -c -f FILE'
  demo     run a local demo: a node in front of two built-in demo backends

Operating a running node (over its admin API, --admin URL):
  table    show or clear stick-table entries (clears replicate to peers)
  server   show servers, set one ready|drain|maint (session-aware drain)
  peers    show peers: state, lag, pending updates, refusals
  explain  explain how a key (client address, cookie value) is routed

Run 'stickmesh <command> --help' for the options of a command.
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(MAIN_HELP);
      return cmd === undefined ? 2 : 0;
    case 'start':
      return runStart(rest);
    case 'check':
      return runCheck(rest);
    case 'demo':
      return runDemo(rest);
    case 'table':
      return runTable(rest);
    case 'server':
      return runServer(rest);
    case 'peers':
      return runPeers(rest);
    case 'explain':
      return runExplain(rest);
    default:
      process.stderr.write(`stickmesh: unknown command '${cmd}'\n\n${MAIN_HELP}`);
      return 2;
  }
}

export { CHECK_HELP, START_HELP, DEMO_HELP, TABLE_HELP, SERVER_HELP, PEERS_HELP, EXPLAIN_HELP };
