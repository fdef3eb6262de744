// The wire format between nodes: one length-prefixed frame carries a batch of (groupId, Message)
// pairs, or a ping, or a pong. Binary and little-endian, never JSON. Encoding computes the size
// first and writes into one Buffer; decoding validates every length before reading and returns
// entry and snapshot data as views into the received bytes instead of copies.
//
//   frame    = length:u32 kind:u8 body         length counts kind + body, in 1..maxFrameBytes
//   Batch(1) = count:u32 message{count}
//   Ping(2), Pong(3): empty body
//   message  = groupId:u32 type:u8 flags:u8 from:u32 to:u32 term:f64 body
//   body, by type (the fields of that kind's interface in raft/types.ts, in this order):
//     App            prevIndex prevTerm commit termStartIndex:f64 entryCount:u32 entry{entryCount}
//     AppResp        accepted: matchIndex:f64; with REJECT: rejectedIndex hintIndex hintTerm:f64
//     Vote, PreVote  lastIndex lastTerm:f64
//     Heartbeat      commit round:f64
//     HeartbeatResp  round:f64
//     Snapshot       commit termStartIndex:f64 snapshot
//     ReadIndex      requestId:f64 (any safe integer)
//     ReadIndexResp  requestId:f64 readIndex:f64
//     TransferLeader transferee:u32
//     Commit         commit matchIndex matchTerm:f64
//     VoteResp, PreVoteResp, TimeoutNow: empty
//   flags    = REJECT (AppResp, VoteResp, PreVoteResp), RECOVERING (AppResp, Vote, PreVote,
//              HeartbeatResp), TRANSFER (Vote, PreVote), EXPLICIT_INDEXES (App); any other is refused
//   entry    = [index:f64, if flags has EXPLICIT_INDEXES] term:f64 type:u8 dataLength:u32 data
//   snapshot = index:f64 term:f64 voterCount:u32 voter:u32{voterCount}
//              learnerCount:u32 learner:u32{learnerCount} dataLength:u32 data
//
// Indexes, terms and commit are integers below 2^53 (JS numbers), stored as float64: exact in that
// range, one write and one read per field (measured here: 8 ns to write a float64 against 21 ns for
// two u32 halves; reads cost the same), and validation is one Number.isSafeInteger. An App's
// entries are contiguous from prevIndex+1, so their indexes are implied and not sent; any other
// shape sets EXPLICIT_INDEXES and sends each index. Each type sends only its own fields, so a
// heartbeat takes 38 bytes and an acknowledgement 30.
//
// Retention trade-off of decoding without copies: every entry's data is a subarray of the frame,
// which is either the socket's read chunk (at most 64 KiB, exactly sized by Node) or, for a frame
// that spanned chunks, one Buffer of exactly the frame's size. Holding any one entry keeps its
// whole chunk or frame alive. Entries are mostly what frames are made of, so the overhead is the
// headers of the other messages. The log's cache, which keeps entries for long, copies them
// (storage/entry-cache.ts).

import {
  type AppMessage,
  AssertionError,
  EMPTY_ENTRIES,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  makeMessage,
  type NodeId,
  type Snapshot,
} from '../raft/index.js';
import { TransportError } from './errors.js';

export enum FrameKind {
  Batch = 1,
  Ping = 2,
  Pong = 3,
}

/** Bytes of the length prefix of every frame. */
export const FRAME_LENGTH_BYTES = 4;
/** Bytes of a batch frame around its messages: length, kind, count. */
export const BATCH_FRAME_OVERHEAD_BYTES = FRAME_LENGTH_BYTES + 1 + 4;
/** The header every message starts with: groupId, type, flags, from, to, term. */
export const MESSAGE_HEADER_BYTES = 4 + 1 + 1 + 4 + 4 + 8;
/** The fixed part of an App's body, before its entries: four numbers and the entry count. */
export const APP_FIXED_BYTES = 4 * 8 + 4;
/** The fixed part of one entry with an implied index, before its data. */
export const ENTRY_HEADER_BYTES = 8 + 1 + 4;
const ENTRY_INDEX_BYTES = 8;
const SNAPSHOT_FIXED_BYTES = 8 + 8 + 4 + 4 + 4;
const NUMBER_BYTES = 8;

