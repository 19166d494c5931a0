/**
 * Seeded pseudo-random numbers (mulberry32) for chaos schedules and fuzzers: the same seed gives
 * the same sequence, so a failing run is replayed with its seed.
 */
export class Rng {
  private s: number;

  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[Math.floor(this.next() * xs.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
}

/** The seed from `envName` (decimal or 0x hex), else a fresh random one. */
export function seedFrom(envName: string): number {
  const v = process.env[envName];
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${envName}=${v} is not a non-negative integer`);
    return n >>> 0;
  }
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}

/** What a fuzz target runs: `long` under FUZZ_LONG=1, `cases`, the seed, and the env line that replays it. */
export interface FuzzRun {
  long: boolean;
  cases: number;
  seed: number;
  replay: string;
}

/**
 * The run of a fuzz target: FUZZ_CASES cases if set, else 100,000 under FUZZ_LONG=1 and
 * `shortCases` otherwise; the seed from FUZZ_SEED (else a fresh one); `replay` is
 * `FUZZ_SEED=... FUZZ_CASES=...` for failure messages.
 */
export function fuzzRun(shortCases: number): FuzzRun {
  const long = process.env.FUZZ_LONG === '1';
  const cases = Number(process.env.FUZZ_CASES ?? (long ? 100_000 : shortCases));
  const seed = seedFrom('FUZZ_SEED');
  return { long, cases, seed, replay: `FUZZ_SEED=${seed} FUZZ_CASES=${cases}` };
}

/** The same generator as a bare function, for tests that only need `() => number` in [0, 1). */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}
