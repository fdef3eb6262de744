// Seeded randomness for the simulator: one root seed, forked into an independent stream per concern
// (network, disk, faults, clients, each core), so a run depends on nothing but its seed.

import { type RandomSource, SeededRandom } from '../../src/raft/random.js';

const TWO_POW_32 = 4294967296;

/** Mixes two integers into a well-spread 32-bit seed (a murmur3-style finalizer). */
export function mixSeed(a: number, b: number): number {
  let h = Math.imul((a >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b >>> 0, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

export class SimRandom implements RandomSource {
  private readonly source: SeededRandom;

  constructor(readonly seed: number) {
    this.source = new SeededRandom(seed);
  }

  /** An independent stream for one concern; the same label always gives the same stream. */
  fork(label: number): SimRandom {
    return new SimRandom(mixSeed(this.seed, label));
  }

  next32(): number {
    return this.source.next32();
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.source.next32() / TWO_POW_32;
  }

  /** Uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number {
    return Math.floor(this.float() * maxExclusive);
  }

  /** Uniform integer in [lo, hi], both inclusive. */
  intIn(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  floatIn(lo: number, hi: number): number {
    return lo + this.float() * (hi - lo);
  }

  chance(probability: number): boolean {
    return this.float() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('SimRandom.pick: no items');
    return items[this.int(items.length)]!;
  }

  /** Picks by weight: weights[i] is the relative chance of i. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** A new array with the items in random order. */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = out[i]!;
      out[i] = out[j]!;
      out[j] = tmp;
    }
    return out;
  }
}
