// Strict JSON request bodies: UTF-8 (by content-type and by bytes), no lone surrogates, no
// object with a repeated property name, nesting at most NESTING_DEPTH_MAX deep, and every number a
// canonical decimal integer that a JavaScript number holds exactly. Anything else is 400
// INVALID_REQUEST naming the field (415 for another charset): the broker refuses what it cannot
// store exactly, it never rounds or mangles, nor keeps the last of two values.
//
// Why a scan of the raw text rather than a schema check: by the time a schema sees the parsed
// body, 9007199254740993 has become 9007199254740992 and 1.0000000000000001 has become 1; Node
// 20's JSON.parse gives a reviver no source text. So the text is scanned once before JSON.parse
// (after a native UTF-8 check of the bytes). The same scan counts property names: JSON.parse
// keeps the last of a repeated name, so a parsed value with fewer names than its text had one.
// Only a body already refused gets a second, slower pass that finds the field for the message.
// Every pass is bounded in depth and linear in the body, and a message echoes at most
// ECHOED_CHARS_MAX characters of what the client sent. The rule on numbers is global because
// every number of the API is an integer (offsets, counts, ids, milliseconds, bytes): a route that
// ever takes a fraction must revisit it.

import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { BrokerError } from '../broker/errors.js';

/** The largest integer a JavaScript number holds exactly, as decimal digits: 2^53 − 1. */
const SAFE_INTEGER_DIGITS = String(Number.MAX_SAFE_INTEGER);
/** The deepest nesting of arrays and objects a body may have; no body of the API nests past 4. */
export const NESTING_DEPTH_MAX = 32;
/** The most characters of client text (a field path, a property name) that a message echoes. */
export const ECHOED_CHARS_MAX = 200;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const LOWER_U = 0x75;
const LEFT_BRACE = 0x7b;
const RIGHT_BRACE = 0x7d;
const LEFT_BRACKET = 0x5b;
const RIGHT_BRACKET = 0x5d;
const COMMA = 0x2c;
const SPACE = 0x20;
const TAB = 0x09;
const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;

const BINARY_HINT = 'send binary data base64-encoded, with "encoding": "base64"';

/** Replaces fastify's JSON parser (keeping its prototype-poisoning rules) with the strict one. */
export function registerStrictJsonParser(
  app: Pick<FastifyInstance, 'getDefaultJsonParser' | 'addContentTypeParser'>,
): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  // Fastify picks this parser by media type alone, whatever the parameters: the charset is ours.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const wrongCharset = charsetRefusal(request.headers['content-type']);
    if (wrongCharset) {
      done(wrongCharset, undefined);
      return;
    }
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(invalidUtf8(bytes), undefined);
      return;
    }
    // fastify's parser answers at once, through its callback.
    const parse = (text: string): unknown => {
      let parsed: { error: Error | null; value?: unknown } = { error: null };
      parseJson(request, text, (error, value) => {
        parsed = { error, value };
      });
      if (parsed.error) throw parsed.error;
      return parsed.value;
    };
    let value: unknown;
    try {
      value = parseJsonBody(bytes.toString('utf8'), parse);
    } catch (error) {
      done(error as Error, undefined);
      return;
    }
    done(null, value);
  });
}

/**
 * Null when a content-type of application/json declares no charset, or utf-8 or utf8 (any case, quoted or
 * not); else 415: the body is decoded as UTF-8 and nothing else. Conservative on purpose: every
 * `;`-separated piece named charset counts, so a header that some reader could take for another
 * charset (repeated, spaced, or hidden in a quoted value) is refused rather than guessed at.
 */
function charsetRefusal(contentType: string | undefined): BrokerError | null {
  if (contentType === undefined || !contentType.includes(';')) return null;
  const parameters = contentType.split(';');
  for (let k = 1; k < parameters.length; k++) {
    const parameter = parameters[k]!;
    const equals = parameter.indexOf('=');
    const name = (equals < 0 ? parameter : parameter.slice(0, equals)).trim().toLowerCase();
    if (name !== 'charset') continue;
    const written = equals < 0 ? '' : parameter.slice(equals + 1).trim();
    const quoted = written.length >= 2 && written.startsWith('"') && written.endsWith('"');
    const charset = quoted ? written.slice(1, -1) : written;
    const lower = charset.toLowerCase();
    // `utf8` is a common spelling of the same charset (Node and many clients write it).
    if (lower !== 'utf-8' && lower !== 'utf8') {
      return new BrokerError(
        'UNSUPPORTED_MEDIA_TYPE',
        `the body must be UTF-8 JSON (content-type: application/json, with no charset or charset=utf-8), ` +
          `not charset ${capText(JSON.stringify(charset), 40)}`,
      );
    }
  }
  return null;
}

/**
 * The strict parse of a body's text (decoded from valid UTF-8): the text checks, then `parse`
 * (JSON.parse with fastify's prototype-poisoning rules, in the app), then the check that the
 * value kept every property name. Throws the refusal, or what `parse` throws.
 */
export function parseJsonBody(text: string, parse: (text: string) => unknown): unknown {
  const checked = checkJsonText(text);
  if (checked instanceof BrokerError) throw checked;
  const value = parse(text);
  // Counts differ only if an object repeated a name, which JSON.parse kept once.
  if (namesIn(value) !== checked) throw repeatedName(text);
  return value;
}

