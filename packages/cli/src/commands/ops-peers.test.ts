import { describe, expect, it } from 'vitest';
import { peerRow } from './ops.js';

const base = { peer: 'node1', sent: 3, received: 4, bytesSent: 10, bytesReceived: 20, reconnects: 0, refusals: {}, lagMs: 8, pending: 2, lastAckAgoMs: 2300 };

describe('stickmesh peers rows', () => {
  it('a live peer shows its lag and pending count', () => {
    const row = peerRow({ ...base, state: 'live', lastDataAt: Date.now() });
    expect(row.slice(0, 4)).toEqual(['node1', 'live', '8ms', 2]);
  });

  it("a dead peer shows no stale lag or pending, and since when nothing came from it", () => {
    const at = new Date('2026-12-07T13:52:09Z').getTime();
    const row = peerRow({ ...base, state: 'down', lastDataAt: at, lastError: 'closed 1006' });
    expect(row[1]).toBe(`down (no data since ${new Date(at).toTimeString().slice(0, 8)})`);
    expect(row[2]).toBe('-');
    expect(row[3]).toBe('-');
    expect(row[4]).toBe('2.3s ago');
    expect(row.at(-1)).toBe('closed 1006');
  });

  it('a peer never heard from says only its state', () => {
    expect(peerRow({ ...base, state: 'connecting', lastAckAgoMs: undefined }).slice(1, 5)).toEqual(['connecting', '-', '-', 'never']);
  });
});
