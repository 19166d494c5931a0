/**
 * Seeded fuzz of the dashboard's rendering with hostile summaries: the shipped render script
 * (DASHBOARD_RENDER_JS, run in a fresh V8 context as the browser runs it) gets poll results whose
 * every field may be markup, quotes, entities, wrong types, prototype keys, huge or non-finite
 * numbers, long strings or long lists, with one state kept across all cases as the page keeps it.
 *
 * Checks per case: `view` does not throw; its HTML is only the renderer's own markup (tags and
 * attribute names from a fixed list, every attribute value double-quoted with nothing that could
 * close it, text with no `<` or `>`, `&` only in the renderer's entities); texts are strings of
 * bounded length; the state stays within its bound. `acceptNodes` only ever returns this page's
 * origin and accepted origins. `FUZZ_LONG=1` runs 100,000 cases; replay with `FUZZ_SEED=...`.
 */
import { describe, expect, it } from 'vitest';
import vm from 'node:vm';
import { DASHBOARD_RENDER_JS, DASHBOARD_STATE_MAX, DASHBOARD_TEXT_MAX } from '@stickmesh/proxy';
import { Rng, fuzzRun } from '../helpers/rng.js';

const { long: LONG, cases: CASES, seed, replay } = fuzzRun(2000);

interface Dashboard {
  esc(v: unknown): string;
  num(v: unknown): number;
  view(results: unknown, state: unknown, now: number, self?: unknown): {
    nodes: string;
    servers: string;
    tables: string;
    kpi: Record<string, string>;
    status: { cls: string; text: string };
    banner: { show: boolean; text: string };
    origin: { down: boolean; text: string; reading: string };
    updated: string;
  };
  newState(): { last: Map<string, unknown>; hist: Map<string, unknown>; known: Map<string, unknown> };
  acceptNodes(self: string, nodes: unknown, siblings: unknown, accepted: unknown): string[];
}

function load(): Dashboard {
  const ctx = vm.createContext({});
  vm.runInContext(DASHBOARD_RENDER_JS, ctx);
  return (ctx as { StickmeshDashboard: Dashboard }).StickmeshDashboard;
}

