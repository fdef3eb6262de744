// How `raftlog tail` prints a record: the default line (`partition:offset key value`), a kcat-like
// `--format` template, or one JSON object per line. Keys and values arrive as bytes; text that is
// valid UTF-8 is printed with control characters escaped, anything else byte by byte as `\xNN`,
// so no record can write raw bytes or a line break of its own to the terminal.

import { InvalidArgumentError } from 'commander';
import { oneLine } from '../format.js';

/** A record as tail holds it: key and value as the bytes stored. */
export interface TailRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array;
  headers: Record<string, string | null> | null;
}

/** Renders one record as the text to write (the default and JSON renderers end with a newline). */
export type Render = (record: TailRecord) => string;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The bytes as UTF-8 text, or undefined when they are not valid UTF-8. */
function textOf(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** One line of printable text: UTF-8 with control characters escaped, else `\xNN` per byte. */
export function printable(bytes: Uint8Array): string {
  const text = textOf(bytes);
  if (text !== undefined) return oneLine(text);
  let out = '';
  for (const byte of bytes) {
    // Printable ASCII stays; a backslash is escaped too, so that `\x` cannot be forged by the data.
    out +=
      byte >= 0x20 && byte < 0x7f && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** `k=v,k2=v2` (a null value prints the name alone); empty for no headers. */
export function headersText(headers: TailRecord['headers']): string {
  if (!headers) return '';
  return Object.entries(headers)
    .map(([name, value]) => (value === null ? oneLine(name) : `${oneLine(name)}=${oneLine(value)}`))
    .join(',');
}

/** The line tail has always printed: `partition:offset key value`, `-` for no key. */
export const renderLine: Render = (record) => {
  const key = record.key === null ? '-' : printable(record.key);
  return `${record.partition}:${record.offset} ${key} ${printable(record.value)}\n`;
};

/**
 * One JSON object per line. Key and value are strings when both are valid UTF-8; otherwise both are
 * base64 and the object says `"encoding":"base64"` (the HTTP API's convention).
 */
export const renderJson: Render = (record) => {
  const { partition, offset, timestamp, headers } = record;
  const key = record.key === null ? null : textOf(record.key);
  const value = textOf(record.value);
  if (key !== undefined && value !== undefined) {
    return `${JSON.stringify({ partition, offset, timestamp, key, value, headers })}\n`;
  }
  return `${JSON.stringify({
    partition,
    offset,
    timestamp,
    key: record.key === null ? null : Buffer.from(record.key).toString('base64'),
    value: Buffer.from(record.value).toString('base64'),
    headers,
    encoding: 'base64',
  })}\n`;
};

type Part = string | Render;

const FIELDS: Record<string, Render> = {
  t: (record) => oneLine(record.topic),
  p: (record) => String(record.partition),
  o: (record) => String(record.offset),
  // A missing key prints nothing, as kcat's -f does (the default line prints `-`).
  k: (record) => (record.key === null ? '' : printable(record.key)),
  v: (record) => printable(record.value),
  h: (record) => headersText(record.headers),
  T: (record) => String(record.timestamp),
};

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', '\\': '\\' };

/**
 * A `--format` template: `%t %p %o %k %v %h %T` and `%%`, escapes `\n \t \\`. Anything else is a
 * usage error, so that a typo is not printed literally on every record.
 */
export function parseFormat(template: string): Render {
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < template.length; i++) {
    const char = template[i]!;
    if (char !== '%' && char !== '\\') {
      literal += char;
      continue;
    }
    const next = template[++i];
    if (char === '%' && next === '%') literal += '%';
    else if (char === '\\' && next !== undefined && ESCAPES[next] !== undefined) literal += ESCAPES[next];
    else if (char === '%' && next !== undefined && FIELDS[next] !== undefined) {
      if (literal !== '') parts.push(literal);
      literal = '';
      parts.push(FIELDS[next]);
    } else {
      throw new InvalidArgumentError(
        `'${char}${next ?? ''}' is not one of %t %p %o %k %v %h %T %% \\n \\t \\\\`,
      );
    }
  }
  if (literal !== '') parts.push(literal);
  return (record) => {
    let out = '';
    for (const part of parts) out += typeof part === 'string' ? part : part(record);
    return out;
  };
}
