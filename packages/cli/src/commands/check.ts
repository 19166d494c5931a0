/**
 * `stickmesh check --config FILE`: like `haproxy -c -f FILE`. Prints nothing and exits 0 for a
 * valid config without warnings; prints `file:line: message` lines and exits 1 when invalid.
 * Warnings are printed with a `[WARNING]` prefix and do not change the exit code.
 */
import { ConfigError, StickmeshError, loadConfig, formatIssue } from '@stickmesh/core';
import { parseOptions } from './args.js';

export const CHECK_HELP = `Usage: stickmesh check --config FILE

Validate a configuration file (haproxy.cfg syntax, or native YAML/JSON) and exit.
Exit 0 when valid, 1 with one 'file:line: message' line per problem otherwise.

Options:
  -c, --config FILE   configuration file to check (also -f FILE, as with haproxy)
  -q, --quiet         do not print warnings
  -h, --help          show this help
`;

export async function runCheck(argv: string[]): Promise<number> {
  const { values, ok } = parseOptions(
    argv,
    {
      config: { type: 'string', short: 'c' },
      file: { type: 'string', short: 'f' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
    CHECK_HELP,
  );
  if (!ok) return 2;
  if (values.help) {
    process.stdout.write(CHECK_HELP);
    return 0;
  }
  const file = (values.config ?? values.file) as string | undefined;
  if (!file) {
    process.stderr.write(`stickmesh check: --config FILE is required\n\n${CHECK_HELP}`);
    return 2;
  }
  try {
    const { warnings } = loadConfig(file);
    if (!values.quiet) for (const w of warnings) process.stderr.write(`[WARNING] ${formatIssue(w)}\n`);
    return 0;
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
}
