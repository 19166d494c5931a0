import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Parses options strictly; on error prints the message and the command's help to stderr. */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  help: string,
): { values: Record<string, string | boolean | undefined>; ok: boolean } {
  try {
    const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
    return { values: values as Record<string, string | boolean | undefined>, ok: true };
  } catch (err) {
    process.stderr.write(`stickmesh: ${(err as Error).message}\n\n${help}`);
    return { values: {}, ok: false };
  }
}
