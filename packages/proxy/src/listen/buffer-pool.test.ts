import { describe, expect, it } from 'vitest';
import { MAX_SPARE, SPARE_SIZE, giveBuffer, spareCount, takeBuffer } from './buffer-pool.js';

describe('buffer pool', () => {
  it('hands back given 4 KiB buffers, keeps at most MAX_SPARE, and ignores other sizes', () => {
    const start = spareCount();
    const a = takeBuffer(SPARE_SIZE);
    giveBuffer(a);
    expect(spareCount()).toBe(start + 1);
    expect(takeBuffer(SPARE_SIZE)).toBe(a);
    giveBuffer(Buffer.allocUnsafe(SPARE_SIZE * 2));
    expect(spareCount()).toBe(start);
    const many = Array.from({ length: MAX_SPARE + 10 }, () => Buffer.allocUnsafe(SPARE_SIZE));
    for (const b of many) giveBuffer(b);
    expect(spareCount()).toBe(MAX_SPARE);
    while (spareCount() > start) takeBuffer(SPARE_SIZE);
  });
});
