import { describe, expect, it } from 'vitest';
import { countersText } from './ops.js';

describe('table counters / explain output', () => {
  it("prints one row per node's share and the sum, a column per counter", () => {
    const text = countersText({
      table: 'mesh/rl',
      mode: 'cluster',
      key: '10.0.0.1',
      expiresInMs: 1500,
      total: { 'http_req_rate(10s)': 10, conn_cur: 3 },
      nodes: [
        { node: 'n1', values: { 'http_req_rate(10s)': 4, conn_cur: 1 } },
        { node: 'n2', values: { 'http_req_rate(10s)': 6, conn_cur: 2 } },
      ],
    });
    expect(text.split('\n')).toEqual([
      'counters mesh/rl key 10.0.0.1 (cluster), expires in 1.5s',
      'NODE  http_req_rate(10s)  conn_cur',
      'n1    4                   1',
      'n2    6                   2',
      'sum   10                  3',
      '',
    ]);
  });
});
