// The JSON bytes of fetched records, written straight from the stored bytes into one buffer: no
// object per record, no generic serializer, no string to encode again on the socket. The bytes
// parse to what encodeRecord (record-json.ts) gives, fields in the order each route has always
// written them; a property test (test/api/fetch-json.test.ts) holds the two together.

import type { StoredRecord } from '../broker/facade.js';
import type { Encoding } from '../wire/types.js';

/** A record's JSON past its key and value bytes: field names, offset, timestamp, partition. */
const RECORD_OVERHEAD_BYTES_MAX = 160;
/** The first buffer of an answer; it doubles as it fills. */
const INITIAL_BYTES = 16 * 1024;

const OFFSET_FIELD = Buffer.from('{"offset":');
const KEY_FIELD = Buffer.from(',"key":');
const VALUE_FIELD = Buffer.from(',"value":');
const HEADERS_FIELD = Buffer.from(',"headers":');
const TIMESTAMP_FIELD = Buffer.from(',"timestamp":');
const PARTITION_FIELD = Buffer.from(',"partition":');
const NULL = Buffer.from('null');
const RECORD_END = Buffer.from('}');
const COMMA = Buffer.from(',');

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SPACE = 0x20;
const TILDE = 0x7e;
const ZERO = 0x30;
/** A safe integer is written as two int32 parts: the high digits, then LOW_DIGITS digits. */
const LOW_DIGITS = 8;
const LOW_DIGITS_SPAN = 10 ** LOW_DIGITS;

/**
 * What a JSON string must escape (quote, backslash, control characters), and surrogates: text
 * decoded from UTF-8 holds only paired ones, but JSON.stringify is the path that is right for any.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `text` as a JSON string; text with nothing to escape skips JSON.stringify. */
