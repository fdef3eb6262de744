// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven slicing-by-8.
// Measured on this machine (bench/storage.ts prints it): 1.1 to 1.3 GB/s in one thread, fast enough
// that a frame's checksum costs a small fraction of its write; no native dependency to install.

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
