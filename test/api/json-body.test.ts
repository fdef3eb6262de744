// The strict JSON body scan (src/api/json-body.ts) against a reference built alongside random
// JSON text: a body passes exactly when every number is canonical decimal within ±(2^53 - 1) and
// every string is well-formed Unicode; refusals name the field.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkJsonText, fieldAt } from '../../src/api/json-body.js';

/** A piece of JSON text and whether the strict rules accept it. */
interface Piece {
  text: string;
  ok: boolean;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function numberPiece(text: string): Piece {
  const canonical = /^-?(0|[1-9][0-9]*)$/.test(text) && text !== '-0';
  const ok = canonical && BigInt(text) <= SAFE && BigInt(text) >= -SAFE;
  return { text, ok };
}

const number = fc
  .oneof(
    fc.integer().map(String),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
    fc.constantFrom(
      '9007199254740991',
      '-9007199254740991',
      '9007199254740992',
      '9007199254740993',
      '10000000000000000',
      '1e20',
      '1E+2',
      '10e-1',
      '1.0',
      '0.5',
      '-0',
      '-0.0',
      '0',
    ),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  )
  .map(numberPiece);

/** String contents written as JSON escapes or raw characters, surrogate escapes included. */
const stringPart = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 6 }).map((s) => JSON.stringify(s).slice(1, -1)),
  fc.constantFrom('\\ud800', '\\uDBFF', '\\udc00', '\\uDFFF', '\\ud83d\\ude80', '\\uD834\\uDD1E', '\\u0041'),
  fc.constantFrom('\\n', '\\\\', '\\"', '\\/', '\\u005c', '\\\\ud800', '"'.replace('"', '\\"')),
  fc.string({ unit: 'grapheme', maxLength: 4 }).map((s) => JSON.stringify(s).slice(1, -1)),
);
const string = fc.array(stringPart, { maxLength: 6 }).map((parts): Piece => {
  const text = `"${parts.join('')}"`;
  return { text, ok: !LONE_SURROGATE.test(JSON.parse(text) as string) };
});
const space = fc.constantFrom('', ' ', '\n', '\t ', '\r\n');

const { value } = fc.letrec<{ value: Piece; array: Piece; object: Piece }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    number,
    string,
    fc.constantFrom('true', 'false', 'null').map((text) => ({ text, ok: true })),
    tie('array'),
    tie('object'),
  ),
  array: fc.tuple(fc.array(fc.tuple(space, tie('value')), { maxLength: 4 }), space).map(([items, end]) => ({
    text: `[${items.map(([s, v]) => s + v.text).join(',')}${end}]`,
    ok: items.every(([, v]) => v.ok),
  })),
  object: fc.array(fc.tuple(string, space, tie('value')), { maxLength: 4 }).map((entries) => ({
    text: `{${entries.map(([k, s, v]) => `${k.text}${s}:${s}${v.text}`).join(',')}}`,
    ok: entries.every(([k, , v]) => k.ok && v.ok),
  })),
}));

describe('strict JSON body scan', () => {
  it('accepts exactly the bodies whose numbers are canonical safe integers and strings well-formed', () => {
    fc.assert(
      fc.property(value, space, ({ text, ok }, pad) => {
        const body = `${pad}${text}${pad}`;
        expect(JSON.parse(body)).toBeDefined(); // the generator writes valid JSON
        const refusal = checkJsonText(body);
        expect(refusal === null, `${body} -> ${refusal?.message}`).toBe(ok);
        if (refusal) expect(refusal.code).toBe('INVALID_REQUEST');
      }),
      { numRuns: 2000 },
    );
  });

  it('names the field of the refused token', () => {
    const cases: Array<[string, string]> = [
      ['{"records":[{"value":"v","timestamp":1e20}]}', 'body/records/0/timestamp'],
      ['{"records":[{"value":"a"},{"value":"b","timestamp":9007199254740993}]}', 'body/records/1/timestamp'],
      ['{"a":{"b/c":[0,1,-0]}}', 'body/a/b~1c/2'],
      ['{"records":[{"value":"x\\ud800"}]}', 'body/records/0/value'],
      ['{"records":[{"headers":{"\\udc00":"v"}}]}', 'body/records/0/headers (a property name)'],
      ['{"k\\"ey":1.5}', 'body/k"ey'],
      ['[1, 2, 01]', 'body/2'],
      ['1.0', 'body'],
    ];
    for (const [text, field] of cases) {
      const refusal = checkJsonText(text);
      expect(refusal?.message, text).toMatch(new RegExp(`^${field.replace(/[/()~"]/g, '\\$&')} `));
    }
  });

  it('finds the field in text that is cut short or not JSON, without throwing', () => {
    expect(fieldAt('{"a": [1, {"b": "x', 18)).toBe('body/a/1/b');
    expect(fieldAt('{"a": [1, {"b', 13)).toBe('body/a/1 (a property name)');
    expect(fieldAt(']]}}{{"', 7)).toBe('body (a property name)');
  });
});
