/**
 * `stickmesh check --config FILE`: like `haproxy -c -f FILE`. Prints nothing and exits 0 for a
 * valid config without warnings; prints `file:line: message` lines and exits 1 when invalid.
 * Warnings are printed with a `[WARNING]` prefix and do not change the exit code.
 * `--against OLD` adds persistence warnings for the change OLD -> FILE, with the number of stick
 * entries affected when `--admin URL` points at a running node.
 */
import { ConfigError, MAX_REPORTED_ISSUES, StickmeshError, loadConfig, formatIssues, type StickmeshConfig } from '@stickmesh/core';
import { ADMIN_OPTIONS, parseCommand, str, type OptionValues } from './args.js';
import { AdminClient, AdminCallError } from '../admin/client.js';
import { countAffected, persistenceDiff, type TableCounts } from '../persistence-diff.js';

export const CHECK_HELP = `Usage: stickmesh check --config FILE [--against OLD_FILE [--admin URL]]

Validate a configuration file (haproxy.cfg syntax, or native YAML/JSON) and exit.
Exit 0 when valid, 1 with one 'file:line: message' line per problem otherwise (the first 100
by line, then 'N more problems').

Options:
  -c, --config FILE   configuration file to check (also -f FILE, as with haproxy)
  -q, --quiet         do not print warnings
      --against OLD   also warn where changing from OLD to FILE breaks persistence (renamed or
                      removed servers, cookie name/value/key, signing keys, hash type)
      --admin URL     with --against: count the stick entries affected on this running node
      --token TOKEN   bearer token for --admin (default $STICKMESH_ADMIN_TOKEN)
      --json          with --against: print the persistence warnings as JSON on stdout
  -h, --help          show this help
`;

export async function runCheck(argv: string[]): Promise<number> {
  const p = parseCommand(argv, CHECK_HELP, {
    config: { type: 'string', short: 'c' },
    file: { type: 'string', short: 'f' },
    quiet: { type: 'boolean', short: 'q' },
    against: { type: 'string' },
    ...ADMIN_OPTIONS,
    json: { type: 'boolean' },
  });
  if (p.exit !== undefined) return p.exit;
  const { values } = p;
  const file = (values.config ?? values.file) as string | undefined;
  if (!file) {
    process.stderr.write(`stickmesh check: --config FILE is required\n\n${CHECK_HELP}`);
    return 2;
  }
  try {
    const { warnings, warningCount, config } = loadConfig(file);
    if (!values.quiet) for (const line of formatIssues(warnings, warningCount, 'warning')) process.stderr.write(`[WARNING] ${line}\n`);
    if (typeof values.against === 'string') return await against(config, values.against, values);
    if (values.admin !== undefined) {
      process.stderr.write(`stickmesh check: --admin needs --against\n`);
      return 2;
    }
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.lines().join('\n')}\n`);
      return 1;
    }
    if (err instanceof StickmeshError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** Prints the persistence warnings of OLD -> config; exit 0 (they are warnings), 1 if OLD is invalid or the node unreachable. */
async function against(config: StickmeshConfig, oldFile: string, values: OptionValues): Promise<number> {
  let oldCfg: StickmeshConfig;
  try {
    oldCfg = loadConfig(oldFile).config;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`--against ${oldFile} is not a valid config:\n${err.lines().join('\n')}\n`);
      return 1;
    }
    throw err;
  }
  const ws = persistenceDiff(oldCfg, config);
  if (typeof values.admin === 'string') {
    const c = new AdminClient({ admin: values.admin, token: str(values, 'token') });
    try {
      const tables = (await c.call('GET', '/api/tables')) as Array<{ id: string; servers: Record<string, number> }>;
      const counts: TableCounts = new Map(tables.map((t) => [t.id, new Map(Object.entries(t.servers))]));
      countAffected(ws, counts);
    } catch (err) {
      if (!(err instanceof AdminCallError)) throw err;
      process.stderr.write(`stickmesh check: cannot count affected entries: ${err.message}\n`);
      return 1;
    }
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(ws.map(({ entries: _e, ...w }) => w), null, 2) + '\n');
    return 0;
  }
  // As for problems: the first 100, then how many more (`--json` lists them all).
  for (const w of ws.slice(0, MAX_REPORTED_ISSUES)) {
    const n = w.affected !== undefined ? ` [${w.affected} stick entr${w.affected === 1 ? 'y' : 'ies'} affected on the running node]` : '';
    process.stderr.write(`[WARNING] ${w.loc.file}:${w.loc.line}: persistence: ${w.backend ? `backend '${w.backend}': ` : ''}${w.message}${n}\n`);
  }
  if (ws.length > MAX_REPORTED_ISSUES) process.stderr.write(`[WARNING] ${ws.length - MAX_REPORTED_ISSUES} more persistence warnings\n`);
  if (ws.length === 0 && !values.quiet) process.stderr.write(`no persistence-breaking change against ${oldFile}\n`);
  return 0;
}