const FLAG_REJECT = 1;
const FLAG_RECOVERING = 2;
const FLAG_TRANSFER = 4;
const FLAG_EXPLICIT_INDEXES = 8;

/** The flags each message type may carry, by type; a decoder refuses any other. */
const ALLOWED_FLAGS = new Uint8Array(MessageType.Commit + 1);
ALLOWED_FLAGS[MessageType.App] = FLAG_EXPLICIT_INDEXES;
ALLOWED_FLAGS[MessageType.AppResp] = FLAG_REJECT | FLAG_RECOVERING;
ALLOWED_FLAGS[MessageType.Vote] = FLAG_TRANSFER | FLAG_RECOVERING;
ALLOWED_FLAGS[MessageType.PreVote] = FLAG_TRANSFER | FLAG_RECOVERING;
ALLOWED_FLAGS[MessageType.VoteResp] = FLAG_REJECT;
ALLOWED_FLAGS[MessageType.PreVoteResp] = FLAG_REJECT;
ALLOWED_FLAGS[MessageType.HeartbeatResp] = FLAG_RECOVERING;

/** Messages of one received frame; groupIds[i] is the Raft group of messages[i]. */
export interface MessageBatch {
  readonly groupIds: Uint32Array;
  readonly messages: Message[];
}

export type Frame =
  | { readonly kind: FrameKind.Batch; readonly batch: MessageBatch }
  | { readonly kind: FrameKind.Ping }
  | { readonly kind: FrameKind.Pong };

function controlFrame(kind: FrameKind): Buffer {
  const frame = Buffer.alloc(FRAME_LENGTH_BYTES + 1);
  frame.writeUInt32LE(1, 0);
  frame[FRAME_LENGTH_BYTES] = kind;
  return frame;
}

/** Constant frames, written as they are (a socket never mutates what it is given). */
export const PING_FRAME: Buffer = controlFrame(FrameKind.Ping);
export const PONG_FRAME: Buffer = controlFrame(FrameKind.Pong);
const DECODED_PING: Frame = Object.freeze({ kind: FrameKind.Ping });
const DECODED_PONG: Frame = Object.freeze({ kind: FrameKind.Pong });
const EMPTY_DATA = new Uint8Array(0);

// ---------------------------------------------------------------------------------------------
// Encoding

const isU32 = (value: number): boolean => value >>> 0 === value;
const isUint53 = (value: number): boolean => Number.isSafeInteger(value) && value >= 0;

function unencodable(what: string, value: unknown): never {
  // A caller's bug, not a peer's fault. Built here so that no message string exists on the hot path.
  throw new AssertionError(`cannot encode ${what}: ${String(value)}`);
}

/** Throws unless `value` is an integer in [0, 2^53). `what` is a constant: no string is built. */
function checkUint53(value: number, what: string): void {
  if (!isUint53(value)) unencodable(what, value);
}

/** True when entries[i].index === prevIndex + 1 + i for every entry: the indexes need not be sent. */
function entriesFollowIndex(message: AppMessage): boolean {
  const entries = message.entries;
  const first = message.prevIndex + 1;
  for (let i = 0; i < entries.length; i++) if (entries[i]!.index !== first + i) return false;
  return true;
}

function entriesBytes(entries: readonly Entry[], explicitIndexes: boolean): number {
  const perEntry = explicitIndexes ? ENTRY_HEADER_BYTES + ENTRY_INDEX_BYTES : ENTRY_HEADER_BYTES;
  let bytes = entries.length * perEntry;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (!isUint53(entry.term) || !isUint53(entry.index)) unencodable('entry term/index', entry.index);
    if (entry.type !== EntryType.Normal && entry.type !== EntryType.ConfChange) {
      unencodable('entry type', entry.type);
    }
    bytes += entry.data.length;
  }
  return bytes;
}

