/**
 * Slot assignment for `server-template PREFIX N NAME`: which discovered address each of the N
 * servers holds. The result depends only on the previous slots and the *set* of addresses in the
 * answer (never on answer order), so nodes that see the same answers make the same assignment, and
 * a server keeps its slot for as long as its address stays in the answers.
 *
 * Rules, applied in this order on every answer:
 * 1. a slot whose address is in the answer keeps it (its weight follows the answer);
 * 2. a slot whose address left the answer is obsolete from that moment; once it has been obsolete
 *    for `holdObsolete` ms it is freed (an address that comes back before that simply stays);
 * 3. addresses held by no slot, in ascending address order, fill the free slots in ascending slot
 *    order; addresses beyond the free slots wait for a later answer.
 */

export interface SlotTarget {
  /** IP literal. */
  address: string;
  port: number;
  /** 0..256 (from an SRV record's weight, else the template's weight). */
  weight: number;
}

export interface Slot {
  target: SlotTarget | undefined;
  /** When the target left the answers (ms), 0 while it is in them. */
  obsoleteSince: number;
}

export function targetKey(t: SlotTarget): string {
  return `${t.address}:${t.port}`;
}

/** Total order on targets: IPv4 before IPv6, then numerically by address, then port. */
export function compareTargets(a: SlotTarget, b: SlotTarget): number {
  const fa = a.address.includes(':') ? 1 : 0;
  const fb = b.address.includes(':') ? 1 : 0;
  if (fa !== fb) return fa - fb;
  const ka = addressSortKey(a.address);
  const kb = addressSortKey(b.address);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.port - b.port;
}

function addressSortKey(a: string): string {
  if (!a.includes(':')) return a.split('.').map((p) => p.padStart(3, '0')).join('.');
  const [head = '', tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => g.padStart(4, '0').toLowerCase()).join(':');
}

/**
 * Applies one answer to `slots` in place and returns the indexes whose target changed (address,
 * port or weight), in ascending order.
 */
export function assignSlots(slots: Slot[], answer: readonly SlotTarget[], now: number, holdObsolete: number): number[] {
  const wanted = new Map<string, SlotTarget>();
  for (const t of [...answer].sort(compareTargets)) if (!wanted.has(targetKey(t))) wanted.set(targetKey(t), t);
  const changed = new Set<number>();
  const held = new Set<string>();
  slots.forEach((slot, i) => {
    if (!slot.target) return;
    const k = targetKey(slot.target);
    const fresh = wanted.get(k);
    if (fresh) {
      held.add(k);
      slot.obsoleteSince = 0;
      if (fresh.weight !== slot.target.weight) {
        slot.target = fresh;
        changed.add(i);
      }
      return;
    }
    if (slot.obsoleteSince === 0) slot.obsoleteSince = now;
    if (now - slot.obsoleteSince >= holdObsolete) {
      slot.target = undefined;
      slot.obsoleteSince = 0;
      changed.add(i);
    } else {
      held.add(k);
    }
  });
  let free = 0;
  for (const [k, t] of wanted) {
    if (held.has(k)) continue;
    while (free < slots.length && slots[free]!.target) free++;
    if (free >= slots.length) break;
    slots[free] = { target: t, obsoleteSince: 0 };
    changed.add(free);
  }
  return [...changed].sort((a, b) => a - b);
}
