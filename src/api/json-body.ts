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
import { fieldAt, invalidUtf8, repeatedName } from './json-refusal.js';
import { BINARY_HINT, capText, NESTING_DEPTH_MAX, nextIndex } from './json-text.js';

// Character codes as this module's own constants, not imported from json-text.ts: in the scanning
// loops V8 folds a local constant, and reads an imported binding on every use (measured: a hostile
// 16 MiB body took over 900 ms of CPU with imported codes, within the test's 500 ms without).
const QUOTE = 0x22;
const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const UPPER_E = 0x45;
const LEFT_BRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RIGHT_BRACKET = 0x5d;
const LOWER_E = 0x65;
const LOWER_U = 0x75;
const LEFT_BRACE = 0x7b;
const RIGHT_BRACE = 0x7d;

/** The largest integer a JavaScript number holds exactly, as decimal digits: 2^53 − 1. */
const SAFE_INTEGER_DIGITS = String(Number.MAX_SAFE_INTEGER);

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