function snapshotBytes(snapshot: Snapshot): number {
  const { metadata, data } = snapshot;
  if (!isUint53(metadata.index) || !isUint53(metadata.term)) unencodable('snapshot index', metadata.index);
  const ids = metadata.confState.voters.length + metadata.confState.learners.length;
  return SNAPSHOT_FIXED_BYTES + ids * 4 + data.length;
}

/**
 * Bytes that `message` takes inside a batch frame. Also checks that every field is encodable, so
 * that a bad message fails at the sender's call instead of closing a connection at the receiver.
 */
export function encodedMessageBytes(message: Message): number {
  if (!isU32(message.from) || !isU32(message.to)) unencodable('node id', `${message.from}->${message.to}`);
  checkUint53(message.term, 'term');
  return MESSAGE_HEADER_BYTES + bodyBytes(message);
}

/** Bytes of the body after the header; checks each field the type sends. */
function bodyBytes(m: Message): number {
  switch (m.type) {
    case MessageType.App:
      checkUint53(m.prevIndex, 'prevIndex');
      checkUint53(m.prevTerm, 'prevTerm');
      checkUint53(m.commit, 'commit');
      checkUint53(m.termStartIndex, 'termStartIndex');
      return APP_FIXED_BYTES + entriesBytes(m.entries, !entriesFollowIndex(m));
    case MessageType.AppResp:
      // Only the fields of one outcome are sent: the others must be zero, or they would be lost.
      if (m.reject) {
        if (m.matchIndex !== 0) unencodable('matchIndex of a rejection', m.matchIndex);
        checkUint53(m.rejectedIndex, 'rejectedIndex');
        checkUint53(m.hintIndex, 'hintIndex');
        checkUint53(m.hintTerm, 'hintTerm');
        return 3 * NUMBER_BYTES;
      }
      if (m.rejectedIndex !== 0 || m.hintIndex !== 0 || m.hintTerm !== 0) {
        unencodable('rejection hint of an acceptance', `${m.rejectedIndex}/${m.hintIndex}/${m.hintTerm}`);
      }
      checkUint53(m.matchIndex, 'matchIndex');
      return NUMBER_BYTES;
    case MessageType.Vote:
    case MessageType.PreVote:
      checkUint53(m.lastIndex, 'lastIndex');
      checkUint53(m.lastTerm, 'lastTerm');
      return 2 * NUMBER_BYTES;
    case MessageType.Heartbeat:
      checkUint53(m.commit, 'commit');
      checkUint53(m.round, 'round');
      return 2 * NUMBER_BYTES;
    case MessageType.HeartbeatResp:
      checkUint53(m.round, 'round');
      return NUMBER_BYTES;
    case MessageType.Snapshot:
      checkUint53(m.commit, 'commit');
      checkUint53(m.termStartIndex, 'termStartIndex');
      return 2 * NUMBER_BYTES + snapshotBytes(m.snapshot);
    case MessageType.ReadIndex:
      if (!Number.isSafeInteger(m.requestId)) unencodable('requestId', m.requestId);
      return NUMBER_BYTES;
    case MessageType.ReadIndexResp:
      if (!Number.isSafeInteger(m.requestId)) unencodable('requestId', m.requestId);
      checkUint53(m.readIndex, 'readIndex');
      return 2 * NUMBER_BYTES;
    case MessageType.TransferLeader:
      if (!isU32(m.transferee)) unencodable('transferee', m.transferee);
      return 4;
    case MessageType.Commit:
      checkUint53(m.commit, 'commit');
      checkUint53(m.matchIndex, 'matchIndex');
      checkUint53(m.matchTerm, 'matchTerm');
      return 3 * NUMBER_BYTES;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
    case MessageType.TimeoutNow:
      return 0;
    default:
      return unencodable('message type', (m as Message).type);
  }
}

