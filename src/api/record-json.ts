// Records between their JSON form (utf8 or base64 strings) and bytes. Validation here names the
// offending field, as the contract asks of INVALID_REQUEST messages, and refuses what would not
// read back as sent: base64 with stray bits, headers the record format cannot hold.

import { BrokerError } from '../broker/errors.js';
import type { ProduceInput, StoredRecord } from '../broker/facade.js';
import type { Encoding, FetchedRecord, ProduceRecord } from '../wire/types.js';
import { MAX_RECORD_BYTES } from '../wire/types.js';

/**
 * Canonical base64 (RFC 4648 section 4, padded): the bits that padding leaves over must be zero,
 * or two different strings would decode to the same bytes and read back as the other one.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;
/** The record format stores a header's name length and the header count in 16 bits. */
export const HEADER_NAME_BYTES_MAX = 65_535;
export const HEADERS_PER_RECORD_MAX = 65_535;

function decodeField(value: string, encoding: Encoding, field: string): Buffer {
  if (encoding === 'utf8') return Buffer.from(value, 'utf8');
  if (!BASE64.test(value)) {
    throw new BrokerError(
      'INVALID_REQUEST',
      `${field} is not canonical base64 (encoding is base64: padded, unused bits zero)`,
    );
  }
  return Buffer.from(value, 'base64');
}

/** Decodes one record of a produce request; `index` is its position, for messages. */
export function decodeRecord(record: ProduceRecord, encoding: Encoding, index: number): ProduceInput {
  const field = `records[${index}]`;
  const key =
    record.key === undefined || record.key === null
      ? null
      : decodeField(record.key, encoding, `${field}.key`);
  const value = decodeField(record.value, encoding, `${field}.value`);
  let headers: Array<[string, Uint8Array | null]> | null = null;
  let headerBytes = 0;
  if (record.headers) {
    headers = [];
    for (const [name, headerValue] of Object.entries(record.headers)) {
      const bytes = headerValue === null ? null : Buffer.from(headerValue, 'utf8');
      const nameBytes = Buffer.byteLength(name);
      if (nameBytes > HEADER_NAME_BYTES_MAX) {
        throw new BrokerError(
          'INVALID_REQUEST',
          `${field}.headers: a header name is ${nameBytes} bytes; the limit is ${HEADER_NAME_BYTES_MAX}`,
        );
      }
      headerBytes += nameBytes + (bytes ? bytes.length : 0);
      headers.push([name, bytes]);
    }
    if (headers.length > HEADERS_PER_RECORD_MAX) {
      throw new BrokerError(
        'INVALID_REQUEST',
        `${field}.headers has ${headers.length} headers; the limit is ${HEADERS_PER_RECORD_MAX}`,
      );
    }
  }
  const size = value.length + (key ? key.length : 0) + headerBytes;
  if (size > MAX_RECORD_BYTES) {
    throw new BrokerError(
      'RECORD_TOO_LARGE',
      `${field} is ${size} bytes; the limit (maxRecordBytes) is ${MAX_RECORD_BYTES}`,
    );
  }
  return { key, value, headers, timestampMs: record.timestamp ?? null };
}

function encodeField(bytes: Uint8Array, encoding: Encoding): string {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return encoding === 'utf8' ? buffer.toString('utf8') : buffer.toString('base64');
}

/** A stored record as the fetch response shows it; absent keys and headers stay null. */
export function encodeRecord(record: StoredRecord, encoding: Encoding, partition?: number): FetchedRecord {
  let headers: Record<string, string | null> | null = null;
  if (record.headers) {
    headers = {};
    for (const [name, value] of record.headers) headers[name] = value ? encodeField(value, 'utf8') : null;
  }
  const out: FetchedRecord = {
    offset: record.offset,
    key: record.key ? encodeField(record.key, encoding) : null,
    value: encodeField(record.value, encoding),
    headers,
    timestamp: record.timestampMs,
  };
  if (partition !== undefined) out.partition = partition;
  return out;
}
