/**
 * Loading a config file: picks the front door by content (native YAML/JSON or haproxy.cfg),
 * parses, applies `STICKMESH_*` environment overrides, runs the cross-section checks, and throws
 * one ConfigError listing every problem with `file:line`.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, StickmeshError } from '../errors.js';
import type { ConfigWarning, StickmeshConfig } from './model.js';
import { parseHaproxyConfig } from './haproxy.js';
import { applyGlobalEnv, parseNativeConfig } from './native.js';
import { validateConfig } from './validate.js';

export type ConfigFormat = 'haproxy' | 'native';

export interface LoadedConfig {
  config: StickmeshConfig;
  warnings: ConfigWarning[];
}

/** Largest config file read; anything bigger is refused rather than parsed. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** `.yaml`/`.yml`/`.json` files, or text starting like a mapping/object, are native. */
export function detectFormat(file: string, text: string): ConfigFormat {
  if (/\.(ya?ml|json)$/i.test(file)) return 'native';
  if (/\.cfg$/i.test(file)) return 'haproxy';
  const first = text.split('\n').find((l) => l.trim() !== '' && !l.trim().startsWith('#'))?.trim() ?? '';
  return first.startsWith('{') || /^[A-Za-z_]+:(\s|$)/.test(first) ? 'native' : 'haproxy';
}

export function parseConfigText(text: string, file: string, format?: ConfigFormat, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const fmt = format ?? detectFormat(file, text);
  const out = fmt === 'native' ? parseNativeConfig(text, file, env) : parseHaproxyConfig(text, file, env);
  const issues = [...out.issues];
  if (fmt === 'haproxy') {
    const envErr = applyGlobalEnv(out.config.global, env);
    if (envErr) issues.push({ loc: { file, line: 0 }, directive: 'environment', message: envErr });
  }
  const v = validateConfig(out.config);
  issues.push(...v.issues);
  if (issues.length > 0) {
    issues.sort((a, b) => a.loc.line - b.loc.line);
    throw new ConfigError(issues);
  }
  return { config: out.config, warnings: [...out.warnings, ...v.warnings].sort((a, b) => a.loc.line - b.loc.line) };
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_CONFIG_BYTES) throw new StickmeshError('SM_CONFIG_READ', `${file}: larger than ${MAX_CONFIG_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof StickmeshError) throw err;
    throw new StickmeshError('SM_CONFIG_READ', `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfigText(text, file, undefined, env);
}