function writeEntries(frame: Buffer, offset: number, entries: readonly Entry[], explicit: boolean): number {
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (explicit) offset = frame.writeDoubleLE(entry.index, offset);
    offset = frame.writeDoubleLE(entry.term, offset);
    frame[offset++] = entry.type;
    offset = frame.writeUInt32LE(entry.data.length, offset);
    frame.set(entry.data, offset);
    offset += entry.data.length;
  }
  return offset;
}

function writeIds(frame: Buffer, offset: number, ids: readonly NodeId[]): number {
  offset = frame.writeUInt32LE(ids.length, offset);
  for (let i = 0; i < ids.length; i++) offset = frame.writeUInt32LE(ids[i]!, offset);
  return offset;
}

function writeSnapshot(frame: Buffer, offset: number, snapshot: Snapshot): number {
  offset = frame.writeDoubleLE(snapshot.metadata.index, offset);
  offset = frame.writeDoubleLE(snapshot.metadata.term, offset);
  offset = writeIds(frame, offset, snapshot.metadata.confState.voters);
  offset = writeIds(frame, offset, snapshot.metadata.confState.learners);
  offset = frame.writeUInt32LE(snapshot.data.length, offset);
  frame.set(snapshot.data, offset);
  return offset + snapshot.data.length;
}

function writeMessage(frame: Buffer, offset: number, groupId: number, message: Message): number {
  // Looked at once here: both the flags and the entries depend on it.
  const explicitIndexes = message.type === MessageType.App && !entriesFollowIndex(message);
  offset = frame.writeUInt32LE(groupId, offset);
  frame[offset++] = message.type;
  frame[offset++] = messageFlags(message, explicitIndexes);
  offset = frame.writeUInt32LE(message.from, offset);
  offset = frame.writeUInt32LE(message.to, offset);
  offset = frame.writeDoubleLE(message.term, offset);
  return writeBody(frame, offset, message, explicitIndexes);
}

function messageFlags(m: Message, explicitIndexes: boolean): number {
  switch (m.type) {
    case MessageType.App:
      return explicitIndexes ? FLAG_EXPLICIT_INDEXES : 0;
    case MessageType.AppResp:
      return (m.reject ? FLAG_REJECT : 0) | (m.recovering ? FLAG_RECOVERING : 0);
    case MessageType.Vote:
    case MessageType.PreVote:
      return (m.transfer ? FLAG_TRANSFER : 0) | (m.recovering ? FLAG_RECOVERING : 0);
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      return m.reject ? FLAG_REJECT : 0;
    case MessageType.HeartbeatResp:
      return m.recovering ? FLAG_RECOVERING : 0;
    default:
      return 0;
  }
}

function writeBody(frame: Buffer, offset: number, m: Message, explicitIndexes: boolean): number {
  switch (m.type) {
    case MessageType.App:
      offset = frame.writeDoubleLE(m.prevIndex, offset);
      offset = frame.writeDoubleLE(m.prevTerm, offset);
      offset = frame.writeDoubleLE(m.commit, offset);
      offset = frame.writeDoubleLE(m.termStartIndex, offset);
      offset = frame.writeUInt32LE(m.entries.length, offset);
      return writeEntries(frame, offset, m.entries, explicitIndexes);
    case MessageType.AppResp:
      if (!m.reject) return frame.writeDoubleLE(m.matchIndex, offset);
      offset = frame.writeDoubleLE(m.rejectedIndex, offset);
      offset = frame.writeDoubleLE(m.hintIndex, offset);
      return frame.writeDoubleLE(m.hintTerm, offset);
    case MessageType.Vote:
    case MessageType.PreVote:
      offset = frame.writeDoubleLE(m.lastIndex, offset);
      return frame.writeDoubleLE(m.lastTerm, offset);
    case MessageType.Heartbeat:
      offset = frame.writeDoubleLE(m.commit, offset);
      return frame.writeDoubleLE(m.round, offset);
    case MessageType.HeartbeatResp:
      return frame.writeDoubleLE(m.round, offset);
    case MessageType.Snapshot:
      offset = frame.writeDoubleLE(m.commit, offset);
      offset = frame.writeDoubleLE(m.termStartIndex, offset);
      return writeSnapshot(frame, offset, m.snapshot);
    case MessageType.ReadIndex:
      return frame.writeDoubleLE(m.requestId, offset);
    case MessageType.ReadIndexResp:
      offset = frame.writeDoubleLE(m.requestId, offset);
      return frame.writeDoubleLE(m.readIndex, offset);
    case MessageType.TransferLeader:
      return frame.writeUInt32LE(m.transferee, offset);
    case MessageType.Commit:
      offset = frame.writeDoubleLE(m.commit, offset);
      offset = frame.writeDoubleLE(m.matchIndex, offset);
      return frame.writeDoubleLE(m.matchTerm, offset);
    default:
      return offset; // VoteResp, PreVoteResp, TimeoutNow: flags say it all
  }
}

