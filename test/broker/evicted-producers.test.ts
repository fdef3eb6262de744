// The digests of evicted producers: a bounded ring in eviction order with a hash index, checked
// against a plain array model (pushes, drops of the oldest, expiry, growth, snapshot round trip).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EVICTED_DIGEST_BYTES,
  EvictedProducers,
  type ProducerIdHash,
  producerIdHash,
} from '../../src/broker/evicted-producers.js';

interface Digest {
  hash: ProducerIdHash;
  epoch: number;
  lastSequence: number;
  lastWriteMs: number;
}

/** The model: the last `capacity` pushes; find() is the newest with the hash. */
class Model {
  readonly digests: Digest[] = [];
  constructor(readonly capacity: number) {}
  push(d: Digest): boolean {
    this.digests.push(d);
    if (this.digests.length <= this.capacity) return false;
    this.digests.shift();
    return true;
  }
  find(hash: ProducerIdHash): Omit<Digest, 'hash'> | null {
    for (let i = this.digests.length - 1; i >= 0; i--) {
      const d = this.digests[i]!;
      if (d.hash.high === hash.high && d.hash.low === hash.low) {
        return { epoch: d.epoch, lastSequence: d.lastSequence, lastWriteMs: d.lastWriteMs };
      }
    }
    return null;
  }
}

describe('evicted producer digests', () => {
  it('hashes an id the same way every time, and different ids apart', () => {
    expect(producerIdHash('p-7f3a')).toEqual(producerIdHash('p-7f3a'));
    expect(producerIdHash('p-7f3a')).not.toEqual(producerIdHash('p-7f3b'));
    // Pinned: a change of hash would make replicas of different versions disagree.
    expect(producerIdHash('p-7f3a')).toMatchInlineSnapshot(`
      {
        "high": 3314964521,
        "low": 3766685994,
      }
    `);
  });

  it('remembers the last capacityMax pushes, the newest per hash, like the model', () => {
    // Few distinct hashes with colliding index homes (low bits), so that probe runs form, wrap
    // and lose members; times only grow, as evictions do.
    const digest = fc.record({
      hash: fc.record({ high: fc.integer({ min: 0, max: 3 }), low: fc.integer({ min: 0, max: 40 }) }),
      epoch: fc.nat({ max: 0xffff_ffff }),
      lastSequence: fc.nat({ max: 0xffff_ffff }),
      step: fc.nat({ max: 5 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.array(digest, { maxLength: 200, size: 'max' }),
        fc.nat({ max: 20 }),
        (capacity, pushes, expiryMs) => {
          const ring = new EvictedProducers(capacity);
          const model = new Model(capacity);
          let clockMs = 0;
          for (const { step, ...d } of pushes) {
            clockMs += step;
            const full = { ...d, lastWriteMs: clockMs };
            expect(ring.push(d.hash, full)).toBe(model.push(full));
            expect(ring.size).toBe(model.digests.length);
            expect(ring.find(d.hash)).toEqual(model.find(d.hash));
          }
          for (const { hash } of pushes) expect(ring.find(hash)).toEqual(model.find(hash));
          // A snapshot keeps exactly the live digests; expiry drops a prefix.
          const restored = new EvictedProducers(capacity);
          restored.restore(ring.encode(clockMs, expiryMs + 1));
          ring.dropExpired(clockMs, expiryMs + 1);
          while (model.digests.length > 0 && clockMs - model.digests[0]!.lastWriteMs >= expiryMs + 1) {
            model.digests.shift();
          }
          for (const r of [ring, restored]) {
            expect(r.size).toBe(model.digests.length);
            for (const { hash } of pushes) expect(r.find(hash)).toEqual(model.find(hash));
          }
          expect(restored.encode(clockMs, expiryMs + 1)).toBe(ring.encode(clockMs, expiryMs + 1));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('grows by doubling and never past capacityMax; a snapshot takes 24 bytes per digest', () => {
    const ring = new EvictedProducers(3000);
    for (let i = 0; i < 10_000; i++) {
      ring.push(producerIdHash(`p${i}`), { epoch: 0, lastSequence: i, lastWriteMs: i });
    }
    expect(ring.size).toBe(3000);
    expect(ring.find(producerIdHash('p6999'))).toBeNull();
    expect(ring.find(producerIdHash('p7000'))).toEqual({ epoch: 0, lastSequence: 7000, lastWriteMs: 7000 });
    expect(Buffer.from(ring.encode(10_000, 1e9), 'base64').length).toBe(3000 * EVICTED_DIGEST_BYTES);
  });

  it('remembers nothing with capacityMax 0: every push is forgotten at once', () => {
    const ring = new EvictedProducers(0);
    expect(ring.push(producerIdHash('a'), { epoch: 0, lastSequence: 0, lastWriteMs: 0 })).toBe(true);
    expect([ring.size, ring.find(producerIdHash('a')), ring.encode(0, 1)]).toEqual([0, null, '']);
  });

  it('keeps the newest capacityMax digests of a snapshot that holds more', () => {
    const big = new EvictedProducers(10);
    for (let i = 0; i < 10; i++)
      big.push(producerIdHash(`p${i}`), { epoch: i, lastSequence: 0, lastWriteMs: i });
    const small = new EvictedProducers(4);
    small.restore(big.encode(10, 100));
    expect(small.size).toBe(4);
    expect(small.find(producerIdHash('p5'))).toBeNull();
    expect(small.find(producerIdHash('p6'))).toEqual({ epoch: 6, lastSequence: 0, lastWriteMs: 6 });
  });

  it('treats a snapshot of the wrong length as corruption', () => {
    expect(() => new EvictedProducers(4).restore(Buffer.alloc(25).toString('base64'))).toThrow(/25 bytes/);
  });
});