function jsonString(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

function bufferOf(bytes: Uint8Array): Buffer {
  // The log hands out Buffer views already; a plain Uint8Array is wrapped, never copied.
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** An integer as the response schema writes it (fast-json-stringify: truncated, never NaN). */
function integerJson(value: number): string {
  if (Number.isInteger(value)) return `${value}`;
  const integer = Math.trunc(value);
  if (!Number.isFinite(integer)) throw new Error(`The value "${value}" cannot be converted to an integer.`);
  return `${integer}`;
}

/**
 * Headers as an object, then JSON: a repeated name keeps its first place and its last value, and
 * names that look like indexes come first, exactly as the object encodeRecord builds. Headers are
 * rare on the hot path, so they keep their JSON.stringify.
 */
function headersJson(headers: Array<[string, Uint8Array | null]>): string {
  const object: Record<string, string | null> = {};
  for (const [name, value] of headers) object[name] = value ? bufferOf(value).toString('utf8') : null;
  return JSON.stringify(object);
}

/** Appends JSON to one growing buffer; `bytes()` is the text so far (a view, not a copy). */
export class JsonBytesWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(initialBytes = INITIAL_BYTES) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  /** Text of ASCII characters only (punctuation, names, digits, base64): one byte each. */
  ascii(text: string): void {
    this.reserve(text.length);
    this.length += this.buffer.write(text, this.length, 'latin1');
  }

  /** Bytes prepared once (a record's field names), copied by hand: a call to set() costs more. */
  constant(bytes: Uint8Array): void {
    const count = bytes.length;
    this.reserve(count);
    const out = this.buffer;
    const at = this.length;
    for (let i = 0; i < count; i++) out[at + i] = bytes[i]!;
    this.length = at + count;
  }

  /**
   * One record of a fetch answer, its fields in the order the route's schema serializer
   * (fast-json-stringify) has always written them: the required ones first.
   */
  fetchedRecord(record: StoredRecord, encoding: Encoding): void {
    this.reserveRecord(record);
    this.constant(OFFSET_FIELD);
    this.integer(record.offset);
    this.constant(VALUE_FIELD);
    this.field(record.value, encoding);
    this.constant(TIMESTAMP_FIELD);
    this.integer(record.timestampMs);
    this.constant(KEY_FIELD);
    this.key(record.key, encoding);
    this.constant(HEADERS_FIELD);
    this.headers(record.headers);
    this.constant(RECORD_END);
  }

  /** One record of a stream, its fields in the order JSON.stringify of encodeRecord wrote them. */
  streamRecord(record: StoredRecord, encoding: Encoding, partition: number): void {
    this.reserveRecord(record);
    this.constant(OFFSET_FIELD);
    this.integer(record.offset);
    this.constant(KEY_FIELD);
    this.key(record.key, encoding);
    this.constant(VALUE_FIELD);
    this.field(record.value, encoding);
    this.constant(HEADERS_FIELD);
    this.headers(record.headers);
    this.constant(TIMESTAMP_FIELD);
    this.integer(record.timestampMs);
    this.constant(PARTITION_FIELD);
    this.integer(partition);
    this.constant(RECORD_END);
  }

  /** Room for a record whose key and value need no escape: one check, not one per field. */
  private reserveRecord(record: StoredRecord): void {
    const key = record.key;
    this.reserve(RECORD_OVERHEAD_BYTES_MAX + record.value.length + (key ? key.length : 0));
  }

  private key(key: Uint8Array | null, encoding: Encoding): void {
    if (key) this.field(key, encoding);
    else this.constant(NULL);
  }

  private headers(headers: Array<[string, Uint8Array | null]> | null): void {
    if (headers) this.utf8(headersJson(headers));
    else this.constant(NULL);
  }

  private utf8(text: string): void {
    this.reserve(Buffer.byteLength(text));
    this.length += this.buffer.write(text, this.length, 'utf8');
  }

  /** Bytes as a JSON string: invalid UTF-8 reads as U+FFFD (Buffer's decoding), as encodeRecord does. */
  private field(bytes: Uint8Array, encoding: Encoding): void {
    if (encoding === 'base64') {
      this.ascii(`"${bufferOf(bytes).toString('base64')}"`);
    } else if (!this.printableAscii(bytes)) {
      this.utf8(jsonString(bufferOf(bytes).toString('utf8')));
    }
  }

  /**
   * Copies `bytes` as a JSON string when each is printable ASCII other than quote and backslash
   * (then the bytes are their own JSON text); false, with nothing written, when one is not.
   */
  private printableAscii(bytes: Uint8Array): boolean {
    const count = bytes.length;
    this.reserve(count + 2);
    const out = this.buffer;
    let at = this.length;
    out[at++] = QUOTE;
    for (let i = 0; i < count; i++) {
      const byte = bytes[i]!;
      if (byte < SPACE || byte > TILDE || byte === QUOTE || byte === BACKSLASH) return false;
      out[at++] = byte;
    }
    out[at++] = QUOTE;
    this.length = at;
    return true;
  }

  /**
   * Digits written in place for the usual case, a safe non-negative integer. A timestamp is past
   * 2^31, where % and division are float operations: it is split into two int32 halves first.
   */
  private integer(value: number): void {
    if (!(Number.isSafeInteger(value) && value >= 0)) {
      this.ascii(integerJson(value));
      return;
    }
    this.reserve(16);
    const high = Math.floor(value / LOW_DIGITS_SPAN);
    const low = value - high * LOW_DIGITS_SPAN;
    if (high === 0) {
      this.smallInteger(low, 0);
    } else {
      this.smallInteger(high, 0);
      this.smallInteger(low, LOW_DIGITS);
    }
  }

  /** `value` < 10^8 in decimal, zero-padded to `width` digits. */
  private smallInteger(value: number, width: number): void {
    let digits = 1;
    for (let rest = value; rest >= 10; rest = (rest / 10) | 0) digits++;
    if (digits < width) digits = width;
    const out = this.buffer;
    let at = this.length + digits;
    let rest = value | 0;
    for (let i = 0; i < digits; i++) {
      const next = (rest / 10) | 0;
      out[--at] = ZERO + (rest - next * 10);
      rest = next;
    }
    this.length += digits;
  }

  private reserve(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

export interface FetchAnswer {
  records: readonly StoredRecord[];
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

/** The whole 200 body of GET .../records, in the order of fetchResponseSchema. */
export function fetchAnswerJson(answer: FetchAnswer, encoding: Encoding): Buffer {
  const records = answer.records;
  // Sized for 100 B values at once: growing copies what is written so far.
  const writer = new JsonBytesWriter(Math.max(INITIAL_BYTES, records.length * 200));
  writer.ascii('{"records":[');
  for (let i = 0; i < records.length; i++) {
    if (i > 0) writer.constant(COMMA);
    writer.fetchedRecord(records[i]!, encoding);
  }
  writer.ascii(`],"nextOffset":${integerJson(answer.nextOffset)},`);
  writer.ascii(`"highWatermark":${integerJson(answer.highWatermark)},`);
  writer.ascii(`"logStartOffset":${integerJson(answer.logStartOffset)}}`);
  return writer.bytes();
}
