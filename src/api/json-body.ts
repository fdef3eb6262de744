// Strict JSON request bodies: valid UTF-8, no lone surrogates, and every number a canonical
// decimal integer that a JavaScript number holds exactly. Anything else is 400 INVALID_REQUEST
// naming the field: the broker refuses what it cannot store exactly, it never rounds or mangles.
//
// Why a scan of the raw text rather than a schema check: by the time a schema sees the parsed
// body, 9007199254740993 has become 9007199254740992 and 1.0000000000000001 has become 1; Node
// 20's JSON.parse gives a reviver no source text. So the text is scanned once before JSON.parse
// (after a native UTF-8 check of the bytes); only a body already refused gets a second, slower
// pass that works out the field's path for the message. The rule is global because every
// number of the API is an integer (offsets, counts, ids, milliseconds, bytes): a route that
// ever takes a fraction must revisit it.

import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { BrokerError } from '../broker/errors.js';

/** The largest integer a JavaScript number holds exactly, as decimal digits: 2^53 − 1. */
const SAFE_INTEGER_DIGITS = String(Number.MAX_SAFE_INTEGER);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const LOWER_U = 0x75;
const LEFT_BRACE = 0x7b;
const RIGHT_BRACE = 0x7d;
const LEFT_BRACKET = 0x5b;
const RIGHT_BRACKET = 0x5d;
const COMMA = 0x2c;

const BINARY_HINT = 'send binary data base64-encoded, with "encoding": "base64"';

/** Replaces fastify's JSON parser (keeping its prototype-poisoning rules) with the strict one. */
export function registerStrictJsonParser(
  app: Pick<FastifyInstance, 'getDefaultJsonParser' | 'addContentTypeParser'>,
): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(invalidUtf8(bytes), undefined);
      return;
    }
    const text = bytes.toString('utf8');
    const refusal = checkJsonText(text);
    if (refusal) {
      done(refusal, undefined);
      return;
    }
    parseJson(request, text, done);
  });
}

/**
 * Null when `text` (decoded from valid UTF-8) may go to JSON.parse; otherwise the refusal: a
 * number that is not a canonical safe integer, or a \u escape of a lone surrogate.
 */
export function checkJsonText(text: string): BrokerError | null {
  const at = findProblem(text);
  if (at < 0) return null;
  const field = fieldAt(text, at);
  if (text.charCodeAt(at) === BACKSLASH) {
    return new BrokerError(
      'INVALID_REQUEST',
      `${field} has a lone surrogate (${text.slice(at, at + 6)}): strings must be well-formed Unicode; ${BINARY_HINT}`,
    );
  }
  const token = text.slice(at, numberEnd(text, at + 1));
  return new BrokerError(
    'INVALID_REQUEST',
    `${field} must be an integer in canonical decimal form (no fraction, exponent, leading zero or -0) ` +
      `within ±${SAFE_INTEGER_DIGITS} (2^53-1), not ${token.length > 40 ? `${token.slice(0, 40)}…` : token}`,
  );
}

/**
 * The single pass: skips strings (checking that their \u escapes pair up) and checks each number
 * token outside them. Returns -1, or where the problem is: a number's first char, or the
 * backslash of the bad escape. No allocation, no closures: strings are jumped over with indexOf
 * (vectorized in V8; measured faster here than any char-by-char walk, even for short strings),
 * and the position of the next backslash is kept, since most bodies have none.
 */
function findProblem(text: string): number {
  const length = text.length;
  let backslash = nextIndex(text, '\\', 0);
  let i = 0;
  while (i < length) {
    const char = text.charCodeAt(i);
    if (char === QUOTE) {
      // Only text that is not JSON has a backslash outside a string.
      if (backslash < i) backslash = nextIndex(text, '\\', i);
      let quote = nextIndex(text, '"', i + 1);
      while (backslash < quote) {
        // An escape before the apparent end of the string: check it, then look again.
        const after = escapeEnd(text, backslash);
        if (after < 0) return backslash;
        // Escapes come in runs (\ud83d\ude80): look next door before searching.
        backslash = text.charCodeAt(after) === BACKSLASH ? after : nextIndex(text, '\\', after);
        if (quote < after) quote = nextIndex(text, '"', after);
      }
      i = quote + 1;
    } else if (char === MINUS || (char >= ZERO && char <= NINE)) {
      i = safeIntegerEnd(text, i);
      if (i < 0) return -i - 1;
    } else {
      i++;
    }
  }
  return -1;
}

/** text.indexOf, with text.length for "not found". */
function nextIndex(text: string, search: string, from: number): number {
  const at = text.indexOf(search, from);
  return at < 0 ? text.length : at;
}

/**
 * The index after the escape at `at` (a backslash in a string), or -1 if it is a \u escape of a
 * lone surrogate: a high one must be followed at once by an escaped low one. Raw surrogates
 * cannot occur, since the text came from valid UTF-8. Malformed escapes are left to JSON.parse.
 */
