// The frame codec and the stream reader: round trips of arbitrary batches under arbitrary chunking,
// the size of the common App shape, views instead of copies, and malformed input as typed errors.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AssertionError,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  makeMessage,
  type Snapshot,
} from '../../src/raft/index.js';
import {
  BATCH_FRAME_OVERHEAD_BYTES,
  decodeFrame,
  ENTRY_HEADER_BYTES,
  encodeBatch,
  encodedMessageBytes,
  FRAME_LENGTH_BYTES,
  type Frame,
  FrameKind,
  MESSAGE_HEADER_BYTES,
  PING_FRAME,
  PONG_FRAME,
} from '../../src/transport/codec.js';
import { isTransportError } from '../../src/transport/errors.js';
import { FrameReader } from '../../src/transport/frame-reader.js';

const MAX_FRAME_BYTES = 1 << 20;

// --- arbitraries ----------------------------------------------------------------------------

const nodeIdArb = fc.nat({ max: 0xffff_ffff });
const dataArb = fc.uint8Array({ maxLength: 64 });
const entryTypeArb = fc.constantFrom(EntryType.Normal, EntryType.ConfChange);

const snapshotArb: fc.Arbitrary<Snapshot> = fc.record({
  metadata: fc.record({
    index: fc.maxSafeNat(),
    term: fc.maxSafeNat(),
    confState: fc.record({
      voters: fc.array(nodeIdArb, { maxLength: 5 }),
      learners: fc.array(nodeIdArb, { maxLength: 3 }),
    }),
  }),
  data: fc.uint8Array({ maxLength: 256 }),
});

/** Entries contiguous from index+1 (the App shape) or with arbitrary indexes. */
function entriesArb(index: number): fc.Arbitrary<Entry[]> {
  const contiguous = fc
    .array(fc.tuple(fc.maxSafeNat(), entryTypeArb, dataArb), { maxLength: 8 })
    .map((list) => list.map(([term, type, data], i) => ({ term, index: index + 1 + i, type, data })));
  const arbitrary = fc.array(
    fc.record({ term: fc.maxSafeNat(), index: fc.maxSafeNat(), type: entryTypeArb, data: dataArb }),
    { maxLength: 8 },
  );
  return fc.oneof(contiguous, arbitrary);
}

const messageArb: fc.Arbitrary<Message> = fc
  .record({
    type: fc.integer({ min: MessageType.App, max: MessageType.TransferLeader }),
    from: nodeIdArb,
    to: nodeIdArb,
    term: fc.maxSafeNat(),
    logTerm: fc.maxSafeNat(),
    index: fc.nat({ max: Number.MAX_SAFE_INTEGER - 16 }),
    commit: fc.maxSafeNat(),
    reject: fc.boolean(),
    rejectHint: fc.maxSafeNat(),
    context: fc.maxSafeInteger(),
    snapshot: fc.option(snapshotArb, { freq: 5 }),
    recovering: fc.boolean(),
  })
  .chain((fields) =>
    entriesArb(fields.index).map((entries) => {
      const message = makeMessage(fields.type, fields.from, fields.to, fields.term);
      return { ...message, ...fields, entries };
    }),
  );

const batchArb = fc.array(fc.tuple(nodeIdArb, messageArb), { maxLength: 12 });

// --- helpers --------------------------------------------------------------------------------

/** Plain, comparable form: byte views become number arrays. */
function plain(message: Message): unknown {
  return {
    ...message,
    entries: message.entries.map((e) => ({ ...e, data: Array.from(e.data) })),
    snapshot: message.snapshot && { ...message.snapshot, data: Array.from(message.snapshot.data) },
  };
}

/** Feeds `bytes` to a reader in pieces cut at `cuts` and returns the frames it produced. */
function readFrames(bytes: Buffer, cuts: number[] = []): Buffer[] {
  const frames: Buffer[] = [];
  const reader = new FrameReader({
    maxFrameBytes: MAX_FRAME_BYTES,
    sink: { onFrame: (b) => frames.push(b) },
  });
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let start = 0;
  for (const point of [...points, bytes.length]) {
    if (point > start) reader.push(bytes.subarray(start, point));
    start = Math.max(start, point);
  }
  return frames;
}

