// The slow path of the strict JSON body check (json-body.ts), run only for a body already refused:
// it names what is wrong and where, as a field path like `body/records/3/key`: the byte that is
// not UTF-8, the property name an object repeats. Every walk is bounded in depth and linear.

import { BrokerError } from '../broker/errors.js';
import {
  BINARY_HINT,
  capText,
  colonFollows,
  ECHOED_CHARS_MAX,
  NESTING_DEPTH_MAX,
  nextIndex,
} from './json-text.js';

// Character codes as this module's own constants, not imported from json-text.ts: in the scanning
// loops V8 folds a local constant, and reads an imported binding on every use (measured: a hostile
// 16 MiB body took over 900 ms of CPU with imported codes, within the test's 500 ms without).
const QUOTE = 0x22;
const COMMA = 0x2c;
const LEFT_BRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RIGHT_BRACKET = 0x5d;
const LEFT_BRACE = 0x7b;
const RIGHT_BRACE = 0x7d;

/** The refusal of bytes that are not UTF-8, naming the field the first bad byte is in. */
export function invalidUtf8(bytes: Buffer): BrokerError {
  const at = firstInvalidUtf8(bytes);
  const before = bytes.toString('utf8', 0, at);
  return new BrokerError(
    'INVALID_REQUEST',
    `${fieldAt(before, before.length)} is not valid UTF-8 (byte ${at}): a JSON body must be UTF-8 text; ${BINARY_HINT}`,
  );
}

/** The refusal of a text that JSON.parse took with fewer property names than it has. */
export function repeatedName(text: string): BrokerError {
  const at = firstRepeatedName(text);
  // Invariant: the scan counted a name per colon outside strings, and JSON.parse drops none but a repeat.
  if (at < 0) throw new Error('json-body: the parsed body lost a property name, yet none repeats');
  const name = propertyName(text, at, plainStringEnd(text, at + 1, text.length));
  return new BrokerError(
    'INVALID_REQUEST',
    `${fieldAt(text, at)} has the property ${capText(JSON.stringify(name), ECHOED_CHARS_MAX)} twice: ` +
      'a property name (a header name too) may appear once per object',
  );
}

/**
 * The opening quote of the first property name that its object already had, or -1. `text` is
 * JSON that passed the scan: nested at most NESTING_DEPTH_MAX deep. Names are compared decoded:
 * `"a"` and `"\u0061"` are one name.
 */
function firstRepeatedName(text: string): number {
  /** Per open container, the names its object has had; undefined for an array. */
  const open: Array<Set<string> | undefined> = [];
  let backslash = nextIndex(text, '\\', 0);
  let i = 0;
  while (i < text.length) {
    const char = text.charCodeAt(i);
    if (char === QUOTE) {
      const end = plainStringEnd(text, i + 1, text.length);
      if (end < 0) return -1;
      const names = open[open.length - 1];
      if (names !== undefined && colonFollows(text, end)) {
        if (backslash < i) backslash = nextIndex(text, '\\', i);
        const name = backslash < end ? decodeString(text.slice(i, end)) : text.slice(i + 1, end - 1);
        if (names.has(name)) return i;
        names.add(name);
      }
      i = end;
      continue;
    }
    if (char === LEFT_BRACE) open.push(new Set());
    else if (char === LEFT_BRACKET) open.push(undefined);
    else if (char === RIGHT_BRACE || char === RIGHT_BRACKET) open.pop();
    i++;
  }
  return -1;
}

/** Index of the first byte that does not start a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    let trailing: number;
    let smallest: number;
    if (lead >= 0xc2 && lead <= 0xdf) [trailing, smallest] = [1, 0x80];
    else if (lead >= 0xe0 && lead <= 0xef) [trailing, smallest] = [2, 0x800];
    else if (lead >= 0xf0 && lead <= 0xf4) [trailing, smallest] = [3, 0x10000];
    else return i;
    if (i + trailing >= bytes.length) return i;
    let codePoint = lead & (0x3f >> trailing);
    for (let k = 1; k <= trailing; k++) {
      const byte = bytes[i + k]!;
      if ((byte & 0xc0) !== 0x80) return i;
      codePoint = (codePoint << 6) | (byte & 0x3f);
    }
    if (codePoint < smallest || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff))
      return i;
    i += trailing + 1;
  }
  return bytes.length;
}

interface Frame {
  array: boolean;
  /** Array frames: the element's position. */
  index: number;
  /** Object frames: the opening quote of the property being read, once its name has been seen, else -1. */
  keyOpen: number;
  /** Object frames: the index after that name's closing quote. */
  keyEnd: number;
  expectingKey: boolean;
}

