import { describe, expect, it } from 'vitest';
import { LogSampler } from './log-sampler.js';
import { clip, remoteReason, REFUSAL_REASONS } from './refusals.js';
import { TokenBuckets } from './token-buckets.js';

describe('TokenBuckets', () => {
  it('allows a burst of failures, then refills at the rate', () => {
    const b = new TokenBuckets(3, 2, 10);
    for (let i = 0; i < 3; i++) {
      expect(b.over('s', 0)).toBe(false);
      b.take('s', 0);
    }
    expect(b.over('s', 0)).toBe(true);
    expect(b.over('s', 499)).toBe(true);
    expect(b.over('s', 500)).toBe(false);
    expect(b.over('other', 0)).toBe(false);
  });

  it('stays within maxSources: refilled buckets are pruned, then the oldest is dropped', () => {
    const b = new TokenBuckets(2, 1, 3);
    for (const s of ['a', 'b', 'c']) b.take(s, 0);
    b.take('d', 0);
    expect(b.size).toBe(3);
    expect(b.over('a', 0)).toBe(false); // 'a' was dropped: a full budget again
    b.take('a', 0);
    b.take('a', 0);
    expect(b.over('a', 0)).toBe(true);
    b.prune(10_000);
    expect(b.size).toBe(0);
  });
});

describe('LogSampler', () => {
  it('lets one line per key and interval through and reports what it suppressed', () => {
    const s = new LogSampler(1000, 10);
    expect(s.admit('k', 0)).toBe(0);
    expect(s.admit('k', 10)).toBe(-1);
    expect(s.admit('k', 20)).toBe(-1);
    expect(s.admit('j', 20)).toBe(0);
    expect(s.admit('k', 1000)).toBe(2);
    expect(s.admit('k', 1001)).toBe(-1);
  });

  it('stays within maxKeys: new keys share one overflow window when full', () => {
    const s = new LogSampler(1000, 2);
    expect(s.admit('a', 0)).toBe(0);
    expect(s.admit('b', 0)).toBe(0);
    expect(s.admit('c', 0)).toBe(0); // first line of the overflow window
    expect(s.admit('d', 0)).toBe(-1);
    expect(s.size).toBe(3);
    s.prune(5000);
    expect(s.size).toBe(0);
  });
});

describe('refusal reasons', () => {
  it('maps remote text outside the closed set to "other" and clips it', () => {
    expect(remoteReason('bad-secret')).toBe('bad-secret');
    expect(remoteReason('bad-secret ')).toBe('other');
    expect(remoteReason('__proto__')).toBe('other');
    expect(new Set(REFUSAL_REASONS).size).toBe(REFUSAL_REASONS.length);
    expect(clip('x'.repeat(1024))).toHaveLength(65);
    expect(clip('short')).toBe('short');
  });
});
