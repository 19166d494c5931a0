import { describe, expect, it } from 'vitest';
import { ReadBuffer, SHARED_READ_BYTES, isSharedRead } from './read-buffer.js';

describe('ReadBuffer', () => {
  it('reuses one buffer while the owner lets go of each read', () => {
    const rb = new ReadBuffer(4096, 65536);
    const a = rb.next();
    rb.afterRead(100, a, false);
    expect(rb.next()).toBe(a);
    rb.afterRead(4000, a, false);
    expect(rb.next()).toBe(a);
  });

  it('gives a fresh buffer after a read the owner still references, leaving the held bytes alone', () => {
    const rb = new ReadBuffer(4096, 65536);
    const a = rb.next();
    a.write('held bytes');
    rb.afterRead(10, a, true);
    const b = rb.next();
    expect(b).not.toBe(a);
    b.write('next read!');
    expect(a.subarray(0, 10).toString()).toBe('held bytes');
    expect(b.length).toBe(4096);
    // hold() after the fact (a write queued later in the same callback) works the same way.
    rb.afterRead(3, b, false);
    rb.hold();
    expect(rb.next()).not.toBe(b);
  });

  it('doubles after a read that fills the buffer, up to the maximum', () => {
    const rb = new ReadBuffer(4096, 16384);
    const sizes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const b = rb.next();
      sizes.push(b.length);
      rb.afterRead(b.length, b, false);
    }
    expect(sizes).toEqual([4096, 8192, 16384, 16384]);
    const fixed = new ReadBuffer(16384, 16384);
    const f = fixed.next();
    fixed.afterRead(16384, f, false);
    expect(fixed.next()).toBe(f);
  });
});

describe('ReadBuffer shared reads', () => {
  it('hands out the one shared buffer while shared, never holding or replacing it', () => {
    const a = new ReadBuffer(4096, 65536);
    const b = new ReadBuffer(4096, 65536);
    a.shared = true;
    b.shared = true;
    const s = a.next();
    expect(isSharedRead(s)).toBe(true);
    expect(s.length).toBe(SHARED_READ_BYTES);
    a.afterRead(s.length, s, true);
    a.hold();
    expect(a.next()).toBe(s);
    expect(b.next()).toBe(s);
  });

  it('goes back to its own buffer, made on first use, when the owner expects a body', () => {
    const rb = new ReadBuffer(4096, 65536);
    rb.shared = true;
    rb.next();
    rb.shared = false;
    const own = rb.next();
    expect(isSharedRead(own)).toBe(false);
    expect(own.length).toBe(4096);
    rb.afterRead(10, own, true); // still referenced: the next own read gets a fresh buffer
    const next = rb.next();
    expect(next).not.toBe(own);
    rb.hold(); // held after a read into the own buffer
    expect(rb.next()).not.toBe(next);
  });
});
