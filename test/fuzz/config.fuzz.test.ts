/**
 * Seeded fuzz of the config parser with mutated real configs (the guides' fixtures, examples,
 * deploy configs): deleted, duplicated and swapped lines, replaced and truncated tokens, hostile
 * numbers and units, broken quotes, control bytes. `parseConfigText` must either accept the text
 * or throw a ConfigError whose every issue names the file and a line of it (`fuzz.cfg:N`), never
 * anything else. Some cases repeat a line hundreds of times: the error then keeps the first 100
 * problems by line, counts them all, and its message ends with `N more problems`.
 * `FUZZ_LONG=1` runs 100,000 cases; replay with `FUZZ_SEED=...`.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ConfigError, MAX_REPORTED_ISSUES, parseConfigText } from '@stickmesh/core';
import { Rng, seedFrom } from '../helpers/rng.js';

const LONG = process.env.FUZZ_LONG === '1';
const CASES = Number(process.env.FUZZ_CASES ?? (LONG ? 100_000 : 5000));
const seed = seedFrom('FUZZ_SEED');
const root = fileURLToPath(new URL('../..', import.meta.url));

const SOURCES = [
  'test/fixtures/configs/guide1-cookie.cfg',
  'test/fixtures/configs/guide1-dynamic-dns.cfg',
  'test/fixtures/configs/guide1-peers-src.cfg',
  'test/fixtures/configs/guide2-serverid.cfg',
  'examples/cluster.cfg',
  'examples/demo.cfg',
  'deploy/compose/haproxy.cfg',
  'deploy/keepalived/haproxy.cfg',
].map((p) => readFileSync(path.join(root, p), 'utf8'));

const TOKENS = ['0', '-1', '1e9', '99999999999999999999999', '10q', '5s', '1d', '100k', '0x10', 'NaN', '', '""', "''", '"', "'", '\\', '${', '${X', '$X',
  '${UNSET_FUZZ_VAR}', '127.0.0.1', '127.0.0.1:', ':0', '[::1]:80', '::', '*:65536', 'a:b:c', 'check', 'cookie', 'backup', 'disabled', 'inter', 'table',
  'stick', 'on', 'src', 'peers', 'frontend', 'backend', 'listen', 'defaults', 'global', 'server', 'bind', 'mode', 'tcp', 'http', 'balance', 'x'.repeat(300),
  '\u0000', '\t', '#', 'é', '\u{1F600}', 'size', 'expire', 'type', 'ip', 'string', 'integer', 'len', 'weight', 'maxconn', 'rise', 'fall',
  'constructor', '__proto__', 'toString', '"$constructor"', 'hasOwnProperty'];

function mutate(rng: Rng, text: string): string {
  const lines = text.split('\n');
  const n = rng.int(1, 5);
  if (rng.chance(0.02)) {
    // A flood: one (possibly mutated) line hundreds of times, past the report's cap.
    const i = rng.int(0, lines.length - 1);
    lines.splice(i, 0, ...Array.from({ length: rng.int(50, 400) }, () => lines[i]!));
  }
  for (let k = 0; k < n; k++) {
    const i = rng.int(0, lines.length - 1);
    const words = lines[i]!.split(/(\s+)/);
    switch (rng.int(0, 9)) {
      case 0: lines.splice(i, 1); break;
      case 1: lines.splice(i, 0, lines[rng.int(0, lines.length - 1)]!); break;
      case 2: { const j = rng.int(0, lines.length - 1); [lines[i], lines[j]] = [lines[j]!, lines[i]!]; break; }
      case 3: { const w = rng.int(0, words.length - 1); words[w] = rng.pick(TOKENS); lines[i] = words.join(''); break; }
      case 4: lines[i] = lines[i]!.slice(0, rng.int(0, lines[i]!.length)); break;
      case 5: lines[i] = `${lines[i]} ${rng.pick(TOKENS)}`; break;
      case 6: { const at = rng.int(0, lines[i]!.length); lines[i] = lines[i]!.slice(0, at) + String.fromCharCode(rng.int(0, 127)) + lines[i]!.slice(at); break; }
      case 7: lines[i] = lines[i]!.replace(/\d+/, () => rng.pick(['0', '-5', '4294967296', '1.5', '9'.repeat(30), '']));
        break;
      case 8: lines[i] = lines[i]!.trimStart(); break;
      default: lines.splice(i, 0, `${rng.pick(['    ', ''])}${rng.pick(TOKENS)} ${rng.pick(TOKENS)} ${rng.pick(TOKENS)}`);
    }
  }
  return lines.join(rng.chance(0.05) ? '\r\n' : '\n');
}

describe(`config parser under mutated configs (${CASES} cases, seed ${seed})`, () => {
  it('accepts or throws ConfigError with file:line, nothing else', () => {
    const failures: string[] = [];
    let rejected = 0;
    let capped = 0;
    for (let id = 0; id < CASES && failures.length < 10; id++) {
      const rng = new Rng((seed + Math.imul(id, 0x9e3779b1)) >>> 0);
      const text = mutate(rng, rng.pick(SOURCES));
      const lineCount = text.split('\n').length;
      try {
        parseConfigText(text, 'fuzz.cfg', 'haproxy', { STICKMESH_PEERS_SECRET: 's' });
      } catch (err) {
        rejected++;
        if (!(err instanceof ConfigError)) {
          failures.push(`case ${id}: ${(err as Error).constructor.name}: ${(err as Error).message}\n${text}`);
          continue;
        }
        for (const is of err.issues) {
          if (is.loc.file !== 'fuzz.cfg' || !(is.loc.line >= 1 && is.loc.line <= lineCount)) {
            failures.push(`case ${id}: issue without a line of the file: ${JSON.stringify(is)}`);
          }
        }
        if (!/fuzz\.cfg:\d+/.test(err.message)) failures.push(`case ${id}: message without file:line: ${err.message}`);
        const shown = err.message.split('\n');
        if (err.issues.length > MAX_REPORTED_ISSUES || err.total < err.issues.length) failures.push(`case ${id}: ${err.issues.length} issues kept of ${err.total}`);
        if (err.issues.some((is, k) => k > 0 && is.loc.line < err.issues[k - 1]!.loc.line)) failures.push(`case ${id}: issues not in line order`);
        if (err.total > err.issues.length) {
          capped++;
          const more = err.total - err.issues.length;
          if (shown.length !== err.issues.length + 1 || shown.at(-1) !== `${more} more problem${more === 1 ? '' : 's'}`) {
            failures.push(`case ${id}: capped message does not end with the count: ${shown.at(-1)}`);
          }
        } else if (shown.length !== err.issues.length) failures.push(`case ${id}: ${shown.length} message lines for ${err.issues.length} issues`);
      }
    }
    expect(failures, `replay: FUZZ_SEED=${seed} FUZZ_CASES=${CASES} npx vitest run test/fuzz/config.fuzz.test.ts`).toEqual([]);
    // The mutations must actually reach the error paths, and the cap.
    expect(rejected).toBeGreaterThan(CASES / 10);
    expect(capped).toBeGreaterThan(0);
    console.log(`config fuzz: ${CASES} cases, ${rejected} rejected, ${capped} over the report cap, ${failures.length} failures`);
  }, LONG ? 1_800_000 : 60_000);
});

/** The YAML library makes a native case ~4x the cost of a haproxy.cfg one: fewer in the short run. */
const NATIVE_CASES = Number(process.env.FUZZ_CASES ?? (LONG ? 100_000 : 1000));