/**
 * Encodes messages[i] of group groupIds[i] as one batch frame, in one allocation.
 * `messageBytes` is the sum of encodedMessageBytes over the messages (the sender keeps it as it
 * queues them); the encoder checks that the bytes written match it exactly.
 */
export function encodeBatchFrame(
  groupIds: readonly number[],
  messages: readonly Message[],
  messageBytes: number,
): Buffer {
  const count = messages.length;
  if (groupIds.length !== count) unencodable('batch with groupIds.length', groupIds.length);
  const frameBytes = BATCH_FRAME_OVERHEAD_BYTES + messageBytes;
  const frame = Buffer.allocUnsafe(frameBytes);
  let offset = frame.writeUInt32LE(frameBytes - FRAME_LENGTH_BYTES, 0);
  frame[offset++] = FrameKind.Batch;
  offset = frame.writeUInt32LE(count, offset);
  for (let i = 0; i < count; i++) {
    const groupId = groupIds[i]!;
    if (!isU32(groupId)) unencodable('group id', groupId);
    offset = writeMessage(frame, offset, groupId, messages[i]!);
  }
  // Paired with encodedMessageBytes: a mismatch would send garbage that the peer rejects.
  if (offset !== frameBytes) unencodable('batch: bytes written vs computed', `${offset} vs ${frameBytes}`);
  return frame;
}

/** Convenience for tests and benches: sizes and encodes a batch in one call. */
export function encodeBatch(groupIds: readonly number[], messages: readonly Message[]): Buffer {
  let messageBytes = 0;
  for (let i = 0; i < messages.length; i++) messageBytes += encodedMessageBytes(messages[i]!);
  return encodeBatchFrame(groupIds, messages, messageBytes);
}

// ---------------------------------------------------------------------------------------------
// Decoding

function malformed(what: string, offset: number): TransportError {
  return new TransportError('MalformedFrame', `malformed frame: ${what} at byte ${offset}`);
}

/**
 * Reads a frame body front to back; every read is preceded by a `need` covering it. Reads go
 * through a DataView: measured here, getFloat64 takes 8 ns where Buffer.readDoubleLE takes 18.
 */
