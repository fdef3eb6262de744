// CRC32C (Castagnoli, reflected polynomial 0x82F63B78). Ranges of NATIVE_BYTES_MIN bytes or more
// go to @node-rs/crc32 (the CPU's CRC32 instruction: about 6 GB/s on this machine, five times the
// table); shorter ones, where the call into native code costs more than it saves, and every range
// when the native module cannot load, use the table-driven slicing-by-8 below (1.1 to 1.3 GB/s).

import { createRequire } from 'node:module';

/** From this many bytes the native CRC is faster (measured: 128 B slower, 1,500 B three times faster). */
const NATIVE_BYTES_MIN = 512;

type NativeCrc32c = (input: Buffer, initialState?: number) => number;

function loadNative(): NativeCrc32c | null {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc32c }).crc32c;
  } catch {
    return null; // No prebuilt binary for this platform: the table below is correct, only slower.
  }
}

const native = loadNative();

/** Which implementation long ranges use (bench/storage.ts prints it). */
export const crc32cImplementation: 'native' | 'table' = native ? 'native' : 'table';

const POLYNOMIAL = 0x82f63b78;

/** TABLES[k * 256 + b]: CRC of byte b followed by k zero bytes (slicing-by-8 needs k = 0..7). */
const TABLES = buildTables();

function buildTables(): Uint32Array {
  const tables = new Uint32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let crc = b;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    tables[b] = crc >>> 0;
  }
  for (let k = 1; k < 8; k++) {
    for (let b = 0; b < 256; b++) {
      const previous = tables[(k - 1) * 256 + b]!;
      tables[k * 256 + b] = (tables[previous & 0xff]! ^ (previous >>> 8)) >>> 0;
    }
  }
  return tables;
}

/** CRC32C of bytes[start, end), continuing from `seed` (the CRC of what came before, 0 at first). */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length, seed = 0): number {
  if (native !== null && end - start >= NATIVE_BYTES_MIN) {
    return native(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start), seed);
  }
  return crc32cTable(bytes, start, end, seed);
}

/** The table-driven CRC32C (exported for tests that hold the two implementations together). */
export function crc32cTable(bytes: Uint8Array, start = 0, end = bytes.length, seed = 0): number {
  const t = TABLES;
  let crc = ~seed;
  let i = start;
  // Eight bytes per step through eight tables; JS has no unaligned word loads that beat byte
  // loads, so the body assembles two 32-bit words from bytes. The last 0..7 bytes go one by one.
  const bodyEnd = end - ((end - i) & 7);
  while (i < bodyEnd) {
    const lo =
      (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    const hi = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    crc =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + (hi & 0xff)]! ^
      t[512 + ((hi >>> 8) & 0xff)]! ^
      t[256 + ((hi >>> 16) & 0xff)]! ^
      t[(hi >>> 24) & 0xff]!;
    i += 8;
  }
  while (i < end) {
    crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
    i++;
  }
  return ~crc >>> 0;
}
