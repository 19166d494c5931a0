import { describe, expect, it } from 'vitest';
import { didYouMean, distance, meanHint, MAX_SUGGEST_WORD } from './suggest.js';

describe('didYouMean', () => {
  const kws = ['timeout', 'balance', 'server', 'option', 'cookie', 'check', 'redispatch', 'roundrobin', 'leastconn', 'stick', 'stick-table'];

  it('suggests the nearest keyword for a typo, a missing letter, an extra one or two swapped', () => {
    expect(didYouMean('timout', kws)).toBe('timeout');
    expect(didYouMean('chek', kws)).toBe('check');
    expect(didYouMean('redispach', kws)).toBe('redispatch');
    expect(didYouMean('roundrobn', kws)).toBe('roundrobin');
    expect(didYouMean('blaance', kws)).toBe('balance');
    expect(didYouMean('sevrer', kws)).toBe('server');
    expect(didYouMean('COOKIE', kws)).toBeUndefined(); // the word itself, case aside
    expect(didYouMean('Cookei', kws)).toBe('cookie');
  });

  it('suggests nothing when no candidate is near enough for the length', () => {
    expect(didYouMean('frobnicate', kws)).toBeUndefined();
    expect(didYouMean('x', ['no', 'ssl'])).toBeUndefined();
    expect(didYouMean('abcd', ['wxyz'])).toBeUndefined();
    expect(didYouMean('', kws)).toBeUndefined();
    expect(didYouMean('t'.repeat(MAX_SUGGEST_WORD + 1), ['t'.repeat(MAX_SUGGEST_WORD)])).toBeUndefined();
  });

  it('prefers the nearer candidate, then the first one listed', () => {
    expect(didYouMean('stick-tabel', kws)).toBe('stick-table');
    expect(didYouMean('ab', ['ax', 'ay'])).toBe('ax');
  });

  it('counts a swap of neighbours as one edit and stops past the limit', () => {
    expect(distance('ab', 'ba')).toBe(1);
    expect(distance('kitten', 'sitting')).toBe(3);
    expect(distance('aaaaaaaa', 'bbbbbbbb', 2)).toBe(3);
    expect(meanHint('chek', kws)).toBe(`; did you mean 'check'?`);
    expect(meanHint('zzzzzz', kws)).toBe('');
  });
});
