// Splits a byte stream into lines with a bound on line length, for NDJSON streams and for the
// CLI's one-record-per-line stdin. Splitting on the 0x0A byte is safe in UTF-8 (it never occurs
// inside a multi-byte character), so chunks are decoded only once a whole line is known.

export class LineTooLongError extends Error {
  override readonly name = 'LineTooLongError';
  constructor(
    readonly lineNumber: number,
    readonly lineBytesMax: number,
  ) {
    super(`line ${lineNumber} is longer than ${lineBytesMax} bytes`);
  }
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * Yields each line of the source without its terminator (`\n` or `\r\n`). A last line without a
 * terminator is yielded too; an empty source yields nothing. Memory is bounded by lineBytesMax
 * plus one chunk: pulling lines lazily is what gives the source backpressure.
 */
export async function* splitLines(
  source: AsyncIterable<Uint8Array | string>,
  lineBytesMax: number,
): AsyncGenerator<string, void, undefined> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineNumber = 1;
  for await (const input of source) {
    const chunk = typeof input === 'string' ? Buffer.from(input, 'utf8') : asBuffer(input);
    let start = 0;
    for (
      let newline = chunk.indexOf(NEWLINE, start);
      newline !== -1;
      newline = chunk.indexOf(NEWLINE, start)
    ) {
      const piece = chunk.subarray(start, newline);
      if (pendingBytes + piece.length > lineBytesMax) throw new LineTooLongError(lineNumber, lineBytesMax);
      const line = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
      pending = [];
      pendingBytes = 0;
      yield decodeLine(line);
      lineNumber++;
      start = newline + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      pendingBytes += rest.length;
      if (pendingBytes > lineBytesMax) throw new LineTooLongError(lineNumber, lineBytesMax);
      // Copy: the source may reuse its chunk buffers.
      pending.push(Buffer.from(rest));
    }
  }
  if (pendingBytes > 0) {
    if (pendingBytes > lineBytesMax) throw new LineTooLongError(lineNumber, lineBytesMax);
    yield decodeLine(Buffer.concat(pending));
  }
}

function decodeLine(line: Buffer): string {
  const end = line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN ? line.length - 1 : line.length;
  return line.toString('utf8', 0, end);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