class Cursor {
  offset = 0;
  readonly bytes: Buffer;
  private readonly dataView: DataView;
  constructor(bytes: Buffer) {
    this.bytes = bytes;
    this.dataView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(byteCount: number, what: string): void {
    if (this.bytes.length - this.offset < byteCount) throw malformed(`truncated ${what}`, this.offset);
  }
  u8(): number {
    return this.bytes[this.offset++]!;
  }
  u32(): number {
    const value = this.dataView.getUint32(this.offset, true);
    this.offset += 4;
    return value;
  }
  /** A count whose items take at least `minItemBytes` each: refuses counts the frame cannot hold. */
  count(minItemBytes: number, what: string): number {
    this.need(4, what);
    const value = this.u32();
    if (value * minItemBytes > this.bytes.length - this.offset)
      throw malformed(`${what} ${value}`, this.offset);
    return value;
  }
  uint53(what: string): number {
    const value = this.dataView.getFloat64(this.offset, true);
    if (!isUint53(value)) throw malformed(`${what} ${value}`, this.offset);
    this.offset += 8;
    return value;
  }
  int53(what: string): number {
    const value = this.dataView.getFloat64(this.offset, true);
    if (!Number.isSafeInteger(value)) throw malformed(`${what} ${value}`, this.offset);
    this.offset += 8;
    return value;
  }
  /** A view of the next `length` bytes, not a copy. */
  view(length: number, what: string): Uint8Array {
    if (length === 0) return EMPTY_DATA;
    this.need(length, what);
    const data = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return data;
  }
}

function readEntries(cursor: Cursor, count: number, firstIndex: number, explicit: boolean): Entry[] {
  if (count === 0) return EMPTY_ENTRIES;
  if (!explicit && !isUint53(firstIndex + count)) throw malformed('implied entry index', cursor.offset);
  const headerBytes = explicit ? ENTRY_HEADER_BYTES + ENTRY_INDEX_BYTES : ENTRY_HEADER_BYTES;
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    cursor.need(headerBytes, 'entry');
    const index = explicit ? cursor.uint53('entry index') : firstIndex + i;
    const term = cursor.uint53('entry term');
    const type = cursor.u8();
    if (type !== EntryType.Normal && type !== EntryType.ConfChange)
      throw malformed('entry type', cursor.offset);
    const data = cursor.view(cursor.u32(), 'entry data');
    entries.push({ term, index, type, data });
  }
  return entries;
}

function readIds(cursor: Cursor, what: string): NodeId[] {
  const count = cursor.count(4, what);
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) ids.push(cursor.u32());
  return ids;
}

function readSnapshot(cursor: Cursor): Snapshot {
  cursor.need(16, 'snapshot');
  const index = cursor.uint53('snapshot index');
  const term = cursor.uint53('snapshot term');
  const voters = readIds(cursor, 'snapshot voters');
  const learners = readIds(cursor, 'snapshot learners');
  cursor.need(4, 'snapshot data length');
  const data = cursor.view(cursor.u32(), 'snapshot data');
  return { metadata: { index, term, confState: { voters, learners } }, data };
}

function readMessage(cursor: Cursor, groupIds: Uint32Array, slot: number): Message {
  cursor.need(MESSAGE_HEADER_BYTES, 'message header');
  groupIds[slot] = cursor.u32();
  const type = cursor.u8();
  if (type < MessageType.App || type > MessageType.Commit) throw malformed('message type', cursor.offset);
  const flags = cursor.u8();
  if ((flags & ~ALLOWED_FLAGS[type]!) !== 0) throw malformed('message flags', cursor.offset);
  const from = cursor.u32();
  const to = cursor.u32();
  const term = cursor.uint53('term');
  return readBody(cursor, type as MessageType, flags, from, to, term);
}