const TAGS = new Set(['div', 'span', 'b', 'svg', 'polyline', 'rect', 'tr', 'td']);
const ATTRS = new Set(['class', 'title', 'viewBox', 'preserveAspectRatio', 'points', 'width', 'height', 'colspan', 'data-testid', 'data-node', 'data-peer', 'data-state', 'data-server', 'data-health', 'data-admin', 'data-sticky', 'data-table', 'data-live', 'data-scope', 'data-by']);
const TAG = /^<(\/?)([a-z]+)((?:\s+[A-Za-z-]+="[^"<>'`]*")*)\s*(\/?)>/;
const ATTR = /\s+([A-Za-z-]+)="([^"]*)"/g;
const ENTITY = /^&(amp|lt|gt|quot|#39|#96|#61);/;

/** Undefined when `html` is only the renderer's markup, else what is wrong and where. */
function audit(html: string): string | undefined {
  let i = 0;
  while (i < html.length) {
    const ch = html[i]!;
    if (ch === '<') {
      const m = TAG.exec(html.slice(i, i + 2000));
      if (!m) return `malformed tag at ${i}: ${JSON.stringify(html.slice(i, i + 80))}`;
      if (!TAGS.has(m[2]!)) return `tag <${m[2]}> at ${i}`;
      for (const a of m[3]!.matchAll(ATTR)) {
        if (!ATTRS.has(a[1]!)) return `attribute ${a[1]} at ${i}`;
        const bad = auditText(a[2]!);
        if (bad) return `attribute ${a[1]} value at ${i}: ${bad}`;
      }
      i += m[0].length;
      continue;
    }
    if (ch === '>') return `stray > at ${i}: ${JSON.stringify(html.slice(Math.max(0, i - 40), i + 40))}`;
    if (ch === '&' && !ENTITY.test(html.slice(i, i + 6))) return `bare & at ${i}: ${JSON.stringify(html.slice(i, i + 20))}`;
    i++;
  }
  return undefined;
}

function auditText(t: string): string | undefined {
  if (/[<>"'`=]/.test(t.replace(/&(amp|lt|gt|quot|#39|#96|#61);/g, ''))) return `raw markup character in ${JSON.stringify(t.slice(0, 80))}`;
  const amp = t.replace(/&(amp|lt|gt|quot|#39|#96|#61);/g, '');
  if (amp.includes('&')) return `bare & in ${JSON.stringify(t.slice(0, 80))}`;
  return undefined;
}

const HOSTILE = [
  '<img src=x onerror=alert(1)>', '"><svg onload=alert(1)>', "' onmouseover='alert(1)", '`', '=', '&', '&amp;', '&#60;script&#62;',
  '</td></tr><tr><td>', '<!--', ']]>', 'javascript:alert(1)', '\u0000', '\u2028', '\ud800', '%3Cscript%3E', 'up', 'down', 'maint',
  'drain', 'ready', 'live', 'resyncing', '__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', '1e309', 'NaN', '-0', '  7  ', '',
];
const PROTO_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'prototype'];

function hostileString(r: Rng): string {
  const n = r.int(0, 4);
  let s = '';
  for (let i = 0; i < n; i++) s += r.pick(HOSTILE);
  if (r.chance(0.02)) s += 'x'.repeat(r.int(100, 5000));
  return s;
}

function value(r: Rng, depth: number): unknown {
  switch (r.int(0, 11)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53, -0, Number.MAX_SAFE_INTEGER, 12345678]);
    case 3:
      return r.int(0, 1e6);
    case 4:
    case 5:
    case 6:
      return hostileString(r);
    case 7:
      return depth > 2 ? 'deep' : Array.from({ length: r.int(0, 3) }, () => value(r, depth + 1));
    case 8: {
      if (depth > 2) return {};
      const o: Record<string, unknown> = {};
      for (let i = r.int(0, 3); i > 0; i--) o[r.chance(0.5) ? r.pick(PROTO_KEYS) : hostileString(r)] = value(r, depth + 1);
      return o;
    }
    case 9:
      return JSON.parse('{"toString":"x","valueOf":"y"}');
    default:
      return undefined;
  }
}

/** A field that is usually plausible and often hostile. */
function field(r: Rng, plausible: () => unknown): unknown {
  return r.chance(0.5) ? plausible() : value(r, 1);
}

/** `adminSet`/`weightSet` as the contract has them, often hostile or absent (older nodes). */
function setBy(r: Rng): unknown {
  return field(r, () =>
    r.pick([
      undefined,
      { scope: 'config' },
      { scope: 'cluster', node: field(r, () => r.pick(['lb1', 'lb2'])), at: field(r, () => 1_700_000_000_000 + r.int(0, 1e6)) },
      { scope: 'node', node: field(r, () => r.pick(['lb1', 'lb2', 'lb3'])), at: field(r, () => 1_700_000_000_000 + r.int(0, 1e6)) },
    ]),
  );
}

function summary(r: Rng): unknown {
  if (r.chance(0.03)) return value(r, 0);
  const list = <T>(make: () => T): unknown => (r.chance(0.85) ? Array.from({ length: r.chance(0.01) ? r.int(300, 2000) : r.int(0, 6) }, make) : value(r, 1));
  const o: Record<string, unknown> = {
    node: field(r, () => r.pick(['lb1', 'lb2', 'lb3'])),
    time: field(r, () => 1_700_000_000_000 + r.int(0, 1e6)),
    uptimeMs: field(r, () => r.int(0, 1e9)),
    ready: field(r, () => r.chance(0.8)),
    connections: field(r, () => r.int(0, 1000)),
    tables: list(() => ({ id: field(r, () => 'mesh/sessions'), live: field(r, () => r.int(0, 1e5)), capacity: field(r, () => 102400), evictions: field(r, () => r.int(0, 9)), expired: field(r, () => r.int(0, 9)) })),
    servers: list(() => ({
      backend: field(r, () => 'app'),
      server: field(r, () => r.pick(['web1', 'web2', 'web3'])),
      health: field(r, () => r.pick(['up', 'down'])),
      admin: field(r, () => r.pick(['ready', 'drain', 'maint'])),
      sticky: field(r, () => r.int(0, 1e4)),
      activeConns: field(r, () => r.int(0, 100)),
      requests: field(r, () => r.int(0, 1e7)),
      errors: field(r, () => r.int(0, 10)),
      weight: field(r, () => r.int(0, 256)),
      adminSet: setBy(r),
      weightSet: setBy(r),
      drain: r.chance(0.3) ? { bindings: field(r, () => r.int(0, 50)), remainingMs: field(r, () => r.int(0, 1e5)), ended: field(r, () => undefined) } : value(r, 1),
    })),
    peers: list(() => ({ peer: field(r, () => r.pick(['lb1', 'lb2', 'lb3'])), state: field(r, () => r.pick(['live', 'resyncing', 'connecting', 'down'])), connected: field(r, () => r.chance(0.7)), lagMs: field(r, () => r.int(0, 5000)), pending: field(r, () => r.int(0, 100)), lastDataAt: field(r, () => 1_700_000_000_000 + r.int(0, 1e6)) })),
  };
  if (r.chance(0.05)) o[r.pick(PROTO_KEYS)] = value(r, 1);
  return o;
}

describe(`dashboard rendering of hostile summaries (${CASES} cases, seed ${seed})`, () => {
  it('never throws, emits only its own markup, bounds texts and state', async () => {
    const D = load();
    const state = D.newState();
    const failures: string[] = [];
    let run = 0;
    for (let id = 0; id < CASES && failures.length < 10; id++) {
      // Yield now and then: a long synchronous run starves the test runner's own messages.
      if (id % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
      const r = new Rng((seed + Math.imul(id, 0x9e3779b1)) >>> 0);
      const results = r.chance(0.02)
        ? value(r, 0)
        : Array.from({ length: r.int(1, 4) }, () => (r.chance(0.85) ? { origin: field(r, () => `http://127.0.0.${r.int(1, 3)}:9100`), ok: field(r, () => true), s: summary(r), error: field(r, () => 'HTTP 500'), since: field(r, () => Date.now()) } : value(r, 1)));
      let v: ReturnType<Dashboard['view']>;
      try {
        v = D.view(results, state, field(r, () => Date.now()) as number, field(r, () => `http://127.0.0.${r.int(1, 3)}:9100`));
      } catch (err) {
        failures.push(`case ${id}: view threw ${(err as Error).message}`);
        continue;
      }
      run++;
      for (const part of ['nodes', 'servers', 'tables'] as const) {
        const bad = audit(v[part]);
        if (bad) failures.push(`case ${id}: ${part}: ${bad}`);
      }
      const texts = [...Object.values(v.kpi), v.status.cls, v.status.text, v.banner.text, v.origin.text, v.origin.reading, v.updated];
      for (const t of texts) if (typeof t !== 'string' || t.length > 64 * (DASHBOARD_TEXT_MAX + 40)) failures.push(`case ${id}: text ${JSON.stringify(String(t).slice(0, 80))}`);
      if (!/^pill (ok|warn|bad)$/.test(v.status.cls)) failures.push(`case ${id}: status class ${v.status.cls}`);
      for (const m of [state.last, state.hist, state.known]) if (m.size > DASHBOARD_STATE_MAX) failures.push(`case ${id}: state holds ${m.size} keys`);
      // Node list: only this page's origin and accepted ones, whatever ?nodes= says.
      const accepted = r.chance(0.8) ? ['http://127.0.0.2:9100', 'http://lb3:9100'] : value(r, 1);
      const nodes = D.acceptNodes('http://127.0.0.1:9100', field(r, () => `http://127.0.0.2:9100,${hostileString(r)},http://evil:1`), value(r, 1), accepted);
      const okSet = new Set(['http://127.0.0.1:9100', ...(Array.isArray(accepted) ? accepted.filter((x): x is string => typeof x === 'string') : [])]);
      if (nodes[0] !== 'http://127.0.0.1:9100' || nodes.some((n) => !okSet.has(n))) failures.push(`case ${id}: acceptNodes gave ${JSON.stringify(nodes)}`);
    }
    console.log(`dashboard fuzz: ${run} cases rendered, ${failures.length} failures`);
    expect(failures, `replay: ${replay} npx vitest run test/fuzz/dashboard.fuzz.test.ts`).toEqual([]);
    expect(run).toBe(CASES);
  }, LONG ? 1_800_000 : 60_000);

  it('the audit itself catches markup from data (it would fail an unescaped renderer)', () => {
    expect(audit('<div class="a">x</div>')).toBeUndefined();
    expect(audit('<td>0<img src=x onerror=alert(1)></td>')).toMatch(/tag <img>|malformed/);
    expect(audit('<tr data-live="1" onmouseover="x">')).toMatch(/malformed|attribute/);
    expect(audit('<b>a & b</b>')).toMatch(/bare &/);
    expect(audit('<b>a > b</b>')).toMatch(/stray >/);
    expect(audit('<tr data-live="1"x=1>')).toMatch(/malformed/);
    const D = load();
    expect(D.esc('<a href="x">\'`=&')).toBe('&lt;a href&#61;&quot;x&quot;&gt;&#39;&#96;&#61;&amp;');
    expect(D.esc({ toString: 'x' })).toBe('');
    expect(D.num('12')).toBe(12);
    expect(D.num({ valueOf: 'x' })).toBe(0);
    expect(D.num(Infinity)).toBe(0);
  });
});