/**
 * The field at `at` in `text`, as a path like `body/records/3/timestamp`: tracks containers and
 * property names over the text before `at`. Best effort on text that is not JSON. Bounded for
 * any text: one walk, strings jumped over with indexOf, frames for the outermost
 * NESTING_DEPTH_MAX containers only, names decoded only for the path, which is cut at
 * ECHOED_CHARS_MAX characters.
 */
export function fieldAt(text: string, at: number): string {
  const frames: Frame[] = [];
  /** Containers open at `i`; frames holds the outermost of them. */
  let depth = 0;
  let inPropertyName = false;
  let i = 0;
  while (i < at) {
    const char = text.charCodeAt(i);
    // A container past the kept ones has no frame: its commas and names are not tracked.
    const top = depth === frames.length ? frames[frames.length - 1] : undefined;
    if (char === QUOTE) {
      const end = plainStringEnd(text, i + 1, at);
      const isKey = top !== undefined && !top.array && top.expectingKey;
      if (end < 0) {
        inPropertyName = isKey;
        break;
      }
      if (top && isKey) [top.keyOpen, top.keyEnd, top.expectingKey] = [i, end, false];
      i = end;
      continue;
    }
    if (char === LEFT_BRACE || char === LEFT_BRACKET) {
      const array = char === LEFT_BRACKET;
      if (depth < NESTING_DEPTH_MAX)
        frames.push({ array, index: 0, keyOpen: -1, keyEnd: -1, expectingKey: !array });
      depth++;
    } else if ((char === RIGHT_BRACE || char === RIGHT_BRACKET) && depth > 0) {
      if (depth === frames.length) frames.pop();
      depth--;
    } else if (char === COMMA && top?.array) top.index++;
    else if (char === COMMA && top) [top.keyOpen, top.expectingKey] = [-1, true];
    i++;
  }
  const path = pathOf(text, frames, depth > frames.length);
  return inPropertyName ? `${path} (a property name)` : path;
}

/** `body/…` for the frames, each name escaped as in a JSON pointer; `deeper`: more containers. */
function pathOf(text: string, frames: readonly Frame[], deeper: boolean): string {
  let path = 'body';
  for (const frame of frames) {
    if (path.length > ECHOED_CHARS_MAX) break;
    if (!frame.array && frame.keyOpen < 0) return capText(path, ECHOED_CHARS_MAX);
    const segment = frame.array ? String(frame.index) : propertyName(text, frame.keyOpen, frame.keyEnd);
    path += `/${segment.replaceAll('~', '~0').replaceAll('/', '~1')}`;
  }
  return capText(deeper ? `${path}/…` : path, ECHOED_CHARS_MAX);
}

/**
 * The index after a string's closing quote, or -1 if the string runs past `limit`: the next
 * quote not escaped, i.e. after an even run of backslashes. Each backslash is counted once.
 */
function plainStringEnd(text: string, from: number, limit: number): number {
  let quote = text.indexOf('"', from);
  while (quote >= 0 && quote < limit) {
    let backslashes = 0;
    while (quote - 1 - backslashes >= from && text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) {
      backslashes++;
    }
    if (backslashes % 2 === 0) return quote + 1;
    quote = text.indexOf('"', quote + 1);
  }
  return -1;
}

/**
 * The property name whose literal runs from the quote at `open` to `end` (after its closing
 * quote, or -1 if there is none), decoded and cut at ECHOED_CHARS_MAX characters: only so much
 * of the literal is read (an escape is at most 6 characters for one).
 */
function propertyName(text: string, open: number, end: number): string {
  const literalCharsMax = ECHOED_CHARS_MAX * 6 + 2;
  const whole = end >= 0 && end - open <= literalCharsMax;
  const literal = whole ? text.slice(open, end) : `${text.slice(open, open + literalCharsMax)}"`;
  return capText(decodeString(literal), ECHOED_CHARS_MAX);
}

/** The string a JSON string literal stands for; its inside as written if it is not one. */
function decodeString(literal: string): string {
  try {
    return JSON.parse(literal) as string;
  } catch {
    return literal.slice(1, -1);
  }
}