/** The body of a message whose header was read. Built through makeMessage: one shape per kind. */
function readBody(
  cursor: Cursor,
  type: MessageType,
  flags: number,
  from: NodeId,
  to: NodeId,
  term: number,
): Message {
  switch (type) {
    case MessageType.App: {
      cursor.need(APP_FIXED_BYTES, 'App');
      const m = makeMessage(type, from, to, term);
      m.prevIndex = cursor.uint53('prevIndex');
      m.prevTerm = cursor.uint53('prevTerm');
      m.commit = cursor.uint53('commit');
      m.termStartIndex = cursor.uint53('termStartIndex');
      const count = cursor.count(ENTRY_HEADER_BYTES, 'entry count');
      m.entries = readEntries(cursor, count, m.prevIndex + 1, (flags & FLAG_EXPLICIT_INDEXES) !== 0);
      return m;
    }
    case MessageType.AppResp: {
      const m = makeMessage(type, from, to, term);
      m.reject = (flags & FLAG_REJECT) !== 0;
      m.recovering = (flags & FLAG_RECOVERING) !== 0;
      if (m.reject) {
        cursor.need(3 * NUMBER_BYTES, 'AppResp');
        m.rejectedIndex = cursor.uint53('rejectedIndex');
        m.hintIndex = cursor.uint53('hintIndex');
        m.hintTerm = cursor.uint53('hintTerm');
      } else {
        cursor.need(NUMBER_BYTES, 'AppResp');
        m.matchIndex = cursor.uint53('matchIndex');
      }
      return m;
    }
    case MessageType.Vote:
    case MessageType.PreVote: {
      cursor.need(2 * NUMBER_BYTES, 'Vote');
      const m = makeMessage(type, from, to, term);
      m.lastIndex = cursor.uint53('lastIndex');
      m.lastTerm = cursor.uint53('lastTerm');
      m.transfer = (flags & FLAG_TRANSFER) !== 0;
      m.recovering = (flags & FLAG_RECOVERING) !== 0;
      return m;
    }
    case MessageType.VoteResp:
    case MessageType.PreVoteResp: {
      const m = makeMessage(type, from, to, term);
      m.reject = (flags & FLAG_REJECT) !== 0;
      return m;
    }
    case MessageType.Heartbeat: {
      cursor.need(2 * NUMBER_BYTES, 'Heartbeat');
      const m = makeMessage(type, from, to, term);
      m.commit = cursor.uint53('commit');
      m.round = cursor.uint53('round');
      return m;
    }
    case MessageType.HeartbeatResp: {
      cursor.need(NUMBER_BYTES, 'HeartbeatResp');
      const m = makeMessage(type, from, to, term);
      m.round = cursor.uint53('round');
      m.recovering = (flags & FLAG_RECOVERING) !== 0;
      return m;
    }
    case MessageType.Snapshot: {
      cursor.need(2 * NUMBER_BYTES, 'Snapshot');
      const m = makeMessage(type, from, to, term);
      m.commit = cursor.uint53('commit');
      m.termStartIndex = cursor.uint53('termStartIndex');
      m.snapshot = readSnapshot(cursor);
      return m;
    }
    case MessageType.ReadIndex: {
      cursor.need(NUMBER_BYTES, 'ReadIndex');
      const m = makeMessage(type, from, to, term);
      m.requestId = cursor.int53('requestId');
      return m;
    }
    case MessageType.ReadIndexResp: {
      cursor.need(2 * NUMBER_BYTES, 'ReadIndexResp');
      const m = makeMessage(type, from, to, term);
      m.requestId = cursor.int53('requestId');
      m.readIndex = cursor.uint53('readIndex');
      return m;
    }
    case MessageType.TransferLeader: {
      cursor.need(4, 'TransferLeader');
      const m = makeMessage(type, from, to, term);
      m.transferee = cursor.u32();
      return m;
    }
    case MessageType.Commit: {
      cursor.need(3 * NUMBER_BYTES, 'Commit');
      const m = makeMessage(type, from, to, term);
      m.commit = cursor.uint53('commit');
      m.matchIndex = cursor.uint53('matchIndex');
      m.matchTerm = cursor.uint53('matchTerm');
      return m;
    }
    case MessageType.TimeoutNow:
      return makeMessage(type, from, to, term);
  }
}

function readBatch(cursor: Cursor): MessageBatch {
  const count = cursor.count(MESSAGE_HEADER_BYTES, 'message count');
  const groupIds = new Uint32Array(count);
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) messages.push(readMessage(cursor, groupIds, i));
  return { groupIds, messages };
}

/**
 * Decodes one frame body (the bytes after the length prefix, starting at the kind byte).
 * Throws TransportError('MalformedFrame') for anything that does not parse exactly.
 */
export function decodeFrame(body: Buffer): Frame {
  const cursor = new Cursor(body);
  cursor.need(1, 'frame kind');
  const kind = cursor.u8();
  let frame: Frame;
  if (kind === FrameKind.Batch) frame = { kind, batch: readBatch(cursor) };
  else if (kind === FrameKind.Ping) frame = DECODED_PING;
  else if (kind === FrameKind.Pong) frame = DECODED_PONG;
  else throw malformed(`frame kind ${kind}`, 0);
  if (cursor.offset !== body.length)
    throw malformed(`${body.length - cursor.offset} trailing bytes`, cursor.offset);
  return frame;
}
