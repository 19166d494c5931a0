import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { backoffMs } from './backoff.js';
import { decode, encode, ProtocolError } from './codec.js';
import { compareSchemas, computeMac } from './handshake.js';

describe('codec', () => {
  it('round-trips update batches in the compact array layout', () => {
    const u = { key: '1.2.3.4', server: 's1', ttl: 1000, wall: 1700000000000, counter: 3, node: 'a', connCnt: 1, httpReqCnt: 2 };
    const buf = encode({ t: 'u', table: 't1', seq: 7, updates: [u] });
    expect(decode(buf)).toEqual({ t: 'u', table: 't1', seq: 7, updates: [u] });
    expect(Buffer.from(pack({ t: 'u', table: 't1', seq: 7, updates: [['1.2.3.4', 's1', 1000, 1700000000000, 3, 'a', 1, 2]] })).equals(buf)).toBe(true);
  });

  it('rejects malformed frames with stable reasons', () => {
    const reason = (b: Buffer) => {
      try {
        decode(b);
      } catch (e) {
        return (e as ProtocolError).reason;
      }
      return 'accepted';
    };
    expect(reason(Buffer.from([0xc1]))).toBe('malformed-frame');
    expect(reason(pack([1, 2]))).toBe('malformed-frame');
    expect(reason(pack({ t: 'zzz' }))).toBe('unexpected-message');
    expect(reason(pack({ t: 'ack', table: 't1', seq: -1 }))).toBe('malformed-frame');
    expect(reason(pack({ t: 'u', table: 't1', seq: 1, updates: [['k', 's', 1, 2, 3, 'n', 0]] }))).toBe('malformed-frame');
    expect(reason(pack({ t: 'hello', proto: 1, cluster: 'c', node: 'n', nonce: Buffer.alloc(8) }))).toBe('malformed-frame');
  });
});

describe('handshake', () => {
  it('MACs bind role, both nonces, both names and the cluster', () => {
    const n1 = Buffer.alloc(32, 1);
    const n2 = Buffer.alloc(32, 2);
    const base = computeMac('k', 'c', n1, n2, 'a', 'b', 'c1');
    expect(computeMac('k', 's', n1, n2, 'a', 'b', 'c1')).not.toEqual(base);
    expect(computeMac('k', 'c', n2, n1, 'a', 'b', 'c1')).not.toEqual(base);
    expect(computeMac('k', 'c', n1, n2, 'a', 'b', 'c2')).not.toEqual(base);
    expect(computeMac('k2', 'c', n1, n2, 'a', 'b', 'c1')).not.toEqual(base);
    expect(computeMac('k', 'c', n1, n2, 'ab', '', 'c1')).not.toEqual(computeMac('k', 'c', n1, n2, 'a', 'b', 'c1'));
  });

  it('requires identical table sets and schemas', () => {
    const t = { id: 't1', type: 'ip', keyLen: 16 };
    expect(compareSchemas([t], [t])).toBeNull();
    expect(compareSchemas([t], [{ ...t, keyLen: 4 }])?.reason).toBe('table-mismatch');
    expect(compareSchemas([t], [])?.reason).toBe('unknown-table');
    expect(compareSchemas([], [t])?.reason).toBe('unknown-table');
  });
});

describe('backoff', () => {
  it('grows from 100 ms to a 5 s cap with ±30% jitter', () => {
    expect(backoffMs(0, () => 0)).toBe(70);
    expect(backoffMs(0, () => 1)).toBe(130);
    expect(backoffMs(3, () => 0.5)).toBe(800);
    expect(backoffMs(50, () => 1)).toBe(6500);
    expect(backoffMs(50, () => 0)).toBe(3500);
  });
});
