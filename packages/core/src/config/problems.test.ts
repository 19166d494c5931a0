import { describe, expect, it } from 'vitest';
import { ConfigError, MAX_REPORTED_ISSUES, formatIssues } from '../errors.js';
import { parseConfigText } from './load.js';
import { parseHaproxyConfig, parseHaproxyConfigChunked, PARSE_CHUNK_LINES } from './haproxy.js';
import { ProblemList, mergeProblems } from './problems.js';

function failure(text: string, file: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    parseConfigText(text, file, undefined, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('the config was accepted');
}

const backendOf = (n: number, extra: string[] = []): string =>
  ['backend be', '  mode http', ...Array.from({ length: n }, (_, i) => `  server s${i} 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:80`), ...extra, ''].join('\n');

describe('bounded problem reports', () => {
  it('ProblemList keeps the first `cap` and counts all; merging keeps the first by line', () => {
    const a = new ProblemList<{ loc: { line: number } }>(3);
    for (let i = 10; i > 0; i--) a.push({ loc: { line: i } });
    expect(a.items.map((p) => p.loc.line)).toEqual([10, 9, 8]);
    expect(a.total).toBe(10);
    expect(a.full).toBe(true);
    const b = new ProblemList<{ loc: { line: number } }>(3);
    b.push({ loc: { line: 1 } });
    const m = mergeProblems([a, b], 2);
    expect(m.items.map((p) => p.loc.line)).toEqual([1, 8]);
    expect(m.total).toBe(11);
  });

  it('a ConfigError never holds more than MAX_REPORTED_ISSUES, and says how many more', () => {
    const issues = Array.from({ length: 250 }, (_, i) => ({ loc: { file: 'f.cfg', line: i + 1 }, directive: 'x', message: 'bad' }));
    const e = new ConfigError(issues);
    expect(e.issues).toHaveLength(MAX_REPORTED_ISSUES);
    expect(e.total).toBe(250);
    expect(e.lines()).toHaveLength(MAX_REPORTED_ISSUES + 1);
    expect(e.lines().at(-1)).toBe('150 more problems');
    expect(e.message.split('\n').at(-1)).toBe('150 more problems');
    expect(formatIssues(issues.slice(0, 2), 3, 'warning')).toEqual(["f.cfg:1: 'x': bad", "f.cfg:2: 'x': bad", '1 more warning']);
  });

  it('a 4 MiB garbage file: 100 problems kept, every line counted', () => {
    const e = failure('a\n'.repeat(2 * 1024 * 1024), 'g.cfg');
    expect(e.issues).toHaveLength(100);
    expect(e.issues[0]!.loc).toEqual({ file: 'g.cfg', line: 1 });
    expect(e.issues[99]!.loc).toEqual({ file: 'g.cfg', line: 100 });
    expect(e.total).toBe(2 * 1024 * 1024);
    expect(e.lines().at(-1)).toBe(`${2 * 1024 * 1024 - 100} more problems`);
  }, 60_000);

  it('finds a duplicate server name among 100,000 servers (a set, not a scan per server)', () => {
    const e = failure(backendOf(100_000, ['  server s99999 10.9.9.9:80', '  server s5 10.9.9.9:80']), 'big.cfg');
    expect(e.issues.map((i) => [i.loc.line, i.message])).toEqual([
      [100_003, "duplicate server name 's99999' in backend 'be'"],
      [100_004, "duplicate server name 's5' in backend 'be'"],
    ]);
  }, 60_000);

  it('the chunked parser gives the same model and problems as the one-pass parser', async () => {
    const text = backendOf(3 * PARSE_CHUNK_LINES + 7, ['  bogus 1', '  server s1 10.0.0.1:80']);
    const one = parseHaproxyConfig(text, 'c.cfg', {});
    let pauses = 0;
    const chunked = await parseHaproxyConfigChunked(text, 'c.cfg', {}, async () => {
      pauses++;
    });
    expect(pauses).toBe(Math.floor(text.split('\n').length / PARSE_CHUNK_LINES));
    expect(chunked.config).toEqual(one.config);
    expect(chunked.issues.items).toEqual(one.issues.items);
    expect(chunked.issues.total).toBe(2);
  });
});

describe('front-door errors name file and line', () => {
  it('YAML alias bomb: the line of the first alias of an anchor that holds aliases', () => {
    const bomb = ['global:', '  maxconn: 10', 'a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', ''].join('\n');
    const e = failure(bomb, 'bomb.yaml');
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]!.loc).toEqual({ file: 'bomb.yaml', line: 5 });
    expect(e.issues[0]!.message).toMatch(/alias bomb/);
  });

  it('YAML alias without anchor: its line', () => {
    const e = failure('global:\n  maxconn: 10\nfrontends:\n  - *nowhere\n', 'c.yaml');
    expect(e.issues[0]!.loc.line).toBe(4);
  });

  it('YAML and JSON syntax errors: the line the parser stopped at', () => {
    expect(failure('global:\n  maxconn: 10\n  admin: {port: 1\nbackends: []\n', 'c.yaml').issues[0]!.loc.line).toBeGreaterThan(2);
    const j = failure('{\n  "global": {\n    "maxconn": 10\n  }\n  "backends": []\n}\n', 'c.json');
    expect(j.issues[0]!.loc).toEqual({ file: 'c.json', line: 5 });
    expect(j.issues[0]!.directive).toBe('syntax');
  });

  it("Object's own names are unknown keywords, timeouts and variables, not crashes", () => {
    const e = failure(['backend b', '  constructor x', '  timeout __proto__ 5s', 'resolvers r', '  nameserver ns 127.0.0.1:53', '  hold toString 1s', 'global', '  data-dir "$constructor"', '  bogus', ''].join('\n'), 'p.cfg');
    expect(e.issues.map((i) => [i.loc.line, i.message])).toEqual([
      [2, "unknown keyword 'constructor' in backend 'b' section"],
      [3, "unknown timeout '__proto__' (connect, client, server, http-request, http-keep-alive, tunnel, check, queue, tarpit)"],
      [6, "unknown hold status 'toString' (valid, obsolete, nx, timeout, refused, other)"],
      [9, "unknown keyword 'bogus' in 'global' section"],
    ]);
    const y = failure('backends:\n  - name: b\n    timeouts: { constructor: 5s }\n', 'p.yaml');
    expect(y.issues[0]!.message).toMatch(/^unknown timeout 'constructor'/);
  });

  it('environment overrides: the variable and its value, in both syntaxes', () => {
    const env = { STICKMESH_MAXACCEPT: '999' };
    for (const [text, file] of [['global\n  maxconn 10\n', 'c.cfg'], ['global:\n  maxconn: 10\n', 'c.yaml']] as const) {
      const e = failure(text, file, env);
      expect(e.issues).toEqual([{ loc: { file, line: 0 }, directive: 'environment', message: 'STICKMESH_MAXACCEPT="999" (global maxAccept): must be an integer from 1 to 64' }]);
      expect(e.message).toBe(`${file}: 'environment': STICKMESH_MAXACCEPT="999" (global maxAccept): must be an integer from 1 to 64`);
    }
  });
});
