// CRC32C: the native path (long ranges) and the table (short ranges, or no native module) agree on
// every range and seed, and both give the standard check value.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cImplementation, crc32cTable } from '../../src/storage/crc32c.js';

describe('crc32c', () => {
  it('gives the check value of "123456789" (0xE3069283) both ways', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32c(check)).toBe(0xe3069283);
    expect(crc32cTable(check)).toBe(0xe3069283);
    const long = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
    expect(crc32c(long)).toBe(crc32cTable(long));
  });

  it('uses the native CRC on this platform (linux x64 has a prebuilt binary)', () => {
    if (process.platform === 'linux' && process.arch === 'x64') expect(crc32cImplementation).toBe('native');
  });

  it('agrees with the table on any range of any view, continuing from any seed', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.nat({ max: 16 }),
        (data, a, b, seed, shift) => {
          // A view that does not start at its buffer's beginning, as frames inside a read are.
          const backing = new Uint8Array(data.length + shift);
          backing.set(data, shift);
          const bytes = backing.subarray(shift);
          const start = data.length === 0 ? 0 : a % data.length;
          const end = start + (data.length === 0 ? 0 : b % (data.length - start + 1));
          expect(crc32c(bytes, start, end, seed)).toBe(crc32cTable(bytes, start, end, seed));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('continues a CRC across pieces as over the whole', () => {
    const whole = new Uint8Array(2000).map((_, i) => (i * 13 + 5) & 0xff);
    const first = crc32c(whole, 0, 700);
    expect(crc32c(whole, 700, 2000, first)).toBe(crc32c(whole));
  });
});
