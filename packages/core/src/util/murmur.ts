/**
 * murmur3 (32-bit) building blocks shared by every hash in the project (balancing, table index,
 * digests): `mixWord` folds one 32-bit word into the state, `fmix32` is the finalizer — a
 * bijection on uint32 where each input bit flips each output bit with probability close to 1/2, so
 * nearby inputs (consecutive IPs, similar names) land far apart, including in the low bits.
 */
export function mixWord(h: number, x: number): number {
  x = Math.imul(x, 0xcc9e2d51);
  x = (x << 15) | (x >>> 17);
  x = Math.imul(x, 0x1b873593);
  h ^= x;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
