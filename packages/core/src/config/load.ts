/**
 * Loading a config file: picks the front door by content (native YAML/JSON or haproxy.cfg),
 * parses, applies `STICKMESH_*` environment overrides, runs the cross-section checks, and throws
 * one ConfigError naming the first problems by `file:line` and counting the rest. Every step is
 * linear in the size of the file, so a large or hostile file costs time in proportion to its
 * bytes, bounded by MAX_CONFIG_BYTES.
 */
import { errnoText } from '../util/errno.js';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigError, MAX_REPORTED_ISSUES, StickmeshError, type ConfigIssue } from '../errors.js';
import type { ConfigWarning, StickmeshConfig } from './model.js';
import { parseHaproxyConfig, parseHaproxyConfigChunked, type ParseOutput } from './haproxy.js';
import { applyGlobalEnv, parseNativeConfig } from './native.js';
import { validateConfig } from './validate.js';
import { ProblemList, mergeProblems } from './problems.js';
import { nextTurn } from '../util/next-turn.js';
import { loadBindCertificates } from '../tls/certs.js';

export type ConfigFormat = 'haproxy' | 'native';

export interface LoadedConfig {
  config: StickmeshConfig;
  /** The first warnings by line (at most MAX_REPORTED_ISSUES). */
  warnings: ConfigWarning[];
  /** Every warning found, shown or not (report the rest as `N more warnings`). */
  warningCount: number;
}

/** Largest config file read (16 MiB); anything bigger is refused, naming the file, rather than parsed. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** `.yaml`/`.yml`/`.json` files, or text starting like a mapping/object, are native. */
export function detectFormat(file: string, text: string): ConfigFormat {
  if (/\.(ya?ml|json)$/i.test(file)) return 'native';
  if (/\.cfg$/i.test(file)) return 'haproxy';
  const first = /^(?:[ \t\r]*(?:#[^\n]*)?\n)*[ \t\r]*([^\n]*)/.exec(text)?.[1]?.trim() ?? '';
  return first.startsWith('{') || /^[A-Za-z_]+:(\s|$)/.test(first) ? 'native' : 'haproxy';
}

export function parseConfigText(text: string, file: string, format?: ConfigFormat, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const fmt = format ?? detectFormat(file, text);
  const out = fmt === 'native' ? parseNativeConfig(text, file, env) : parseHaproxyConfig(text, file, env);
  return checked(out, fmt, file, env);
}

/** Environment overrides (haproxy.cfg; the native door applies them itself) and cross-section checks. */
function checked(out: ParseOutput, fmt: ConfigFormat, file: string, env: NodeJS.ProcessEnv): LoadedConfig {
  const envIssues = new ProblemList<ConfigIssue>();
  if (fmt === 'haproxy') for (const i of applyGlobalEnv(out.config.global, env, file)) envIssues.push(i);
  const v = validateConfig(out.config);
  const issues = mergeProblems([envIssues, out.issues, v.issues]);
  const warnings = mergeProblems([out.warnings, v.warnings]);
  if (issues.total > 0) throw new ConfigError(issues.items, issues.total, warnings.items, warnings.total);
  return { config: out.config, warnings: warnings.items, warningCount: warnings.total };
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const text = readConfigFile(file);
  return withCertificates(parseConfigText(text, file, undefined, env));
}

/**
 * Reads the certificates of the `ssl` binds of a valid config (core/tls/certs.ts); their
 * problems are a ConfigError like any other. Only configs loaded from a file get them here
 * (`parseConfigText` leaves `certs` empty; the proxy then reads them itself).
 */
export function withCertificates(loaded: LoadedConfig): LoadedConfig {
  const issues = loadBindCertificates(loaded.config);
  if (issues.length > 0) throw new ConfigError(issues.slice(0, MAX_REPORTED_ISSUES), issues.length, loaded.warnings, loaded.warningCount);
  return loaded;
}

/**
 * `loadConfig` for a running node (reload), without holding up traffic and peer heartbeats while
 * a large file is read: a haproxy.cfg file is parsed in chunks with a turn of the event loop
 * between them; a native file, whose YAML library parses in one go (seconds for tens of thousands
 * of servers), is parsed in a worker thread with a memory limit (WORKER_HEAP_MB). Same result and
 * errors as `loadConfig`.
 */
export async function loadConfigAsync(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  const text = readConfigFile(file);
  const fmt = detectFormat(file, text);
  if (fmt === 'native') {
    // Run from TypeScript sources (unit tests) there is no compiled worker: parse here instead.
    return withCertificates(existsSync(fileURLToPath(WORKER_URL)) ? await parseInWorker({ text, file, env: { ...env } }) : parseConfigText(text, file, fmt, env));
  }
  const out = await parseHaproxyConfigChunked(text, file, env, nextTurn);
  await nextTurn();
  return withCertificates(checked(out, fmt, file, env));
}

/** Heap limit of the worker parsing a native file; past it the file is refused, the node unharmed. */
export const WORKER_HEAP_MB = 1024;

const WORKER_URL = new URL('./load-worker.js', import.meta.url);

/** @internal what load-worker.ts receives. */
export interface WorkerJob {
  text: string;
  file: string;
  env: NodeJS.ProcessEnv;
}

/** @internal what load-worker.ts answers. */
export type WorkerAnswer =
  | { kind: 'ok'; loaded: LoadedConfig }
  | { kind: 'invalid'; issues: ConfigIssue[]; total: number; warnings: ConfigIssue[]; warningCount: number }
  | { kind: 'error'; code: string; message: string };

function parseInWorker(job: WorkerJob): Promise<LoadedConfig> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const w = new Worker(WORKER_URL, { workerData: job, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
    w.once('message', function onWorkerAnswer(a: WorkerAnswer) {
      answered = true;
      if (a.kind === 'ok') resolve(a.loaded);
      else if (a.kind === 'invalid') reject(new ConfigError(a.issues, a.total, a.warnings, a.warningCount));
      else reject(new StickmeshError(a.code, a.message));
    });
    w.once('error', function onWorkerError(err: NodeJS.ErrnoException) {
      if (answered) return;
      answered = true;
      const why = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `parsing it needs more than ${WORKER_HEAP_MB} MB` : err.message;
      reject(new StickmeshError('SM_CONFIG_READ', `${job.file}: ${why}`));
    });
    w.once('exit', function onWorkerExit(code) {
      if (!answered) reject(new StickmeshError('SM_CONFIG_READ', `${job.file}: the config parser stopped (exit ${code})`));
    });
  });
}

/** The text of a config file; a missing, unreadable or too large file is an SM_CONFIG_READ naming it. */
function readConfigFile(file: string): string {
  try {
    return readBounded(file, MAX_CONFIG_BYTES).toString('utf8');
  } catch (err) {
    if (err instanceof StickmeshError) throw err;
    throw new StickmeshError('SM_CONFIG_READ', `cannot read ${file}: ${errnoText(err)}`);
  }
}

/**
 * Reads at most `max` bytes of `file`; more is an error naming the file. Reads by chunks rather
 * than trusting the file's size, so a pipe or a device (`/dev/zero`) cannot make it read forever.
 */
function readBounded(file: string, max: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, max + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
      if (total > max) {
        throw new StickmeshError('SM_CONFIG_READ', `${file}: larger than ${max / 1024 / 1024} MiB, the most a config file may have`);
      }
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}
