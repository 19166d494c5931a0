/**
 * `stickmesh check --config FILE`: like `haproxy -c -f FILE`. Prints nothing and exits 0 for a
 * valid config without warnings; prints `file:line: message` lines and exits 1 when invalid.
 * Warnings are printed with a `[WARNING]` prefix and do not change the exit code.
 * `--against OLD` also reports what the change OLD -> FILE breaks in persistence, with the live
 * stick entries affected on the running node, and exits 1 when anything breaks.
 */
import { ConfigError, MAX_REPORTED_ISSUES, StickmeshError, loadConfig, formatIssue, formatIssues, type ConfigIssue, type StickmeshConfig } from '@stickmesh/core';
import { ADMIN_OPTIONS, parseCommand, str, type OptionValues } from './args.js';
import { AdminClient, AdminCallError, type AdminNode } from '../admin/client.js';
import { AdminConfigError, adminNodesOf } from '../admin/targets.js';
import { countAffected, countText, persistenceDiff, type TableCounts } from '../persistence-diff.js';

export const CHECK_HELP = `Usage: stickmesh check --config FILE [--against OLD_FILE [--admin URL]]

Validate a configuration file (haproxy.cfg syntax, or native YAML/JSON) and exit.
Exit 0 when valid, 1 with one 'file:line: message' line per problem otherwise (the first 100
by line, then 'N more problems'). Warnings are printed too, also beside errors.

Options:
  -c, --config FILE   configuration file to check (also -f FILE, as with haproxy)
  -q, --quiet         do not print warnings
      --against OLD   also report what changing from OLD to FILE breaks in persistence: stick
                      tables renamed, removed, retyped or shrunk below their live entries; stick
                      rules removed or changed; servers renamed or removed; cookie name, mode,
                      server values, dynamic-cookie-key or signing keys; servers or hash-type
                      of a 'balance source' backend. Exit 1 when anything breaks
      --admin URL     with --against: count the live entries affected on this running node
                      (default $STICKMESH_ADMIN, else the admin listener of each node of OLD's
                      peers sections in turn, the first that answers; when none answers, each
                      finding says "live count unknown")
      --token TOKEN   bearer token for --admin (default $STICKMESH_ADMIN_TOKEN, else OLD's admin-token)
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
      // Like haproxy -c: the warnings too, not only the errors, in the order of the file.
      process.stderr.write(`${(values.quiet ? err.lines() : interleaved(err)).join('\n')}\n`);
      return 1;
    }
    if (err instanceof StickmeshError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/**
 * The errors and warnings of a failed load as one report in file order (by file as first met,
 * then line; an error before a warning of the same line), warnings tagged `[WARNING]` as in a
 * clean check; the `N more` tails last.
 */
export function interleaved(err: ConfigError): string[] {
  const files = new Map<string, number>();
  const rank = (i: ConfigIssue) => {
    if (!files.has(i.loc.file)) files.set(i.loc.file, files.size);
    return files.get(i.loc.file)!;
  };
  const all = [...err.issues.map((i) => ({ i, warn: false })), ...err.warnings.map((i) => ({ i, warn: true }))];
  for (const x of all) rank(x.i);
  all.sort((a, b) => rank(a.i) - rank(b.i) || a.i.loc.line - b.i.loc.line || Number(a.warn) - Number(b.warn));
  const out = all.map((x) => (x.warn ? `[WARNING] ${formatIssue(x.i)}` : formatIssue(x.i)));
  // formatIssues of no issue is just its `N more` tail.
  out.push(...formatIssues([], err.total - err.issues.length));
  for (const line of formatIssues([], err.warningCount - err.warnings.length, 'warning')) out.push(`[WARNING] ${line}`);
  return out;
}

/**
 * Prints what breaks persistence going from OLD to `config`, each finding with its live count from
 * the running node (`--admin URL`, else $STICKMESH_ADMIN, else every node of OLD's peers sections
 * in turn as admin/targets.ts derives their admin addresses; "live count unknown" when none answers). Exit 1 when anything breaks persistence (or OLD is
 * invalid), 0 otherwise.
 */
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
  let ws = persistenceDiff(oldCfg, config);
  if (ws.some((w) => w.entries)) {
    const explicit = str(values, 'admin');
    const admin = explicit ?? process.env.STICKMESH_ADMIN;
    // The nodes running OLD hold the live entries: any of them answers for the cluster's tables.
    let nodes: AdminNode[] = [];
    try {
      nodes = admin !== undefined ? [{ url: admin }] : adminNodesOf(oldCfg);
    } catch (err) {
      if (!(err instanceof AdminConfigError)) throw err;
      if (!values.quiet) process.stderr.write(`stickmesh check: live counts unavailable: ${oldFile}: ${err.message}\n`);
    }
    if (nodes.length > 0) {
      const token = str(values, 'token') ?? process.env.STICKMESH_ADMIN_TOKEN ?? oldCfg.global.admin.token;
      const onFailover = (line: string): void => void process.stderr.write(`stickmesh check: ${line}\n`);
      const c = new AdminClient({ nodes, token, onFailover, ...(admin === undefined ? { configFile: oldFile } : {}) });
      try {
        const tables = (await c.call('GET', '/api/tables')) as Array<{ id: string; live: number; servers: Record<string, number> }>;
        const counts: TableCounts = new Map(tables.map((t) => [t.id, { live: t.live, servers: new Map(Object.entries(t.servers)) }]));
        ws = countAffected(ws, counts);
      } catch (err) {
        if (!(err instanceof AdminCallError)) throw err;
        // Counting is best effort: the findings stand without it, marked "live count unknown".
        if (explicit !== undefined || !values.quiet) process.stderr.write(`stickmesh check: live counts unavailable: ${err.message}\n`);
      }
    }
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(ws.map(({ entries: _e, newSize: _n, ...w }) => w), null, 2) + '\n');
    return ws.length > 0 ? 1 : 0;
  }
  // As for problems: the first 100, then how many more (`--json` lists them all).
  for (const w of ws.slice(0, MAX_REPORTED_ISSUES)) {
    process.stderr.write(`[WARNING] ${w.loc.file}:${w.loc.line}: persistence: ${w.backend ? `backend '${w.backend}': ` : ''}${w.message}${countText(w)}\n`);
  }
  if (ws.length > MAX_REPORTED_ISSUES) process.stderr.write(`[WARNING] ${ws.length - MAX_REPORTED_ISSUES} more persistence warnings\n`);
  if (ws.length === 0 && !values.quiet) process.stderr.write(`no persistence-breaking change against ${oldFile}\n`);
  return ws.length > 0 ? 1 : 0;
}