function batchOf(frame: Frame) {
  if (frame.kind !== FrameKind.Batch) throw new Error(`expected a batch, got kind ${frame.kind}`);
  return frame.batch;
}

function app(index: number, count: number, dataBytes: number): Message {
  const message = makeMessage(MessageType.App, 1, 2, 7);
  message.index = index;
  message.logTerm = 7;
  message.commit = index;
  message.entries = Array.from({ length: count }, (_, i) => ({
    term: 7,
    index: index + 1 + i,
    type: EntryType.Normal,
    data: new Uint8Array(dataBytes).fill(i),
  }));
  return message;
}

/** Decodes `body`, returning the error it threw (or null); any non-TransportError fails the test. */
function decodeError(body: Buffer): unknown {
  try {
    decodeFrame(body);
    return null;
  } catch (error) {
    if (!isTransportError(error)) throw error;
    return error;
  }
}

// --- tests ----------------------------------------------------------------------------------

describe('codec round trips', () => {
  it('any batch survives encode, arbitrary chunking and decode unchanged', () => {
    fc.assert(
      fc.property(batchArb, fc.array(fc.nat(), { maxLength: 6 }), (pairs, cuts) => {
        const groupIds = pairs.map(([g]) => g);
        const messages = pairs.map(([, m]) => m);
        const frame = encodeBatch(groupIds, messages);
        const bodies = readFrames(frame, cuts);
        expect(bodies).toHaveLength(1);
        const batch = batchOf(decodeFrame(bodies[0]!));
        expect(Array.from(batch.groupIds)).toEqual(groupIds);
        expect(batch.messages.map(plain)).toEqual(messages.map(plain));
      }),
      { numRuns: 300 },
    );
  });

  it('several frames written back to back come out in order under any chunking', () => {
    fc.assert(
      fc.property(fc.array(batchArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat()), (batches, cuts) => {
        const frames = batches.map((pairs) =>
          encodeBatch(
            pairs.map(([g]) => g),
            pairs.map(([, m]) => m),
          ),
        );
        const stream = Buffer.concat([PING_FRAME, ...frames, PONG_FRAME]);
        const bodies = readFrames(stream, cuts);
        expect(bodies.map((b) => decodeFrame(b).kind)).toEqual([
          FrameKind.Ping,
          ...frames.map(() => FrameKind.Batch),
          FrameKind.Pong,
        ]);
        bodies.slice(1, -1).forEach((body, i) => {
          expect(batchOf(decodeFrame(body)).messages.map(plain)).toEqual(
            batches[i]!.map(([, m]) => plain(m)),
          );
        });
      }),
      { numRuns: 200 },
    );
  });

  it('an App sends no entry indexes: 13 bytes per entry plus its data', () => {
    const message = app(41, 16, 100);
    expect(encodedMessageBytes(message)).toBe(MESSAGE_HEADER_BYTES + 16 * (ENTRY_HEADER_BYTES + 100));
    const frame = encodeBatch([3], [message]);
    expect(frame.length).toBe(BATCH_FRAME_OVERHEAD_BYTES + encodedMessageBytes(message));
    const decoded = batchOf(decodeFrame(frame.subarray(FRAME_LENGTH_BYTES))).messages[0]!;
    expect(decoded.entries.map((e) => e.index)).toEqual(message.entries.map((e) => e.index));
  });

  it('entries that do not follow the index carry explicit indexes and round trip', () => {
    const message = app(10, 3, 4);
    message.entries = [message.entries[2]!, message.entries[0]!];
    expect(encodedMessageBytes(message)).toBe(MESSAGE_HEADER_BYTES + 2 * (ENTRY_HEADER_BYTES + 8 + 4));
    const decoded = batchOf(decodeFrame(encodeBatch([0], [message]).subarray(FRAME_LENGTH_BYTES)));
    expect(decoded.messages[0]!.entries.map((e) => e.index)).toEqual([13, 11]);
  });

  it('decoded entry data are views into the received frame, not copies', () => {
    const frame = encodeBatch([1, 2], [app(0, 4, 100), app(4, 1, 0)]);
    const body = readFrames(frame)[0]!;
    const [first, second] = batchOf(decodeFrame(body)).messages;
    for (const entry of first!.entries) {
      expect(entry.data.buffer).toBe(frame.buffer);
      expect(entry.data.length).toBe(100);
    }
    expect(second!.entries[0]!.data.length).toBe(0);
  });

  it('ping and pong are constant five-byte frames', () => {
    expect(decodeFrame(PING_FRAME.subarray(FRAME_LENGTH_BYTES)).kind).toBe(FrameKind.Ping);
    expect(decodeFrame(PONG_FRAME.subarray(FRAME_LENGTH_BYTES)).kind).toBe(FrameKind.Pong);
    expect(PING_FRAME.length).toBe(5);
  });
});

