import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { TicketKeys } from '@stickmesh/core';
import { ThreadTicketKeys, keysMessage } from './keys.js';

function ring(keys: Buffer[], current: number): TicketKeys {
  return { current: () => keys[current], byName: () => undefined, all: () => keys, onChange: () => () => {} };
}

describe('ticket keys across threads', () => {
  it("mirrors the ring's keys and current key, finds a key by its name, and tells its listeners of a change", () => {
    const [a, b] = [randomBytes(48), randomBytes(48)];
    const mirror = new ThreadTicketKeys(structuredClone(keysMessage(ring([a, b], 1))));
    expect(mirror.current()!.equals(b)).toBe(true);
    expect(mirror.all().map((k) => k.toString('hex'))).toEqual([a.toString('hex'), b.toString('hex')]);
    expect(mirror.byName(a.subarray(0, 16))!.equals(a)).toBe(true);
    expect(mirror.byName(randomBytes(16))).toBeUndefined();
    let changed = 0;
    const off = mirror.onChange(() => changed++);
    const c = randomBytes(48);
    mirror.update(structuredClone(keysMessage(ring([c], 0))));
    expect(changed).toBe(1);
    expect(mirror.current()!.equals(c)).toBe(true);
    expect(mirror.byName(a.subarray(0, 16))).toBeUndefined();
    off();
    mirror.update(structuredClone(keysMessage(ring([], -1))));
    expect(changed).toBe(1);
    expect(mirror.current()).toBeUndefined();
  });
});
