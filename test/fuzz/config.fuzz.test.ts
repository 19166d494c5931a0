/**
 * Seeded fuzz of the config parser with mutated real configs (the guides' fixtures, examples,
 * deploy configs): deleted, duplicated and swapped lines, replaced and truncated tokens, hostile
 * numbers and units, broken quotes, control bytes. `parseConfigText` must either accept the text
 * or throw a ConfigError whose every issue names the file and a line of it (`fuzz.cfg:N`), never
 * anything else. `FUZZ_LONG=1` runs 100,000 cases; replay with `FUZZ_SEED=...`.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ConfigError, parseConfigText } from '@stickmesh/core';
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
  '\u0000', '\t', '#', 'é', '\u{1F600}', 'size', 'expire', 'type', 'ip', 'string', 'integer', 'len', 'weight', 'maxconn', 'rise', 'fall'];

function mutate(rng: Rng, text: string): string {
  const lines = text.split('\n');
  const n = rng.int(1, 5);
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
      }
    }
    expect(failures, `replay: FUZZ_SEED=${seed} FUZZ_CASES=${CASES} npx vitest run test/fuzz/config.fuzz.test.ts`).toEqual([]);
    // The mutations must actually reach the error paths.
    expect(rejected).toBeGreaterThan(CASES / 10);
  }, LONG ? 1_800_000 : 60_000);
});