/**
 * The refusal of `text` (decoded from valid UTF-8) before JSON.parse: a number that is not a
 * canonical safe integer, a \u escape of a lone surrogate, or nesting past NESTING_DEPTH_MAX.
 * Otherwise the number of property names in it, if it is JSON.
 */
function checkJsonText(text: string): BrokerError | number {
  const scanned = scan(text);
  if (scanned.problemAt < 0) return scanned.names;
  const at = scanned.problemAt;
  const field = fieldAt(text, at);
  const char = text.charCodeAt(at);
  if (char === BACKSLASH) {
    return new BrokerError(
      'INVALID_REQUEST',
      `${field} has a lone surrogate (${text.slice(at, at + 6)}): strings must be well-formed Unicode; ${BINARY_HINT}`,
    );
  }
  if (char === LEFT_BRACE || char === LEFT_BRACKET) {
    return new BrokerError(
      'INVALID_REQUEST',
      `${field} opens nesting deeper than ${NESTING_DEPTH_MAX} arrays and objects (no body of the API nests past 4)`,
    );
  }
  const token = text.slice(at, numberEnd(text, at + 1));
  return new BrokerError(
    'INVALID_REQUEST',
    `${field} must be an integer in canonical decimal form (no fraction, exponent, leading zero or -0) ` +
      `within ±${SAFE_INTEGER_DIGITS} (2^53-1), not ${token.length > 40 ? `${token.slice(0, 40)}…` : token}`,
  );
}

interface Scanned {
  /** -1, or where the problem is: a number's first char, the backslash of the bad escape, or the bracket past NESTING_DEPTH_MAX. */
  problemAt: number;
  /** Colons outside strings: in JSON, one per property name. */
  names: number;
}

/**
 * The single pass: skips strings (checking that their \u escapes pair up), checks each number
 * token outside them, counts nesting and property names. No closures, one small result: strings
 * are jumped over with indexOf (vectorized in V8; measured faster here than any char-by-char
 * walk, even for short strings), and the position of the next backslash is kept, since most
 * bodies have none.
 */
function scan(text: string): Scanned {
  const length = text.length;
  let backslash = nextIndex(text, '\\', 0);
  let depth = 0;
  let names = 0;
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
        if (after < 0) return { problemAt: backslash, names };
        // Escapes come in runs (\ud83d\ude80): look next door before searching.
        backslash = text.charCodeAt(after) === BACKSLASH ? after : nextIndex(text, '\\', after);
        if (quote < after) quote = nextIndex(text, '"', after);
      }
      i = quote + 1;
    } else if (char === COLON) {
      names++;
      i++;
    } else if (char === MINUS || (char >= ZERO && char <= NINE)) {
      i = safeIntegerEnd(text, i);
      if (i < 0) return { problemAt: -i - 1, names };
    } else if (char === LEFT_BRACE || char === LEFT_BRACKET) {
      if (depth === NESTING_DEPTH_MAX) return { problemAt: i, names };
      depth++;
      i++;
    } else if (char === RIGHT_BRACE || char === RIGHT_BRACKET) {
      // Unbalanced brackets are JSON.parse's to refuse; here they only must not underflow.
      if (depth > 0) depth--;
      i++;
    } else {
      i++;
    }
  }
  return { problemAt: -1, names };
}

/**
 * The property names of a value JSON.parse made: own keys of its objects, nested ones too.
 * Recursion is bounded: the value passed the scan, so it nests at most NESTING_DEPTH_MAX deep.
 */
function namesIn(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let names = 0;
  if (Array.isArray(value)) {
    for (let k = 0; k < value.length; k++) {
      const item: unknown = value[k];
      if (typeof item === 'object' && item !== null) names += namesIn(item);
    }
    return names;
  }
  const object = value as Record<string, unknown>;
  // for-in rather than Object.keys: no array per object (JSON.parse's objects inherit nothing enumerable).
  for (const name in object) {
    names++;
    const item = object[name];
    if (typeof item === 'object' && item !== null) names += namesIn(item);
  }
  return names;
}

/** Whether a colon follows `at`, past whitespace: then the string before `at` is a property name. */
function colonFollows(text: string, at: number): boolean {
  let char = text.charCodeAt(at);
  while (char === SPACE || char === LINE_FEED || char === CARRIAGE_RETURN || char === TAB) {
    char = text.charCodeAt(++at);
  }
  return char === COLON;
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
  const before = bytes.toString('utf8', 0, at);
  return new BrokerError(
    'INVALID_REQUEST',
    `${fieldAt(before, before.length)} is not valid UTF-8 (byte ${at}): a JSON body must be UTF-8 text; ${BINARY_HINT}`,
  );
}

/** The refusal of a text that JSON.parse took with fewer property names than it has. */
function repeatedName(text: string): BrokerError {
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

/** `text`, or its first `charsMax` characters and an ellipsis (never half a surrogate pair). */
function capText(text: string, charsMax: number): string {
  if (text.length <= charsMax) return text;
  const high = text.charCodeAt(charsMax - 1);
  const cut = high >= 0xd800 && high <= 0xdbff ? charsMax - 1 : charsMax;
  return `${text.slice(0, cut)}…`;
}
