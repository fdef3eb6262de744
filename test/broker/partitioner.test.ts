// The key partitioner must agree with Kafka's, byte for byte.

import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey, RoundRobin } from '../../src/broker/partitioner.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('murmur2 (Kafka compatible)', () => {
  // Vectors from Apache Kafka's UtilsTest and from Akka's Murmur2Spec (checked against Kafka).
  const vectors: Array<[string, number]> = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
    ['1', -1993445489],
    ['12', 126087238],
    ['123', -267702483],
    ['1234', -1614185708],
    ['12345', -1188365604],
  ];
  for (const [input, expected] of vectors) {
    it(`murmur2("${input}") = ${expected}`, () => {
      expect(murmur2(bytes(input))).toBe(expected);
    });
  }

  it('hashes the empty key (an empty string is a key, as in Kafka)', () => {
    expect(partitionForKey(new Uint8Array(0), 7)).toBe((murmur2(new Uint8Array(0)) & 0x7fffffff) % 7);
  });

  it('maps keys to partitions with the positive-hash rule', () => {
    // toPositive(-973932308) = 1173551340, and 1173551340 % 3 = 0.
    expect(partitionForKey(bytes('21'), 3)).toBe(1173551340 % 3);
    for (let i = 0; i < 200; i++) {
      const p = partitionForKey(bytes(`key-${i}`), 5);
      expect(p >= 0 && p < 5).toBe(true);
    }
  });

  it('round-robin cycles through every partition', () => {
    const rr = new RoundRobin();
    expect([0, 1, 2, 3].map(() => rr.pick(3))).toEqual([0, 1, 2, 0]);
  });
});
