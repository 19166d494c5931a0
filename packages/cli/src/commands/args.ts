import { parseArgs, type ParseArgsConfig } from 'node:util';
import { didYouMean } from '@stickmesh/core';
import { AdminClient, nodeLabel, type AdminNode } from '../admin/client.js';
import { AdminConfigError, planAdmin } from '../admin/targets.js';

type Options = NonNullable<ParseArgsConfig['options']>;
export type OptionValues = Record<string, string | boolean | undefined>;

/** Options of every command that talks to a running node (see admin/client.ts). */
export const ADMIN_OPTIONS = {
  admin: { type: 'string' },
  token: { type: 'string' },
} as const satisfies Options;

/** `--config FILE` of the Operate commands: the cluster config whose nodes they ask (admin/targets.ts). */
export const CONFIG_OPTION = {
  config: { type: 'string', short: 'c' },
} as const satisfies Options;

/**
 * The admin client of a command from its `--admin`, `--config` and `--token` (planAdmin gives the
 * order of the sources), writing a line to stderr when a node other than the first answers; or
 * exit 1 after printing why the config named gives no node. `oneNode` (a change to one node, such
 * as a per-node override): only the first node is asked, the others are named if it is down, and
 * a line on stderr says which node it is when the list had several.
 */
export function adminClientFor(values: OptionValues, env: NodeJS.ProcessEnv = process.env, oneNode = false): AdminClient | number {
  let plan;
  try {
    plan = planAdmin({ admin: str(values, 'admin'), config: str(values, 'config') }, env);
  } catch (err) {
    if (!(err instanceof AdminConfigError)) throw err;
    process.stderr.write(`stickmesh: ${err.message}\n`);
    return 1;
  }
  const p = plan;
  if (oneNode && p.nodes.length > 1) {
    const [first, ...rest] = p.nodes as [AdminNode, ...AdminNode[]];
    process.stderr.write(`stickmesh: this node: ${nodeLabel(first)} (the first of ${p.source}; --admin URL names another)\n`);
    return new AdminClient(
      { nodes: [first], others: () => rest, othersHow: 'name the node meant with --admin URL', token: str(values, 'token') ?? env.STICKMESH_ADMIN_TOKEN ?? p.token },
      env,
    );
  }
  return new AdminClient(
    {
      nodes: plan.nodes,
      others: plan.others,
      configFile: plan.configFile,
      token: str(values, 'token') ?? env.STICKMESH_ADMIN_TOKEN ?? plan.token,
      onFailover: (line) => process.stderr.write(`stickmesh: ${line} (nodes from ${plan.source})\n`),
    },
    env,
  );
}

/** What a command does after parsing: run with these values, or exit with this code. */
export type Parsed = { exit: number } | { exit: undefined; values: OptionValues; positionals: string[] };

/**
 * The option parser of every CLI command: strict (an unknown option is an error), `-h/--help`
 * added to `options`. On an error prints `stickmesh: MESSAGE` and the help to stderr and answers
 * exit 2; on --help prints the help to stdout and answers exit 0. Positional arguments are refused
 * unless `positionals` is true.
 */
export function parseCommand(argv: string[], help: string, options: Options, positionals = false): Parsed {
  let values: OptionValues;
  let pos: string[];
  try {
    const p = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: positionals });
    values = p.values as OptionValues;
    pos = p.positionals;
  } catch (err) {
    const e = err as Error & { code?: string };
    const opt = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(--?[^'=]+)/.exec(e.message)?.[1] : undefined;
    const near = opt?.startsWith('--') ? didYouMean(opt, Object.keys(options).map((o) => `--${o}`).concat('--help')) : undefined;
    // Node's own message suggests '--' before a positional that starts with '-': keep it, add ours.
    process.stderr.write(`stickmesh: ${near ? `unknown option '${opt}'; did you mean '${near}'?` : e.message}\n\n${help}`);
    return { exit: 2 };
  }
  if (values.help) {
    process.stdout.write(help);
    return { exit: 0 };
  }
  return { exit: undefined, values, positionals: pos };
}

/** The string value of option `name`, or undefined when absent. */
export function str(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}
