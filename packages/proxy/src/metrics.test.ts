import { describe, expect, it } from 'vitest';
import client from 'prom-client';
import { MAX_SERIES_PAIRS, METRICS_CONTENT_TYPE, ProxyMetrics } from './metrics.js';
import type { RuntimeServer } from './runtime/server.js';

const server = (name: string): RuntimeServer => ({ name }) as unknown as RuntimeServer;

describe('data-plane metrics', () => {
  it('serves the content type of prom-client, which it loads only on the first scrape', () => {
    expect(new ProxyMetrics().contentType).toBe(client.Registry.PROMETHEUS_CONTENT_TYPE);
    expect(METRICS_CONTENT_TYPE).toBe(new client.Registry().contentType);
  });

  it('exposes gauges registered before and after the first scrape; a name registered again replaces the gauge', async () => {
    const m = new ProxyMetrics();
    m.gauge('t_early', 'registered before the registry exists', ['k'], (set) => set({ k: 'a' }, 1));
    m.gauge('t_early', 'registered again before the first scrape', ['k'], (set) => set({ k: 'a' }, 2));
    const first = await m.text();
    expect(first).toContain('# HELP t_early registered again before the first scrape');
    expect(first).toContain('t_early{k="a"} 2');
    m.gauge('t_late', 'registered after the first scrape', [], (set) => set({}, 7));
    m.gauge('t_early', 'replaced after the first scrape', ['k'], (set) => set({ k: 'b' }, 3));
    const second = await m.text();
    expect(second).toContain('t_late 7');
    expect(second).toContain('t_early{k="b"} 3');
    expect(second).not.toContain('t_early{k="a"}');
    expect(second.match(/# TYPE t_early gauge/g)).toHaveLength(1);
  });

  it('records nothing until enabled', async () => {
    const m = new ProxyMetrics();
    m.http('app', server('web1'), 200, 3, false, 'N', 'I', 'balance', '');
    expect(await m.text()).not.toMatch(/stickmesh_requests_total\{/);
  });

  it('exposes counters, a cumulative histogram and flag counts in Prometheus text', async () => {
    const m = new ProxyMetrics();
    m.enable();
    const web1 = server('web1');
    m.http('app', web1, 200, 0.5, false, 'N', 'I', 'balance', 'miss');
    m.http('app', web1, 204, 3, false, 'V', '-', 'cookie', 'hit');
    m.http('app', web1, 503, 40_000, true, 'V', '-', 'cookie', 'hit');
    m.http('app', undefined, 503, 1, true, '-', '-', '', '');
    m.tcp('db', server('pg1'), 20, false, 'stick');
    const text = await m.text();
    expect(text).toContain('stickmesh_requests_total{backend="app",server="web1",code="2xx"} 2');
    expect(text).toContain('stickmesh_requests_total{backend="app",server="web1",code="5xx"} 1');
    expect(text).toContain('stickmesh_requests_total{backend="app",server="<NOSRV>",code="5xx"} 1');
    expect(text).toContain('stickmesh_requests_total{backend="db",server="pg1",code="tcp"} 1');
    expect(text).toContain('stickmesh_errors_total{backend="app",server="web1"} 1');
    // 0.5 ms and 3 ms fall into le=0.001 and le=0.005; 40 s only into +Inf.
    expect(text).toContain('stickmesh_request_duration_seconds_bucket{le="0.001",backend="app",server="web1"} 1');
    expect(text).toContain('stickmesh_request_duration_seconds_bucket{le="0.0025",backend="app",server="web1"} 1');
    expect(text).toContain('stickmesh_request_duration_seconds_bucket{le="0.005",backend="app",server="web1"} 2');
    expect(text).toContain('stickmesh_request_duration_seconds_bucket{le="30",backend="app",server="web1"} 2');
    expect(text).toContain('stickmesh_request_duration_seconds_bucket{le="+Inf",backend="app",server="web1"} 3');
    expect(text).toContain('stickmesh_request_duration_seconds_count{backend="app",server="web1"} 3');
    expect(text).toContain('stickmesh_request_duration_seconds_sum{backend="app",server="web1"} 40.0035');
    expect(text).toContain('stickmesh_persistence_total{backend="app",request="N",response="I"} 1');
    expect(text).toContain('stickmesh_persistence_total{backend="app",request="V",response="-"} 2');
    expect(text).toContain('stickmesh_decisions_total{backend="app",by="cookie"} 2');
    expect(text).toContain('stickmesh_decisions_total{backend="db",by="stick"} 1');
    expect(text).toContain('stickmesh_stick_lookups_total{backend="app",result="hit"} 2');
    expect(text).toMatch(/# TYPE stickmesh_request_duration_seconds histogram/);
    expect(m.totals(web1)).toMatchObject({ requests: 3, errors: 1 });
  });

  it('continues the same series when a reload brings a new server object with the same name', async () => {
    const m = new ProxyMetrics();
    m.enable();
    m.http('app', server('web1'), 200, 1, false, '-', '-', '', '');
    m.http('app', server('web1'), 200, 1, false, '-', '-', '', '');
    const text = await m.text();
    expect(text.match(/stickmesh_requests_total\{backend="app",server="web1",code="2xx"\} (\d+)/)?.[1]).toBe('2');
  });

  it(`puts pairs beyond ${MAX_SERIES_PAIRS} into one <other> series`, async () => {
    const m = new ProxyMetrics();
    m.enable();
    for (let i = 0; i < MAX_SERIES_PAIRS + 5; i++) m.http('app', server(`s${i}`), 200, 1, false, '-', '-', '', '');
    const text = await m.text();
    expect(text).toContain('stickmesh_requests_total{backend="<other>",server="<other>",code="2xx"} 5');
    expect(text.match(/stickmesh_requests_total\{/g)?.length).toBe(MAX_SERIES_PAIRS + 1);
  });
});
