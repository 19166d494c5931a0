import { describe, expect, it } from 'vitest';
import { assignSlots, type Slot, type SlotTarget } from './slots.js';

const t = (address: string, port = 80, weight = 1): SlotTarget => ({ address, port, weight });
const empty = (n: number): Slot[] => Array.from({ length: n }, () => ({ target: undefined, obsoleteSince: 0 }));
const view = (slots: Slot[]): Array<string | null> => slots.map((s) => (s.target ? `${s.target.address}:${s.target.port}` : null));

describe('assignSlots', () => {
  it('fills free slots in address order whatever the answer order', () => {
    const a = empty(4);
    const b = empty(4);
    assignSlots(a, [t('10.0.0.12'), t('10.0.0.9'), t('10.0.0.100')], 0, 0);
    assignSlots(b, [t('10.0.0.100'), t('10.0.0.12'), t('10.0.0.9')], 0, 0);
    expect(view(a)).toEqual(['10.0.0.9:80', '10.0.0.12:80', '10.0.0.100:80', null]);
    expect(view(b)).toEqual(view(a));
  });

  it('keeps a server in its slot while its address stays, and fills freed slots with new addresses', () => {
    const s = empty(3);
    assignSlots(s, [t('10.0.0.1'), t('10.0.0.2'), t('10.0.0.3')], 0, 0);
    const changed = assignSlots(s, [t('10.0.0.4'), t('10.0.0.3'), t('10.0.0.1')], 1000, 0);
    expect(view(s)).toEqual(['10.0.0.1:80', '10.0.0.4:80', '10.0.0.3:80']);
    expect(changed).toEqual([1]);
  });

  it('holds an obsolete address for hold obsolete, then frees the slot', () => {
    const s = empty(2);
    assignSlots(s, [t('10.0.0.1'), t('10.0.0.2')], 0, 5000);
    expect(assignSlots(s, [t('10.0.0.1'), t('10.0.0.3')], 1000, 5000)).toEqual([]);
    expect(view(s)).toEqual(['10.0.0.1:80', '10.0.0.2:80']);
    // Back before the hold ends: nothing moved.
    expect(assignSlots(s, [t('10.0.0.1'), t('10.0.0.2')], 3000, 5000)).toEqual([]);
    assignSlots(s, [t('10.0.0.1'), t('10.0.0.3')], 4000, 5000);
    expect(assignSlots(s, [t('10.0.0.1'), t('10.0.0.3')], 9000, 5000)).toEqual([1]);
    expect(view(s)).toEqual(['10.0.0.1:80', '10.0.0.3:80']);
  });

  it('follows SRV weight changes, tells ports apart, and ignores addresses beyond the slots', () => {
    const s = empty(2);
    assignSlots(s, [t('10.0.0.1', 8080, 1), t('10.0.0.1', 8081, 1), t('10.0.0.0', 9000)], 0, 0);
    expect(view(s)).toEqual(['10.0.0.0:9000', '10.0.0.1:8080']);
    expect(assignSlots(s, [t('10.0.0.1', 8080, 7), t('10.0.0.0', 9000)], 0, 0)).toEqual([1]);
    expect(s[1]!.target!.weight).toBe(7);
  });

  it('orders IPv6 after IPv4, numerically', () => {
    const s = empty(3);
    assignSlots(s, [t('fd00::10'), t('fd00::9'), t('10.0.0.1')], 0, 0);
    expect(view(s)).toEqual(['10.0.0.1:80', 'fd00::9:80', 'fd00::10:80']);
  });
});
