// The frame codec and the stream reader: round trips of every message kind and of arbitrary
// batches under arbitrary chunking, the size of each kind (only its own fields go on the wire),
// views instead of copies, and malformed input as typed errors.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AppMessage,
  AssertionError,
  type Entry,
  EntryType,
  type Message,
  type MessageOf,
  MessageType,
  makeMessage,
  type Snapshot,
} from '../../src/raft/index.js';
import {
  APP_FIXED_BYTES,
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

const u53Arb = fc.maxSafeNat();

/** A message of `type` with arbitrary ends and term, and the body fields drawn by `bodyArb`. */
function kindArb<T extends MessageType>(
  type: T,
  bodyArb: fc.Arbitrary<Partial<MessageOf<T>>>,
): fc.Arbitrary<Message> {
  return fc
    .tuple(nodeIdArb, nodeIdArb, u53Arb, bodyArb)
    .map(([from, to, term, body]) => Object.assign(makeMessage(type, from, to, term), body) as Message);
}

/** One arbitrary per message kind; the Record makes a new kind fail to compile until it is here. */
const KIND_ARBS: Record<MessageType, fc.Arbitrary<Message>> = {
  [MessageType.App]: kindArb(
    MessageType.App,
    fc
      .record({
        prevIndex: fc.nat({ max: Number.MAX_SAFE_INTEGER - 16 }),
        prevTerm: u53Arb,
        commit: u53Arb,
        termStartIndex: u53Arb,
      })
      .chain((fields) => entriesArb(fields.prevIndex).map((entries) => ({ ...fields, entries }))),
  ),
  [MessageType.AppResp]: kindArb(
    MessageType.AppResp,
    fc.oneof(
      fc.record({ matchIndex: u53Arb, recovering: fc.boolean() }),
      fc.record({
        reject: fc.constant(true),
        rejectedIndex: u53Arb,
        hintIndex: u53Arb,
        hintTerm: u53Arb,
        recovering: fc.boolean(),
      }),
    ),
  ),
  [MessageType.Vote]: kindArb(MessageType.Vote, voteBodyArb()),
  [MessageType.PreVote]: kindArb(MessageType.PreVote, voteBodyArb()),
  [MessageType.VoteResp]: kindArb(MessageType.VoteResp, fc.record({ reject: fc.boolean() })),
  [MessageType.PreVoteResp]: kindArb(MessageType.PreVoteResp, fc.record({ reject: fc.boolean() })),
  [MessageType.Heartbeat]: kindArb(MessageType.Heartbeat, fc.record({ commit: u53Arb, round: u53Arb })),
  [MessageType.HeartbeatResp]: kindArb(
    MessageType.HeartbeatResp,
    fc.record({ round: u53Arb, recovering: fc.boolean() }),
  ),
  [MessageType.Snapshot]: kindArb(
    MessageType.Snapshot,
    fc.record({ snapshot: snapshotArb, commit: u53Arb, termStartIndex: u53Arb }),
  ),
  [MessageType.ReadIndex]: kindArb(MessageType.ReadIndex, fc.record({ requestId: fc.maxSafeInteger() })),
  [MessageType.ReadIndexResp]: kindArb(
    MessageType.ReadIndexResp,
    fc.record({ requestId: fc.maxSafeInteger(), readIndex: u53Arb }),
  ),
  [MessageType.TimeoutNow]: kindArb(MessageType.TimeoutNow, fc.constant({})),
  [MessageType.TransferLeader]: kindArb(MessageType.TransferLeader, fc.record({ transferee: nodeIdArb })),
  [MessageType.Commit]: kindArb(
    MessageType.Commit,
    fc.record({ commit: u53Arb, matchIndex: u53Arb, matchTerm: u53Arb }),
  ),
};

function voteBodyArb() {
  return fc.record({ lastIndex: u53Arb, lastTerm: u53Arb, transfer: fc.boolean(), recovering: fc.boolean() });
}

const messageArb: fc.Arbitrary<Message> = fc.oneof(...Object.values(KIND_ARBS));

const batchArb = fc.array(fc.tuple(nodeIdArb, messageArb), { maxLength: 12 });

/** Every numeric value of MessageType. */
const ALL_TYPES = Object.values(MessageType).filter((v): v is MessageType => typeof v === 'number');

// --- helpers --------------------------------------------------------------------------------

/** Plain, comparable form: byte views become number arrays. */
function plain(message: Message): unknown {
  if (message.type === MessageType.App) {
    return { ...message, entries: message.entries.map((e) => ({ ...e, data: Array.from(e.data) })) };
  }
  if (message.type === MessageType.Snapshot) {
    return { ...message, snapshot: { ...message.snapshot, data: Array.from(message.snapshot.data) } };
  }
  return message;
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

function app(prevIndex: number, count: number, dataBytes: number): AppMessage {
  const message = makeMessage(MessageType.App, 1, 2, 7);
  message.prevIndex = prevIndex;
  message.prevTerm = 7;
  message.commit = prevIndex;
  message.termStartIndex = 3;
  message.entries = Array.from({ length: count }, (_, i) => ({
    term: 7,
    index: prevIndex + 1 + i,
    type: EntryType.Normal,
    data: new Uint8Array(dataBytes).fill(i),
  }));
  return message;
}

/** The entries of a decoded App; fails the test for any other kind. */
function entriesOf(message: Message): Entry[] {
  if (message.type !== MessageType.App) throw new Error(`expected an App, got ${MessageType[message.type]}`);
  return message.entries;
}

/** A message of `type` from 1 to 2 in term 7 with `fields` set. */
function example<T extends MessageType>(type: T, fields: Partial<MessageOf<T>>): Message {
  return Object.assign(makeMessage(type, 1, 2, 7), fields) as Message;
}

/**
 * One message of each kind and its encoded size: the 22-byte header (group, type, flags, from, to,
 * term) and then only the fields of that kind. The Record makes a new kind fail to compile until
 * it has a line here.
 */
const EXAMPLES: Record<MessageType, { message: Message; bytes: number }> = {
  [MessageType.App]: { message: app(41, 0, 0), bytes: 22 + 4 * 8 + 4 },
  [MessageType.AppResp]: { message: example(MessageType.AppResp, { matchIndex: 44 }), bytes: 22 + 8 },
  [MessageType.Vote]: {
    message: example(MessageType.Vote, { lastIndex: 9, lastTerm: 6, transfer: true }),
    bytes: 22 + 2 * 8,
  },
  [MessageType.VoteResp]: { message: example(MessageType.VoteResp, { reject: true }), bytes: 22 },
  [MessageType.PreVote]: {
    message: example(MessageType.PreVote, { lastIndex: 9, lastTerm: 6, recovering: true }),
    bytes: 22 + 2 * 8,
  },
  [MessageType.PreVoteResp]: { message: example(MessageType.PreVoteResp, {}), bytes: 22 },
  [MessageType.Heartbeat]: {
    message: example(MessageType.Heartbeat, { commit: 40, round: 12 }),
    bytes: 22 + 2 * 8,
  },
  [MessageType.HeartbeatResp]: {
    message: example(MessageType.HeartbeatResp, { round: 12, recovering: true }),
    bytes: 22 + 8,
  },
  [MessageType.Snapshot]: {
    message: example(MessageType.Snapshot, {
      snapshot: {
        metadata: { index: 30, term: 5, confState: { voters: [1, 2, 3], learners: [4] } },
        data: new Uint8Array([1, 2, 3]),
      },
      commit: 35,
      termStartIndex: 33,
    }),
    // commit, termStartIndex; index, term, 3 voters, 1 learner and 3 data bytes, each list counted
    bytes: 22 + 2 * 8 + (2 * 8 + 4 + 3 * 4 + 4 + 4 + 4 + 3),
  },
  [MessageType.ReadIndex]: { message: example(MessageType.ReadIndex, { requestId: -5 }), bytes: 22 + 8 },
  [MessageType.ReadIndexResp]: {
    message: example(MessageType.ReadIndexResp, { requestId: 5, readIndex: 40 }),
    bytes: 22 + 2 * 8,
  },
  [MessageType.TimeoutNow]: { message: example(MessageType.TimeoutNow, {}), bytes: 22 },
  [MessageType.TransferLeader]: {
    message: example(MessageType.TransferLeader, { transferee: 3 }),
    bytes: 22 + 4,
  },
  [MessageType.Commit]: {
    message: example(MessageType.Commit, { commit: 40, matchIndex: 38, matchTerm: 7 }),
    bytes: 22 + 3 * 8,
  },
};

function roundTrip(messages: Message[]): Message[] {
  const frame = encodeBatch(
    messages.map((_, i) => i),
    messages,
  );
  return batchOf(decodeFrame(frame.subarray(FRAME_LENGTH_BYTES))).messages;
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
  it('every message kind survives encode and decode field for field, in the shape makeMessage gives it', () => {
    expect(ALL_TYPES).toHaveLength(Object.keys(KIND_ARBS).length);
    for (const type of ALL_TYPES) {
      fc.assert(
        fc.property(KIND_ARBS[type], (message) => {
          const [decoded] = roundTrip([message]);
          expect(plain(decoded!)).toEqual(plain(message));
          // Same keys in the same order: decoded messages share the hidden class of their kind.
          expect(Object.keys(decoded!)).toEqual(Object.keys(makeMessage(type, 0, 0, 0)));
        }),
        { numRuns: 50 },
      );
    }
  });

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

  it('each kind sends only its own fields: the header and nothing it does not use', () => {
    expect(MESSAGE_HEADER_BYTES).toBe(22);
    for (const type of ALL_TYPES) {
      const { message, bytes } = EXAMPLES[type];
      expect(message.type).toBe(type);
      expect(encodedMessageBytes(message), MessageType[type]).toBe(bytes);
      expect(plain(roundTrip([message])[0]!), MessageType[type]).toEqual(plain(message));
    }
    const rejection = example(MessageType.AppResp, {
      reject: true,
      rejectedIndex: 9,
      hintIndex: 5,
      hintTerm: 3,
    });
    expect(encodedMessageBytes(rejection)).toBe(22 + 3 * 8);
  });

  it('an App sends no entry indexes: 13 bytes per entry plus its data', () => {
    const message = app(41, 16, 100);
    expect(encodedMessageBytes(message)).toBe(
      MESSAGE_HEADER_BYTES + APP_FIXED_BYTES + 16 * (ENTRY_HEADER_BYTES + 100),
    );
    const frame = encodeBatch([3], [message]);
    expect(frame.length).toBe(BATCH_FRAME_OVERHEAD_BYTES + encodedMessageBytes(message));
    const decoded = batchOf(decodeFrame(frame.subarray(FRAME_LENGTH_BYTES))).messages[0]!;
    expect(entriesOf(decoded).map((e) => e.index)).toEqual(message.entries.map((e) => e.index));
  });

  it('entries that do not follow prevIndex carry explicit indexes and round trip', () => {
    const message = app(10, 3, 4);
    message.entries = [message.entries[2]!, message.entries[0]!];
    expect(encodedMessageBytes(message)).toBe(
      MESSAGE_HEADER_BYTES + APP_FIXED_BYTES + 2 * (ENTRY_HEADER_BYTES + 8 + 4),
    );
    const [decoded] = roundTrip([message]);
    expect(entriesOf(decoded!).map((e) => e.index)).toEqual([13, 11]);
  });

  it('decoded entry data are views into the received frame, not copies', () => {
    const frame = encodeBatch([1, 2], [app(0, 4, 100), app(4, 1, 0)]);
    const body = readFrames(frame)[0]!;
    const [first, second] = batchOf(decodeFrame(body)).messages;
    for (const entry of entriesOf(first!)) {
      expect(entry.data.buffer).toBe(frame.buffer);
      expect(entry.data.length).toBe(100);
    }
    expect(entriesOf(second!)[0]!.data.length).toBe(0);
  });

  it('ping and pong are constant five-byte frames', () => {
    expect(decodeFrame(PING_FRAME.subarray(FRAME_LENGTH_BYTES)).kind).toBe(FrameKind.Ping);
    expect(decodeFrame(PONG_FRAME.subarray(FRAME_LENGTH_BYTES)).kind).toBe(FrameKind.Pong);
    expect(PING_FRAME.length).toBe(5);
  });
});

describe('codec: malformed input is a typed error, never a crash', () => {
  // An App with entries first (the offsets below point into it), then one message of every kind.
  const messages = [app(100, 3, 20), ...ALL_TYPES.map((type) => EXAMPLES[type].message)];
  const valid = encodeBatch(
    messages.map((_, i) => i + 5),
    messages,
  ).subarray(FRAME_LENGTH_BYTES);
  // Byte offsets in the frame body: kind(1) count(4), then the first message's header.
  const TYPE_AT = 9;
  const FLAGS_AT = 10;
  const TERM_AT = 19;
  const PREV_INDEX_AT = 27;

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

  it('unknown kinds, foreign flags, bad types, non-integer numbers and trailing bytes are refused', () => {
    const cases: Array<[string, (body: Buffer) => void]> = [
      ['kind', (b) => (b[0] = 9)],
      ['message type 0', (b) => (b[TYPE_AT] = 0)],
      ['message type past Commit', (b) => (b[TYPE_AT] = MessageType.Commit + 1)],
      ['unknown flag', (b) => (b[FLAGS_AT] = 0x80)],
      ['reject flag on an App', (b) => (b[FLAGS_AT] = 1)],
      ['term NaN', (b) => b.writeDoubleLE(Number.NaN, TERM_AT)],
      ['term negative', (b) => b.writeDoubleLE(-1, TERM_AT)],
      ['prevIndex fractional', (b) => b.writeDoubleLE(1.5, PREV_INDEX_AT)],
    ];
    expect(decodeError(valid)).toBeNull();
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
    const bad: Message[] = [
      { ...app(0, 1, 1), term: Number.NaN },
      { ...app(0, 1, 1), prevIndex: 1.5 },
      { ...app(0, 1, 1), commit: -1 },
      { ...app(0, 1, 1), from: -1 },
      { ...app(0, 1, 1), type: 99 } as unknown as Message,
      example(MessageType.ReadIndex, { requestId: Number.POSITIVE_INFINITY }),
      example(MessageType.TransferLeader, { transferee: -1 }),
      example(MessageType.Heartbeat, { round: 2 ** 53 }),
      // An acceptance carrying a hint, or a rejection carrying a match, would lose it on the wire.
      example(MessageType.AppResp, { matchIndex: 4, hintIndex: 2 }),
      example(MessageType.AppResp, { reject: true, matchIndex: 4 }),
    ];
    for (const message of bad) {
      expect(() => encodedMessageBytes(message), JSON.stringify(message)).toThrow(AssertionError);
    }
    expect(() => encodeBatch([-1], [app(0, 0, 0)])).toThrow(AssertionError);
  });
});
