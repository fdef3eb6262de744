// The strict JSON body parse (src/api/json-body.ts) against a reference built alongside random
// JSON text: a body passes exactly when every number is canonical decimal within ±(2^53 - 1),
// every string is well-formed Unicode and no object repeats a property name; refusals name the
// field. Then its bounds: nesting, and the cost and size of a refusal of a hostile 16 MiB body.

import fc from 'fast-check';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { parseJsonBody, registerStrictJsonParser } from '../../src/api/json-body.js';
import { fieldAt } from '../../src/api/json-refusal.js';
import { ECHOED_CHARS_MAX, NESTING_DEPTH_MAX } from '../../src/api/json-text.js';
import { BrokerError } from '../../src/broker/errors.js';

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
  // Names are mostly short, so that some repeat (also as different spellings: "a", "\u0061").
  object: fc
    .array(
      fc.tuple(
        fc.oneof(
          string,
          fc.constantFrom('"a"', '"\\u0061"', '"b"').map((text): Piece => ({ text, ok: true })),
        ),
        space,
        tie('value'),
      ),
      {
        maxLength: 4,
      },
    )
    .map((entries) => ({
      text: `{${entries.map(([k, s, v]) => `${k.text}${s}:${s}${v.text}`).join(',')}}`,
      ok:
        entries.every(([k, , v]) => k.ok && v.ok) &&
        new Set(entries.map(([k]) => JSON.parse(k.text) as string)).size === entries.length,
    })),
}));

/** The refusal of `text` by the strict parse (with plain JSON.parse), or null. */
function refusalOf(text: string): BrokerError | null {
  try {
    parseJsonBody(text, JSON.parse);
    return null;
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    return error;
  }
}

