// Reading segment files as bytes, for the tests that corrupt them on purpose. Not in helpers.ts:
// the crash test transpiles that file alone for its child process, where src/ cannot be imported.

import fs from 'node:fs';
import { readFrameHeader } from '../../src/storage/frame.js';

/** Byte position of each frame in a segment file. */
export function framePositions(file: string): number[] {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const positions: number[] = [];
  for (let at = 0; at < bytes.length; ) {
    const header = readFrameHeader(bytes, at, bytes.length);
    if (header === null) break;
    positions.push(at);
    at += header.frameBytes;
  }
  return positions;
}
