import { describe, expect, it } from 'vitest';
import { userSizesYoungGen } from './young-gen.js';

describe('young generation cap', () => {
  it('leaves V8 alone when the user sizes the young generation on the command line or in NODE_OPTIONS', () => {
    expect(userSizesYoungGen([], undefined)).toBe(false);
    expect(userSizesYoungGen(['--enable-source-maps'], '--max-old-space-size=512')).toBe(false);
    expect(userSizesYoungGen(['--max-semi-space-size=16'], undefined)).toBe(true);
    expect(userSizesYoungGen([], '--max-semi-space-size=4')).toBe(true);
    expect(userSizesYoungGen([], '--trace-gc --min_semi_space_size=2')).toBe(true);
    expect(userSizesYoungGen(['--semi-space-growth-factor=4'], '')).toBe(true);
  });
});