describe('strict JSON body scan', () => {
  it('accepts exactly the bodies with canonical safe integers, well-formed strings and no repeated name', () => {
    fc.assert(
      fc.property(value, space, ({ text, ok }, pad) => {
        const body = `${pad}${text}${pad}`;
        expect(JSON.parse(body)).toBeDefined(); // the generator writes valid JSON
        const refusal = refusalOf(body);
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
      const refusal = refusalOf(text);
      expect(refusal?.message, text).toMatch(new RegExp(`^${field.replace(/[/()~"]/g, '\\$&')} `));
    }
  });

  it('finds the field in text that is cut short or not JSON, without throwing', () => {
    expect(fieldAt('{"a": [1, {"b": "x', 18)).toBe('body/a/1/b');
    expect(fieldAt('{"a": [1, {"b', 13)).toBe('body/a/1 (a property name)');
    expect(fieldAt(']]}}{{"', 7)).toBe('body (a property name)');
  });
});

/** How the strict parse refuses `text`: the field, then the repeated name as JSON. */
function expectRepeated(text: string, field: string, name: string): void {
  const refusal = refusalOf(text);
  expect(refusal?.code, text).toBe('INVALID_REQUEST');
  expect(refusal?.message, text).toMatch(
    new RegExp(`^${field.replace(/[/()~"]/g, '\\$&')} has the property `),
  );
  expect(refusal?.message, text).toContain(`property ${JSON.stringify(name)} twice`);
}

describe('repeated property names', () => {
  it('refuses an object that repeats a property name, naming the field and the name', () => {
    expectRepeated('{"records":[{"value":"v","headers":{"a":"1","a":"2"}}]}', 'body/records/0/headers', 'a');
    expectRepeated('{"records":[{"value":"a"}],"records":[{"value":"b"}]}', 'body', 'records');
    expectRepeated('{"records":[{"value":"a","value":"b"}]}', 'body/records/0', 'value');
    // One name, two spellings: JSON.parse would keep one.
    expectRepeated('{"a": 1, "\\u0061" : 2}', 'body', 'a');
    expectRepeated('{"x":[{"k":1},{"k":1,"v":2,"k":3}]}', 'body/x/1', 'k');
    const many = Array.from({ length: 40 }, (_, k) => `"n${k}":${k}`).join(',');
    expectRepeated(`{"o":{${many},"n0":0}}`, 'body/o', 'n0');
  });

  it('accepts one name in sibling and nested objects, and values that equal a name', () => {
    const text = '{"a":{"a":1},"b":{"a":1,"b":[{"a":"a"},{"a":"a"}]},"c":"a","d":["a","a"]}';
    expect(parseJsonBody(text, JSON.parse)).toEqual(JSON.parse(text));
  });
});

const MIB = 1024 * 1024;
/** The request body bound of the API (maxRequestBytes). */
const BODY_BYTES_MAX = 16 * MIB;

/** A fastify app with only the strict parser, answering refusals as the API does. */
async function parserApp() {
  const app = Fastify({ bodyLimit: BODY_BYTES_MAX });
  registerStrictJsonParser(app);
  app.post('/', async (request) => ({ parsed: request.body }));
  app.setErrorHandler((error, _request, reply) => {
    if (!(error instanceof BrokerError)) throw error;
    reply.code(error.statusCode).send({ error: { code: error.code, message: error.message } });
  });
  await app.ready();
  return app;
}

describe('bounds on what a refusal costs', () => {
  it('refuses nesting deeper than NESTING_DEPTH_MAX, and accepts it at the bound', () => {
    const arrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const objects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    for (const nested of [arrays, objects]) {
      expect(refusalOf(nested(NESTING_DEPTH_MAX))).toBeNull();
      const refusal = refusalOf(nested(NESTING_DEPTH_MAX + 1));
      expect(refusal?.code).toBe('INVALID_REQUEST');
      expect(refusal?.message).toContain(`nesting deeper than ${NESTING_DEPTH_MAX}`);
    }
    expect(refusalOf(arrays(NESTING_DEPTH_MAX + 1))?.message).toMatch(/^body(\/0){32} /);
  });

  it('refuses a hostile 16 MiB body at once, with a short message', async () => {
    const app = await parserApp();
    const name = 'a'.repeat(BODY_BYTES_MAX - 20);
    const bodies: Array<[string, Buffer]> = [
      ['nested [[[…', Buffer.from(`${'['.repeat(BODY_BYTES_MAX - 3)}1.5`)],
      ['nested {"a":{"a":…', Buffer.from(`${'{"a":'.repeat(Math.floor(BODY_BYTES_MAX / 5) - 1)}1.5`)],
      [
        'nested [[[…, then not UTF-8',
        Buffer.concat([Buffer.from('['.repeat(BODY_BYTES_MAX - 1)), Buffer.of(0xff)]),
      ],
      ['a 16 MiB property name', Buffer.from(`{"${name}":1.5}`)],
      ['a 16 MiB property name, then not UTF-8', Buffer.from(`{"${name}\xff":1}`, 'latin1')],
      ['a 16 MiB property name, unclosed', Buffer.from(`{"${name}\\ud800`)],
      [
        'two 8 MiB property names, the same',
        Buffer.from(`{"${name.slice(0, 8 * MIB - 10)}":1,"${name.slice(0, 8 * MIB - 10)}":2}`),
      ],
    ];
    try {
      for (const [what, payload] of bodies) {
        expect(payload.length, what).toBeLessThanOrEqual(BODY_BYTES_MAX);
        // CPU time of this process: what the node spends, whatever else the machine runs.
        const started = process.cpuUsage();
        const response = await app.inject({
          method: 'POST',
          url: '/',
          headers: { 'content-type': 'application/json' },
          payload,
        });
        const spent = process.cpuUsage(started);
        const cpuMs = (spent.user + spent.system) / 1000;
        expect(response.statusCode, `${what}: ${response.body.slice(0, 300)}`).toBe(400);
        expect(response.json().error.code, what).toBe('INVALID_REQUEST');
        expect(response.body.length, what).toBeLessThan(1024);
        // The failure this guards against took 11 s and 2.4 GB; a full run of the suite beside it
        // (GC threads, cache pressure) has put a sound refusal at 625 ms of CPU.
        expect(cpuMs, what).toBeLessThan(2000);
      }
    } finally {
      await app.close();
    }
  }, 60_000);

  it('echoes at most ECHOED_CHARS_MAX characters of a field path or property name', () => {
    const long = 'x'.repeat(10_000);
    const deepNames = `${`{"${long}":`.repeat(NESTING_DEPTH_MAX)}1.5${'}'.repeat(NESTING_DEPTH_MAX)}`;
    const repeated = `{"${long}":1,"${long}":2}`;
    for (const text of [deepNames, repeated, `{"${long}":1.5}`]) {
      const message = refusalOf(text)?.message ?? '';
      expect(message.length, message).toBeLessThan(2 * ECHOED_CHARS_MAX + 200);
    }
    expect(fieldAt(deepNames, deepNames.length - NESTING_DEPTH_MAX - 3).length).toBeLessThanOrEqual(
      ECHOED_CHARS_MAX + 1,
    );
  });
});

describe('the charset of a JSON body', () => {
  it('answers 415 for a charset other than utf-8, and takes utf-8 however it is written', async () => {
    const app = await parserApp();
    const post = (contentType: string) =>
      app.inject({
        method: 'POST',
        url: '/',
        headers: { 'content-type': contentType },
        payload: '{"a":"é"}',
      });
    try {
      for (const type of [
        'application/json; charset=utf-16',
        'application/json;charset="UTF-16LE"',
        'application/json; Charset=ISO-8859-1',
        'application/json; charset=',
        'application/json; charset=utf-8; charset=utf-16',
        'APPLICATION/JSON; CHARSET=UTF-32',
      ]) {
        const response = await post(type);
        expect(response.statusCode, type).toBe(415);
        expect(response.json().error.code, type).toBe('UNSUPPORTED_MEDIA_TYPE');
      }
      for (const type of [
        'application/json',
        'application/json; charset=utf-8',
        'application/json;charset=UTF-8',
        'application/json; charset="utf-8"',
        'application/json; charset=utf8',
        'Application/JSON; Charset=Utf-8',
      ]) {
        const response = await post(type);
        expect(response.statusCode, `${type}: ${response.body}`).toBe(200);
        expect(response.json(), type).toEqual({ parsed: { a: 'é' } });
      }
    } finally {
      await app.close();
    }
  });
});