const NATIVE_SOURCES = ['test/fixtures/configs/native-cookie.yaml', 'test/fixtures/configs/native-cookie.json'].map((p) => readFileSync(path.join(root, p), 'utf8'));

/** YAML/JSON structure pieces, anchors and aliases (a small alias bomb among them). */
const YAML_TOKENS = ['{', '}', '[', ']', ':', ',', '- ', '"', "'", '&a', '*a', '*b', '&b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', '<<: *a', '!!binary', '!!str',
  '---', '...', '%YAML 1.2', '? ', '|', '>', 'null', '~', 'true', '1e999', '-0', '0x1f', 'constructor', '__proto__', 'x'.repeat(300), '\t', '#', '\u0000'];

function mutateNative(rng: Rng, text: string): string {
  const lines = text.split('\n');
  if (rng.chance(0.05)) {
    // An anchor, then many aliases of it nested once: the shape of an alias bomb.
    lines.unshift('x0: &a [a, a, a, a, a, a, a, a, a, a, a, a]', `x1: &b [${Array.from({ length: 12 }, () => '*a').join(', ')}]`, `x2: [${Array.from({ length: 12 }, () => '*b').join(', ')}]`);
  }
  for (let k = rng.int(1, 5); k > 0; k--) {
    const i = rng.int(0, lines.length - 1);
    const at = rng.int(0, lines[i]!.length);
    switch (rng.int(0, 4)) {
      case 0: lines.splice(i, 1); break;
      case 1: lines[i] = lines[i]!.slice(0, at) + rng.pick(YAML_TOKENS) + lines[i]!.slice(at); break;
      case 2: lines[i] = lines[i]!.slice(0, at); break;
      case 3: lines.splice(i, 0, ...Array.from({ length: rng.chance(0.1) ? rng.int(100, 300) : 1 }, () => lines[rng.int(0, lines.length - 1)]!)); break;
      default: lines[i] = ' '.repeat(rng.int(0, 6)) + lines[i]!.trimStart();
    }
  }
  return lines.join('\n');
}

describe(`native YAML/JSON loader under mutated configs (${NATIVE_CASES} cases, seed ${seed})`, () => {
  it('accepts or throws a bounded ConfigError with file:line, nothing else', () => {
    const failures: string[] = [];
    let rejected = 0;
    for (let id = 0; id < NATIVE_CASES && failures.length < 10; id++) {
      const rng = new Rng((seed + Math.imul(id, 0x85ebca6b)) >>> 0);
      const json = rng.chance(0.5);
      const text = mutateNative(rng, NATIVE_SOURCES[json ? 1 : 0]!);
      const file = json ? 'fuzz.json' : 'fuzz.yaml';
      const lineCount = text.split('\n').length;
      try {
        parseConfigText(text, file, undefined, {});
      } catch (err) {
        rejected++;
        if (!(err instanceof ConfigError)) {
          failures.push(`case ${id}: ${(err as Error).constructor.name}: ${(err as Error).message}\n${text}`);
          continue;
        }
        if (err.issues.length === 0 || err.issues.length > MAX_REPORTED_ISSUES) failures.push(`case ${id}: ${err.issues.length} issues`);
        for (const is of err.issues) {
          if (is.loc.file !== file || !(is.loc.line >= 1 && is.loc.line <= lineCount)) failures.push(`case ${id}: issue without a line of the file: ${JSON.stringify(is)}`);
        }
      }
    }
    expect(failures, `replay: FUZZ_SEED=${seed} FUZZ_CASES=${NATIVE_CASES} npx vitest run test/fuzz/config.fuzz.test.ts`).toEqual([]);
    expect(rejected).toBeGreaterThan(NATIVE_CASES / 10);
    console.log(`native config fuzz: ${NATIVE_CASES} cases, ${rejected} rejected, ${failures.length} failures`);
  }, LONG ? 1_800_000 : 60_000);
});