function escapeEnd(text: string, at: number): number {
  if (text.charCodeAt(at + 1) !== LOWER_U) return at + 2;
  const unit = hex4(text, at + 2);
  if (unit < 0xd800 || unit > 0xdfff) return at + 6;
  if (unit >= 0xdc00) return -1;
  const paired = text.charCodeAt(at + 6) === BACKSLASH && text.charCodeAt(at + 7) === LOWER_U;
  const low = paired ? hex4(text, at + 8) : -1;
  return low >= 0xdc00 && low <= 0xdfff ? at + 12 : -1;
}

/** The code unit of four hex digits at `at`, or -1. */
function hex4(text: string, at: number): number {
  let unit = 0;
  for (let k = at; k < at + 4; k++) {
    const char = text.charCodeAt(k);
    let digit: number;
    if (char >= ZERO && char <= NINE) digit = char - ZERO;
    else if (char >= 0x61 && char <= 0x66) digit = char - 0x57;
    else if (char >= 0x41 && char <= 0x46) digit = char - 0x37;
    else return -1;
    unit = unit * 16 + digit;
  }
  return unit;
}

/** The end of a number token: every char that may belong to one (JSON.parse judges syntax). */
function numberEnd(text: string, from: number): number {
  let i = from;
  for (; i < text.length; i++) {
    const char = text.charCodeAt(i);
    const numeric =
      (char >= ZERO && char <= NINE) ||
      char === DOT ||
      char === LOWER_E ||
      char === UPPER_E ||
      char === MINUS ||
      char === PLUS;
    if (!numeric) break;
  }
  return i;
}

/**
 * The end of the number token at `start` if it is `0` or an optional minus and digits without a
 * leading zero, of magnitude at most 2^53 - 1; else -(start + 1).
 */
function safeIntegerEnd(text: string, start: number): number {
  const first = text.charCodeAt(start) === MINUS ? start + 1 : start;
  let i = first;
  for (; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (char < ZERO || char > NINE) break;
  }
  const next = text.charCodeAt(i);
  const digits = i - first;
  const canonical =
    digits > 0 &&
    next !== DOT &&
    next !== LOWER_E &&
    next !== UPPER_E &&
    next !== PLUS &&
    next !== MINUS &&
    (text.charCodeAt(first) !== ZERO || (digits === 1 && first === start)) &&
    (digits < SAFE_INTEGER_DIGITS.length ||
      (digits === SAFE_INTEGER_DIGITS.length && text.slice(first, i) <= SAFE_INTEGER_DIGITS));
  return canonical ? i : -(start + 1);
}

// ---- the slow path: only for a body already refused --------------------------------------------

function invalidUtf8(bytes: Buffer): BrokerError {
  const at = firstInvalidUtf8(bytes);
  const field = fieldAt(bytes.toString('utf8', 0, at), at);
  return new BrokerError(
    'INVALID_REQUEST',
    `${field} is not valid UTF-8 (byte ${at}): a JSON body must be UTF-8 text; ${BINARY_HINT}`,
  );
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
  /** Object frames: the property being read, once its name has been seen. */
  key: string | undefined;
  expectingKey: boolean;
}

/**
 * The field at `at` in `text`, as a path like `body/records/3/timestamp`: tracks containers and
 * property names over the text before `at`. Best effort on text that is not JSON.
 */
export function fieldAt(text: string, at: number): string {
  const frames: Frame[] = [];
  let inPropertyName = false;
  let i = 0;
  while (i < at) {
    const char = text.charCodeAt(i);
    const top = frames[frames.length - 1];
    if (char === QUOTE) {
      const end = plainStringEnd(text, i + 1, at);
      const isKey = top !== undefined && !top.array && top.expectingKey;
      if (end < 0) {
        inPropertyName = isKey;
        break;
      }
      if (top && isKey) {
        top.key = decodeName(text.slice(i, end));
        top.expectingKey = false;
      }
      i = end;
      continue;
    }
    if (char === LEFT_BRACE) frames.push({ array: false, index: 0, key: undefined, expectingKey: true });
    else if (char === LEFT_BRACKET)
      frames.push({ array: true, index: 0, key: undefined, expectingKey: false });
    else if (char === RIGHT_BRACE || char === RIGHT_BRACKET) frames.pop();
    else if (char === COMMA && top?.array) top.index++;
    else if (char === COMMA && top) [top.key, top.expectingKey] = [undefined, true];
    i++;
  }
  let path = 'body';
  for (const frame of frames) {
    const segment = frame.array ? String(frame.index) : frame.key;
    if (segment === undefined) break;
    path += `/${segment.replaceAll('~', '~0').replaceAll('/', '~1')}`;
  }
  return inPropertyName ? `${path} (a property name)` : path;
}

/** The index after a string's closing quote, or -1 if the string runs past `limit`. */
function plainStringEnd(text: string, from: number, limit: number): number {
  for (let i = from; i < limit; i++) {
    const char = text.charCodeAt(i);
    if (char === BACKSLASH) i++;
    else if (char === QUOTE) return i + 1;
  }
  return -1;
}

function decodeName(literal: string): string {
  try {
    return JSON.parse(literal) as string;
  } catch {
    return literal.slice(1, -1);
  }
}
