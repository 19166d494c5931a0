import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfigText, type RuleConfig, type RuleSet, type StickTableConfig } from '@stickmesh/core';
import { describe, expect, it } from 'vitest';
import { compileCond } from './acl.js';
import { compileLogFormat } from './log-format.js';
import { compileSample } from './sample.js';
import { FakeCounters, FakeHttp, fakeSource } from './testing.js';
import type { CompileEnv, CompiledCond, SampleSource, TableResolver } from './types.js';

// Every rule of the HAProxy manual examples the config parser accepts (core's fixture, with the
// manual's line numbers) must compile here and run without throwing.
const fixture = fileURLToPath(new URL('../../../core/test/fixtures/haproxy-manual-rules.cfg', import.meta.url));

describe('the HAProxy manual examples', () => {
  it('every condition, tracked sample and log-format of the fixture compiles and evaluates', () => {
    const { config } = parseConfigText(readFileSync(fixture, 'utf8'), 'haproxy-manual-rules.cfg', 'haproxy', {});
    const tables: StickTableConfig[] = [
      ...config.backends.flatMap((b) => (b.stickTable ? [b.stickTable] : [])),
      ...config.frontends.flatMap((f) => (f.stickTable ? [f.stickTable] : [])),
      ...config.peers.flatMap((p) => p.tables),
    ];
    const byName = new Map<string, FakeCounters>();
    for (const t of tables) {
      const c = new FakeCounters(t.id, t.data ?? [], t.size);
      byName.set(t.id, c);
      if (!byName.has(t.name)) byName.set(t.name, c);
    }
    const resolver: TableResolver = { counters: (n) => byName.get(n), entryCount: (n) => byName.get(n)?.count ?? 0 };
    const sections: { rules: RuleSet; own?: StickTableConfig; useBackends?: { cond?: RuleConfig['cond'] }[] }[] = [
      ...config.frontends.map((f) => ({ rules: f.rules ?? emptyRules(), own: f.stickTable, useBackends: f.useBackends })),
      ...config.backends.map((b) => ({ rules: b.rules ?? emptyRules(), own: b.stickTable })),
    ];
    const conds: CompiledCond[] = [];
    let samples = 0;
    let formats = 0;
    for (const s of sections) {
      const env: CompileEnv = { acls: new Map(s.rules.acls.map((a) => [a.name, a])), tables: resolver, ownTable: s.own?.id };
      const all = [...s.rules.tcpRequestConnection, ...s.rules.tcpRequestContent, ...s.rules.httpRequest, ...s.rules.httpResponse];
      for (const r of all) {
        if (r.cond) conds.push(compileCond(r.cond, env));
        const a = r.action;
        if (a.type === 'track-sc') {
          compileSample(a.sample, { ...env, ownTable: a.table ?? env.ownTable }, r.loc);
          samples++;
        }
        if (a.type === 'sc-set-gpt' && typeof a.value !== 'number') {
          compileSample(a.value, env, r.loc);
          samples++;
        }
        if (a.type === 'set-header' || a.type === 'add-header' || a.type === 'redirect') {
          compileLogFormat(a.value, env, r.loc);
          formats++;
        }
      }
      for (const u of s.useBackends ?? []) if (u.cond) conds.push(compileCond(u.cond, env));
      for (const a of s.rules.acls) conds.push(compileCond({ kind: 'if', or: [[{ negate: false, acl: a.name }]], loc: a.loc }, env));
    }
    expect(conds.length).toBeGreaterThan(40);
    expect(samples).toBeGreaterThan(5);
    expect(formats).toBeGreaterThanOrEqual(2);
    const sources: SampleSource[] = [
      fakeSource(),
      fakeSource({ clientIp: '127.0.0.1', ssl: true, sni: 'www.example.com', reqBytes: 10 }),
      fakeSource({ http: new FakeHttp('POST', '/images/x.png?a=1', [['Host', 'www.example.com'], ['Content-Length', '3'], ['Cookie', 'JSESSIONID=1']]) }),
      fakeSource({ http: new FakeHttp('GET', '*', [], 0) }),
    ];
    for (const c of conds) for (const src of sources) expect(typeof c(src)).toBe('boolean');
  });
});

function emptyRules(): RuleSet {
  return { acls: [], tcpRequestConnection: [], tcpRequestContent: [], httpRequest: [], httpResponse: [] };
}