describe('codec: malformed input is a typed error, never a crash', () => {
  const valid = encodeBatch([5, 6], [app(100, 3, 20), { ...app(0, 0, 0), snapshot: null }]).subarray(
    FRAME_LENGTH_BYTES,
  );

  it('every truncation of a valid frame is MalformedFrame', () => {
    for (let length = 0; length < valid.length; length++) {
      const error = decodeError(valid.subarray(0, length));
      expect(isTransportError(error, 'MalformedFrame'), `truncated to ${length}`).toBe(true);
    }
  });

  it('random bytes and random corruptions decode or fail with a TransportError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        decodeError(Buffer.from(bytes));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const corrupt = Buffer.from(valid);
          for (const [at, value] of edits) corrupt[at % corrupt.length] = value;
          decodeError(corrupt);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a count larger than the frame could hold is refused before allocating', () => {
    const body = Buffer.alloc(5);
    body[0] = FrameKind.Batch;
    body.writeUInt32LE(0xffff_ffff, 1);
    expect(isTransportError(decodeError(body), 'MalformedFrame')).toBe(true);
  });

  it('unknown kinds, unknown flags, bad types, non-integer terms and trailing bytes are refused', () => {
    const cases: Array<[string, (body: Buffer) => void]> = [
      ['kind', (b) => (b[0] = 9)],
      ['message type', (b) => (b[9] = 0)],
      ['flags', (b) => (b[10] = 0x80)],
      ['term NaN', (b) => b.writeDoubleLE(Number.NaN, 19)],
      ['term negative', (b) => b.writeDoubleLE(-1, 19)],
      ['index fractional', (b) => b.writeDoubleLE(1.5, 35)],
    ];
    for (const [name, corrupt] of cases) {
      const body = Buffer.from(valid);
      corrupt(body);
      expect(isTransportError(decodeError(body), 'MalformedFrame'), name).toBe(true);
    }
    const trailing = Buffer.concat([valid, Buffer.from([0])]);
    expect(isTransportError(decodeError(trailing), 'MalformedFrame')).toBe(true);
  });

  it('a length prefix of zero or above maxFrameBytes is FrameTooLarge', () => {
    for (const length of [0, MAX_FRAME_BYTES + 1, 0xffff_ffff]) {
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32LE(length);
      expect(() => readFrames(prefix)).toThrow(expect.objectContaining({ code: 'FrameTooLarge' }));
    }
  });

  it('a message the sender cannot encode is an AssertionError at the sender', () => {
    const bad: Array<Partial<Message>> = [
      { term: Number.NaN },
      { index: 1.5 },
      { commit: -1 },
      { from: -1 },
      { type: 99 as MessageType },
      { context: Number.POSITIVE_INFINITY },
    ];
    for (const fields of bad) {
      expect(() => encodedMessageBytes({ ...app(0, 1, 1), ...fields })).toThrow(AssertionError);
    }
    expect(() => encodeBatch([-1], [app(0, 0, 0)])).toThrow(AssertionError);
  });
});
