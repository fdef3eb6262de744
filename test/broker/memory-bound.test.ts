// The bound on memory-topic data, its pieces alone: the default (a quarter of the memory, whole
// MiB) and the batch estimate (never short of what encodeBatch makes). In use: memory-topics.test.ts.

import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { batchBytesEstimate, defaultMemoryTopicsBytesMax } from '../../src/broker/memory-bound.js';
import { encodeBatch } from '../../src/broker/record-batch.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('memory-topic bound', () => {
  it('defaults to a quarter of the memory available, in whole MiB', () => {
    const bound = defaultMemoryTopicsBytesMax();
    expect(bound % (1024 * 1024)).toBe(0);
    expect(bound).toBeGreaterThan(0);
    expect(bound).toBeLessThanOrEqual(os.totalmem() / 4);
    expect(bound).toBeGreaterThan(
      Math.min(os.totalmem(), process.constrainedMemory() || Infinity) / 4 - 2 ** 20,
    );
  });

  it('estimates a batch at least at its encoded size', () => {
    const batches = [
      [{ key: null, value: bytes('x'), headers: null }],
      [
        {
          key: bytes('key'),
          value: bytes('v'.repeat(1000)),
          headers: [['trace', bytes('abc')]] as [string, Uint8Array][],
        },
      ],
      Array.from({ length: 100 }, (_, i) => ({
        key: bytes(`k${i}`),
        value: bytes('v'.repeat(i)),
        headers: [['é-header', null]] as [string, Uint8Array | null][],
      })),
    ];
    for (const records of batches) {
      const stamped = records.map((r) => ({ ...r, timestampMs: 1 }));
      const encoded = encodeBatch(
        7,
        stamped,
        { id: 'producer-id-of-30-characters..', epoch: 1, sequence: 2 },
        1,
      );
      expect(batchBytesEstimate(records)).toBeGreaterThanOrEqual(encoded.length);
    }
  });
});
