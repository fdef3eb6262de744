// The core's only source of randomness, injected so that a seed reproduces a run exactly.

export interface RandomSource {
  /** A uniformly distributed integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
}

/**
 * A small seeded generator (SplitMix32 feeding xorshift-style mixing) for drivers and tests that
 * have no other source. Deterministic: the same seed yields the same sequence.
 */
export class SeededRandom implements RandomSource {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A uniformly distributed 32-bit unsigned integer. */
  next32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  int(maxExclusive: number): number {
    return this.next32() % maxExclusive;
  }
}
